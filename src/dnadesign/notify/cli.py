"""Placeholder; filled in by its owner."""

from __future__ import annotations

import typer

from ..core.cli import run_app

app = typer.Typer(name="notify", no_args_is_help=True, add_completion=False)


def main() -> None:
    run_app(app, "notify")
