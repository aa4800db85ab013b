"""A progress bar for `infer run` on stderr: drawn on an interactive terminal only, quiet otherwise.

Batch jobs and pipes get nothing per batch (the `.events.log` carries progress for notify); the
CLI prints one summary line at the end either way.
"""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..core.console import err, interactive


class ScoreProgress:
    """Context manager: `advance(rows)` after each batch."""

    def __init__(self, label: str, total: int, enabled: bool | None = None):
        self.label = label
        self.total = total
        self.enabled = interactive() if enabled is None else enabled
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ScoreProgress:
        if self.enabled and self.total > 0:
            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.percentage:>5.1f}%"), TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=err, transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total)
        return self

    def advance(self, rows: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, rows)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
