"""ReasonDiff: unpaired text-image-to-video generation on diffusers' Wan2.1."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("reasondiff")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

import logging  # noqa: E402

from ._lazy import lazy_exports  # noqa: E402


class _NoTorchvisionAdvice(logging.Filter):
    """Drop transformers' "`CLIPImageProcessor` requires torchvision (not installed) ... Install torchvision" note,
    logged when Wan's image processor loads: the README says *not* to install torchvision beside a CPU torch (its
    only wheels for torch 2.13 are CUDA builds, and one breaks `import transformers`), and the PIL processor it
    falls back to is the one we want. Every other transformers message is left alone."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "requires torchvision (not installed)" not in record.getMessage()


# A filter on the logger that emits the note (a plain `logging` logger: transformers need not be imported yet).
logging.getLogger("transformers.utils.import_utils").addFilter(_NoTorchvisionAdvice())

# Public names, imported on first use so `import reasondiff` (and `reasondiff --help`) stays fast.
_EXPORTS = {
    "AlignFormer": "models.alignformer",
    "Narration": "narrator.schema",
    "VisionNarrator": "narrator.narrator",
    "ReasonDiffPipeline": "pipelines.pipeline_reasondiff",
    "ReasonDiffPipelineOutput": "pipelines.pipeline_output",
    "generate": "pipelines.narrated",
}
__all__ = [*_EXPORTS, "__version__"]
__getattr__ = lazy_exports(__name__, _EXPORTS)

from .plugins import load_plugins  # noqa: E402

# Registered through the `reasondiff.plugins` entry points: the offline world (ReasonDiff-mini: its model, narrator,
# measures and ThinkDiff-mini) and any other package's. The core imports none of them.
load_plugins()
