"""Keyframe backends: ReasonDiff's narration rendered, with no ReasonDiff weights ("zero" mode), on diffusers
pipelines that already condition on an image at any frame. `wrap(pipe)` picks the backend from the pipeline's
class; docs/backends.md says what each supports."""

from __future__ import annotations

from .common import KeyframeBackend, check_keyframe, story_prompt
from .ltx import LTXBackend
from .ltx2 import LTX2Backend
from .wan_vace import WanVACEBackend

# diffusers pipeline class -> backend class
KEYFRAME_BACKENDS = {"WanVACEPipeline": WanVACEBackend, "LTXConditionPipeline": LTXBackend,
                     "LTX2ConditionPipeline": LTX2Backend}


def wrap(pipe) -> KeyframeBackend:
    """The backend for a loaded diffusers pipeline; ValueError naming an unsupported class."""
    backend = KEYFRAME_BACKENDS.get(type(pipe).__name__)
    if backend is None:
        raise ValueError(f"no keyframe backend for {type(pipe).__name__}; supported: {', '.join(KEYFRAME_BACKENDS)}")
    return backend(pipe)


__all__ = ["KEYFRAME_BACKENDS", "KeyframeBackend", "LTX2Backend", "LTXBackend", "WanVACEBackend", "check_keyframe", "story_prompt",
           "wrap"]
