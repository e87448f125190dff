"""What every keyframe backend shares: the checks of a keyframe call, and the text a one-prompt model is shown
for a frame-wise script.

A backend wraps a diffusers pipeline that already conditions on an image at any frame (VACE's video and mask,
LTX's `LTXVideoCondition`) and renders ReasonDiff's narration on it with no ReasonDiff weights ("zero" mode):
the narrator says where the image belongs and what every frame shows; the backend puts the image there.

Frame-wise text: VACE's DiT (Wan's) takes ReasonDiff's frame-wise cross-attention (`wan_vace_text`), LTX-Video's
its own port (`ltx_text`); LTX-2's does not yet: its cross-attention sees one prompt for the whole clip. There a
script is told in one prompt, its segments in time order (`story_prompt`); nothing pretends each latent frame
reads its own text.
"""

from __future__ import annotations

import math
from typing import Any

import PIL.Image


def check_keyframe(image, image_frame_index: int, strength: float, num_frames: int,
                   frame_prompts: list[str] | None) -> None:
    """ValueError naming the argument for a frame the video does not have, a strength outside [0, 1] or a script
    of another length; TypeError for an image that is not a PIL image. Runs before any encoder does."""
    if not isinstance(image, PIL.Image.Image):
        raise TypeError(f"image must be a PIL image for the keyframe backends, got {type(image).__name__}")
    if isinstance(image_frame_index, bool) or not isinstance(image_frame_index, int):
        raise ValueError(f"image_frame_index must be an int (0-based pixel frame), got {image_frame_index!r}")
    if not 0 <= image_frame_index < num_frames:
        raise ValueError(f"image_frame_index {image_frame_index} is outside the video: 0-based, 0..{num_frames - 1} "
                         f"for num_frames={num_frames}")
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not (
            math.isfinite(strength) and 0.0 <= strength <= 1.0):
        raise ValueError(f"strength must be a number in [0, 1], got {strength!r}")
    if frame_prompts is not None and len(frame_prompts) != num_frames:
        raise ValueError(f"frame_prompts has {len(frame_prompts)} texts but num_frames={num_frames}: one per frame")


def _runs(frame_prompts: list[str]) -> list[str]:
    """The script's descriptions in time order, each run of equal consecutive frames once."""
    return [text for i, text in enumerate(frame_prompts) if i == 0 or text != frame_prompts[i - 1]]


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _lower_first(text: str) -> str:
    """'The cat runs.' -> 'the cat runs.' after 'Then, '; an acronym ('LED ...') keeps its case."""
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def story_prompt(prompt: str, frame_prompts: list[str] | None) -> str:
    """The one prompt a backend without frame-wise text is shown: the user's prompt, then the script's segments
    in time order ("First, ... Then, ... Finally, ..."). Every segment is told, short ones too, because the order
    of events is what the narrator adds; frame numbers are left out (a T5 encoder reads order words, not frame
    counts). No script: the prompt unchanged, so a plain call is the pipeline's own."""
    if frame_prompts is None:
        return prompt
    steps = [_sentence(run) for run in _runs(frame_prompts)]
    if len(steps) > 1:
        steps = ([f"First, {_lower_first(steps[0])}"] + [f"Then, {_lower_first(s)}" for s in steps[1:-1]]
                 + [f"Finally, {_lower_first(steps[-1])}"])
    return " ".join([_sentence(prompt)] + steps)


class KeyframeBackend:
    """A diffusers keyframe pipeline, called as ReasonDiff's pipeline is (`frame_prompts=`, `image_frame_index=`)
    plus `strength=`. Attributes it does not define (`set_progress_bar_config`, `config`, components) are the
    wrapped pipeline's, so the command line drives it as it drives a pipeline."""

    name = "keyframe"
    default_frames = 81
    keyframe_backend = True  # what `reasondiff.generate` looks for
    framewise_text = False  # True: `frame_prompts` reach the DiT frame by frame; False: told in one story prompt

    def __init__(self, pipe):
        self.pipe = pipe

    def __getattr__(self, attr: str) -> Any:
        if attr == "pipe":  # not set yet (copy/pickle): no recursion
            raise AttributeError(attr)
        return getattr(self.pipe, attr)

    def to(self, *args, **kwargs) -> "KeyframeBackend":
        self.pipe.to(*args, **kwargs)
        return self

    def __call__(self, image, prompt: str, frame_prompts: list[str] | None = None, image_frame_index: int = 0,
                 strength: float = 1.0, **call):
        """Render `prompt` (told with `frame_prompts` as `story_prompt` does) with `image` at 0-based pixel frame
        `image_frame_index`; `call`: the diffusers pipeline's own arguments (sizes, steps, generator, ...)."""
        check_keyframe(image, image_frame_index, strength, call.get("num_frames", self.default_frames), frame_prompts)
        return self.render(image, self.shown_prompt(prompt, frame_prompts), image_frame_index, strength, **call)

    def shown_prompt(self, prompt: str, frame_prompts: list[str] | None) -> str:
        """The one text the DiT is shown: the story prompt, or `prompt` itself where the script goes frame-wise."""
        return prompt if self.framewise_text else story_prompt(prompt, frame_prompts)

    def render(self, image: PIL.Image.Image, prompt: str, image_frame_index: int, strength: float, **call):
        raise NotImplementedError
