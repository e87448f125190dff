"""Settings of ThinkDiff-mini's trainers from `configs/thinkdiff_mini_*.yaml`, overridden by command-line options."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path


def settings(function: Callable, config: Path | None, **given) -> dict:
    """The keyword arguments for `function`: the YAML file's, then every option given (not None) on top.

    Unknown keys fail with the file's name, so a typo in a config cannot silently train with a default. Old
    names (`lr`, `save_every`; settings_names) read as the new ones, in the file and on the command line."""
    import yaml

    from ...settings_names import renamed_options, renamed_settings

    values = yaml.safe_load(Path(config).read_text()) or {} if config is not None else {}
    values = renamed_settings(values, str(config))
    known = set(inspect.signature(function).parameters)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{config}: unknown settings {unknown}; known: {sorted(known)}")
    return {**values, **renamed_options(given)}


def train_from_command_line(function: Callable, out: Path, config: Path | None, **given) -> None:
    """What each trainer's command does: its settings (a bad config ends in one line), the run, its result as JSON."""
    import json

    try:
        kwargs = settings(function, config, **given)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    print(json.dumps(function(out, **kwargs)))
