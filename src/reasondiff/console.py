"""What every `reasondiff` command does when it stops: one red line on stderr and a documented exit code.

Exit codes, the same for every command: 0 success; 1 the command ran and failed (a narrator that cannot
be reached or gives no usable script, a missing optional extra, `doctor` found a problem); 2 the command
cannot run with what it was given (a bad option, file, model path or narrator spec; typer's own usage
errors are 2 too); 130 interrupted with Ctrl-C.
"""

from __future__ import annotations

import typer

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def fail(message: str, code: int = EXIT_USAGE) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)
