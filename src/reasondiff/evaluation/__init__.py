"""Evaluation of the paper (§4, Tables 1–3, Fig. 5a, Appendix B.3): metrics, benchmark runner, report, user study.

Metrics (each a small class; scores per video):
    CLIPScore            CLIP Score (Text) and (Image), mean cosine with transformers' CLIP
    ImagingQuality       VBench protocol around MUSIQ-SPAQ (pyiqa, optional extra)
    Sharpness            Imaging Quality's offline proxy: detail of the frames against the condition image
    MotionSmoothness     VBench protocol, pluggable frame interpolator (OpenCV flow fallback)
    DynamicDegree        VBench rule, pluggable optical flow (RAFT on GPU, Farneback on CPU)

`run_benchmark` generates and scores a manifest resumably; `rescore_run` adds metrics to a run from its
saved videos; `report` writes Table 1 and Fig. 5a; `study` serves the ranking study. CLI: `reasondiff eval
run | rescore | report | study | study-results`.
"""

from .clip_score import CLIPScore
from .dynamic_degree import DynamicDegree
from .imaging_quality import ImagingQuality
from .manifest import EvalCase, read_manifest
from .metrics import METRICS, Sample, build_metrics
from .motion import MotionSmoothness
from .sharpness import Sharpness
from .runner import GenerationSettings, read_results, rescore_run, run_benchmark

__all__ = [
    "METRICS",
    "CLIPScore",
    "DynamicDegree",
    "EvalCase",
    "GenerationSettings",
    "ImagingQuality",
    "MotionSmoothness",
    "Sample",
    "Sharpness",
    "build_metrics",
    "read_manifest",
    "read_results",
    "rescore_run",
    "run_benchmark",
]
