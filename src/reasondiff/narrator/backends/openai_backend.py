"""Any OpenAI-compatible chat-completions server: GPT-4o (the paper's inference narrator), vLLM, SGLang, Ollama,
LM Studio.

The `openai` client's own retries are switched off (`max_retries=0`) and done here instead, so the policy is
ours, bounded and testable: timeouts, 429 and 5xx back off exponentially (honouring Retry-After up to the cap);
a refused connection fails at once with the URL in the message, because waiting will not start a server.
Each retry is announced on stderr ("waiting for URL (attempt k/n)"), so a hanging server is never silent.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from ..errors import NarratorBackendError, NarratorConnectionError, NarratorProtocolError
from ..images import data_url, fit
from .base import Conversation, SequentialBatchMixin, translate_parts

OPENAI_URL = "https://api.openai.com/v1"


class OpenAIBackend(SequentialBatchMixin):
    """Chat completions with the image sent inline as a data URL.

    Args:
        model: the server's model name (`gpt-4o`, `Qwen/Qwen2.5-VL-7B-Instruct`, ...).
        base_url: the server's `/v1` URL; default `OPENAI_BASE_URL` or OpenAI's.
        api_key: default `OPENAI_API_KEY`; local servers that need none get a placeholder.
        timeout: seconds per request (`--timeout` on the commands that narrate).
        max_retries: retries after the first try for timeouts, 429 and 5xx (so at most 1 + max_retries requests).
        backoff: first wait in seconds, doubled each retry and capped at `max_backoff`.
        structured_output: send `response_format` json_schema when asked; switched off for this backend the first
            time the server rejects it with 400, and the request is sent again as plain text.
        max_image_side: the longest image side sent; larger images are downscaled first.
        generation: extra chat-completions arguments (temperature, max_tokens, seed, ...).
        notify: where the "waiting for URL (attempt k/n)" lines go; default stderr.
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        structured_output: bool = True,
        max_image_side: int | None = 1024,
        generation: dict[str, Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        notify: Callable[[str], None] | None = None,
    ):
        try:
            import openai
        except ImportError as err:  # an optional extra
            raise ImportError("the openai narrator backend needs the openai client: pip install openai") from err
        if not model:
            raise ValueError("the openai backend needs a model name, e.g. 'openai:gpt-4o'")
        if max_retries < 0 or timeout <= 0 or backoff < 0:
            raise ValueError("max_retries must be >= 0, timeout > 0 and backoff >= 0")
        self._openai = openai
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            if self.base_url == OPENAI_URL:
                raise ValueError(f"set OPENAI_API_KEY to use {model} on {OPENAI_URL} (or pass a base URL: 'openai:MODEL@URL'; "
                                 "for SynthWorld pictures, offline: --narrator synthworld:)")
            key = "not-needed"  # vLLM, Ollama, LM Studio accept any key unless started with one
        self.client = openai.OpenAI(api_key=key, base_url=self.base_url, timeout=timeout, max_retries=0)
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self.structured_output = structured_output
        self.max_image_side = max_image_side
        self.generation = dict(generation or {})
        self.sleep = sleep
        self.notify = notify if notify is not None else _to_stderr
        extras = ",".join(f"{k}={self.generation[k]}" for k in sorted(self.generation))
        self.cache_id = f"openai:{model}@{self.base_url}" + (f"[{extras}]" if extras else "")

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r})"

    def _messages(self, conversation: Conversation) -> list[dict[str, Any]]:
        messages = []
        for message in conversation:
            parts = translate_parts(message, lambda image: {
                "type": "image_url", "image_url": {"url": data_url(fit(image, self.max_image_side))}})
            if message["role"] != "user" and all(p["type"] == "text" for p in parts):
                # system and assistant turns as plain strings: some servers accept no part lists there
                messages.append({"role": message["role"], "content": "\n".join(p["text"] for p in parts)})
            else:
                messages.append({"role": message["role"], "content": parts})
        return messages

    def _wait(self, attempt: int, error: Exception) -> float:
        delay = min(self.max_backoff, self.backoff * 2**attempt)
        response = getattr(error, "response", None)
        retry_after = response.headers.get("retry-after") if response is not None else None
        try:
            if retry_after is not None:
                delay = min(self.max_backoff, max(delay, float(retry_after)))
        except ValueError:
            pass  # an HTTP date: keep our own delay
        return delay

    def chat(self, conversation: Conversation, *, json_schema: dict[str, Any] | None = None) -> str:
        openai = self._openai
        messages = self._messages(conversation)
        failures: list[str] = []
        attempt = 0
        while True:
            kwargs = dict(self.generation)
            if json_schema is not None and self.structured_output:
                kwargs["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "narration", "schema": json_schema, "strict": True},
                }
            try:
                response = self.client.chat.completions.create(model=self.model, messages=messages, **kwargs)
            except openai.APITimeoutError as err:
                failures.append("timed out")
                last = err
            except openai.APIConnectionError as err:
                raise NarratorConnectionError(
                    f"cannot connect to the chat-completions server at {self.base_url} ({err.__cause__ or err}); "
                    "is it running, and is the URL right (it usually ends in /v1)?"
                ) from err
            except openai.APIStatusError as err:
                status = err.status_code
                if status == 400 and "response_format" in kwargs:
                    self.structured_output = False  # the server has no structured output: ask in plain text
                    continue
                if status == 429 or status >= 500:
                    failures.append(f"HTTP {status}")
                    last = err
                else:
                    hint = " (check OPENAI_API_KEY)" if status in (401, 403) else ""
                    hint = f" (is the model name {self.model!r} right?)" if status == 404 else hint
                    raise NarratorBackendError(
                        f"{self.base_url} refused the request with HTTP {status}{hint}: {_detail(err)}"
                    ) from err
            else:
                return _content(response, self.base_url)
            if attempt >= self.max_retries:
                raise NarratorBackendError(
                    f"{self.base_url} did not answer after {attempt + 1} attempts ({', '.join(failures)})"
                ) from last
            delay = self._wait(attempt, last)
            self.notify(f"waiting for {self.base_url} (attempt {attempt + 2}/{self.max_retries + 1}): "
                        f"{failures[-1]}, retrying in {delay:g} s")
            self.sleep(delay)
            attempt += 1


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _content(response, base_url: str) -> str:
    """The answer's text; a refusal or an empty choice list reads as empty, which the parser reports.

    The client hands back a plain string when the body is not JSON (an HTML login page, a proxy's error page
    answered with 200): that is a server speaking another protocol, named as such."""
    if not hasattr(response, "choices"):
        body = " ".join(str(response).split())[:80]
        raise NarratorProtocolError(f"the server at {base_url} did not answer in the OpenAI format "
                                    f"(it sent {body!r}); is the URL its OpenAI-compatible /v1 endpoint?")
    if not response.choices:
        return ""
    return response.choices[0].message.content or ""


def _detail(err) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        inner = body.get("error")
        message = inner.get("message") if isinstance(inner, dict) else body.get("message")
        if message:
            return str(message)[:500]
    return str(err)[:500]


def from_spec(target: str, **options) -> OpenAIBackend:
    """`MODEL` or `MODEL@BASE_URL` (the URL is everything after the last '@' that starts an http(s) URL)."""
    model, base_url = target, None
    at = target.rfind("@http")
    if at >= 0:
        model, base_url = target[:at], target[at + 1 :]
    return OpenAIBackend(model, base_url, **options)
