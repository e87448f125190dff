"""One process, no launcher: the pieces multi-process training rests on (wrap policy, global batch, resume)."""

import shutil
from pathlib import Path

import pytest
import torch
import yaml
from accelerate import FullyShardedDataParallelPlugin
from test_trainer import exported_weights, trainer_for, write_config

from reasondiff.models import tiny_wan
from reasondiff.training import Trainer, load_config
from reasondiff.training.distributed import per_device_batch
from reasondiff.training.modules import StageModules, cast_frozen

ROOT = Path(__file__).resolve().parents[2]


def wrapped_classes(model) -> set[str]:
    """The block classes accelerate's FSDP2 wrap policy picks for `model` under the shipped fsdp.yaml."""
    settings = yaml.safe_load((ROOT / "configs" / "accelerate" / "fsdp.yaml").read_text())["fsdp_config"]
    plugin = FullyShardedDataParallelPlugin(
        fsdp_version=settings["fsdp_version"], auto_wrap_policy=settings["fsdp_auto_wrap_policy"].lower(),
        transformer_cls_names_to_wrap=settings.get("fsdp_transformer_layer_cls_to_wrap"),
    )
    plugin.set_auto_wrap_policy(model)
    return {type(m).__name__ for m in model.modules() if plugin.auto_wrap_policy(m, recurse=False, nonwrapped_numel=0)}


def test_the_shipped_fsdp_config_wraps_the_blocks_each_stage_holds():
    transformer, alignformer = tiny_wan.wan_components(seed=0)["transformer"], tiny_wan.alignformer(seed=0)
    assert wrapped_classes(StageModules(alignformer, transformer)) == {"WanTransformerBlock", "CrossAttentionBlock"}
    assert wrapped_classes(StageModules(alignformer)) == {"CrossAttentionBlock"}  # stage 2: no DiT blocks to find
    assert wrapped_classes(StageModules(transformer=transformer)) == {"WanTransformerBlock"}  # stage 0


def test_frozen_weights_are_cast_but_the_modules_wan_keeps_in_fp32_are_not():
    transformer = tiny_wan.wan_components(seed=0)["transformer"]
    transformer.requires_grad_(False)
    transformer.blocks[0].attn1.to_q.weight.requires_grad_(True)  # a trained weight stays an fp32 master
    cast_frozen(transformer, torch.bfloat16)
    dtypes = {name: p.dtype for name, p in transformer.named_parameters()}
    assert dtypes["blocks.0.attn1.to_k.weight"] == torch.bfloat16
    assert dtypes["blocks.0.attn1.to_q.weight"] == torch.float32
    for kept in ("scale_shift_table", "condition_embedder.time_embedder.linear_1.weight", "blocks.0.norm2.weight",
                 "blocks.0.scale_shift_table"):
        assert dtypes[kept] == torch.float32, kept


@pytest.mark.parametrize("total, processes, accumulation, share", [(8, 8, 1, 1), (8, 2, 2, 2), (64, 8, 2, 4)])
def test_batch_size_is_the_global_batch(total, processes, accumulation, share):
    assert per_device_batch(total, processes, accumulation) == share


@pytest.mark.parametrize("total, processes, accumulation", [(8, 3, 1), (4, 2, 4), (6, 4, 1)])
def test_a_global_batch_that_does_not_divide_is_refused(total, processes, accumulation):
    with pytest.raises(ValueError, match="multiple of processes x gradient_accumulation_steps"):
        per_device_batch(total, processes, accumulation)


def test_an_epoch_uses_each_sample_at_most_once_and_drops_the_remainder(tmp_path, toy_cache):
    trainer = trainer_for(tmp_path, toy_cache, stage=1, batch_size=3)  # 8 clips: 2 global batches, 2 left over
    seen = [[i for batch in trainer._loader(epoch) for i in batch["index"].tolist()] for epoch in (0, 1)]
    for indices in seen:
        assert len(indices) == 6 and len(set(indices)) == 6
    assert set(seen[0]) != set(seen[1])  # a reshuffle: the dropped samples differ between epochs


def test_accumulation_trains_as_one_batch_of_the_same_global_size(tmp_path, toy_cache):
    settings = {"stage": 1, "max_steps": 3, "batch_size": 4, "learning_rate": 1e-3}
    whole = trainer_for(tmp_path / "a", toy_cache, **settings)
    whole_export = whole.train()
    split = trainer_for(tmp_path / "b", toy_cache, gradient_accumulation_steps=2, **settings)
    assert split.per_device_batch == 2
    split_export = split.train()
    for got, want in zip(split.history, whole.history, strict=True):  # the logged loss is the global batch's
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)
    a, b = exported_weights(whole_export), exported_weights(split_export)
    for key in a:
        torch.testing.assert_close(b[key], a[key], atol=1e-5, rtol=0)


# ---------------------------------------------------------------- resuming past damaged checkpoints


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, toy_cache):
    """Stage 1, 4 steps with checkpoints at steps 2 and 4."""
    out = tmp_path_factory.mktemp("finished")
    config = write_config(out / "c.yaml", stage=1, cache_dir=toy_cache, output_dir=out / "run", max_steps=4,
                          checkpoint_every=2, keep_last=2, learning_rate=1e-3)
    Trainer(load_config(config)).train()
    return config, out / "run"


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {
    "pytorch_lora_weights.safetensors": truncate,
    "alignformer/diffusion_pytorch_model.safetensors": truncate,
    "trainer_state.json": truncate,
    "optimizer.bin": truncate,
    "scheduler.bin": Path.unlink,
}


@pytest.mark.parametrize("name", list(DAMAGE))
def test_a_damaged_newest_checkpoint_is_named_and_the_previous_one_resumed(tmp_path, finished_run, name, capsys):
    config, run = finished_run
    shutil.copytree(run / "checkpoints", tmp_path / "run" / "checkpoints")
    newest = tmp_path / "run" / "checkpoints" / "step-00000004"
    DAMAGE[name](newest / name)
    trainer = Trainer(load_config(config, [f"output_dir={tmp_path / 'run'}"]))
    err = capsys.readouterr().err
    assert "step-00000004" in err and name in err and trainer.resume_from.name == "step-00000002"
    export = trainer.train()
    assert "resuming from step 2 (checkpoint" in capsys.readouterr().err
    a, b = exported_weights(run / "export"), exported_weights(export)  # steps 3-4 replayed exactly
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_no_complete_checkpoint_is_one_line_and_exit_2(tmp_path, finished_run):
    from typer.testing import CliRunner

    from reasondiff.cli import app

    config, run = finished_run
    shutil.copytree(run / "checkpoints", tmp_path / "checkpoints")
    for folder in (tmp_path / "checkpoints").iterdir():
        truncate(folder / "optimizer.bin")
    result = CliRunner().invoke(app, ["train", "--config", str(config), f"output_dir={tmp_path}"])
    assert result.exit_code == 2 and "no complete checkpoint" in result.output and "optimizer.bin" in result.output
    assert "Traceback" not in result.output


def test_gradient_checkpointing_trains_to_the_same_weights(tmp_path, toy_cache):
    """The recomputation in backward must see the same frame layout as the forward (it once fell back to the stock
    processor there and torch refused the mismatch)."""
    settings = {"stage": 1, "max_steps": 2, "learning_rate": 1e-3}
    plain = exported_weights(trainer_for(tmp_path / "a", toy_cache, **settings).train())
    checkpointed = exported_weights(trainer_for(tmp_path / "b", toy_cache, gradient_checkpointing=True, **settings).train())
    for key in plain:
        torch.testing.assert_close(checkpointed[key], plain[key], atol=1e-6, rtol=1e-5)


def test_a_saved_dit_loads_in_the_compute_dtype_with_wans_fp32_modules_and_trains(tmp_path, toy_cache):
    """model: a diffusers folder, mixed_precision bf16 -> read as diffusers reads it (dtype, _keep_in_fp32_modules),
    left on the CPU until accelerate places it, LoRA masters in fp32; one bf16 step on the CPU runs."""
    from accelerate.state import AcceleratorState

    tiny_wan.wan_components(seed=0)["transformer"].save_pretrained(tmp_path / "wan" / "transformer")
    AcceleratorState._reset_state(reset_partial_state=True)  # one process holds one precision: forget earlier tests'
    try:
        trainer = trainer_for(tmp_path, toy_cache, stage=1, model=str(tmp_path / "wan"), mixed_precision="bf16",
                              max_steps=1)
        dtypes = {name: p.dtype for name, p in trainer.transformer.named_parameters()}
        assert dtypes["blocks.0.attn1.to_k.base_layer.weight"] == torch.bfloat16
        assert dtypes["blocks.0.norm2.weight"] == torch.float32 and dtypes["scale_shift_table"] == torch.float32
        assert dtypes["blocks.0.attn1.to_k.lora_A.default.weight"] == torch.float32
        assert trainer.train().joinpath("pytorch_lora_weights.safetensors").is_file()
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)  # and the tests after this one forget it
