"""Placeholder; filled in by its owner."""

from __future__ import annotations

import typer


def register(app: typer.Typer, inspect_app: typer.Typer) -> None:
    """Add this module's commands to the `dense` app."""
