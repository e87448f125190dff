"""LTX-2 (`LTX2ConditionPipeline`): the image at any frame as one `LTX2VideoCondition(frames, index, strength)`.

LTX-2's `index` is a LATENT frame index (the original LTX-2 code's convention), not a pixel frame: its causal VAE
holds pixel frame 0 alone in latent frame 0, then T frames per latent frame (T = 8 on the real model). So the
image at 0-based pixel frame k goes to latent frame 0 if k == 0 else (k - 1) // T + 1, the one that holds k:
placed to within LTX-2's latent grid, not to the exact pixel frame as LTX-Video 0.9 does. The pipeline also
makes audio; the backend returns its output as is (`.frames` is the video, `.audio` the sound).
"""

from __future__ import annotations

from .common import KeyframeBackend


def latent_index(image_frame_index: int, temporal_compression: int) -> int:
    """The latent frame of a causal video VAE that holds 0-based pixel frame `image_frame_index`."""
    return 0 if image_frame_index == 0 else (image_frame_index - 1) // temporal_compression + 1


def ltx2_conditions(image, image_frame_index: int, strength: float, temporal_compression: int) -> list:
    """The `conditions=` list for one image at 0-based pixel frame `image_frame_index`."""
    from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

    return [LTX2VideoCondition(frames=image, index=latent_index(image_frame_index, temporal_compression),
                               strength=float(strength))]


class LTX2Backend(KeyframeBackend):
    """`num_frames` is always passed (121 when not given, the pipeline's own fixed default): a narration has a frame
    count, so LTX-2.5's duration head, which picks one when `num_frames` is None, is not used."""

    name = "ltx2"
    default_frames = 121

    def render(self, image, prompt, image_frame_index, strength, **call):
        if "conditions" in call:
            raise ValueError("the ltx2 backend builds conditions itself: pass image, image_frame_index and strength")
        call.setdefault("num_frames", self.default_frames)
        conditions = ltx2_conditions(image, image_frame_index, strength, self.pipe.vae_temporal_compression_ratio)
        return self.pipe(conditions=conditions, prompt=prompt, **call)
