from importlib import import_module

_EXPORTS = {"MODES": "pipeline_reasondiff", "ReasonDiffPipeline": "pipeline_reasondiff",
            "ReasonDiffPipelineOutput": "pipeline_reasondiff"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):  # imported on first use: conditioning helpers do not need the whole pipeline
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
