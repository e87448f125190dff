"""Models by name come from a registry that plugins fill: the core names no model it does not own, ReasonDiff-mini
arrives through the `reasondiff.plugins` entry point, and the library runs without it."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import reasondiff
from reasondiff.cli import app
from reasondiff.pipelines.registry import ModelSpec, backend_of, default_model, model_spec, registered_models

SRC = Path(reasondiff.__file__).parent
runner = CliRunner()


def test_mini_is_registered_by_its_plugin_with_its_own_defaults():
    from importlib.metadata import entry_points

    assert [p.value for p in entry_points(group="reasondiff.plugins") if p.name == "mini"] == ["reasondiff.mini:register"]
    spec = model_spec("mini")
    assert (spec.frames, spec.height, spec.width, spec.steps, spec.guidance) == (17, 64, 64, 10, 1.0)
    assert spec.narrator == "synthworld:" and spec.default and default_model() == "mini"
    assert spec.frames_warning(17) is None and "trained on 17-frame" in spec.frames_warning(33)
    assert spec.size_limits().max_frames >= 17 and {"tiny", "mini"} <= {s.name for s in registered_models()}


def test_a_hub_id_gets_wan_defaults_and_a_folder_its_backend(tmp_path):
    hub = model_spec("Wan-AI/Wan2.1-I2V-14B-480P-Diffusers")
    assert (hub.frames, hub.height, hub.width, hub.steps, hub.guidance, hub.narrator) == (81, 480, 832, 50, 5.0, None)
    assert hub.source() == "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers" and hub.size_limits() is None
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "WanImageToVideoPipeline"}))
    assert backend_of(tmp_path) == "reasondiff" and model_spec(str(tmp_path)).backend == "reasondiff"


@pytest.mark.parametrize("index, message", [
    ({"_class_name": "StableDiffusionPipeline"}, "holds a StableDiffusionPipeline, which ReasonDiff cannot render"),
    (None, "is not a diffusers model folder"),
])
def test_a_folder_of_an_unsupported_class_is_refused_in_one_line_before_loading(tmp_path, index, message):
    if index is not None:
        (tmp_path / "model_index.json").write_text(json.dumps(index))
    result = runner.invoke(app, ["generate", "--model", str(tmp_path), "-o", str(tmp_path / "x.mp4")])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_a_registered_model_is_what_the_commands_use(tmp_path):
    from reasondiff.pipelines.registry import _SPECS, TINY, register_model

    register_model(ModelSpec(name="tiny-9", build=TINY.build, limits=TINY.limits, frames=9, height=32, width=32,
                             steps=1, notice="NOTICE: nine frames"))
    try:
        out = tmp_path / "nine.mp4"
        result = runner.invoke(app, ["--quiet", "generate", "--model", "tiny-9", "-o", str(out)])
        assert result.exit_code == 0, result.output
        script = json.loads(out.with_suffix(".narration.json").read_text())
        assert len(script["descriptions"]) == 9 and "NOTICE: nine frames" in result.output
    finally:
        _SPECS.pop("tiny-9")


HIDE_MINI = """
import importlib.abc, sys
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "reasondiff.mini" or name.startswith("reasondiff.mini."):
            raise ImportError("hidden for this test")
sys.meta_path.insert(0, Hide())
from reasondiff.cli import main
sys.argv = ["reasondiff", *sys.argv[1:]]
main()
"""


def test_without_the_mini_plugin_the_library_runs_on_its_own_models(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-c", HIDE_MINI, *args], capture_output=True, text=True, timeout=300,
                              cwd=tmp_path)

    help_ = run("--help")
    assert help_.returncode == 0 and "generate" in help_.stdout
    assert "plugin 'mini'" in help_.stderr  # a warning, not a traceback
    out = tmp_path / "t.mp4"
    made = run("--quiet", "generate", "--model", "tiny", "--steps", "1", "--frames", "5", "-o", str(out))
    assert made.returncode == 0, made.stderr
    assert out.is_file()
    mini = run("generate", "--model", "mini", "-o", str(out))
    assert mini.returncode == 2 and "Traceback" not in mini.stderr


# The modules that turn a --model name into a pipeline and a command line: none of them may compare against, or
# default to, a model, world or narrator that a plugin registers.
CORE = [*sorted((SRC / "pipelines").glob("*.py")), *sorted((SRC / "narrator").rglob("*.py")), SRC / "cli.py",
        *sorted((SRC / "app").glob("*.py")), SRC / "evaluation" / "cli.py", SRC / "doctor.py", SRC / "console.py"]
PLUGIN_NAMES = {"mini", "synthworld", "synthworld:"}


def test_the_core_names_no_plugin_model_or_narrator():
    found = []
    for path in CORE:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in PLUGIN_NAMES:
                found.append(f"{path.relative_to(SRC)}:{node.lineno} {node.value!r}")
            if isinstance(node, ast.Compare) and any(isinstance(c, ast.Constant) and c.value == "tiny"
                                                     for c in [node.left, *node.comparators]):
                found.append(f"{path.relative_to(SRC)}:{node.lineno} compares with 'tiny'")
    assert found == []
