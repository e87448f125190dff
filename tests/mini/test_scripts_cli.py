"""The mini's `python -m` scripts are typer commands: help, and a bad argument refused with exit 2 before any work."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import reasondiff
from reasondiff.mini import build, degenerate, judge_data, judge_training

runner = CliRunner()


@pytest.mark.parametrize(("app", "args", "options"), [
    (build.app, ["cache"], ["--vae", "--clips"]),
    (build.app, ["assemble"], ["--vae", "--base", "--reasondiff"]),
    (judge_data.app, [], ["--vae", "--clips", "--seed", "--held-out"]),
    (judge_training.app, [], ["--bank", "--held-out", "--steps"]),
    (degenerate.app, [], ["BENCH", "KIND", "OUT", "hard_cut_pasted_agent"]),
])
def test_help_lists_the_options_the_recipe_uses(app, args, options):
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert all(option in result.output for option in options), result.output


@pytest.mark.parametrize(("app", "args", "message"), [
    (build.app, ["cache", "out", "--vae", "v", "--clips", "many"], "Invalid value for '--clips'"),
    (build.app, ["assemble", "out", "--vae", "v"], "Missing option '--base'"),
    (judge_data.app, ["out", "--clips", "10"], "Missing option '--vae'"),
    (judge_training.app, ["out", "--bank", "b", "--held-out", "h", "--steps", "0"], "--steps"),
    (degenerate.app, ["bench.jsonl", "sideways", "out"], "'sideways' is not one of truth, static"),
])
def test_a_bad_argument_exits_2_with_what_was_wrong(app, args, message, tmp_path):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.replace("│", " ").split()), result.output


def _vae(*args):
    src = str(Path(reasondiff.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "reasondiff.mini.vae", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_the_vae_script_keeps_its_options_and_refuses_bad_windows(tmp_path):
    shown = _vae("--help")
    assert shown.returncode == 0, shown.stderr
    for option in ("--steps", "--learning-rate", "--foreground-weight", "--crop", "--windows", "--frames-per-step"):
        assert option in shown.stdout
    refused = _vae(str(tmp_path / "vae"), "--steps", "1", "--windows", "1,five")
    assert refused.returncode == 2, refused.stderr
    assert "'1,five' is not a comma-separated list" in " ".join(refused.stderr.replace("│", " ").split())
    assert not (tmp_path / "vae").exists()  # refused before any work


def test_the_recipe_invocations_reach_the_functions_with_their_values(monkeypatch):
    """scripts/train_mini.sh's command lines, unchanged, call what they called under argparse."""
    calls = []
    monkeypatch.setattr(build, "build_cache", lambda *a: calls.append(("cache", *map(str, a))))
    monkeypatch.setattr(build, "assemble", lambda *a: calls.append(("assemble", *map(str, a))))
    assert runner.invoke(build.app, ["cache", "c", "--vae", "v/vae", "--clips", "1500"]).exit_code == 0
    assert runner.invoke(build.app, ["assemble", "m", "--vae", "v", "--base", "b", "--reasondiff", "r"]).exit_code == 0
    assert runner.invoke(build.app, ["assemble", "m", "--vae", "v", "--base", "b"]).exit_code == 0
    assert calls == [("cache", "c", "v/vae", "1500"), ("assemble", "m", "v", "b", "r"),
                     ("assemble", "m", "v", "b", "None")]
