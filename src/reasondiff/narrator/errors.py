"""The narrator's failures, split by whose fault they are: the model's answer, or the road to the model."""

from __future__ import annotations


class NarratorError(RuntimeError):
    """Anything that stops a VisionNarrator call; catch this to handle every narrator failure at once."""


class NarrationError(NarratorError, ValueError):
    """The model answered, but no usable script could be read from what it said.

    `raw` keeps the last answer verbatim (and `answers` every attempt's), so a user can see what the model
    actually wrote instead of guessing from a summary.
    """

    def __init__(self, message: str, raw: str | None = None, answers: list[str] | None = None):
        self.reason = message
        self.raw = raw
        self.answers = list(answers) if answers is not None else ([raw] if raw is not None else [])
        if raw is not None:
            shown = raw if len(raw) <= 2000 else raw[:2000] + f"... [{len(raw) - 2000} more characters]"
            message = f"{message}\n--- raw answer ---\n{shown}"
        super().__init__(message)


class NarratorBackendError(NarratorError):
    """The request never produced an answer: the server refused it or kept failing after bounded retries."""


class NarratorConnectionError(NarratorBackendError, ConnectionError):
    """No connection to the server at all; the message names the URL so the user knows which server to start."""


class NarratorProtocolError(NarratorBackendError, ValueError):
    """Something answered at the URL, but not in the OpenAI format (an HTML page, a proxy, another API): the
    spec points at the wrong server, so commands treat it as bad input (exit 2), not as a failure while running."""
