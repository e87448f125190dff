"""ReasonDiff: unpaired text-image-to-video generation on diffusers' Wan2.1."""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("reasondiff")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

# Public names, imported on first use so `import reasondiff` (and `reasondiff --help`) stays fast.
_EXPORTS = {
    "AlignFormer": "reasondiff.models.alignformer",
    "Narration": "reasondiff.narrator.schema",
    "VisionNarrator": "reasondiff.narrator.narrator",
    "ReasonDiffPipeline": "reasondiff.pipelines.pipeline_reasondiff",
    "ReasonDiffPipelineOutput": "reasondiff.pipelines.pipeline_reasondiff",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'reasondiff' has no attribute {name!r}")
