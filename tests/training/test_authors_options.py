"""Options the authors' training used that ours does not by default: LoRA on the feed-forward layers, and a
shift-5 schedule with a Gaussian timestep weighting."""

import pytest
import torch
from safetensors.torch import load_file
from test_trainer import trainer_for

from reasondiff import AlignFormer, ReasonDiffPipeline
from reasondiff.models import tiny
from reasondiff.training.flow_matching import NUM_TRAIN_TIMESTEPS, timestep_weight

AUTHORS_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2"]  # their q, k, v, o, ffn.0, ffn.2


def test_lora_on_the_feed_forward_layers_trains_exports_and_loads(tmp_path, toy_cache):
    trainer = trainer_for(tmp_path, toy_cache, stage=1, max_steps=2, lora_target_modules=AUTHORS_TARGETS)
    export = trainer.train()
    keys = load_file(str(export / "pytorch_lora_weights.safetensors")).keys()
    assert any(".ffn.net.0.proj.lora_A" in k for k in keys) and any(".ffn.net.2.lora_B" in k for k in keys)
    pipe = ReasonDiffPipeline(**tiny.wan_components(seed=0), alignformer=AlignFormer.from_pretrained(export / "alignformer"))
    pipe.load_reasondiff_lora(str(export))
    assert hasattr(pipe.transformer.blocks[0].ffn.net[2], "lora_A")


def test_the_gaussian_weighting_has_mean_one_on_the_shifted_grid_and_peaks_mid_way():
    grid = torch.linspace(1.0, 0.0, NUM_TRAIN_TIMESTEPS + 1, dtype=torch.float64)[:-1]
    grid = 5 * grid / (1 + 4 * grid)
    weights = timestep_weight(grid, shift=5.0)
    assert weights.mean().item() == pytest.approx(1.0, abs=1e-9) and weights.min().item() == pytest.approx(0.0, abs=1e-12)
    assert weights[(grid - 0.5).abs().argmin()] == weights.max()  # t = 500


def test_the_weighting_scales_each_samples_error(tmp_path, toy_cache):
    trainer = trainer_for(tmp_path, toy_cache, stage=1, weighting="gaussian", shift=5.0)
    prediction = torch.zeros(2, 16, 3, 4, 4)
    target = torch.stack([torch.ones(16, 3, 4, 4), 2 * torch.ones(16, 3, 4, 4)])  # squared errors 1 and 4
    sigma = torch.tensor([0.5, 0.9])
    expected = (timestep_weight(sigma, 5.0) * torch.tensor([1.0, 4.0])).mean()
    torch.testing.assert_close(trainer._flow_loss(prediction, target, sigma), expected)
