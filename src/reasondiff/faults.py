"""Kill points: where a long job may be killed, so tests can kill it there for real and check the resume.

With `REASONDIFF_KILL_AFTER=n` in the environment, the n-th `checkpoint()` a process reaches sends it SIGKILL
(no cleanup, no `finally`: what a power cut or the OOM killer does). Without it, a checkpoint costs one
environment lookup. Jobs call `checkpoint()` right after each durable step (a shard renamed into place, rows
appended, an output renamed), which is where a real kill is most likely to leave something half-done.
"""

from __future__ import annotations

import os
import signal

KILL_ENV = "REASONDIFF_KILL_AFTER"
_reached = 0


def checkpoint() -> None:
    """A point where the process may be killed; the n-th one kills it when REASONDIFF_KILL_AFTER=n (tests)."""
    global _reached
    limit = os.environ.get(KILL_ENV)
    if not limit:
        return
    _reached += 1
    if _reached >= int(limit):
        os.kill(os.getpid(), signal.SIGKILL)
