"""The paper's automatic metrics behind one interface, so the runner scores a video without knowing which
models each metric needs.

A `Sample` carries everything a metric may read (frames, fps, condition image, ground-truth captions); each
adapter returns a float, or None when the case lacks what the metric needs (no captions → no CLIP Text).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import PIL.Image

# Metric key -> the paper's column header; the order is Table 1's.
METRICS = {
    "imaging_quality": "Imaging Quality",
    "sharpness": "Sharpness",  # Imaging Quality's offline proxy (reasondiff.evaluation.sharpness)
    "motion_smoothness": "Motion Smooth",
    "dynamic_degree": "Dynamic Degree",
    "clip_text": "CLIP Score (Text)",
    "clip_image": "CLIP Score (Image)",
    # SynthWorld's judge (reasondiff.mini.judge): None on cases without the world's ground truth
    "anchor_psnr": "Anchor PSNR",
    "text_adherence": "Text Adherence",
    "causal_order": "Causal Order",
}
JUDGE_METRICS = ("anchor_psnr", "text_adherence", "causal_order")
OPT_IN_METRICS = ("sharpness", *JUDGE_METRICS)  # not in the paper's Table 1: scored when asked for
HIGHER_IS_BETTER = {**{key: True for key in METRICS}, "user_rank": False}


@dataclass
class Sample:
    frames: np.ndarray  # uint8 [F, H, W, 3]
    fps: float
    image: PIL.Image.Image  # the condition image
    captions: Sequence[str] | None = None  # ground-truth caption per real frame
    position: int | None = None  # 1-based frame of the generated video that should show the image
    agent: str | None = None  # SynthWorld cases: the agent the prompt names


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


class JudgeReading:
    """The SynthWorld judge's reading of one sample, shared by its three columns: the video is read once."""

    def __init__(self, judge):
        self.judge, self._last = judge, None

    def __call__(self, sample: Sample):
        from ..mini.judge import score_video

        if self._last is None or self._last[0] is not sample:
            condition = np.asarray(sample.image.convert("RGB").resize(sample.frames.shape[2:0:-1]))
            self._last = (sample, score_video(self.judge, sample.frames, condition, sample.position, sample.agent))
        return self._last[1]


class Judged:
    """One column of the SynthWorld judge's scores (None on cases without the world's ground truth).

    anchor_psnr: PSNR (dB, capped at 60) of the frame at the case's true position against the condition image.
    text_adherence: 1 when the judge sees the prompt's agent in some frame. causal_order: 1 when the object is
    intact in the first frame and stays changed from its first changed frame to the last (every SynthWorld
    clip's event happens inside the clip)."""

    def __init__(self, name: str, reading: JudgeReading):
        self.name, self.reading = name, reading

    def score(self, sample: Sample) -> float | None:
        if sample.agent is None or sample.position is None:
            return None
        result = self.reading(sample)
        if self.name == "anchor_psnr":
            return min(result.anchor_psnr, 60.0)
        return float(result.agent_seen if self.name == "text_adherence" else result.causal_order)


def build_metrics(names: Sequence[str], *, clip: str = "openai/clip-vit-large-patch14", musiq: str | None = None,
                  interpolator: str = "farneback", flow: str = "farneback", device: str = "cpu") -> list:
    """Metric adapters for `names` (keys of `METRICS`). `clip`: a CLIP folder/hub id or "tiny"; `musiq`: a
    MUSIQ-SPAQ checkpoint (None: pyiqa downloads it)."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    metrics = []
    scorer = reading = None
    if any(name in JUDGE_METRICS for name in names):
        from ..mini.judge import SceneJudge

        reading = JudgeReading(SceneJudge.shipped())
    if "clip_text" in names or "clip_image" in names:
        if clip == "tiny":
            from .tiny import clip_score

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
            from .motion import MotionSmoothness

            metrics.append(FramesOnly(MotionSmoothness(interpolator)))
        elif name == "dynamic_degree":
            from .dynamic_degree import DynamicDegree

            metrics.append(WithFps(DynamicDegree(flow, **({"device": device} if flow == "raft" else {}))))
        elif name in JUDGE_METRICS:
            metrics.append(Judged(name, reading))
        elif name == "clip_text":
            metrics.append(ClipText(scorer))
        else:
            metrics.append(ClipImage(scorer))
    return metrics
