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


def hide_flag_types() -> None:
    """Render flags in help as `--quiet`, not `--quiet <bool>`.

    typer 0.29's rich help prints a type for every option, flags included (its plain help skips them), which
    reads as if `--version` took a value. A flag takes none, so it gets no type column; other options keep theirs.
    """
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "hides_flags", False):
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag or self.count else shown(self, ctx)

    display_type_rich.hides_flags = True
    TyperOption.display_type_rich = display_type_rich
