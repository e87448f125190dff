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


def script_app(help: str) -> typer.Typer:
    """The typer app of a `python -m reasondiff...` script (help from its module docstring): the same usage
    errors as the `reasondiff` command (exit 2), no shell-completion options, no tracebacks dressed as panels."""
    hide_flag_types()
    return typer.Typer(help=help, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


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


def hoist_flags(group, ctx, args: list[str], flags: tuple[str, ...]) -> list[str]:
    """`args` with the root's `flags` moved in front when they come after a command (`reasondiff generate -v`).

    Users type `--verbose` after the command, where click knows only the command's own options. The walk follows
    the command path (`eval score`), skips every option's value (`-p -v` keeps "-v" as the prompt) and stops at
    `--`; a command that defines one of the flags itself keeps it.
    """
    hoisted, rest, command, i = [], [], group, 0
    takes_value: dict[str, int] = {}
    own: set[str] = set()
    while i < len(args):
        token = args[i]
        i += 1
        if token == "--":
            return hoisted + rest + [token, *args[i:]]
        if token in flags and command is not group and token not in own:
            hoisted.append(token)
            continue
        rest.append(token)
        if token.startswith("-"):
            skip = takes_value.get(token, 0) if "=" not in token else 0
            rest += args[i:i + skip]
            i += skip
        elif hasattr(command, "get_command"):  # a group: this word names its command
            command = command.get_command(ctx, token)
            if command is None:  # unknown: click says so
                return hoisted + rest + args[i:]
            params = [p for p in command.params if getattr(p, "param_type_name", "") == "option"]
            own = {name for p in params for name in (*p.opts, *p.secondary_opts)}
            takes_value = {name: p.nargs for p in params if not p.is_flag and not p.count for name in p.opts}
    return hoisted + rest


def one_line_usage_errors(global_flags: tuple[str, ...] = ()):
    """The root command's group class (`typer.Typer(cls=one_line_usage_errors())`): click's usage errors (an unknown option, a value that is not a number, a
    missing required option) end like every other error, in one red line with exit code 2, instead of a usage
    banner and a boxed message. Help (`--help`, or no arguments) is printed as before. `global_flags` (the
    root's flags, e.g. `--verbose`) are also accepted after any command (`hoist_flags`)."""
    import sys

    from typer.core import TyperGroup

    # typer may vendor its own click: take the exception classes from the module its BadParameter lives in
    click_exceptions = sys.modules[typer.BadParameter.__module__]
    ClickException, NoArgsIsHelpError = click_exceptions.ClickException, click_exceptions.NoArgsIsHelpError

    class OneLineUsageErrors(TyperGroup):
        def parse_args(self, ctx, args):
            return super().parse_args(ctx, hoist_flags(self, ctx, list(args), global_flags) if global_flags else args)

        def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
            if not standalone_mode:
                return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            try:
                code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            except NoArgsIsHelpError as err:  # rich help is printed while the error is built; plain help is not
                if err.format_message().strip():
                    typer.echo(err.format_message(), color=err.ctx.color)
                sys.exit(EXIT_USAGE)
            except ClickException as err:
                where = getattr(err, "ctx", None)
                hint = f" (see: {where.command_path} --help)" if where is not None else ""
                typer.secho(f"error: {' '.join(err.format_message().split())}{hint}", err=True, fg=typer.colors.RED)
                sys.exit(err.exit_code)
            except typer.Abort:
                typer.secho("aborted", err=True, fg=typer.colors.YELLOW)
                sys.exit(EXIT_FAILED)
            if code == EXIT_INTERRUPTED:
                typer.secho("interrupted", err=True, fg=typer.colors.YELLOW)
            sys.exit(code if isinstance(code, int) else 0)

    return OneLineUsageErrors
