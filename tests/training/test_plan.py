"""The memory plan against what the tiny model really holds on a CPU (no CUDA allocator needed)."""

from pathlib import Path

import pytest
from test_trainer import trainer_for

from reasondiff.data import collate_clips
from reasondiff.training.plan import counting_saved_tensors, footprint


def real_activations(trainer, batch) -> int:
    """Bytes of distinct storages the real forward keeps for backward (plus checkpointed blocks' inputs)."""
    modules = trainer.model
    blocks = [*modules.transformer.blocks, modules.alignformer.self_attn, *modules.alignformer.cross_blocks]
    totals = {}
    with counting_saved_tensors(totals, blocks, flash_like=False):
        trainer.compute_loss(batch, epoch=0)
    return sum(totals.values())


@pytest.mark.parametrize("checkpointing", [False, True])
def test_plan_matches_the_tiny_model(tmp_path, toy_cache, checkpointing):
    trainer = trainer_for(tmp_path, toy_cache, stage=1, max_steps=1, gradient_checkpointing=checkpointing)
    fp = footprint(trainer.config, tuple(trainer.dataset.meta["latent_shape"]), image_tokens=17)
    params = list(trainer.model.parameters())
    assert fp.frozen == sum(p.numel() * p.element_size() for p in params if not p.requires_grad)
    assert fp.trainable == sum(p.numel() * p.element_size() for p in params if p.requires_grad)

    one = collate_clips([trainer.dataset[0]])
    measured = real_activations(trainer, one)
    planned = fp.activations_checkpointed if checkpointing else fp.activations
    print(f"activations per sample, checkpointing={checkpointing}: planned {planned}, measured {measured}")
    assert abs(planned - measured) <= 0.2 * measured, (planned, measured)

    trainer.train()  # one optimizer step: AdamW's states now exist
    state = trainer.accelerator._optimizers[0].optimizer.state
    assert fp.optimizer == sum(t.numel() * t.element_size() for s in state.values() for t in s.values())


def test_the_14b_plan_from_the_shipped_config(monkeypatch):
    """`train --plan` on the paper's setting, offline: the DiT's shape from the built-in copy of its config."""
    from huggingface_hub import constants
    from typer.testing import CliRunner

    from reasondiff.cli import app

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    config = Path(__file__).resolve().parents[2] / "configs" / "wan14b_stage1.yaml"
    result = CliRunner().invoke(app, ["train", "--config", str(config), "--plan", "--gpus", "8"])
    assert result.exit_code == 0, result.output
    rows = {line.split("  ")[0]: line.split()[-4:] for line in result.output.splitlines() if "  " in line}
    ddp, fsdp, zero2, zero3 = map(float, rows["frozen weights"])
    assert 30.4 < ddp < 30.8 and fsdp == pytest.approx(ddp / 8, abs=0.01) and zero2 == ddp and zero3 == fsdp
    assert "latents 16x9x60x104" in result.output and "8 GPUs x 1 x 1" in result.output
