"""VisionNarrator: an MLLM places the condition image in time and writes one description per frame."""

from .errors import (
    NarrationError,
    NarratorBackendError,
    NarratorConnectionError,
    NarratorError,
    NarratorProtocolError,
)
from .narrator import VisionNarrator
from .parsing import parse_narration
from .registry import available_backends, create_backend, register_backend
from .schema import Narration, Segment

__all__ = [
    "Narration",
    "NarrationError",
    "NarratorBackendError",
    "NarratorConnectionError",
    "NarratorError",
    "NarratorProtocolError",
    "Segment",
    "VisionNarrator",
    "available_backends",
    "create_backend",
    "parse_narration",
    "register_backend",
]
