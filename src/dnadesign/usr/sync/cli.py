"""Placeholder; filled in by its owner."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add `diff`, `pull`, `push` and the `remotes` group to the `usr` app."""
