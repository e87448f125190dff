"""Training and evaluation data: clip sampling, captioning, the latent/embedding cache, benchmark sets.

The video tools live in `sampling`, `captioning` and `benchmarks`; the training cache the trainer
reads is exported here (imported on first use, so the CLI starts without torch).
"""

from importlib import import_module

_EXPORTS = {
    "CacheInput": "cache",
    "write_cache": "cache",
    "CachedClipDataset": "dataset",
    "collate_clips": "dataset",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
