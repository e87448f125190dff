"""Dynamic Degree, VBench's rule (`vbench/dynamic_degree.py`) over a pluggable optical-flow estimator.

1. Sample the video at ~8 fps: every `max(1, round(fps / 8))`-th frame.
2. For each consecutive pair, the flow magnitude's top 5 %: the mean of the `int(0.05·H·W)` largest
   per-pixel |flow| values.
3. Threshold `6 · min(H, W) / 256` pixels (current VBench: no frame-rate factor); the video is *dynamic* when at least
   `round(4 · n / 16)` pairs exceed it (n = sampled frames; Python's round, as VBench).

The per-video result is 0 or 1; the benchmark's Dynamic Degree is the fraction of dynamic videos.

VBench estimates flow with RAFT (`raft-things.pth`, 20 refinement iterations). `RaftFlow` runs torchvision's
RAFT-Large with the `C_T_V1` weights (ported from that same checkpoint) where torchvision is installed (GPU
environments). `FarnebackFlow` (OpenCV) is the CPU estimator our CI runs the rule with; it is a classical
method and under-estimates large, fast motion, so its decisions can differ from RAFT's near the threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from .frame_format import to_uint8_frames

FlowEstimator = Callable[[np.ndarray, np.ndarray], np.ndarray]  # uint8 [H,W,3] x2 -> float [H,W,2] (dx, dy)


def sampling_interval(fps: float) -> int:
    """Keep every n-th frame so the video is seen at about 8 fps (VBench: `max(1, round(fps / 8))`)."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return max(1, round(fps / 8))


def motion_threshold(height: int, width: int) -> float:
    """Pixels of top-5 % flow a pair must exceed: 6 px at 256 px on the shorter side (VBench's `set_params`)."""
    return 6.0 * (min(height, width) / 256.0)


def required_pairs(num_sampled_frames: int) -> int:
    """Pairs above the threshold that make a video dynamic: 4 per 16 sampled frames (Python's round, as VBench)."""
    return round(4 * (num_sampled_frames / 16.0))


def top_magnitude(flow: np.ndarray, fraction: float = 0.05) -> float:
    """Mean of the largest `int(fraction·H·W)` flow magnitudes (at least one pixel, so tiny frames score too;
    VBench would average an empty slice below 20 pixels)."""
    flow = np.asarray(flow, dtype=np.float64)
    if flow.ndim != 3 or flow.shape[-1] != 2:
        raise ValueError(f"flow must be [H, W, 2], got {list(flow.shape)}")
    magnitude = np.sqrt(flow[..., 0] ** 2 + flow[..., 1] ** 2).ravel()
    count = max(1, int(magnitude.size * fraction))
    return float(np.sort(magnitude)[::-1][:count].mean())


def is_dynamic(magnitudes: list[float], threshold: float, required: int) -> bool:
    """VBench's `check_move`: true once `required` pair magnitudes exceed `threshold` (strictly)."""
    count = 0
    for value in magnitudes:
        if value > threshold:
            count += 1
        if count >= required:
            return True
    return False


@dataclass(frozen=True)
class DynamicResult:
    dynamic: bool
    magnitudes: list[float]  # top-5 % flow magnitude per sampled pair
    threshold: float
    required: int

    @property
    def score(self) -> float:
        return 1.0 if self.dynamic else 0.0


class FarnebackFlow:
    """OpenCV's Farneback dense flow on grayscale frames: a real estimator that runs on any CPU."""

    name = "farneback"

    def __init__(self, pyr_scale: float = 0.5, levels: int = 3, winsize: int = 15, iterations: int = 3,
                 poly_n: int = 5, poly_sigma: float = 1.2):
        self.params = dict(pyr_scale=pyr_scale, levels=levels, winsize=winsize, iterations=iterations, poly_n=poly_n,
                           poly_sigma=poly_sigma, flags=0)

    def __call__(self, frame_a: np.ndarray, frame_b: np.ndarray) -> np.ndarray:
        import cv2

        gray_a, gray_b = (cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2GRAY) for x in (frame_a, frame_b))
        return cv2.calcOpticalFlowFarneback(gray_a, gray_b, None, **self.params)


class RaftFlow:
    """torchvision's RAFT-Large (weights `C_T_V1`, ported from RAFT's `raft-things.pth`, VBench's checkpoint),
    20 refinement iterations. Needs torchvision, imported here only. Frames are padded to a multiple of 8 as
    RAFT requires and the flow is cropped back."""

    name = "raft"

    def __init__(self, device: str = "cuda", iterations: int = 20):
        try:
            from torchvision.models.optical_flow import Raft_Large_Weights, raft_large
        except ImportError as err:
            raise ImportError(f"the RAFT flow backend needs torchvision ({err}); use --flow farneback on CPU") from err
        self.weights = Raft_Large_Weights.C_T_V1
        self.model = raft_large(weights=self.weights).to(device).eval()
        self.device, self.iterations = device, iterations

    def __call__(self, frame_a: np.ndarray, frame_b: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        h, w = frame_a.shape[:2]
        pad_h, pad_w = (-h) % 8, (-w) % 8
        pair = torch.from_numpy(np.stack([frame_a, frame_b])).permute(0, 3, 1, 2).float().to(self.device)
        pair = F.pad(pair, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), mode="replicate")
        pair = pair / 127.5 - 1.0  # RAFT's [-1, 1] input range
        with torch.no_grad():
            flow = self.model(pair[:1], pair[1:], num_flow_updates=self.iterations)[-1][0]
        flow = flow[:, pad_h // 2: pad_h // 2 + h, pad_w // 2: pad_w // 2 + w]
        return flow.permute(1, 2, 0).cpu().numpy()


FLOWS: dict[str, Callable[..., FlowEstimator]] = {"farneback": FarnebackFlow, "raft": RaftFlow}


def resolve_flow(name: str, device: str = "cpu") -> str:
    """'auto' -> 'raft' (VBench's estimator) on CUDA when torchvision is installed, else 'farneback'."""
    if name != "auto":
        return name
    import importlib.util

    return "raft" if str(device).startswith("cuda") and importlib.util.find_spec("torchvision") else "farneback"


class DynamicDegree:
    """VBench's Dynamic Degree decision for one video: 1.0 (dynamic) or 0.0 (static).

    Args:
        flow: `(frame_a, frame_b) -> flow [H, W, 2]` in pixels, or a name in `FLOWS` ("farneback", "raft").
    """

    name = "dynamic_degree"

    def __init__(self, flow: FlowEstimator | str = "farneback", **flow_options):
        if isinstance(flow, str):
            flow = resolve_flow(flow, flow_options.get("device", "cpu"))
            if flow not in FLOWS:
                raise ValueError(f"unknown flow estimator {flow!r}; choose one of {', '.join(FLOWS)}")
            flow = FLOWS[flow](**(flow_options if flow == "raft" else {}))
        self.flow = flow
        self.method = getattr(flow, "name", type(flow).__name__)  # recorded beside the scores

    def evaluate(self, frames, fps: float) -> DynamicResult:
        frames = to_uint8_frames(frames)
        sampled = frames[:: sampling_interval(fps)]
        if len(sampled) < 2:
            raise ValueError(f"Dynamic Degree needs at least 2 frames at ~8 fps; {len(frames)} frames at {fps} fps "
                             f"leave {len(sampled)}")
        height, width = sampled.shape[1:3]
        magnitudes = [top_magnitude(self.flow(a, b)) for a, b in pairwise(sampled)]
        threshold, required = motion_threshold(height, width), required_pairs(len(sampled))
        return DynamicResult(is_dynamic(magnitudes, threshold, required), magnitudes, threshold, required)

    def __call__(self, frames, fps: float) -> float:
        return self.evaluate(frames, fps).score
