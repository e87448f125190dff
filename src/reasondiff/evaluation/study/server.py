"""The study's web pages, on the standard library's threaded HTTP server (no web framework to install).

    GET  /                      instructions and a Start button
    POST /start                 registers a participant (random questions and video orders) -> first page
    GET  /p/<id>/<k>            question k: the image, the prompt, the videos as "Video A..E", a rank for each
    POST /p/<id>/<k>            stores the ranks (a permutation of 1..n) -> next question, or /p/<id>/done
    GET  /p/<id>/<k>/image      the condition image;  GET /p/<id>/<k>/video/<A..E>  a video

Media URLs name the slot, never the method, so the study stays blind. Bind it to 127.0.0.1 (the default) unless
participants reach it through a proxy you control.
"""

from __future__ import annotations

import html
import mimetypes
import re
import string
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from .store import StudyStore

LETTERS = string.ascii_uppercase
STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
         ".videos{display:flex;flex-wrap:wrap;gap:1em}.video{text-align:center}"
         ".video video,.video img{width:200px;display:block}.error{color:#b00}img.cond{max-width:240px}")


def _page(title: str, body: str) -> bytes:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>").encode()


class StudyHandler(BaseHTTPRequestHandler):
    store: StudyStore  # set by make_server

    def log_message(self, format, *args):  # quiet: the study must not spam the terminal per video request
        pass

    # ---------------------------------------------------------------- responses
    def _send(self, status: int, body: bytes, content_type: str = "text/html; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(303)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _file(self, path: str) -> None:
        file = Path(path)
        if not file.is_file():
            return self._send(404, _page("Not found", "<p>missing media file</p>"))
        self._send(200, file.read_bytes(), mimetypes.guess_type(file.name)[0] or "application/octet-stream")

    # ---------------------------------------------------------------- routes
    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/":
            total = self.store.questions_per_participant
            return self._send(200, _page("Video study", (
                "<h1>Which video fits best?</h1><p>Each page shows an image, a text and several videos made from "
                "them. Rank the videos by how coherent they are with both the image and the text, how natural they "
                f"look and their overall quality: 1 = best. There are up to {total} pages.</p>"
                "<form method='post' action='/start'><button id='start' type='submit'>Start</button></form>")))
        match = re.fullmatch(r"/p/([\w-]+)/(\d+)(?:/(image|video/([A-Z])))?", path)
        if match:
            participant, number, media, letter = match.groups()
            page = self.store.page(participant, int(number) - 1)
            if page is None:
                return self._send(404, _page("Not found", "<p>No such question.</p>"))
            if media == "image":
                return self._file(page["image"])
            if letter is not None:
                slot = LETTERS.index(letter)
                return self._file(page["videos"][slot]) if slot < len(page["videos"]) else self._send(404, b"")
            return self._send(200, self._question(participant, int(number), page))
        if re.fullmatch(r"/p/[\w-]+/done", path):
            return self._send(200, _page("Thank you", "<h1 id='done'>Thank you!</h1><p>Your answers are saved.</p>"))
        self._send(404, _page("Not found", "<p>Not found.</p>"))

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        if path == "/start":
            return self._redirect(f"/p/{self.store.new_participant()}/1")
        match = re.fullmatch(r"/p/([\w-]+)/(\d+)", path)
        if not match:
            return self._send(404, _page("Not found", "<p>Not found.</p>"))
        participant, number = match.group(1), int(match.group(2))
        page = self.store.page(participant, number - 1)
        if page is None:
            return self._send(404, _page("Not found", "<p>No such question.</p>"))
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        try:
            ranks = [int(form[f"rank_{LETTERS[i]}"][0]) for i in range(len(page["order"]))]
            self.store.answer(participant, number - 1, ranks)
        except (KeyError, ValueError) as err:
            message = str(err) if isinstance(err, ValueError) and "rank" in str(err) else "rank every video"
            return self._send(400, self._question(participant, number, page, error=message))
        if number < self.store.num_assigned(participant):
            return self._redirect(f"/p/{participant}/{number + 1}")
        self._redirect(f"/p/{participant}/done")

    def _question(self, participant: str, number: int, page: dict, error: str | None = None) -> bytes:
        n, total = len(page["order"]), self.store.num_assigned(participant)
        base = f"/p/{participant}/{number}"
        cells = []
        for i, video in enumerate(page["videos"]):
            letter = LETTERS[i]
            src = f"{base}/video/{letter}"
            media = (f"<img src='{src}' alt='Video {letter}'>" if video.lower().endswith(".gif") else
                     f"<video src='{src}' controls loop muted autoplay playsinline></video>")
            options = "".join(f"<option value='{r}'>{r}</option>" for r in range(1, n + 1))
            cells.append(f"<div class='video'>{media}<label>Video {letter} rank "
                         f"<select name='rank_{letter}' id='rank_{letter}' required>"
                         f"<option value=''>–</option>{options}</select></label></div>")
        problem = f"<p class='error' id='error'>{html.escape(error)}</p>" if error else ""
        body = (f"<h1>Question {number} of {total}</h1>{problem}"
                f"<p><img class='cond' src='{base}/image' alt='condition image'></p>"
                f"<p id='prompt'><b>Text:</b> {html.escape(page['prompt'])}</p>"
                f"<form method='post' action='{base}'><div class='videos'>{''.join(cells)}</div>"
                f"<p>Rank 1 = best, {n} = worst; every video needs a different rank.</p>"
                f"<button id='submit' type='submit'>Submit</button></form>")
        return _page(f"Question {number}", body)


def make_server(db_path: str | Path, host: str = "127.0.0.1", port: int = 8000,
                store: StudyStore | None = None) -> ThreadingHTTPServer:
    """A server for the study in `db_path` (port 0 picks a free port: `server.server_address[1]`).
    Call `serve_forever()` on it, and `shutdown()` from another thread to stop."""
    handler = type("BoundStudyHandler", (StudyHandler,), {"store": store or StudyStore(db_path)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
