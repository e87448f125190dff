"""What `ReasonDiffPipeline` and `reasondiff.generate` return (diffusers keeps each pipeline's output in its own
`pipeline_output.py`; here it also keeps `narrated` from importing the pipeline)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diffusers.utils import BaseOutput

from ..narrator.schema import Narration


@dataclass
class ReasonDiffPipelineOutput(BaseOutput):
    """`frames`: the video (list of PIL lists, np array or latents). From `reasondiff.generate` also `narration`,
    the script used (None for "wan"/"rewrite"), and `prompt`, the prompt Wan saw in "wan"/"rewrite" modes, else the
    user's prompt (None when `prompt_embeds` were given); both are lists when the call was batched."""

    frames: Any
    narration: Narration | list[Narration] | None = None
    prompt: str | list[str] | None = None
