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
    luma = frames.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    dx = np.abs(np.diff(luma, axis=2)).reshape(len(frames), -1)
    dy = np.abs(np.diff(luma, axis=1)).reshape(len(frames), -1)
    g = np.concatenate([dx, dy], axis=1)
    total = g.sum(axis=1)
    return np.divide((g * g).sum(axis=1), total, out=np.zeros_like(total), where=total > 0)


class Sharpness:
    """Mean over frames of min(1, edge steepness of the frame / edge steepness of the condition image)."""

    name = "sharpness"

    def __call__(self, frames: np.ndarray, image: PIL.Image.Image) -> float | None:
        """`frames`: uint8 `[F, H, W, 3]`; `image`: the condition image (resized to the frames' size here).
        None when the image is flat (no edge to compare with)."""
        height, width = frames.shape[1:3]
        reference = np.asarray(image.convert("RGB").resize((width, height), PIL.Image.BICUBIC))[None]
        steepness = edge_steepness(reference)[0]
        if steepness < 1e-6:
            return None
        return float(np.minimum(edge_steepness(frames) / steepness, 1.0).mean())
