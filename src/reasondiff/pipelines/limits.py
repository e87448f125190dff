"""The largest video a model can make, read from its config before any weight is loaded.

Wan's DiT looks positions up in a rotary table of `rope_max_seq_len` entries per axis (frames, rows,
columns of patches). A video with more latent frames or patches than that fails deep inside the
denoiser with a reshape error after the text encoder and the narrator have run; checking the three
numbers first turns that into one line naming the limit, before any work.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..frames import TEMPORAL_COMPRESSION


@dataclass(frozen=True)
class SizeLimits:
    max_frames: int
    max_height: int
    max_width: int

    def check(self, num_frames: int, height: int, width: int, model: str = "the model") -> None:
        """Raise ValueError naming the limit when the video does not fit the rotary position table."""
        if num_frames > self.max_frames:
            raise ValueError(f"--frames {num_frames} is more than {model} can place in time: at most "
                             f"{self.max_frames} frames (its position table holds {self.latent_frames} latent frames)")
        if height > self.max_height or width > self.max_width:
            raise ValueError(f"{height}x{width} is larger than {model} can place in space: at most "
                             f"{self.max_height}x{self.max_width} pixels")

    @property
    def latent_frames(self) -> int:
        return (self.max_frames - 1) // TEMPORAL_COMPRESSION + 1


def limits_from_configs(transformer: dict, vae_scale_spatial: int = 8,
                        vae_scale_temporal: int = TEMPORAL_COMPRESSION) -> SizeLimits | None:
    """Limits for a WanTransformer3DModel config (and its VAE's compression); None without a rotary table."""
    table = transformer.get("rope_max_seq_len")
    if not table:
        return None
    p_t, p_h, p_w = transformer.get("patch_size") or (1, 2, 2)
    return SizeLimits(max_frames=vae_scale_temporal * (table * p_t - 1) + 1,
                      max_height=table * p_h * vae_scale_spatial, max_width=table * p_w * vae_scale_spatial)


def limits_of(pipe) -> SizeLimits | None:
    """Limits of a loaded pipeline (its transformer and VAE configs)."""
    vae = pipe.vae.config
    return limits_from_configs(dict(pipe.transformer.config), getattr(vae, "scale_factor_spatial", 8),
                               getattr(vae, "scale_factor_temporal", TEMPORAL_COMPRESSION))


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def limits_of_folder(folder: Path) -> SizeLimits | None:
    """Limits of a diffusers folder, from its transformer's and VAE's configs; None when it has no readable
    transformer config (a hub id not downloaded yet: the pipeline checks again once loaded, still before the
    narrator and the denoiser)."""
    transformer = _read(folder / "transformer" / "config.json")
    if transformer is None:
        return None
    vae = _read(folder / "vae" / "config.json") or {}
    return limits_from_configs(transformer, vae.get("scale_factor_spatial", 8),
                               vae.get("scale_factor_temporal", TEMPORAL_COMPRESSION))
