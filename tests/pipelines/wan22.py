"""Wan2.2-I2V-A14B at toy size: two tiny random experts switched at `boundary_ratio`, no CLIP image encoder."""

import torch
from diffusers import WanTransformer3DModel
from helpers import trained_like_alignformer

from reasondiff import ReasonDiffPipeline
from reasondiff.models import tiny_wan as tiny

BOUNDARY_RATIO = 0.9  # Wan2.2-I2V-A14B's: the high-noise expert takes timesteps >= 900 of 1000


def expert(seed):
    """A Wan2.2-I2V-A14B-style expert: 36 input channels like Wan2.1-I2V, but no image cross-attention."""
    torch.manual_seed(seed)
    config = {**tiny.transformer_config(), "image_dim": None, "added_kv_proj_dim": None}
    return WanTransformer3DModel(**config).eval()


def two_expert_components(seed=0):
    """Every component `WanImageToVideoPipeline(**components)` takes for a two-expert (Wan2.2 A14B) model."""
    parts = tiny.wan_components(seed=seed)
    return {**parts, "image_encoder": None, "image_processor": None, "transformer": expert(seed + 10),
            "transformer_2": expert(seed + 11), "boundary_ratio": BOUNDARY_RATIO}


def two_expert_pipeline(seed=0, **kwargs):
    """ReasonDiff on the two tiny experts, with an AlignFormer whose output has moved from its zero init."""
    components = {**two_expert_components(seed), **kwargs}
    pipe = ReasonDiffPipeline(**components, alignformer=trained_like_alignformer(seed))
    pipe.set_progress_bar_config(disable=True)
    return pipe
