"""Time budgets of a solve, measured on the clock the user chose.

``SolverOptions.clock`` picks how ``time_limit_s`` and ``run_time_limit_s`` are measured:

- ``"wall"`` (default): seconds of wall clock, what a user waiting at a terminal sees;
- ``"cpu"``: CPU seconds of this process (all its threads). On an oversubscribed node a process
  that gets a fifth of a core still gets its full budget of computation, so a limit that finds a
  solution on an idle machine finds the same one there, only later in wall time.

``deterministic=True`` overrides both: the solve runs on a ``WorkClock``, which does not read
any clock but advances only when a phase charges the work it has done, in seconds of an idle
machine (``solve_clock``): beam expansions (``EXPANSION_S`` each), CP-SAT's deterministic time,
and the iteration- or round-capped phases (relaxation, favoured runs, local search, reduced-cost
fixing) their nominal share of the limit. Every ``Budget.left()`` then depends on counted work
only, so the same problem, options and seed give the same solutions whatever the load.

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


# Counted work in idle-machine seconds (measured on RegulonDB libraries, docs/solver.md):
EXPANSION_S = 2.5e-6  # one beam candidate expansion
PLACEMENT_S = 3e-5  # building the positional model, per placement literal
DTIME_PER_S = 0.33  # CP-SAT deterministic time done per CPU second


class WorkClock:
    """A clock of counted work (``deterministic=True``): it reads the seconds charged so far, in
    seconds an idle machine would take for that work, and never the system clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def charge(self, seconds: float) -> None:
        """Advance by ``seconds`` of counted work."""
        self.now += max(0.0, seconds)


def solve_clock(deterministic: bool, name: str) -> Callable[[], float]:
    """The clock one solve's budgets run on: a fresh ``WorkClock`` when ``deterministic``,
    otherwise the ``"wall"`` or ``"cpu"`` clock."""
    return WorkClock() if deterministic else clock_of(name)


def charge(clock: Callable[[], float], seconds: float) -> None:
    """Charge ``seconds`` of counted work to ``clock`` (a no-op on the wall and CPU clocks,
    which measure the work themselves)."""
    if isinstance(clock, WorkClock):
        clock.charge(seconds)


def charge_cpsat(clock: Callable[[], float], solver) -> None:
    """Charge a finished CP-SAT solve's deterministic time (converted to seconds) to ``clock``
    (read only when ``clock`` counts work: a solve stopped before it ran has no response)."""
    if isinstance(clock, WorkClock):
        clock.charge(solver.deterministic_time / DTIME_PER_S)


def counted(clock: Callable[[], float]) -> bool:
    """True when ``clock`` counts work (``deterministic=True``) instead of measuring time."""
    return isinstance(clock, WorkClock)


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

    def charge(self, seconds: float) -> None:
        """Charge counted work to this budget's clock (no-op on a wall or CPU clock)."""
        charge(self.clock, seconds)

    @property
    def counted(self) -> bool:
        """True when this budget counts work instead of reading a clock."""
        return counted(self.clock)


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
