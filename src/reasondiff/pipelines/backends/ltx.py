"""LTX-Video 0.9.x (`LTXConditionPipeline`): the image at any frame as one `LTXVideoCondition`.

At frame 0 LTX blends the image's latent into the first latent frame; at any other frame it appends the image's
latent as extra tokens whose time position is the pixel frame itself (not a latent index), blended with noise by
`strength`. So any 0-based pixel frame is exact, not rounded to LTX's 8-frame latent grid.
"""

from __future__ import annotations

from .common import KeyframeBackend


def ltx_conditions(image, image_frame_index: int, strength: float) -> list:
    """The `conditions=` list for one image at 0-based pixel frame `image_frame_index`."""
    from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

    return [LTXVideoCondition(image=image, frame_index=image_frame_index, strength=float(strength))]


class LTXBackend(KeyframeBackend):
    name = "ltx"
    default_frames = 161  # LTXConditionPipeline's own default

    def render(self, image, prompt, image_frame_index, strength, **call):
        if any(key in call for key in ("conditions", "image", "video", "frame_index")):
            raise ValueError("the ltx backend builds conditions itself: pass image, image_frame_index and strength")
        return self.pipe(conditions=ltx_conditions(image, image_frame_index, strength), prompt=prompt, **call)
