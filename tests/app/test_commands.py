"""`reasondiff doctor` and `reasondiff demo` as the CLI runs them (registered here the way cli.py registers them)."""

import json
import sys
from importlib import metadata

import diffusers
import pytest
import torch
import typer
from typer.testing import CliRunner

from reasondiff import __version__
from reasondiff import doctor as doctor_module
from reasondiff.app import demo
from reasondiff.doctor import doctor
from reasondiff.narrator import available_backends

cli = typer.Typer(add_completion=False)
cli.callback()(lambda: None)  # keep subcommand names, as in the real CLI
cli.command()(doctor)
cli.command()(demo)
runner = CliRunner()


def test_doctor_reports_versions_device_backends_and_weights(monkeypatch):
    monkeypatch.delenv("REASONDIFF_NARRATOR", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-DO-NOT-PRINT-ME")
    result = runner.invoke(cli, ["doctor"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"version {__version__}" in " ".join(out.split())
    assert "diffusers" in out and diffusers.__version__ in out and torch.__version__ in out
    backends = next(line for line in out.splitlines() if line.strip().startswith("backends"))
    assert backends.split(None, 1)[1].strip() == ", ".join(available_backends())
    assert "openai" in backends and "transformers" in backends
    assert "openai:gpt-4o (built-in default)" in out
    assert "OPENAI_API_KEY" in out and "DO-NOT-PRINT-ME" not in out
    line = next(l for l in out.splitlines() if "OPENAI_API_KEY" in l)
    assert line.split()[-1] == "set"
    expected_device = "cuda" if torch.cuda.is_available() else "cpu"
    assert f"default {expected_device}" in " ".join(out.split())
    assert "ReasonDiff-mini, the default --model" in " ".join(out.split())
    assert out.rstrip().endswith("0 problem(s)")


def test_doctor_finds_cached_weights_and_says_how_to_configure_a_narrator(tmp_path, monkeypatch):
    repo = tmp_path / "models--Wan-AI--Wan2.1-I2V-14B-480P-Diffusers"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "model_index.json").write_text("{}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("REASONDIFF_NARRATOR", raising=False)
    result = runner.invoke(cli, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    checks = {(c["section"], c["name"]): c for c in json.loads(result.output)}
    assert checks[("weights", "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers")]["value"].startswith("in the local cache")
    assert checks[("weights", "Wan-AI/Wan2.1-I2V-14B-720P-Diffusers")]["status"] == "note"
    ready = checks[("narrator", "ready")]
    assert ready["status"] == "note" and "OPENAI_API_KEY" in ready["hint"] and "transformers:PATH" in ready["hint"]
    assert checks[("keys", "OPENAI_API_KEY")]["value"] == "not set"
    assert checks[("packages", "torch")]["value"] == metadata.version("torch")


def test_doctor_exits_1_and_says_how_to_fix_a_missing_requirement(monkeypatch):
    real = metadata.version

    def version(dist):
        if dist == "peft":
            raise metadata.PackageNotFoundError(dist)
        return real(dist)

    monkeypatch.setattr(doctor_module.metadata, "version", version)
    result = runner.invoke(cli, ["doctor"])
    assert result.exit_code == 1
    assert "! peft" in result.output and "pip install peft" in result.output
    assert result.output.rstrip().endswith("1 problem(s): peft")


def test_help_texts_explain_with_examples():
    for command, words in [("doctor", ["--json", "reasondiff doctor", "exit code is 1"]),
                           ("demo", ["--narrator", "--port", "--max-upload-mb", "reasondiff demo --port 8080",
                                     "pip install 'reasondiff[demo]'"])]:
        result = runner.invoke(cli, [command, "--help"])
        assert result.exit_code == 0
        for word in words:
            assert word in result.output, (command, word)


@pytest.mark.parametrize("args, message", [
    (["--frames", "18"], "4k+1"),
    (["--height", "100"], "multiples of 16"),
    (["--max-upload-mb", "0"], "--max-upload-mb must be positive"),
    (["--port", "70000"], "between 0 and 65535"),
    (["--narrator", "nonsense"], "should look like NAME:TARGET"),
])
def test_demo_rejects_bad_options_with_exit_code_2(args, message):
    result = runner.invoke(cli, ["demo", *args])
    assert result.exit_code == 2 and message in result.output


def test_demo_without_gradio_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "reasondiff.app.studio", None)  # import fails as if gradio were missing
    result = runner.invoke(cli, ["demo"])
    assert result.exit_code == 1 and "pip install 'reasondiff[demo]'" in result.output


def test_demo_builds_the_studio_and_serves_it_locally(monkeypatch, tmp_path):
    pytest.importorskip("gradio")
    from reasondiff.app import studio

    served = {}

    def fake_launch(blocks, host, port, *, max_upload_mb, **kw):
        served.update(blocks=blocks, host=host, port=port, max_upload_mb=max_upload_mb)

    monkeypatch.setattr(studio, "launch", fake_launch)
    result = runner.invoke(cli, ["demo", "--model", "tiny", "--port", "0", "--max-upload-mb", "3", "--output-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "RANDOM weights" in result.output and "model tiny on cpu" in result.output
    assert served["host"] == "127.0.0.1" and served["port"] is None and served["max_upload_mb"] == 3
    app = served["blocks"].studio
    assert (app.height, app.width, app.max_upload_mb, app.output_dir) == (64, 64, 3, tmp_path)
    assert app.narrator is None and app.pipeline.alignformer is not None


def test_demo_warns_when_serving_beyond_this_machine(monkeypatch):
    pytest.importorskip("gradio")
    from reasondiff.app import studio

    monkeypatch.setattr(studio, "launch", lambda blocks, host, port, **kw: None)
    result = runner.invoke(cli, ["demo", "--model", "tiny", "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert "warning: serving on 0.0.0.0 makes the studio reachable from your network" in result.output
