"""Progress reporting for `dense run`.

- `bar`: a rich progress bar per plan on stderr (interactive terminals only).
- `lines`: one summary line on stderr every `summary_interval_s` (batch jobs, pipes).
- `off`: nothing until the final summary.
`auto` picks `bar` on an interactive terminal outside a scheduler, else `lines`.
"""

from __future__ import annotations

import sys
import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from ..core.console import err, interactive
from .state import RunState


def resolve_mode(requested: str | None) -> str:
    mode = (requested or "auto").lower()
    if mode == "auto":
        return "bar" if interactive() else "lines"
    if mode == "bar" and not interactive():
        return "lines"  # never draw bars into a batch log
    return mode if mode in ("bar", "lines", "off", "none") else "lines"


def summary_line(state: RunState, elapsed: float, accepted_session: int) -> str:
    rate = accepted_session / elapsed if elapsed > 0 else 0.0
    plans = " ".join(f"{p.name}={p.generated}/{p.quota}" for p in state.plans.values())
    return (f"dense: {state.generated}/{state.quota} ({state.percent:.0f}%) | {plans} | "
            f"{rate:.2f} seq/s | elapsed {elapsed:.0f}s")


class RunProgress:
    """Context manager that renders run progress in the chosen mode."""

    def __init__(self, mode: str, state: RunState, interval_s: float = 30.0):
        self.mode = resolve_mode(mode)
        self.state = state
        self.interval_s = max(0.5, float(interval_s))
        self._t0 = time.monotonic()
        self._last_line = self._t0
        self._bar: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RunProgress:
        if self.mode == "bar":
            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.percentage:>5.1f}%"), TimeElapsedColumn(), console=err, transient=False)
            self._bar.start()
            for p in self.state.plans.values():
                self._tasks[p.name] = self._bar.add_task(p.name, total=max(p.quota, 1), completed=min(p.generated, p.quota))
        return self

    def update(self, force: bool = False) -> None:
        if self._bar is not None:
            for p in self.state.plans.values():
                self._bar.update(self._tasks[p.name], total=max(p.quota, 1), completed=min(p.generated, p.quota))
            return
        if self.mode == "lines":
            now = time.monotonic()
            if force or now - self._last_line >= self.interval_s:
                self._last_line = now
                accepted = sum(p.accepted_session for p in self.state.plans.values())
                sys.stderr.write(summary_line(self.state, now - self._t0, accepted) + "\n")
                sys.stderr.flush()

    def note(self, message: str) -> None:
        if self._bar is not None:
            self._bar.console.print(message, highlight=False)
        elif self.mode != "off":
            sys.stderr.write(message + "\n")
            sys.stderr.flush()

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self.update()
            self._bar.stop()
            self._bar = None
        elif self.mode == "lines":
            self.update(force=True)
