"""Rich console helpers: stdout for results, stderr for messages and progress.

Progress bars appear only on an interactive terminal; under a scheduler or when piped, long jobs
print periodic one-line summaries instead (see `interactive()`).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from .scheduler import under_scheduler

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def interactive() -> bool:
    """True on a terminal outside a batch job: the place for progress bars and prompts."""
    return sys.stderr.isatty() and not under_scheduler()


def print_json(obj: Any) -> None:
    """Machine output for `--json`: one JSON document on stdout, no styling."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Table:
    t = Table(title=title, show_lines=False)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*["" if v is None else str(v) for v in r])
    return t


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {message}", highlight=False)


def info(message: str) -> None:
    err.print(message, highlight=False)
