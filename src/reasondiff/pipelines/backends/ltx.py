"""LTX-Video 0.9.x (`LTXConditionPipeline`): the image at any frame as one `LTXVideoCondition`.

At frame 0 LTX blends the image's latent into the first latent frame; at any other frame it appends the image's
latent as extra tokens whose time position is the pixel frame itself (not a latent index), blended with noise by
`strength`. So any 0-based pixel frame is exact, not rounded to LTX's 8-frame latent grid. A script is read
frame-wise (`ltx_text`).
"""

from __future__ import annotations

from ...models.attention import FrameLayoutState
from .common import KeyframeBackend, check_keyframe
from .ltx_text import install_ltx_framewise, ltx_frame_contexts, repeated_negative


def ltx_conditions(image, image_frame_index: int, strength: float) -> list:
    """The `conditions=` list for one image at 0-based pixel frame `image_frame_index`."""
    from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

    return [LTXVideoCondition(image=image, frame_index=image_frame_index, strength=float(strength))]


class LTXBackend(KeyframeBackend):
    """`frame_prompts` are read frame-wise (`ltx_text`): the DiT sees the narratives, not `prompt`."""

    name = "ltx"
    default_frames = 161  # LTXConditionPipeline's own default
    framewise_text = True

    def __init__(self, pipe):
        super().__init__(pipe)
        self.text_layout = FrameLayoutState()
        install_ltx_framewise(pipe.transformer, self.text_layout)

    def __call__(self, image, prompt: str | None, frame_prompts: list[str] | None = None, image_frame_index: int = 0,
                 strength: float = 1.0, **call):
        check_keyframe(image, image_frame_index, strength, call.get("num_frames", self.default_frames), frame_prompts)
        if frame_prompts is None or len(set(frame_prompts)) == 1:  # one text: LTX's own call with that prompt
            text = prompt if frame_prompts is None else frame_prompts[0]
            return self.render(image, text, image_frame_index, strength, **call)
        if "prompt_embeds" in call or "negative_prompt_embeds" in call:
            raise ValueError("the ltx backend builds the text embeddings from frame_prompts: pass no prompt_embeds")
        length = call.pop("max_sequence_length", 256)
        embeds, mask, layout = ltx_frame_contexts(self.pipe, frame_prompts, image_frame_index,
                                                  call.get("height", 512), call.get("width", 704), length)
        negative, negative_mask = repeated_negative(self.pipe, call.pop("negative_prompt", None),
                                                    embeds.shape[1] // length, length)
        with self.text_layout.use(layout):
            return self.render(image, None, image_frame_index, strength, prompt_embeds=embeds,
                               prompt_attention_mask=mask, negative_prompt_embeds=negative,
                               negative_prompt_attention_mask=negative_mask, max_sequence_length=length, **call)

    def render(self, image, prompt, image_frame_index, strength, **call):
        if any(key in call for key in ("conditions", "image", "video", "frame_index")):
            raise ValueError("the ltx backend builds conditions itself: pass image, image_frame_index and strength")
        return self.pipe(conditions=ltx_conditions(image, image_frame_index, strength), prompt=prompt, **call)
