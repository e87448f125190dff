"""Backend spec strings -> backends: `NAME:TARGET`, e.g. `openai:gpt-4o`,
`openai:Qwen/Qwen2.5-VL-7B-Instruct@http://localhost:8000/v1`, `transformers:/models/Llama-3.2-11B-Vision-Instruct`.

`register_backend` lets other parts of ReasonDiff (the SynthWorld mini world) and users add their own names
without touching this module.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .backends.base import ChatBackend

ENV_VAR = "REASONDIFF_NARRATOR"
DEFAULT_SPEC = "openai:gpt-4o"

BackendFactory = Callable[..., ChatBackend]
_FACTORIES: dict[str, BackendFactory] = {}
_NUM_FRAMES: dict[str, int] = {}  # backend -> the frame count it scripts by default (its world's clip length)
DEFAULT_NUM_FRAMES = 81  # Wan2.1's


def register_backend(name: str, factory: BackendFactory, *, replace: bool = False,
                     num_frames: int | None = None) -> None:
    """Make `NAME:TARGET` specs call `factory(TARGET, **options)`; `num_frames`: its scripts' default length."""
    if not name or ":" in name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"backend names are short words without ':', got {name!r}")
    if name in _FACTORIES and not replace and _FACTORIES[name] is not factory:
        raise ValueError(f"a narrator backend named {name!r} is already registered (pass replace=True to override)")
    _FACTORIES[name] = factory
    if num_frames is not None:
        _NUM_FRAMES[name] = num_frames


def default_num_frames(spec: str) -> int:
    """How many frames `narrate` scripts with `spec` when not told: its backend's own length, else Wan2.1's."""
    return _NUM_FRAMES.get(parse_spec(spec)[0], DEFAULT_NUM_FRAMES)


def available_backends() -> list[str]:
    return sorted(_FACTORIES)


def default_spec() -> str:
    return os.environ.get(ENV_VAR) or DEFAULT_SPEC


def parse_spec(spec: str) -> tuple[str, str]:
    name, sep, target = spec.partition(":")
    if not sep or not name:
        raise ValueError(f"narrator spec {spec!r} should look like NAME:TARGET, e.g. 'openai:gpt-4o'")
    return name.strip().lower(), target.strip()


def create_backend(spec: str | None = None, **options: Any) -> ChatBackend:
    name, target = parse_spec(spec or default_spec())
    if name not in _FACTORIES:
        raise ValueError(f"unknown narrator backend {name!r} in {spec!r}; registered: {', '.join(available_backends())}")
    # an option left at None (e.g. no --timeout given) means "the backend's default"
    return _FACTORIES[name](target, **{key: value for key, value in options.items() if value is not None})


def _openai(target: str, **options: Any) -> ChatBackend:
    from .backends.openai_backend import from_spec

    return from_spec(target, **options)


def _transformers(target: str, timeout: float | None = None, **options: Any) -> ChatBackend:
    """A local model answers without a network request: a timeout is moot."""
    from .backends.transformers_backend import from_spec

    return from_spec(target, **options)


register_backend("openai", _openai)
register_backend("transformers", _transformers)
