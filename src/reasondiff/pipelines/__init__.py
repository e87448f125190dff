from .._lazy import lazy_exports

# imported on first use: the conditioning helpers do not need the whole pipeline
_EXPORTS = {"MODES": "modes", "ReasonDiffPipeline": "pipeline_reasondiff",
            "ReasonDiffPipelineOutput": "pipeline_output", "generate": "narrated"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
