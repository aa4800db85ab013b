"""`usr`: thin Typer CLI over the USR store."""

from __future__ import annotations

import typer

from ..core.cli import run_app
from .sync import cli as sync_cli

app = typer.Typer(name="usr", help="Universal Sequence Records: Parquet datasets with an append-only event log.",
                  no_args_is_help=True, add_completion=False)

sync_cli.register(app)


def main() -> None:
    run_app(app, "usr")
