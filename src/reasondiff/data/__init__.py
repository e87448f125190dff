"""Training and evaluation data: clip sampling, captioning, the latent/embedding cache, benchmark sets."""

from .cache import CacheInput, write_cache
from .dataset import CachedClipDataset, collate_clips

__all__ = ["CacheInput", "CachedClipDataset", "collate_clips", "write_cache"]
