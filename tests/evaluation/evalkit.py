"""Hand-made inputs for the evaluation tests (imported by name: pytest puts this folder on sys.path)."""

import numpy as np


def textured(size=64, seed=0):
    """A smooth random texture: enough structure for optical flow to lock on to."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (size // 4, size // 4, 3)).astype(np.uint8)
    return cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
