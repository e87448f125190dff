"""`reasondiff.generate` on a keyframe backend ("zero" mode): the narrator's script rendered with no ReasonDiff
weights. Mode "reasondiff": the image at the script's frame, the script told in one prompt (`story_prompt`);
mode "wan": the image at frame 1 and the prompt, the pipeline's own plain call. The paper's ablations and
"rewrite" need ReasonDiff's own Wan2.1-I2V pipeline and are refused in one line."""

from __future__ import annotations

from ..modes import ZERO_MODES
from ..pipeline_output import ReasonDiffPipelineOutput
from .common import check_keyframe


def check_zero(pipe, image, prompt, narration, narrator, mode, call) -> None:
    """Every refusal a keyframe call can know before the narrator or an encoder runs."""
    if mode not in ZERO_MODES:
        raise ValueError(f"mode {mode!r} needs ReasonDiff's Wan2.1-I2V pipeline; the {pipe.name} backend renders "
                         "mode 'reasondiff' (zero mode: the narrator's keyframe and script) or 'wan' (the image at "
                         "frame 1, one prompt)")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"prompt must be one non-empty string on the {pipe.name} backend (one video per call)")
    if "prompt_embeds" in call:
        raise ValueError(f"prompt_embeds are not taken by the {pipe.name} backend: it builds the prompt it shows")
    if mode == "reasondiff":
        if narration is None and narrator is None:
            raise ValueError("mode='reasondiff' needs a narration (reasondiff.Narration) or a narrator")
        if isinstance(narration, list):
            raise ValueError(f"the {pipe.name} backend renders one video per call: pass one narration")
    check_keyframe(image, 0, call.get("strength", 1.0), call.get("num_frames", pipe.default_frames), None)


def generate_zero(pipe, image, prompt, narration, narrator, mode, return_dict, call, narrations):
    """What `reasondiff.generate` returns, on a `KeyframeBackend`; `prompt` in the output is the text the model
    was shown (mode "reasondiff": the story prompt, or the user's prompt where the script goes frame-wise). `narrations` is `generate`'s own way to a script (passed
    in, so this module does not import the one that imports it)."""
    check_zero(pipe, image, prompt, narration, narrator, mode, call)
    if mode == "wan":
        story, shown = None, prompt
        frames = pipe(image, prompt, image_frame_index=0, **call).frames
    else:
        (story,) = narrations(image, prompt, None, narration, narrator, call.get("num_frames", pipe.default_frames))
        shown = pipe.shown_prompt(prompt, story.descriptions)
        frames = pipe(image, prompt, frame_prompts=story.descriptions, image_frame_index=story.position - 1,
                      **call).frames
    if not return_dict:
        return frames, story, shown
    return ReasonDiffPipelineOutput(frames=frames, narration=story, prompt=shown)
