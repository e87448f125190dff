"""ReasonDiff: unpaired text-image-to-video generation on diffusers' Wan2.1."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("reasondiff")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

from .models.alignformer import AlignFormer  # noqa: E402

__all__ = ["AlignFormer", "__version__"]
