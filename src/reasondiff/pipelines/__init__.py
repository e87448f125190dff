from .pipeline_reasondiff import MODES, ReasonDiffPipeline, ReasonDiffPipelineOutput

__all__ = ["MODES", "ReasonDiffPipeline", "ReasonDiffPipelineOutput"]
