"""ReasonDiff: unpaired text-image-to-video generation on diffusers' Wan2.1."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("reasondiff")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

from ._lazy import lazy_exports  # noqa: E402

# Public names, imported on first use so `import reasondiff` (and `reasondiff --help`) stays fast.
_EXPORTS = {
    "AlignFormer": "models.alignformer",
    "Narration": "narrator.schema",
    "VisionNarrator": "narrator.narrator",
    "ReasonDiffPipeline": "pipelines.pipeline_reasondiff",
    "ReasonDiffPipelineOutput": "pipelines.pipeline_reasondiff",
}
__all__ = [*_EXPORTS, "__version__"]
__getattr__ = lazy_exports(__name__, _EXPORTS)

from . import mini  # noqa: E402,F401  (registers the offline world's model, narrator and measures)
