"""Motion Smoothness, VBench's protocol (`vbench/motion_smoothness.py`) with a pluggable frame interpolator.

Drop the odd frames, re-create each odd frame by interpolating its even neighbours, and compare with the
real odd frame: score = (255 − mean absolute difference) / 255, in [0, 1], 1 for motion an interpolator can
predict exactly. Frames 0, 2, 4, … are the inputs, the interpolation between even frames 2i and 2i+2 is
compared with odd frame 2i+1, and a trailing odd frame without a right neighbour is not scored (as VBench).

VBench interpolates with AMT-S (`amt-s.pth`). The `vbench` package ships AMT's code (`third_party/amt`) but
not its weights: `AmtInterpolator` runs VBench's own model when both are present (`interpolator="auto"`
picks it then, and Farneback otherwise; run folders record which). Any callable
`(frame_a, frame_b) -> middle frame` (uint8 `[H, W, 3]`) can be passed in. Two CPU interpolators ship:

- `FlowInterpolator` (default): OpenCV Farneback flow both ways, the linear intermediate-flow approximation
  of Super SloMo (Jiang et al. 2018) without its learned refinement, backward warping of both frames and an
  equal blend. It follows moving content, as AMT does, but it is coarser, so scores sit below AMT's on the same
  video (less predictable motion looks less smooth); compare numbers only within one interpolator.
- `LinearBlend`: the mean of the two frames; a lower bound that punishes any motion (a ghosted midpoint).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import numpy as np

from .dynamic_degree import FarnebackFlow  # the same flow estimator Dynamic Degree uses
from .frame_format import to_uint8_frames

Interpolator = Callable[[np.ndarray, np.ndarray], np.ndarray]


class LinearBlend:
    """The midpoint as the pixel mean of its neighbours (no motion model)."""

    name = "linear"

    def __call__(self, frame_a: np.ndarray, frame_b: np.ndarray) -> np.ndarray:
        return ((frame_a.astype(np.float64) + frame_b.astype(np.float64)) / 2).round().astype(np.uint8)


class FlowInterpolator:
    """Flow-based midpoint: Farneback flows a→b and b→a, the t = ½ flows approximated linearly
    (F_t→a = −¼F_ab + ¼F_ba, F_t→b = ¼F_ab − ¼F_ba), both frames warped there and averaged."""

    name = "farneback"

    def __init__(self, pyr_scale: float = 0.5, levels: int = 3, winsize: int = 15, iterations: int = 3,
                 poly_n: int = 5, poly_sigma: float = 1.2):
        self._flow = FarnebackFlow(pyr_scale, levels, winsize, iterations, poly_n, poly_sigma)

    @staticmethod
    def _warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
        """Backward warp: out(x) = image(x + flow(x)), bilinear, borders replicated."""
        import cv2

        h, w = flow.shape[:2]
        grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        return cv2.remap(image, grid_x + flow[..., 0], grid_y + flow[..., 1], interpolation=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)

    def __call__(self, frame_a: np.ndarray, frame_b: np.ndarray) -> np.ndarray:
        flow_ab, flow_ba = self._flow(frame_a, frame_b), self._flow(frame_b, frame_a)
        to_a = -0.25 * flow_ab + 0.25 * flow_ba
        to_b = 0.25 * flow_ab - 0.25 * flow_ba
        warped_a = self._warp(frame_a, to_a.astype(np.float32)).astype(np.float64)
        warped_b = self._warp(frame_b, to_b.astype(np.float32)).astype(np.float64)
        return ((warped_a + warped_b) / 2).round().astype(np.uint8)


AMT_CHECKPOINT = Path("~/.cache/vbench/amt_model/amt-s.pth").expanduser()  # where VBench keeps it


class AmtInterpolator:
    """VBench's AMT-S, loaded by VBench's own `MotionSmoothness` class (its config, its checkpoint format)."""

    name = "amt-s"

    def __init__(self, checkpoint: str | Path = AMT_CHECKPOINT, device: str = "cpu"):
        try:
            import vbench
            from vbench.motion_smoothness import MotionSmoothness as VBenchMotionSmoothness
        except ImportError as err:
            raise ImportError(f"the AMT-S interpolator needs the vbench package ({err})") from err
        if not Path(checkpoint).is_file():
            raise FileNotFoundError(f"AMT-S weights not found at {checkpoint} (VBench downloads amt-s.pth there)")
        config = Path(vbench.__file__).parent / "third_party" / "amt" / "cfgs" / "AMT-S.yaml"
        self.model = VBenchMotionSmoothness(str(config), str(checkpoint), device).model
        self.device = device

    def __call__(self, frame_a: np.ndarray, frame_b: np.ndarray) -> np.ndarray:
        import torch
        from vbench.third_party.amt.utils.utils import InputPadder, img2tensor, tensor2img

        inputs = [img2tensor(f).to(self.device) for f in (frame_a, frame_b)]
        padder = InputPadder(inputs[0].shape, 16)
        inputs = padder.pad(*inputs)
        embt = torch.tensor(0.5, device=self.device).view(1, 1, 1, 1)
        with torch.no_grad():
            middle = self.model(inputs[0], inputs[1], embt, scale_factor=1.0, eval=True)["imgt_pred"]
        return tensor2img(padder.unpad(middle))


INTERPOLATORS: dict[str, Callable[[], Interpolator]] = {"farneback": FlowInterpolator, "linear": LinearBlend,
                                                        "amt-s": AmtInterpolator}


def resolve_interpolator(name: str) -> str:
    """'auto' -> 'amt-s' when vbench and the AMT-S weights are here (VBench's protocol), else 'farneback'."""
    if name != "auto":
        return name
    import importlib.util

    return "amt-s" if importlib.util.find_spec("vbench") and AMT_CHECKPOINT.is_file() else "farneback"


def smoothness_from_frames(frames: np.ndarray, interpolated: list[np.ndarray]) -> float:
    """(255 − mean |odd frame − its interpolation|) / 255, given the interpolations between even frames."""
    odd = frames[1::2]
    if len(interpolated) == 0 or len(interpolated) > len(odd):
        raise ValueError(f"{len(interpolated)} interpolated frames for {len(odd)} odd frames")
    diffs = [np.abs(odd[i].astype(np.int16) - interpolated[i].astype(np.int16)).mean() for i in range(len(interpolated))]
    return float((255.0 - np.mean(diffs)) / 255.0)


class MotionSmoothness:
    """VBench's Motion Smoothness of one video, in [0, 1] (higher is smoother).

    Args:
        interpolator: `(frame_a, frame_b) -> middle frame` on uint8 `[H, W, 3]`, or a name in `INTERPOLATORS`.
    """

    name = "motion_smoothness"

    def __init__(self, interpolator: Interpolator | str = "farneback"):
        if isinstance(interpolator, str):
            interpolator = resolve_interpolator(interpolator)
            if interpolator not in INTERPOLATORS:
                raise ValueError(f"unknown interpolator {interpolator!r}; choose one of {', '.join(INTERPOLATORS)}")
            interpolator = INTERPOLATORS[interpolator]()
        self.interpolator = interpolator
        self.method = getattr(interpolator, "name", type(interpolator).__name__)  # recorded beside the scores

    def __call__(self, frames) -> float:
        frames = to_uint8_frames(frames)
        if len(frames) < 3:
            raise ValueError(f"Motion Smoothness needs at least 3 frames (two even frames around an odd one), "
                             f"got {len(frames)}")
        even = frames[0::2]
        interpolated = []
        for a, b in pairwise(even):
            middle = np.asarray(self.interpolator(a, b))
            if middle.shape != a.shape:
                raise ValueError(f"the interpolator returned {list(middle.shape)} for frames of {list(a.shape)}")
            interpolated.append(middle.astype(np.uint8))
        return smoothness_from_frames(frames, interpolated)
