"""Run a Typer app so that every failure is one line on stderr with the right exit code.

Handled errors (`DnadesignError`) and command-line misuse (unknown option, missing argument, bad
value) look the same: `tool: error: <what>. <what to do>.` Help is plain text in the click style
(`--root PATH`, flags without a value placeholder, option names never cut), which is also what
keeps `--help` fast: the rich help renderer is never imported.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any

import typer
from typer import _click as click

from .errors import DnadesignError, ExitCode
from .secrets import scrub_urls

TOOLS = ("usr", "dense", "notify", "infer")


def run_app(app: typer.Typer, prog_name: str) -> None:
    """Entry point wrapper shared by every console script of the toolkit."""
    command = build_command(app)
    try:
        rv = command.main(prog_name=prog_name, standalone_mode=False)
    except DnadesignError as exc:  # raised outside a command (rare: callbacks)
        fail(exc)
    except click.exceptions.NoArgsIsHelpError as exc:
        sys.stderr.write(exc.format_message().rstrip("\n") + "\n")
        raise SystemExit(int(ExitCode.USAGE)) from None
    except click.exceptions.ClickException as exc:
        usage_fail(exc)
    except typer.Abort:
        sys.stderr.write(f"{prog()}: aborted\n")
        raise SystemExit(int(ExitCode.FAILURE)) from None
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog()}: interrupted\n")
        raise SystemExit(130) from None
    # Non-standalone click returns the exit code of `typer.Exit(n)` / `ctx.exit(n)`; commands return None.
    raise SystemExit(rv if isinstance(rv, int) and not isinstance(rv, bool) else int(ExitCode.OK))


def build_command(app: typer.Typer) -> click.Command:
    """The click command tree of a Typer app, with the toolkit's plain help style applied."""
    command = typer.main.get_command(app)
    plain_help(command)
    return command


def usage_message(exc: click.exceptions.ClickException) -> str:
    """One line for a command-line mistake: the problem, then where to read the usage."""
    text = " ".join(exc.format_message().split())
    text = text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else prog()
    end = "" if text.endswith(("?", "!")) else "."
    return f"{text.rstrip('.')}{end} Run `{where} --help` for usage."


def usage_fail(exc: click.exceptions.ClickException) -> None:
    """Print a command-line mistake as one line and exit 2 (1 for a non-usage click failure)."""
    sys.stderr.write(f"{prog()}: error: {scrub_urls(usage_message(exc))}\n")
    sys.stderr.flush()
    code = int(ExitCode.USAGE) if isinstance(exc, click.exceptions.UsageError) else int(exc.exit_code or ExitCode.FAILURE)
    raise SystemExit(code)


def fail(exc: DnadesignError) -> None:
    """Print `error: <message> <hint>` to stderr and exit with the error's code."""
    sys.stderr.write(f"{prog()}: error: {scrub_urls(exc.render())}\n")
    sys.stderr.flush()
    raise SystemExit(int(exc.exit_code))


def prog() -> str:
    """The tool name for error lines: the running console script, else `dnadesign`."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name in TOOLS else "dnadesign"


def handled(func):
    """Decorator for Typer commands: convert DnadesignError into a one-line error and exit code."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except DnadesignError as exc:
            fail(exc)
        except KeyboardInterrupt:
            sys.stderr.write(f"{prog()}: interrupted\n")
            raise SystemExit(130) from None
        except BrokenPipeError:
            raise SystemExit(int(ExitCode.OK)) from None

    return wrapper


# -- help style ------------------------------------------------------------------------------------

def walk(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    """Every command of a click tree with its path of names (the root's path is empty)."""
    found = [(path, command)]
    for name, sub in sorted((getattr(command, "commands", None) or {}).items()):
        found.extend(walk(sub, (*path, name)))
    return found


def plain_help(command: click.Command) -> None:
    """Use click's plain help for the whole tree, with click-style value placeholders.

    Typer's rich help shows a `<bool>` placeholder after flags (which take no value) and cuts
    long option names in its table at 80 columns; its plain formatter does neither. Values get
    a placeholder named after their type (`TEXT`, `PATH`, `INTEGER`, ...), arguments their name.
    """
    for _, cmd in walk(command):
        if hasattr(cmd, "rich_markup_mode"):
            cmd.rich_markup_mode = None
        for param in cmd.params:
            _placeholder(param)
            _lazy(param)
        setattr(cmd, "get_help_option", functools.partial(_help_option, cmd.get_help_option))  # noqa: B010


def _lazy(param: Any) -> Any:
    if param is not None and hasattr(param, "_runtime_param") and param._runtime_param is None:
        param._runtime_param = _LazyCoercion()
    return param


def _help_option(original: Any, ctx: Any) -> Any:
    """The --help option click makes per command, with lazy coercion too (it is processed on every call)."""
    return _lazy(original(ctx))


class _LazyCoercion:
    """Typer's value coercion, built only when a value is actually given.

    Typer builds a pydantic TypeAdapter for every parameter it processes, even an option that
    was not given (its value is None), which imports pydantic (~0.15 s) just to print
    `usr head --help`. A missing value needs no coercion: it stays None (or () when repeatable).
    """

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:
            return () if (param.multiple or param.nargs == -1) else None
        from typer._coercion import build_runtime_param

        param._runtime_param = build_runtime_param(param.type_descriptor)
        return param._runtime_param.coerce(value, param=param, ctx=ctx)


def _placeholder(param: click.Parameter) -> None:
    if param.param_type_name == "argument":
        param.metavar = param.metavar or (param.name or "value").upper()
        # Per-instance overrides of typer's argument rendering: the name says it all, no `<str>`.
        setattr(param, "display_type_rich", _no_type)  # noqa: B010
        setattr(param, "_usage_display_name", functools.partial(_usage_name, param))  # noqa: B010
        return
    if param.metavar is not None or getattr(param, "is_flag", False) or getattr(param, "count", False):
        return
    label = _type_label(param)
    if label:
        param.metavar = label


def _no_type(ctx: Any = None) -> None:
    return None


def _usage_name(param: click.Parameter) -> str:
    """`NAME` for a required argument, `[NAME]` for an optional one (click's convention)."""
    name = param.metavar or (param.name or "value").upper()
    name = name if param.required else f"[{name}]"
    return name + ("..." if param.nargs != 1 else "")


def _type_label(param: click.Parameter) -> str | None:
    desc = getattr(param, "type_descriptor", None)
    if desc is None:
        return None
    try:
        if desc.is_choice:
            return None  # typer shows the choices (`auto|bar|lines`)
        annotation = desc.annotation
        if desc.is_list:
            args = getattr(annotation, "__args__", ()) or ()
            annotation = args[0] if args else str
        if desc.is_path:
            return "PATH"
    except AttributeError:
        return None
    return {str: "TEXT", int: "INTEGER", float: "NUMBER", bool: "BOOLEAN"}.get(annotation, "VALUE")
