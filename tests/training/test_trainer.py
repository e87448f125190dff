import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers import generator
from PIL import Image
from safetensors.torch import load_file

from reasondiff import AlignFormer, Narration, ReasonDiffPipeline
from reasondiff.data import CachedClipDataset, collate_clips
from reasondiff.models import tiny_wan
from reasondiff.training import Trainer, load_config
from reasondiff.pipelines.narrated import generate

BASE = {"model": "tiny", "alignformer": {"hidden_dim": 32, "num_heads": 4, "ff_mult": 2}, "lora_rank": 4,
        "lora_alpha": 4, "learning_rate": 3e-3, "batch_size": 4, "num_epochs": 50, "checkpoint_every": 1000,
        "log_every": 1000, "timestep_sampling": "uniform"}


def write_config(path: Path, **settings) -> Path:
    data = {**BASE, **settings}
    data = {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}
    path.write_text(yaml.safe_dump(data))
    return path


def fixed_batch(cache):
    dataset = CachedClipDataset(cache)
    return collate_clips([dataset[i] for i in range(len(dataset))])


def trainer_for(tmp_path, cache, **settings):
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = load_config(write_config(tmp_path / "config.yaml", cache_dir=cache, output_dir=tmp_path / "run", **settings))
    return Trainer(config)


def evaluate(trainer, batch):
    with torch.no_grad():
        _, logs = trainer.compute_loss(batch, epoch=0)
    return logs


def test_stage1_loss_falls_and_only_lora_and_alignformer_change(tmp_path, toy_cache):
    trainer = trainer_for(tmp_path, toy_cache, stage=1, max_steps=50)
    batch = fixed_batch(toy_cache)
    before = evaluate(trainer, batch)
    base = {k: v.clone() for k, v in trainer.transformer.state_dict().items()}
    align_before = {k: v.clone() for k, v in trainer.alignformer.state_dict().items()}
    export = trainer.train()
    after = evaluate(trainer, batch)
    assert after["flow"] < 0.8 * before["flow"], (before, after)

    state = trainer.accelerator.unwrap_model(trainer.transformer).state_dict()
    lora = [k for k in state if "lora_" in k]
    assert lora and all(not torch.equal(state[k], base[k]) for k in lora if "lora_B" in k)
    assert all(torch.equal(state[k], base[k]) for k in state if "lora_" not in k)  # the base DiT is untouched
    align = trainer.accelerator.unwrap_model(trainer.alignformer).state_dict()
    assert all(not torch.equal(align[k], align_before[k]) for k in ("proj_out.weight", "anchor_proj.weight"))
    assert (export / "alignformer" / "diffusion_pytorch_model.safetensors").is_file()
    assert (export / "pytorch_lora_weights.safetensors").is_file()


def test_stage2_trains_the_alignformer_alone_and_reconstruction_falls(tmp_path, toy_cache):
    stage1 = trainer_for(tmp_path / "s1", toy_cache, stage=1, max_steps=2).train()
    # Start from an AlignFormer whose output has wandered from the video latents, as after a long stage 1.
    align = AlignFormer.from_pretrained(stage1 / "alignformer")
    with torch.no_grad():
        align.proj_out.weight.normal_(std=0.3, generator=generator(7))
    align.save_pretrained(stage1 / "alignformer")
    trainer = trainer_for(tmp_path / "s2", toy_cache, stage=2, init_from=stage1, max_steps=40)
    batch = fixed_batch(toy_cache)
    before = evaluate(trainer, batch)
    dit = {k: v.clone() for k, v in trainer.transformer.state_dict().items()}
    assert any("lora_" in k for k in dit)  # the stage-1 LoRA is loaded
    trainer.train()
    after = evaluate(trainer, batch)
    assert after["reconstruction"] < 0.75 * before["reconstruction"], (before, after)
    state = trainer.transformer.state_dict()
    assert all(torch.equal(state[k], dit[k]) for k in state)  # DiT and LoRA frozen
    exported = load_file(str(tmp_path / "s2" / "run" / "export" / "pytorch_lora_weights.safetensors"))
    original = load_file(str(stage1 / "pytorch_lora_weights.safetensors"))
    assert exported.keys() == original.keys() and all(torch.equal(exported[k], original[k]) for k in original)


def run_cli(config: Path, *overrides: str, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "reasondiff", "train", "--config", str(config), *overrides],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def exported_weights(export: Path) -> dict[str, torch.Tensor]:
    weights = load_file(str(export / "alignformer" / "diffusion_pytorch_model.safetensors"))
    weights.update(load_file(str(export / "pytorch_lora_weights.safetensors")))
    return weights


def test_a_killed_run_resumes_to_the_same_weights(tmp_path, toy_cache):
    config = write_config(tmp_path / "c.yaml", stage=1, cache_dir=toy_cache, output_dir=tmp_path / "x",
                          max_steps=12, checkpoint_every=3, keep_last=2, batch_size=2)
    straight = run_cli(config, f"output_dir={tmp_path / 'straight'}")
    assert straight.wait(timeout=300) == 0, straight.stdout.read().decode()[-2000:]

    killed = run_cli(config, f"output_dir={tmp_path / 'killed'}")
    checkpoints = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 240
    while not (checkpoints / "step-00000006").exists():
        assert killed.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    complete = [p for p in checkpoints.iterdir() if not p.name.endswith(".tmp")]
    assert complete and all((p / "trainer_state.json").is_file() for p in complete)  # never half-written
    assert not (tmp_path / "killed" / "export").exists()

    resumed = run_cli(config, f"output_dir={tmp_path / 'killed'}")
    output = resumed.stdout.read().decode()
    assert resumed.wait(timeout=300) == 0, output[-2000:]
    a, b = exported_weights(tmp_path / "straight" / "export"), exported_weights(tmp_path / "killed" / "export")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], atol=1e-6, rtol=1e-5)


def test_the_export_loads_into_the_pipeline_and_generates(tmp_path, toy_cache):
    export = trainer_for(tmp_path, toy_cache, stage=1, max_steps=3).train()
    pipe = ReasonDiffPipeline(**tiny_wan.wan_components(seed=0), alignformer=AlignFormer.from_pretrained(export / "alignformer"))
    pipe.load_lora_weights(str(export))
    pipe.set_progress_bar_config(disable=True)
    story = Narration(position=9, descriptions=["a red square in the left of a dark room"] * 9)
    image = Image.fromarray(np.full((32, 32, 3), 40, dtype=np.uint8))
    out = generate(pipe, image, "a red square", narration=story, num_frames=9, height=32, width=32, num_inference_steps=2,
               generator=generator(0), output_type="np")
    assert out.frames.shape == (1, 9, 32, 32, 3) and np.isfinite(out.frames).all()


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"stage": 1, "learning_rat": 1e-4}, "learning_rat"),
        ({"stage": 2}, "init_from"),
        ({"stage": 1, "cache_dir": "nowhere"}, "no training cache"),
        ({"stage": 2, "init_from": "nowhere"}, "alignformer/"),
        ({"stage": 1, "batch_size": 0}, "at least 1"),
    ],
)
def test_bad_configs_are_named(tmp_path, toy_cache, settings, message):
    settings = {"cache_dir": toy_cache, "output_dir": tmp_path / "run", **settings}
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        Trainer(load_config(write_config(tmp_path / "c.yaml", **settings)))


def test_cli_reports_bad_configs_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from reasondiff.cli import app

    config = write_config(tmp_path / "c.yaml", stage=2, cache_dir=tmp_path, output_dir=tmp_path / "r")
    result = CliRunner().invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 2 and "init_from" in result.output
    result = CliRunner().invoke(app, ["train", "--config", str(config), "stage=1", "nonsense"])
    assert result.exit_code == 2 and "key=value" in result.output


SMALL_DIT = {**tiny_wan.transformer_config(), "num_layers": 2}


def test_stage0_trains_a_plain_i2v_dit_from_scratch_that_stage1_builds_on(tmp_path, toy_cache):
    trainer = trainer_for(tmp_path / "s0", toy_cache, stage=0, transformer_config=SMALL_DIT, max_steps=40)
    assert trainer.alignformer is None and trainer.dataset.anchor == "first"
    batch_first = collate_clips([trainer.dataset[i] for i in range(len(trainer.dataset))])
    assert batch_first["anchor_position"].eq(1).all()
    before = evaluate(trainer, batch_first)
    start = {k: v.clone() for k, v in trainer.transformer.state_dict().items()}
    export = trainer.train()
    after = evaluate(trainer, batch_first)
    assert after["flow"] < 0.8 * before["flow"], (before, after)
    state = trainer.accelerator.unwrap_model(trainer.transformer).state_dict()
    changed = [k for k in state if not torch.equal(state[k], start[k])]
    assert len(changed) > 0.9 * len(state)  # every weight trains, not a LoRA
    assert (export / "transformer" / "diffusion_pytorch_model.safetensors").is_file()
    assert not (export / "alignformer").exists()

    stage1 = trainer_for(tmp_path / "s1", toy_cache, stage=1, model=str(export), max_steps=2)
    base = {k.replace(".base_layer", ""): v for k, v in stage1.transformer.state_dict().items() if "lora_" not in k}
    assert base.keys() == state.keys() and all(torch.equal(base[k], state[k]) for k in state)  # stage 1 starts there
    assert stage1.train().joinpath("alignformer").is_dir()


def test_ablation_conditionings(tmp_path, toy_cache):
    batch = fixed_batch(toy_cache)
    no_latents = trainer_for(tmp_path / "a", toy_cache, stage=1, conditioning="no_enhanced_latents", max_steps=2)
    assert no_latents.alignformer is None
    condition, c_star = no_latents._condition(batch, None, None, None, "cpu")
    assert c_star is None and torch.equal(condition[:, 4:], batch["condition_video"])
    export = no_latents.train()
    assert (export / "pytorch_lora_weights.safetensors").is_file() and not (export / "alignformer").exists()

    one_prompt = trainer_for(tmp_path / "b", toy_cache, stage=1, conditioning="no_multi_prompt", max_steps=2)
    seen = []
    one_prompt.alignformer.register_forward_pre_hook(lambda m, args: seen.append(args[2].clone()))
    one_prompt.compute_loss(batch, epoch=0)
    narratives = seen[0]  # [B, F, L, D]: every latent frame reads the clip's one prompt
    assert torch.equal(narratives, narratives[:, :1].expand_as(narratives))


def test_stage0_needs_condition_videos(tmp_path):
    from reasondiff.data import write_cache
    from reasondiff.data.toy import toy_clips

    c = tiny_wan.wan_components(seed=0)
    write_cache(tmp_path / "cache", toy_clips(2, num_frames=5, size=16), vae=c["vae"], text_encoder=c["text_encoder"],
                tokenizer=c["tokenizer"], image_encoder=c["image_encoder"], image_processor=c["image_processor"],
                progress=False)
    with pytest.raises(ValueError, match="condition_videos"):
        trainer_for(tmp_path, tmp_path / "cache", stage=0)
