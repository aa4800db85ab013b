"""Run a Typer app so that handled errors become one line on stderr and the right exit code."""

from __future__ import annotations

import sys

import typer

from .errors import DnadesignError, ExitCode
from .secrets import scrub_urls

TOOLS = ("usr", "dense", "notify", "infer")


def run_app(app: typer.Typer, prog_name: str) -> None:
    """Entry point wrapper shared by `usr`, `dense`, `notify` and `infer`."""
    try:
        app(prog_name=prog_name, standalone_mode=True)
    except DnadesignError as exc:  # raised outside a command (rare: callbacks)
        fail(exc)


def fail(exc: DnadesignError) -> None:
    """Print `error: <message> <hint>` to stderr and exit with the error's code."""
    sys.stderr.write(f"{prog()}: error: {scrub_urls(exc.render())}\n")
    sys.stderr.flush()
    raise SystemExit(int(exc.exit_code))


def prog() -> str:
    """The tool name for error lines: the running console script, else `dnadesign`."""
    import os

    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name in TOOLS else "dnadesign"


def handled(func):
    """Decorator for Typer commands: convert DnadesignError into a one-line error and exit code."""
    import functools

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
