"""Kill a job for real at its n-th kill point (`reasondiff.faults.checkpoint()`): SIGKILL, no cleanup, no
`finally`, what a power cut or the OOM killer does. Used in forked children and in subprocesses
(`python -c KILLED_COMMAND ...`)."""

import os
import signal

from reasondiff import faults


def kill_at(n: int) -> None:
    """From now on, this process SIGKILLs itself at its `n`-th kill point."""
    reached = 0

    def hook():
        nonlocal reached
        reached += 1
        if reached >= n:
            os.kill(os.getpid(), signal.SIGKILL)

    faults.HOOKS[:] = [hook]


def killed_command(module: str, n: int) -> list[str]:
    """`python -m module` (its arguments follow), killed at its `n`-th kill point; needs tests/ on PYTHONPATH."""
    code = f"import runpy, killing; killing.kill_at({n}); runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    return ["-c", code]
