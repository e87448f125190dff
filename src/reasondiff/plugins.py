"""Packages that plug into ReasonDiff's registries (models, narrator backends, metrics, ThinkDiff systems).

A plugin lists a function under the `reasondiff.plugins` entry-point group; `import reasondiff` calls each
once. ReasonDiff-mini is one (`reasondiff.mini:register`), so the core never imports the world it ships: a
broken or missing plugin costs its own names, with a warning, not the library.
"""

from __future__ import annotations

import logging
from importlib import import_module
from importlib.metadata import entry_points

GROUP = "reasondiff.plugins"
log = logging.getLogger(__name__)
_LOADED: dict[str, str | None] = {}  # plugin name -> None when registered, else why it failed
# (command group, command name, "module:function"): commands a plugin adds to `reasondiff eval`, `thinkdiff`, ...
COMMANDS: list[tuple[str, str, str]] = []


def register_command(group: str, name: str, target: str) -> None:
    """Add `reasondiff GROUP NAME`, the typer command function at `target` ("module:function", imported only when
    the command line is built, so registering costs no import)."""
    COMMANDS.append((group, name, target))


def command_function(target: str):
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)


def load_plugins() -> dict[str, str | None]:
    """Call every plugin's register function once; returns what happened to each (for `reasondiff doctor`)."""
    for point in entry_points(group=GROUP):
        if point.name in _LOADED:
            continue
        try:
            point.load()()
            _LOADED[point.name] = None
        except Exception as err:  # noqa: BLE001 (any plugin fault: its names are missing, the library runs)
            _LOADED[point.name] = f"{type(err).__name__}: {err}"
            log.warning("reasondiff plugin %r (%s) did not load: %s", point.name, point.value, _LOADED[point.name])
    return dict(_LOADED)
