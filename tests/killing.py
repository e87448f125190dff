"""Kill a job for real at its n-th kill point (`reasondiff.faults.checkpoint()`): SIGKILL, no cleanup, no
`finally`, what a power cut or the OOM killer does. Used in spawned children (`run_killed`) and in subprocesses
(`python -c KILLED_COMMAND ...`).

Children are spawned, never forked: a forked child inherits the thread pools its parent's earlier work started
(PyAV's scaler, GNU OpenMP) without their threads and can wait on them forever; that hung the suite. A spawned
child re-imports its job's module, so a job must be picklable: a module-level function, or a
`functools.partial` of one."""

import multiprocessing
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


def _die_at(job, n: int) -> None:
    kill_at(n)
    job()
    os._exit(0)  # reached only when the job finished before its kill point


def run_killed(job, n: int, timeout: float = 300) -> None:
    """Run `job()` in a spawned child that SIGKILLs itself at its `n`-th kill point; it must die there.
    A child still running after `timeout` seconds is killed and the call fails (a hang fails, never blocks)."""
    child = multiprocessing.get_context("spawn").Process(target=_die_at, args=(job, n))
    child.start()
    child.join(timeout)
    if child.is_alive():
        child.kill()
        child.join()
        raise AssertionError(f"the job did not reach kill point {n} within {timeout} s")
    assert child.exitcode == -signal.SIGKILL, f"the job was not killed at kill point {n} (exit code {child.exitcode})"


def spawn_and_kill_when(job, ready, timeout: float = 300) -> None:
    """Run `job()` in a spawned child and SIGKILL it as soon as `ready()` is true (a kill at a moment, for jobs
    without kill points); the child must still be running then."""
    import time

    child = multiprocessing.get_context("spawn").Process(target=job)
    child.start()
    deadline = time.monotonic() + timeout
    while not ready() and child.is_alive() and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert child.exitcode == -signal.SIGKILL, "the run ended before it could be killed"


def killed_command(module: str, n: int) -> list[str]:
    """`python -m module` (its arguments follow), killed at its `n`-th kill point; needs tests/ on PYTHONPATH."""
    code = f"import runpy, killing; killing.kill_at({n}); runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    return ["-c", code]
