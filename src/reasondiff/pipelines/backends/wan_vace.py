"""Wan2.1/Wan2.2 VACE (`WanVACEPipeline`): the image at any frame through VACE's conditioning video and mask,
built automatically, and frame-wise text (`wan_vace_text`: each latent frame attends to its own narrative).

VACE reads a video and a mask of the same length. Mask convention (diffusers maps the mask image to [0, 1] and
thresholds it at 0.5): BLACK (0) = keep this pixel from the video, WHITE (255) = generate it. So the video is
the image at its frame and VACE's neutral grey elsewhere, and the mask is black at that frame, white elsewhere.
"""

from __future__ import annotations

import PIL.Image

from ...models.attention import FrameLayoutState
from .common import KeyframeBackend, check_keyframe
from .wan_vace_text import install_vace_framewise, vace_frame_contexts

# The grey of diffusers' own VACE example: 128/255 (the original code's 127.5 is not an 8-bit value).
GREY = (128, 128, 128)
KEEP, GENERATE = 0, 255


def vace_keyframe(image: PIL.Image.Image, image_frame_index: int, num_frames: int, height: int,
                  width: int) -> tuple[list[PIL.Image.Image], list[PIL.Image.Image]]:
    """The conditioning `video` and `mask` for one image at 0-based pixel frame `image_frame_index`."""
    keyframe = image.convert("RGB").resize((width, height))
    grey = PIL.Image.new("RGB", (width, height), GREY)
    video = [keyframe if i == image_frame_index else grey for i in range(num_frames)]
    mask = [PIL.Image.new("L", (width, height), KEEP if i == image_frame_index else GENERATE)
            for i in range(num_frames)]
    return video, mask


class WanVACEBackend(KeyframeBackend):
    """`strength` scales VACE's control stream (`conditioning_scale`): VACE has no per-frame strength, so below 1
    it loosens the keyframe and the grey frames' "generate here" alike. `frame_prompts` are read frame-wise (the
    DiT sees the narratives, not `prompt`, as in ReasonDiff's own pipeline)."""

    name = "wan-vace"
    default_frames = 81
    framewise_text = True

    def __init__(self, pipe):
        super().__init__(pipe)
        self.text_layout = FrameLayoutState()
        for transformer in (pipe.transformer, getattr(pipe, "transformer_2", None)):
            if transformer is not None:
                install_vace_framewise(transformer, self.text_layout)

    def __call__(self, image, prompt: str | None, frame_prompts: list[str] | None = None, image_frame_index: int = 0,
                 strength: float = 1.0, **call):
        if frame_prompts is None:
            return super().__call__(image, prompt, None, image_frame_index, strength, **call)
        check_keyframe(image, image_frame_index, strength, call.get("num_frames", self.default_frames), frame_prompts)
        if "prompt_embeds" in call:
            raise ValueError("frame_prompts and prompt_embeds both stand for the text: pass one")
        embeds, layout = vace_frame_contexts(self.pipe, frame_prompts, call.get("max_sequence_length", 512))
        with self.text_layout.use(layout):
            return self.render(image, None, image_frame_index, strength, prompt_embeds=embeds, **call)

    def render(self, image, prompt, image_frame_index, strength, **call):
        if "video" in call or "mask" in call or "conditioning_scale" in call:
            raise ValueError("the wan-vace backend builds video, mask and conditioning_scale itself: pass "
                             "image, image_frame_index and strength")
        num_frames, temporal = call.get("num_frames", 81), self.pipe.vae_scale_factor_temporal
        if (num_frames - 1) % temporal:  # VACE would round the video's length, and the keyframe would drift
            raise ValueError(f"num_frames must be {temporal}k+1 for Wan VACE's VAE (e.g. 17, 33, 81), got {num_frames}")
        video, mask = vace_keyframe(image, image_frame_index, num_frames, call.get("height", 480),
                                    call.get("width", 832))
        return self.pipe(prompt=prompt, video=video, mask=mask, conditioning_scale=float(strength), **call)
