"""Time budgets of a solve, measured on the clock the user chose.

``SolverOptions.clock`` picks how ``time_limit_s`` and ``run_time_limit_s`` are measured:

- ``"wall"`` (default): seconds of wall clock, what a user waiting at a terminal sees;
- ``"cpu"``: CPU seconds of this process (all its threads). On an oversubscribed node a process
  that gets a fifth of a core still gets its full budget of computation, so a limit that finds a
  solution on an idle machine finds the same one there, only later in wall time.

``deterministic=True`` (CP-SAT's deterministic time, iteration caps elsewhere) overrides both for
CP-SAT and the relaxation; the Python phases (beam, screening) still stop on the chosen clock.

CP-SAT only knows wall and deterministic limits, so under ``"cpu"`` a watcher thread stops the
search once the process has used its CPU share; the wall limit is then only a generous backstop.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

CLOCKS = ("wall", "cpu")
CPU_WALL_BACKSTOP = 50.0  # under "cpu", CP-SAT's wall limit is this many times the CPU limit
WATCH_PERIOD_S = 0.02  # how often the CPU watcher looks at the clock


def clock_of(name: str) -> Callable[[], float]:
    """The clock function for ``"wall"`` (monotonic seconds) or ``"cpu"`` (process CPU seconds)."""
    if name == "cpu":
        return time.process_time
    return time.monotonic


class Budget:
    """A deadline on one clock: ``left()`` seconds remain (``inf`` without a limit)."""

    def __init__(self, clock: Callable[[], float], limit_s: float | None):
        self.clock = clock
        self.deadline = None if limit_s is None else clock() + limit_s

    def left(self) -> float:
        """Seconds left on this budget's clock (``math.inf`` when unlimited)."""
        return math.inf if self.deadline is None else self.deadline - self.clock()

    def spent(self) -> bool:
        """True once the deadline has passed."""
        return self.left() <= 0


class CpuWatch:
    """Stops a CP-SAT search once the process has used ``limit_s`` CPU seconds since ``start``, or
    once ``cancel`` (an event another thread may set) is set.

    Use as a context manager around ``solver.solve``; a no-op when both are None.
    """

    def __init__(self, solver, limit_s: float | None, cancel: threading.Event | None = None):
        self._solver = solver
        self._limit = limit_s
        self._cancel = cancel
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> CpuWatch:
        if self._limit is None and self._cancel is None:
            return self
        end = None if self._limit is None else time.process_time() + self._limit
        cancel = self._cancel

        def loop() -> None:
            while not self._done.wait(WATCH_PERIOD_S):
                if (end is not None and time.process_time() >= end) or (cancel is not None and cancel.is_set()):
                    self._solver.stop_search()
                    return

        self._thread = threading.Thread(target=loop, name="cpsat-cpu-budget", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
