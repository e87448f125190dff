"""The finished CLI: help with examples, --version, --quiet/--verbose, one exit-code convention, registered commands."""

import imageio.v3 as iio
import pytest
from typer.testing import CliRunner

from reasondiff import __version__
from reasondiff.cli import app
from reasondiff.example import bundled_example
from reasondiff.narrator import NarratorConnectionError, register_backend

runner = CliRunner()
FAST = ["--model", "tiny", "--steps", "2", "--frames", "17"]


def test_root_help_lists_commands_examples_and_exit_codes():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for word in ("generate", "narrate", "demo", "doctor", "--quiet", "--version", "reasondiff doctor", "Exit codes"):
        assert word in result.output, word
    assert runner.invoke(app, ["--version"]).output.strip() == f"reasondiff {__version__}"


@pytest.mark.parametrize("command", ["generate", "narrate", "demo", "doctor", "train"])
def test_every_command_explains_itself_with_examples(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Examples" in result.output and f"reasondiff {command}" in result.output


def test_quiet_prints_nothing_but_still_writes(tmp_path):
    out = tmp_path / "q.mp4"
    result = runner.invoke(app, ["--quiet", "generate", "-o", str(out), *FAST])
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and "denoising" not in result.stderr
    assert iio.imread(out).shape[0] == 17
    loud = runner.invoke(app, ["generate", "-o", str(tmp_path / "l.mp4"), *FAST])
    assert "wrote" in loud.stdout and "denoising (reasondiff)" in loud.stderr and "2/2" in loud.stderr


def test_quiet_and_verbose_together_is_a_usage_error():
    result = runner.invoke(app, ["--quiet", "--verbose", "doctor"])
    assert result.exit_code == 2 and "contradict" in result.output


@pytest.mark.parametrize("args, message", [
    (["--frames", "18"], "4k+1"),
    (["--image", "/no/such.png"], "image file not found"),
    (["--mode", "sideways"], "unknown mode"),
    (["--narrator", "nonsense"], "NAME:TARGET"),
    (["--bogus-option"], "No such option"),
])
def test_bad_input_exits_2(args, message, tmp_path):
    result = runner.invoke(app, ["generate", "-o", str(tmp_path / "x.mp4"), *args])
    assert result.exit_code == 2 and message in result.output


def test_a_narrator_that_fails_while_running_exits_1(tmp_path, monkeypatch):
    class Unreachable:
        cache_id = "down@http://127.0.0.1:9"

        def chat(self, conversation, *, json_schema=None):
            raise NarratorConnectionError("cannot connect to http://127.0.0.1:9")

        def chat_batch(self, conversations, *, json_schema=None):
            return [self.chat(c) for c in conversations]

    monkeypatch.setenv("REASONDIFF_CACHE", str(tmp_path / "cache"))
    register_backend("unreachabletest", lambda target, **kw: Unreachable(), replace=True)
    result = runner.invoke(app, ["generate", "-i", str(bundled_example().image_path), "-p", "a cat plays",
                                 "--narrator", "unreachabletest:x", "-o", str(tmp_path / "x.mp4"), *FAST])
    assert result.exit_code == 1 and "cannot connect" in result.output
    assert not (tmp_path / "x.mp4").exists()


def test_doctor_is_registered():
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code in (0, 1) and "[narrator]" in result.output and "problem(s)" in result.output
