"""The paper's automatic metrics behind one interface, so the runner scores a video without knowing which
models each metric needs.

A `Sample` carries everything a metric may read (frames, fps, condition image, ground-truth captions); each
adapter returns a float, or None when the case lacks what the metric needs (no captions → no CLIP Text).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import PIL.Image

# Metric key -> the paper's column header; the order is Table 1's. Plug-ins (`register_metrics`) add theirs after.
METRICS = {
    "imaging_quality": "Imaging Quality",
    "sharpness": "Sharpness",  # Imaging Quality's offline proxy (reasondiff.evaluation.sharpness)
    "motion_smoothness": "Motion Smooth",
    "dynamic_degree": "Dynamic Degree",
    "clip_text": "CLIP Score (Text)",
    "clip_image": "CLIP Score (Image)",
}
OPT_IN_METRICS = ["sharpness"]  # not in the paper's Table 1: scored when asked for (plug-ins add theirs)
HIGHER_IS_BETTER = {**{key: True for key in METRICS}, "user_rank": False}
_PLUGINS: dict[str, Callable[[Sequence[str]], list]] = {}  # metric key -> builder of the adapters of its family


def register_metrics(columns: dict[str, str], build: Callable[[Sequence[str]], list], *,
                     higher_is_better: dict[str, bool] | None = None) -> None:
    """Add a family of opt-in metrics (key -> column header) scored by the adapters `build(names)` returns.

    This is how a world with its own ground truth plugs its measures in (`reasondiff.mini` registers the
    SynthWorld judge's) without the evaluation layer knowing about it; registering again replaces."""
    for key, header in columns.items():
        METRICS[key] = header
        HIGHER_IS_BETTER[key] = (higher_is_better or {}).get(key, True)
        if key not in OPT_IN_METRICS:
            OPT_IN_METRICS.append(key)
        _PLUGINS[key] = build


@dataclass
class Sample:
    frames: np.ndarray  # uint8 [F, H, W, 3]
    fps: float
    image: PIL.Image.Image  # the condition image
    captions: Sequence[str] | None = None  # ground-truth caption per real frame
    position: int | None = None  # 1-based frame of the generated video that should show the image
    agent: str | None = None  # SynthWorld cases: the agent the prompt names
    truth: dict[str, Any] = field(default_factory=dict)  # the case's other ground truth (a world's script, ...)


class ClipText:
    name = "clip_text"

    def __init__(self, scorer):
        self.scorer = scorer

    def score(self, sample: Sample) -> float | None:
        return self.scorer.text_score(sample.frames, sample.captions) if sample.captions else None


class ClipImage:
    name = "clip_image"

    def __init__(self, scorer):
        self.scorer = scorer

    def score(self, sample: Sample) -> float | None:
        return self.scorer.image_score(sample.frames, sample.image)


def measured_with(metrics) -> dict[str, str]:
    """Which estimator each metric ran with (Motion Smoothness: amt-s or farneback; Dynamic Degree: raft or
    farneback): run folders record it, since the numbers of two estimators are not comparable."""
    return {m.name: m.metric.method for m in metrics if hasattr(getattr(m, "metric", None), "method")}


class FramesOnly:
    """Adapter for metrics that read only the frames (Imaging Quality, Motion Smoothness)."""

    def __init__(self, metric):
        self.metric, self.name = metric, metric.name

    def score(self, sample: Sample) -> float | None:
        return self.metric(sample.frames)


class WithImage:
    """Adapter for metrics that compare the frames with the condition image (Sharpness)."""

    def __init__(self, metric):
        self.metric, self.name = metric, metric.name

    def score(self, sample: Sample) -> float | None:
        return self.metric(sample.frames, sample.image)


class WithFps:
    """Adapter for Dynamic Degree, which samples the video at ~8 fps."""

    def __init__(self, metric):
        self.metric, self.name = metric, metric.name

    def score(self, sample: Sample) -> float | None:
        return self.metric(sample.frames, sample.fps)


def build_metrics(names: Sequence[str], *, clip: str = "openai/clip-vit-large-patch14", musiq: str | None = None,
                  interpolator: str = "auto", flow: str = "auto", device: str = "cpu") -> list:
    """Metric adapters for `names` (keys of `METRICS`). `clip`: a CLIP folder/hub id or "tiny"; `musiq`: a
    MUSIQ-SPAQ checkpoint (None: pyiqa downloads it)."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    metrics = []
    scorer = None
    plugged = {}  # builder -> the names it scores: one build per family (its adapters may share a reading)
    for name in names:
        if name in _PLUGINS:
            plugged.setdefault(_PLUGINS[name], []).append(name)
    built = {name: adapter for build, family in plugged.items() for name, adapter in zip(family, build(family))}
    if "clip_text" in names or "clip_image" in names:
        if clip == "tiny":
            from .tiny_clip import clip_score

            scorer = clip_score(seed=0)
        else:
            from .clip_score import CLIPScore

            scorer = CLIPScore.from_pretrained(clip, device=device)
    for name in METRICS:  # Table 1's order, whatever order the user listed
        if name not in names:
            continue
        if name == "imaging_quality":
            from .imaging_quality import ImagingQuality

            metrics.append(FramesOnly(ImagingQuality.from_pretrained(musiq, device=device)))
        elif name == "sharpness":
            from .sharpness import Sharpness

            metrics.append(WithImage(Sharpness()))
        elif name == "motion_smoothness":
            from .motion_smoothness import MotionSmoothness

            metrics.append(FramesOnly(MotionSmoothness(interpolator)))
        elif name == "dynamic_degree":
            from .dynamic_degree import DynamicDegree

            metrics.append(WithFps(DynamicDegree(flow, device=device)))
        elif name in built:
            metrics.append(built[name])
        elif name == "clip_text":
            metrics.append(ClipText(scorer))
        else:
            metrics.append(ClipImage(scorer))
    return metrics
