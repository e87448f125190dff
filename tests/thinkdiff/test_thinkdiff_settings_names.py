"""ThinkDiff's trainers speak the ReasonDiff trainer's settings vocabulary (settings_names); the old names still read,
with a DeprecationWarning, as the same settings: in code, in YAML and as hidden command-line aliases."""

import functools
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

import reasondiff
from reasondiff.console import script_app
from reasondiff.mini.thinkdiff import decoder_training, t5, vlm
from reasondiff.mini.thinkdiff.config import settings
from reasondiff.thinkdiff import Aligner
from reasondiff.thinkdiff import cli as thinkdiff_cli
from reasondiff.thinkdiff.training import TrainConfig

runner = CliRunner()
CONFIGS = Path(__file__).parents[2] / "configs"
OLD = {"lr": 3e-3, "grad_clip": 0.5, "save_every": 7, "keep_checkpoints": 4, "warmup_steps": 9}
NEW = {"learning_rate": 3e-3, "max_grad_norm": 0.5, "checkpoint_every": 7, "keep_last": 4, "lr_warmup_steps": 9}


def test_the_aligner_trainer_reads_each_old_key_as_the_new_one_with_a_warning():
    with pytest.warns(DeprecationWarning) as caught:
        old = TrainConfig(steps=20, **OLD)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = TrainConfig(steps=20, **NEW)
    assert old == new and old.model_dump() == new.model_dump()
    assert sorted(str(w.message) for w in caught) == sorted(
        f"ThinkDiff training config: {o!r} is deprecated, use {n!r}" for o, n in zip(OLD, NEW, strict=True))
    with pytest.raises(ValueError, match="'lr' and 'learning_rate' are the same setting"):
        TrainConfig(lr=1e-3, learning_rate=1e-3)
    with pytest.raises(ValueError, match="extra"):  # a typo is refused, not silently defaulted
        TrainConfig(learning_rat=1e-3)


@pytest.mark.parametrize("trainer", [t5.train, vlm.train, decoder_training.train])
def test_the_mini_trainers_read_old_yaml_keys_and_old_flags_as_the_new_ones(trainer, tmp_path):
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text("steps: 10\nlr: 0.002\nsave_every: 5\n")
    new.write_text("steps: 10\nlearning_rate: 0.002\ncheckpoint_every: 5\n")
    with pytest.warns(DeprecationWarning, match=r"old.yaml: 'lr' is deprecated, use 'learning_rate'"):
        from_old = settings(trainer, old)
    assert from_old == settings(trainer, new) == {"steps": 10, "learning_rate": 0.002, "checkpoint_every": 5}
    with pytest.warns(DeprecationWarning, match="--lr is deprecated, use --learning-rate"):
        assert settings(trainer, new, lr=0.1, steps=None) == {**from_old, "learning_rate": 0.1}
    with pytest.raises(ValueError, match="--lr and --learning-rate are the same setting"):
        settings(trainer, new, lr=0.1, learning_rate=0.2)


@pytest.mark.parametrize("name", ["thinkdiff_mini_vlm.yaml", "thinkdiff_mini_decoder.yaml"])
def test_the_shipped_configs_use_the_new_names(name):
    trainer = vlm.train if "vlm" in name else decoder_training.train
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = settings(trainer, CONFIGS / name)
    assert values == yaml.safe_load((CONFIGS / name).read_text()) and "learning_rate" in values


def test_thinkdiff_train_takes_the_new_flags_and_the_old_ones_as_hidden_aliases(monkeypatch, tmp_path):
    shown = runner.invoke(thinkdiff_cli.app, ["train", "--help"])
    flat = " ".join(shown.output.replace("│", " ").split())
    assert all(f in flat for f in ("--learning-rate", "--lr-warmup-steps", "--checkpoint-every")), flat
    assert not any(f in flat.split() for f in ("--lr", "--warmup-steps", "--save-every"))
    assert thinkdiff_cli._renamed_train_options() == {"learning_rate": 1e-4, "checkpoint_every": 500,
                                                      "lr_warmup_steps": None}
    with pytest.warns(DeprecationWarning) as caught:
        old = thinkdiff_cli._renamed_train_options(lr=0.01, warmup_steps=3, save_every=4)
    assert old == thinkdiff_cli._renamed_train_options(learning_rate=0.01, lr_warmup_steps=3, checkpoint_every=4)
    assert {str(w.message) for w in caught} == {"thinkdiff train: --lr is deprecated, use --learning-rate",
                                                "thinkdiff train: --warmup-steps is deprecated, use --lr-warmup-steps",
                                                "thinkdiff train: --save-every is deprecated, use --checkpoint-every"}
    refused = runner.invoke(thinkdiff_cli.app, ["train", "--features", str(tmp_path), "--out", str(tmp_path / "o"),
                                                "--lr", "1e-3", "--learning-rate", "1e-3"])
    assert refused.exit_code == 2 and "--lr and --learning-rate are the same setting" in refused.output


def test_the_mini_t5_script_keeps_its_command_line(monkeypatch, tmp_path):
    """`python -m reasondiff.mini.thinkdiff.t5 OUT --steps --batch-size --lr --seed`, as before typer."""
    seen = []

    @functools.wraps(t5.train)
    def fake(out, **kwargs):
        seen.append((out, kwargs))
        return {"steps": kwargs.get("steps")}

    monkeypatch.setattr(t5, "train", fake)
    app = script_app(t5.__doc__)
    app.command()(t5.main)
    with pytest.warns(DeprecationWarning, match="--lr is deprecated"):
        result = runner.invoke(app, [str(tmp_path), "--steps", "12", "--batch-size", "3", "--lr", "0.5", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.splitlines()[-1]) == {"steps": 12}
    assert seen == [(tmp_path, {"steps": 12, "batch_size": 3, "learning_rate": 0.5, "seed": 2})]
    assert runner.invoke(app, [str(tmp_path), "--steps", "many"]).exit_code == 2


def _module(name, *args):
    src = str(Path(reasondiff.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", name, *args], capture_output=True, text=True, env=env, timeout=300)


def test_the_python_m_scripts_explain_themselves_and_convert_as_before(tmp_path):
    from test_thinkdiff_authors_options import authors_state_dict

    shown = _module("reasondiff.mini.thinkdiff.t5", "--help")
    assert shown.returncode == 0 and all(f in shown.stdout for f in ("--steps", "--batch-size", "--learning-rate",
                                                                       "--seed", "T5 decoder")), shown.stderr
    assert "--lr " not in shown.stdout  # a hidden alias
    _, state = authors_state_dict()
    torch.save({"model": state}, tmp_path / "checkpoint_best.pth")
    done = _module("reasondiff.thinkdiff.convert", str(tmp_path / "checkpoint_best.pth"), str(tmp_path / "a"),
                   "--eps", "1e-5")
    assert done.returncode == 0 and done.stdout.strip() == f"aligner 6 -> 5 written to {tmp_path / 'a'}", done.stderr
    assert Aligner.from_pretrained(tmp_path / "a").config.eps == 1e-5
    missing = _module("reasondiff.thinkdiff.convert", str(tmp_path / "missing.pth"), str(tmp_path / "b"))
    assert missing.returncode == 2 and "checkpoint not found" in missing.stderr
