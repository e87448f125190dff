"""Evaluation of the paper (§4, Tables 1–3, Fig. 5a, Appendix B.3): metrics, benchmark runner, report, user study.

Metrics (each a small class; scores per video):
    CLIPScore            CLIP Score (Text) and (Image), mean cosine with transformers' CLIP
    ImagingQuality       VBench protocol around MUSIQ-SPAQ (pyiqa, optional extra)
    Sharpness            Imaging Quality's offline proxy: detail of the frames against the condition image
    MotionSmoothness     VBench protocol, pluggable frame interpolator (OpenCV flow fallback)
    DynamicDegree        VBench rule, pluggable optical flow (RAFT on GPU, Farneback on CPU)

`run_benchmark` generates and scores a manifest resumably; `rescore_run` adds metrics to a run from its
saved videos; `score_videos` scores anyone's videos of a benchmark (`eval score`); `report` writes Table 1 and Fig. 5a; `study` serves the ranking study. CLI: `reasondiff eval
run | rescore | report | study | study-results`.
"""

from .._lazy import lazy_exports

_EXPORTS = {
    "METRICS": "metrics",
    "CLIPScore": "clip_score",
    "DynamicDegree": "dynamic_degree",
    "EvalCase": "manifest",
    "GenerationSettings": "runner",
    "ImagingQuality": "imaging_quality",
    "MotionSmoothness": "motion_smoothness",
    "Sample": "metrics",
    "Sharpness": "sharpness",
    "build_metrics": "metrics",
    "read_manifest": "manifest",
    "read_results": "runner",
    "register_metrics": "metrics",
    "rescore_run": "runner",
    "run_benchmark": "runner",
    "score_videos": "score",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
