"""Training and evaluation data: clip sampling, captioning, the latent/embedding cache, benchmark sets.

The video tools live in `sampling`, `captioning` and `benchmarks`; the training cache the trainer
reads is exported here (imported on first use, so the CLI starts without torch).
"""

from .._lazy import lazy_exports

_EXPORTS = {
    "CacheInput": "cache",
    "write_cache": "cache",
    "CachedClipDataset": "dataset",
    "collate_clips": "dataset",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
