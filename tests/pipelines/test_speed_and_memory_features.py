"""diffusers' speed and memory features work with ReasonDiffPipeline and change outputs only as documented."""

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers.hooks import FirstBlockCacheConfig, apply_first_block_cache
from fakes import VASE_STORY
from helpers import CALL, generator, reasondiff_pipeline
from reasondiff.pipelines.narrated import generate

PROMPT = "a cat plays in the room"


def run(pipe, image, **overrides):
    return generate(pipe, image, PROMPT, narration=VASE_STORY, generator=generator(0), **{**CALL, **overrides}).frames


@pytest.fixture(scope="module")
def reference():
    from PIL import Image

    image = Image.fromarray((np.indices((64, 64)).sum(0) * 2 % 256).astype(np.uint8)).convert("RGB")
    return image, run(reasondiff_pipeline(), image)


def test_model_cpu_offload_gives_the_same_video(reference):
    image, expected = reference
    pipe = reasondiff_pipeline()
    pipe.enable_model_cpu_offload(device="cpu")
    np.testing.assert_array_equal(run(pipe, image), expected)


def test_group_offloading_gives_the_same_video(reference):
    image, expected = reference
    pipe = reasondiff_pipeline()
    pipe.transformer.enable_group_offload(onload_device=torch.device("cpu"), offload_device=torch.device("cpu"),
                                          offload_type="block_level", num_blocks_per_group=1)
    np.testing.assert_array_equal(run(pipe, image), expected)


def test_vae_slicing_and_tiling(reference):
    image, expected = reference
    pipe = reasondiff_pipeline()
    pipe.vae.enable_slicing()
    np.testing.assert_array_equal(run(pipe, image), expected)
    pipe.vae.enable_tiling(tile_sample_min_height=32, tile_sample_min_width=32, tile_sample_stride_height=16,
                           tile_sample_stride_width=16)
    tiled = run(pipe, image)  # tiles are blended: close to, not equal to, the untiled decode
    assert tiled.shape == expected.shape and np.isfinite(tiled).all()
    assert np.abs(tiled - expected).mean() < 0.1


def test_first_block_cache_is_exact_at_threshold_zero_and_skips_work_above(reference):
    image, expected = reference
    pipe = reasondiff_pipeline()
    apply_first_block_cache(pipe.transformer, FirstBlockCacheConfig(threshold=0.0))
    np.testing.assert_allclose(run(pipe, image), expected, atol=1e-6)

    full_pipe, full_calls = reasondiff_pipeline(), []
    full_pipe.transformer.blocks[1].ffn.register_forward_hook(lambda *a: full_calls.append(1))
    run(full_pipe, image, num_inference_steps=6)
    cached_pipe, cached_calls = reasondiff_pipeline(), []
    cached_pipe.transformer.blocks[1].ffn.register_forward_hook(lambda *a: cached_calls.append(1))
    apply_first_block_cache(cached_pipe.transformer, FirstBlockCacheConfig(threshold=10.0))
    cached = run(cached_pipe, image, num_inference_steps=6)
    assert len(cached_calls) < len(full_calls) == 12  # later blocks skipped on cached steps (6 steps x CFG)
    assert np.isfinite(cached).all()


def test_compiled_blocks_give_the_same_video(reference):
    image, expected = reference
    pipe = reasondiff_pipeline()
    pipe.transformer.compile_repeated_blocks(fullgraph=False)
    np.testing.assert_allclose(run(pipe, image), expected, atol=1e-4)


def test_flop_account_matches_torch_flop_counter():
    import runpy

    script = runpy.run_path(str(Path(__file__).parents[2] / "benchmarks" / "flop_account.py"), run_name="flop_account")
    Setting, alignformer_forward, dit_forward, measured = (script[name] for name in (
        "Setting", "alignformer_forward", "dit_forward", "measured"))

    small = Setting(frames=9, height=32, width=48, dit_dim=64, dit_heads=2, dit_ffn=128, dit_layers=2, text_dim=32,
                    image_dim=16, image_tokens=5, align_dim=32, contexts=3)
    stock, framewise, align = measured(small)
    assert sum(dit_forward(small, 1).values()) == stock
    assert sum(dit_forward(small, small.contexts).values()) == framewise
    assert alignformer_forward(small) == align
