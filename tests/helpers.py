"""Shared builders for tests: tiny pipelines (no network, no weights); the fakes are in fakes.py."""

import torch

from reasondiff import ReasonDiffPipeline
from reasondiff.models import tiny_wan

CALL = dict(height=64, width=64, num_frames=17, num_inference_steps=2, guidance_scale=5.0, output_type="np")



def trained_like_alignformer(seed=0):
    """A tiny AlignFormer whose zero-initialised output has moved, so c* differs from the repeated anchor."""
    model = tiny_wan.alignformer(seed=seed)
    with torch.no_grad():
        model.proj_out.weight.normal_(std=0.5, generator=torch.Generator().manual_seed(seed + 100))
        model.proj_out.bias.normal_(std=0.1, generator=torch.Generator().manual_seed(seed + 101))
    return model.eval()


def reasondiff_pipeline(seed=0, **kwargs):
    pipe = ReasonDiffPipeline(**tiny_wan.wan_components(seed=seed), alignformer=trained_like_alignformer(seed), **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generator(seed=0):
    return torch.Generator().manual_seed(seed)

