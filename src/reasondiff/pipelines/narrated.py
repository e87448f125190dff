"""A story for the pipeline: the narration (given, or written by a narrator) and the paper's modes, turned into
`ReasonDiffPipeline`'s diffusers-shaped call (`frame_prompts`, `image_frame_index`, `enhanced_latents`).

The pipeline stays a diffusers pipeline that knows nothing of narrators; the command line, the studio and `eval`
call `generate`, which is where a script comes from and where the modes mean something.
"""

from __future__ import annotations

from typing import Protocol

import PIL.Image
import torch

from ..narrator.schema import Narration
from .pipeline_output import ReasonDiffPipelineOutput
from .modes import MODES, NARRATED_MODES, PROMPT_MODES


class Narrator(Protocol):
    """What `generate` needs from a narrator; `reasondiff.VisionNarrator` provides it."""

    def narrate(self, image: PIL.Image.Image, prompt: str, num_frames: int) -> Narration: ...

    def rewrite(self, image: PIL.Image.Image, prompt: str) -> str: ...


def generate(pipe, image, prompt: str | list[str] | None = None, *, narration: Narration | dict | list | None = None,
             narrator: Narrator | None = None, mode: str = "reasondiff", **call):
    """Render `prompt` with `image` in one of the paper's modes; every check runs before the narrator does.

    Args:
        pipe: a `ReasonDiffPipeline`, or a keyframe backend (`pipelines.backends`: VACE, LTX-Video), which renders
            modes "reasondiff" (zero mode: the image at the script's frame, the script told in one prompt) and "wan".
        narration: the frame-wise script (a `Narration`, its dict, or one per prompt); None: `narrator` writes it.
        narrator: an object with `narrate(image, prompt, num_frames)` (and `rewrite(image, prompt)` for "rewrite").
        mode: "reasondiff" (the method), "wan" (plain Wan I2V), "rewrite" (the narrator rewrites the prompt for plain
            Wan), "no_enhanced_latents" and "no_multi_prompt" (the paper's ablations).
        call: `ReasonDiffPipeline.__call__`'s arguments (sizes, steps, guidance, generator, output_type, ...); a
            keyframe backend takes the wrapped pipeline's own, and `strength` (how hard the image is held, 0..1).

    Returns:
        `ReasonDiffPipelineOutput` with `frames`, `narration` (the script used; a list when batched) and `prompt`.
    """
    return_dict = call.pop("return_dict", True)
    if getattr(pipe, "keyframe_backend", False):  # LTX, VACE, ...: pipelines/backends, training-free
        from .backends.zero import generate_zero

        return generate_zero(pipe, image, prompt, narration, narrator, mode, return_dict, call, _narrations)
    _check(pipe, image, prompt, narration, narrator, mode, call)
    if mode in ("wan", "rewrite"):
        if mode == "rewrite":
            prompt = narrator.rewrite(image, prompt) if isinstance(prompt, str) else [
                narrator.rewrite(image, p) for p in prompt]
        frames, narrations, batched = pipe(image, prompt, **call).frames, None, False
    else:
        narrations = _narrations(image, prompt, call.get("prompt_embeds"), narration, narrator,
                                 call.get("num_frames", 81))
        frames = pipe(image, prompt, **call,
                      frame_prompts=None if mode == "no_multi_prompt" else [n.descriptions for n in narrations],
                      image_frame_index=[n.position - 1 for n in narrations],
                      enhanced_latents=mode != "no_enhanced_latents").frames
        batched = isinstance(prompt, list) or isinstance(narration, list) or len(narrations) > 1
    story = narrations if batched or narrations is None else narrations[0]
    if not return_dict:
        return frames, story, prompt
    return ReasonDiffPipelineOutput(frames=frames, narration=story, prompt=prompt)


def _check(pipe, image, prompt, narration, narrator, mode, call) -> None:
    """The pipeline's own checks and the modes', before a narrator or an encoder runs."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if not isinstance(image, (PIL.Image.Image, torch.Tensor)):
        raise TypeError(f"image must be a PIL image or a tensor, got {type(image).__name__}")
    prompt_embeds = call.get("prompt_embeds")
    if prompt_embeds is None:
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not (isinstance(prompts, list) and prompts and all(isinstance(p, str) and p.strip() for p in prompts)):
            raise ValueError("prompt must be a non-empty string or a list of them (or pass prompt_embeds)")
    elif mode not in PROMPT_MODES:
        raise ValueError(f"prompt_embeds stand for the prompt, which mode={mode!r} does not show the DiT; use "
                         f"mode {' or '.join(map(repr, PROMPT_MODES))}")
    elif mode == "no_multi_prompt" and narration is None:
        raise ValueError("mode='no_multi_prompt' with prompt_embeds needs a narration (its position): a narrator "
                         "reads a text prompt")
    cb = call.get("callback_on_step_end")
    tensor_inputs = getattr(cb, "tensor_inputs", None) or call.get("callback_on_step_end_tensor_inputs", ["latents"])
    pipe.check_inputs(prompt, call.get("negative_prompt"), image, call.get("height", 480), call.get("width", 832),
                      prompt_embeds, call.get("negative_prompt_embeds"), call.get("image_embeds"), list(tensor_inputs),
                      call.get("guidance_scale_2"), num_frames=call.get("num_frames", 81),
                      max_sequence_length=call.get("max_sequence_length", 512))
    if mode == "rewrite" and narrator is None:
        raise ValueError("mode='rewrite' needs a narrator (an object with a rewrite(image, prompt) method)")
    if mode in NARRATED_MODES:
        _check_narrated(pipe, prompt, prompt_embeds, narration, narrator, mode)


def _check_narrated(pipe, prompt, prompt_embeds, narration, narrator, mode) -> None:
    if pipe.config.expand_timesteps:
        raise ValueError(f"mode={mode!r} needs Wan-I2V's channel-concatenated condition; this pipeline has "
                         "expand_timesteps=True (Wan2.2-TI2V-5B): use mode 'wan'")
    if narration is None and narrator is None:
        raise ValueError(f"mode={mode!r} needs a narration (reasondiff.Narration) or a narrator")
    batch = len(prompt) if isinstance(prompt, list) else 1 if prompt_embeds is None else prompt_embeds.shape[0]
    if isinstance(narration, list) and len(narration) != batch:
        raise ValueError(f"{len(narration)} narrations for a batch of {batch} prompts")
    if mode != "no_enhanced_latents":
        pipe.check_alignformer()


def _narrations(image, prompt, prompt_embeds, narration, narrator, num_frames) -> list[Narration]:
    """One narration per video: the given one(s) (a single one serves the whole batch), else the narrator's."""
    prompts = [prompt] if isinstance(prompt, str) else prompt
    batch = len(prompts) if prompts is not None else prompt_embeds.shape[0]
    if narration is None:
        given = [narrator.narrate(image, p, num_frames) for p in prompts]
    else:
        given = narration if isinstance(narration, list) else [narration] * batch
    narrations = [n if isinstance(n, Narration) else Narration.model_validate(n) for n in given]
    for n in narrations:
        if n.num_frames != num_frames:
            raise ValueError(f"the narration describes {n.num_frames} frames but num_frames={num_frames}")
    return narrations
