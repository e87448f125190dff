"""Sharpness: an Imaging Quality proxy that needs no downloaded weights.

VBench's Imaging Quality is a MUSIQ network whose checkpoint cannot be fetched on every machine (nor on
ours). What it mostly punishes in small or under-trained generators is blur, and blur can be measured
against something every benchmark case has: the condition image, the crispest view of the scene.

The measure is the typical steepness of a frame's edges: the gradient-weighted mean of its luminance
gradients, sum(g^2) / sum(g). Two properties make it fit: blurring an edge over w pixels spreads the
same rise over w gradients, dividing the steepness by about w (a plain mean of |g| would not move:
a blurred step has the same total variation); and more edges of the same kind leave it unchanged, so
a frame with an extra agent is not "sharper" than the image. Each frame's steepness over the image's
is capped at 1 (noise makes steep gradients too, and is not detail) and averaged over frames: 1 when
every frame is as crisp as the image, lower the more generation blurs.

It is a proxy, not MUSIQ: it does not see colour casts, artefacts with crisp edges, or composition.
"""

from __future__ import annotations

import numpy as np
import PIL.Image


def edge_steepness(frames: np.ndarray) -> np.ndarray:
    """Per-frame sum(g^2) / sum(g) over the horizontal and vertical luminance differences g of uint8
    `[F, H, W, 3]` frames, in grey levels per pixel; 0 for a frame without any gradient."""
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    out = np.zeros(len(frames))
    for index, frame in enumerate(frames):  # one frame at a time: an 81-frame 480p video stays small in memory
        luma = frame.astype(np.float32) @ weights
        g = np.concatenate([np.abs(np.diff(luma, axis=1)).ravel(), np.abs(np.diff(luma, axis=0)).ravel()])
        total = float(g.sum(dtype=np.float64))
        out[index] = float((g * g).sum(dtype=np.float64)) / total if total > 0 else 0.0
    return out


class Sharpness:
    """Mean over frames of min(1, edge steepness of the frame / edge steepness of the condition image)."""

    name = "sharpness"

    def __call__(self, frames: np.ndarray, image: PIL.Image.Image) -> float | None:
        """`frames`: uint8 `[F, H, W, 3]`; `image`: the condition image. Both are compared at the smaller of
        the two sizes (enlarging either would blur it). None when the image is flat (no edge to compare with)."""
        if frames.ndim != 4 or len(frames) == 0:
            raise ValueError(f"expected uint8 frames shaped [F, H, W, 3], got {list(frames.shape)}")
        height, width = frames.shape[1:3]
        image = image.convert("RGB")
        if image.width * image.height < width * height:
            frames = np.stack([np.asarray(PIL.Image.fromarray(frame).resize(image.size, PIL.Image.BICUBIC))
                               for frame in frames])
        else:
            image = image.resize((width, height), PIL.Image.BICUBIC)
        steepness = edge_steepness(np.asarray(image)[None])[0]
        if steepness < 1e-6:
            return None
        return float(np.minimum(edge_steepness(frames) / steepness, 1.0).mean())
