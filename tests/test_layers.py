"""The floor plan: every subpackage imports only the layers below it, and each imports on its own.

The layers (docs/architecture.md draws them), lowest first. A module may import from a lower layer only, so
the graph has no cycles and nothing below `mini` reaches up into it (the world plugs in through the
registries). A new top-level module or subpackage must be given a layer here.
"""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import reasondiff

SRC = Path(reasondiff.__file__).parent
LAYERS = [
    {"_lazy", "faults", "frames", "device", "console", "settings_names", "plugins"},  # no ReasonDiff imports
    {"media", "conditioning", "models"},  # images and videos on disk; tensors in, tensors out
    {"narrator"},  # frame-wise scripts (reads images through media)
    {"example", "pipelines", "data"},  # the bundled example; the diffusers pipeline; training data and its cache
    {"training", "evaluation"},  # trainers over data and the pipeline; metrics and benchmark runs
    {"thinkdiff"},  # ThinkDiff: VLM -> aligner -> diffusion decoders
    {"mini", "app"},  # the offline world (plugs into the registries, ThinkDiff-mini included), the studio
    {"doctor"},  # `reasondiff doctor`: reports on everything below, the shipped mini model included
    {"cli"},  # the `reasondiff` command
    {"__main__"},
]
LAYER = {name: level for level, names in enumerate(LAYERS) for name in names}
PLUGIN = ("__init__", "plugins")  # `import reasondiff` loads the entry-point plugins (mini), which register below


def _unit(path: Path) -> str:
    rel = path.relative_to(SRC).parts
    return rel[0] if len(rel) > 1 else rel[0].removesuffix(".py")


def _imported_units(path: Path) -> set[str]:
    """The top-level ReasonDiff modules/subpackages `path` imports, at any depth inside the file."""
    depth = len(path.relative_to(SRC).parts)  # a relative import of this level names a top-level unit
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == depth and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == depth:  # `from . import x`: a module, or a name of the package root (__version__)
                found.update(a.name if (SRC / a.name).is_dir() or (SRC / f"{a.name}.py").is_file() else "__init__"
                             for a in node.names)
            elif node.level == 0 and node.module and node.module.startswith("reasondiff."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("reasondiff."))
    return found


def _edges() -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        unit = _unit(path)
        for target in _imported_units(path) - {unit, "__init__"}:  # the root (__version__) is always loaded
            edges.setdefault((unit, target), []).append(str(path.relative_to(SRC)))
    return edges


def test_every_unit_has_a_layer():
    units = {_unit(path) for path in SRC.rglob("*.py")} - {"__init__"}
    assert units - set(LAYER) == set(), "give the new module a layer in LAYERS"


def test_imports_only_go_down_so_there_are_no_cycles():
    upward = [f"{a} -> {b} ({', '.join(files)})" for (a, b), files in _edges().items()
              if (a, b) != PLUGIN and LAYER[b] >= LAYER.get(a, len(LAYERS))]
    assert upward == []


def test_nothing_below_mini_imports_it():
    below = {name for name, level in LAYER.items() if level < LAYER["mini"]}
    assert [(a, files) for (a, b), files in _edges().items() if b == "mini" and a in below] == []


def test_the_checker_sees_relative_and_absolute_imports(tmp_path):
    """The scan is what the other tests stand on: it must see both spellings, at module and function level."""
    edges = _edges()
    assert ("data", "conditioning") in edges  # `from ..conditioning import ...` in data/cache.py
    assert ("thinkdiff", "models") in edges  # `from reasondiff.models import tiny_wan` in thinkdiff/tiny.py
    assert ("cli", "app") in edges  # imported inside a function


SUBPACKAGES = sorted(name for _, name, is_package in pkgutil.iter_modules([str(SRC)]) if is_package)


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_each_subpackage_imports_in_a_fresh_interpreter(package):
    """All of a subpackage's modules, imported first thing in a new process: an import cycle that only some
    import orders survive fails here. Modules that need a missing optional extra are skipped."""
    code = f"""
import importlib, pkgutil, sys
import reasondiff.{package} as package
for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    try:
        importlib.import_module(info.name)
    except ModuleNotFoundError as err:
        if err.name.startswith("reasondiff"):
            raise
        print("skipped", info.name, "needs", err.name)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
