"""What a new user meets first: the root help, the global flags where they are typed, clean piped output, and a
Python API that does not contradict the README."""

import json
import re
import subprocess
import sys

import typer
from typer.testing import CliRunner

from reasondiff.cli import app

runner = CliRunner()
FAST = ["--model", "tiny", "--steps", "2", "--frames", "17", "--height", "64", "--width", "64"]


def test_root_help_lists_every_command_of_every_group():
    """`thinkdiff bench` and `convert`, `eval rescore` and `study-results` were missing from hand-written lists."""
    result = runner.invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.output.replace("│", " ").split())
    root = typer.main.get_command(app)
    groups = {name: cmd for name, cmd in root.commands.items() if hasattr(cmd, "commands")}
    assert set(groups) == {"data", "eval", "thinkdiff"}
    for name, group in groups.items():
        row = " ".join(group.help.split())
        assert f"{name} {row}" in text  # the group's row of the root help, whole
        missing = [command for command in group.commands if not re.search(rf"\b{re.escape(command)}\b", row)]
        assert not missing, (name, missing)


def test_global_flags_work_after_the_command(tmp_path):
    """`reasondiff generate --verbose` was "No such option" although the README puts it there."""
    out = tmp_path / "q.mp4"
    result = runner.invoke(app, ["generate", "-o", str(out), "--mode", "wan", "-p", "-v", *FAST, "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and "denoising" not in result.stderr  # --quiet after the command took effect
    generation = json.loads(out.with_suffix(".narration.json").read_text())["metadata"]["generation"]
    assert generation["prompt"] == "-v"  # an option's value is never taken for a flag
    for flags in (["generate", "--verbose", "--quiet"], ["generate", "-q", "-v"], ["-q", "generate", "-v"]):
        result = runner.invoke(app, flags)
        assert result.exit_code == 2 and "--quiet and --verbose contradict" in result.output, flags
    result = runner.invoke(app, ["eval", "score", "-v", "--nope"])
    assert result.exit_code == 2 and "No such option: --nope" in result.output  # -v is known after a group command
    result = runner.invoke(app, ["generate", "--frames", "6", "--verbose"])
    assert result.exit_code == 2 and "4k+1" in result.output and "No such option" not in result.output


def test_a_piped_loading_run_writes_no_carriage_returns_or_escape_codes(tmp_path):
    """diffusers' and transformers' loading bars spilled `\\r` and cursor codes into a piped stderr."""
    import diffusers
    import transformers

    diffusers.utils.logging.enable_progress_bar()  # as in a fresh process (another test may have run --quiet)
    transformers.utils.logging.enable_progress_bar()
    result = runner.invoke(app, ["generate", "-o", str(tmp_path / "m.mp4"), "--frames", "5", "--steps", "1"])
    assert result.exit_code == 0, result.output
    assert "denoising (reasondiff)" in result.stderr  # our own bar still reports, once, without redrawing
    assert "\r" not in result.stderr and "\x1b" not in result.stderr, result.stderr[:300]


def test_the_python_api_does_not_advise_installing_torchvision():
    """The README says not to install torchvision; `load_pipeline()` printed transformers' advice to install it."""
    code = "from reasondiff.mini.pretrained import load_pipeline; load_pipeline()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "torchvision" not in done.stdout + done.stderr
