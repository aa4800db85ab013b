"""``deterministic=True``: every phase stops on counted work, never on a clock, so the same
problem, options and seed give the same sequences (in order) on a quiet machine and on one whose
cores are saturated by busy-loop processes (an oversubscribed HPC node)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

from dnadesign.densegen.solver import Problem, PromoterConstraint, SolverOptions, check_solution, solve

from .test_budget import BUSY
from .test_path_search import regulondb

SIGMA70 = PromoterConstraint("sigma70", "TTGACA", "TATAAT", 16, 18)


@contextlib.contextmanager
def saturated_cores() -> Iterator[None]:
    """Two busy-loop processes per core, ready once each has printed its line; killed by pid after."""
    procs = [subprocess.Popen([sys.executable, "-c", BUSY], stdout=subprocess.PIPE, text=True)
             for _ in range(2 * (os.cpu_count() or 1))]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        yield
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait(timeout=30)


def _cases() -> list[tuple[str, Problem, SolverOptions, int]]:
    lib = regulondb(100, 100)
    return [
        ("optimal", Problem(lib, 120), SolverOptions(time_limit_s=1.0, seed=3, workers=1, deterministic=True), 5),
        ("diverse", Problem(lib, 120, promoters=(SIGMA70,)), SolverOptions(time_limit_s=1.0, seed=3, workers=1, deterministic=True, mode="diverse"), 4),
        ("pooled-1000", Problem(regulondb(1000, 1000), 200), SolverOptions(time_limit_s=3.0, seed=3, workers=1, deterministic=True), 1),
    ]


def _sequences(problem: Problem, options: SolverOptions, n: int) -> list[str]:
    out = []
    for sol in solve(problem, options, n):
        assert check_solution(problem, sol) == []
        out.append(sol.sequence)
    return out


def test_deterministic_solves_give_the_same_sequences_quiet_and_on_saturated_cores():
    cases = _cases()
    quiet = {name: _sequences(p, o, n) for name, p, o, n in cases}
    with saturated_cores():
        busy = {name: _sequences(p, o, n) for name, p, o, n in cases}
    for name, _p, _o, n in cases:
        assert len(quiet[name]) == n, name
        assert busy[name] == quiet[name], f"{name}: the busy run differs"


def test_work_clock_moves_only_on_charged_work():
    """A counted budget's ``left()`` depends on the work charged, never on elapsed time; a
    charge to a wall-clock budget changes nothing."""
    from dnadesign.densegen.solver.budget import Budget, WorkClock, clock_of, solve_clock

    clock = solve_clock(True, "wall")
    assert isinstance(clock, WorkClock)
    budget = Budget(clock, 1.0)
    sum(range(200_000))  # time passes, no work is charged
    assert budget.left() == 1.0 and budget.counted
    budget.charge(0.25)
    budget.charge(-1.0)  # negative charges are ignored
    assert budget.left() == 0.75 and not budget.spent()
    budget.charge(0.75)
    assert budget.spent()
    wall = Budget(clock_of("wall"), 10.0)
    before = wall.left()
    wall.charge(5.0)
    assert not wall.counted and wall.left() > before - 1.0
