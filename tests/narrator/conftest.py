"""A real chat-completions server on 127.0.0.1 that answers from a script and records every request."""

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image




class ChatServer:
    """Queue answers with `answer`, `fail`, `slow` (or a callable that sees the request); read `requests` after."""

    def __init__(self):
        self.script = deque()
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                action = server.script.popleft() if server.script else ("fail", 500, {"error": {"message": "no script"}}, {})
                if callable(action):
                    action = action(body)
                try:
                    if action[0] == "slow":
                        time.sleep(action[1])
                        action = ("answer", action[2])
                    if action[0] == "answer":
                        self._send(200, completion(action[1], body.get("model")), {})
                    elif action[0] == "html":
                        self._send(200, action[1], {}, content_type="text/html")
                    else:
                        self._send(action[1], action[2], action[3])
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    pass

            def _send(self, status, payload, headers, content_type="application/json"):
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def answer(self, content):
        self.script.append(("answer", content))
        return self

    def fail(self, status, message="scripted failure", headers=None):
        self.script.append(("fail", status, {"error": {"message": message, "type": "test"}}, headers or {}))
        return self

    def html(self, page="<html><body><h1>Sign in</h1></body></html>"):
        """A 200 answer that is a web page, as a login portal or a misrouted proxy sends."""
        self.script.append(("html", page))
        return self

    def slow(self, seconds, content):
        self.script.append(("slow", seconds, content))
        return self

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(content, model="test-model"):
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": model or "test-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


@pytest.fixture
def chat_server():
    server = ChatServer()
    yield server
    server.close()


@pytest.fixture
def narrator_factory(chat_server, tmp_path):
    """VisionNarrator on the test server, with millisecond backoff and its own cache folder."""
    from reasondiff.narrator import VisionNarrator

    def make(**kwargs):
        options = dict(timeout=5.0, max_retries=3, backoff=0.001, max_backoff=0.01, cache_dir=tmp_path / "cache")
        options.update(kwargs)
        return VisionNarrator(f"openai:test-model@{chat_server.url}", **options)

    return make


@pytest.fixture
def small_image():
    image = Image.new("RGB", (32, 24), (40, 120, 200))
    image.paste((220, 30, 30), (8, 6, 20, 16))
    return image
