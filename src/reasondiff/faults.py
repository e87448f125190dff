"""Kill points: where a long job has just made a step durable (a shard renamed into place, rows appended, an
output renamed), which is where a real kill is most likely to leave something half-done.

`checkpoint()` calls each function in `HOOKS`; there are none in normal use, so a checkpoint costs an empty loop.
The tests install one that SIGKILLs the process at the n-th point (tests/killing.py) and check the resume.
"""

from __future__ import annotations

from collections.abc import Callable

HOOKS: list[Callable[[], None]] = []


def checkpoint() -> None:
    """A point where the job may be killed without losing what it has written so far."""
    for hook in HOOKS:
        hook()
