"""Time budgets on a busy node: the first solution is never lost, and the CPU clock keeps results.

The cores are saturated by busy-loop processes that this module starts (bounded lifetime,
killed at the end), so the solver really competes for CPU as on an oversubscribed HPC node.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from ortools.sat.python import cp_model

from dnadesign.densegen.solver import Problem, PromoterConstraint, SolverOptions, check_solution, solve
from dnadesign.densegen.solver import enumerate as enum_mod

from .test_bound import lib100

SIGMA70 = PromoterConstraint("sigma70", "TTGACA", "TATAAT", 16, 18)
BUSY = "import sys, time\nend = time.monotonic() + 300\nprint('ready', flush=True)\nwhile time.monotonic() < end:\n    pass\n"


@pytest.fixture
def busy_cores() -> Iterator[int]:
    """Two busy-loop processes per core (each ends by itself after 300 s at most), ready when
    each has printed its line; killed by pid when the test ends."""
    n = 2 * (os.cpu_count() or 1)
    procs = [subprocess.Popen([sys.executable, "-c", BUSY], stdout=subprocess.PIPE, text=True) for _ in range(n)]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        yield n
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait(timeout=30)


def _valid_first(problem: Problem, options: SolverOptions):
    sol = next(solve(problem, options, 1))
    assert check_solution(problem, sol) == []
    assert sol.bound is not None and sol.n_sites <= sol.bound + 1e-9
    assert sol.optimal == (sol.n_sites >= int(sol.bound + 1e-9))
    return sol


def test_tiny_limit_on_saturated_cores_returns_the_checked_layout(busy_cores):
    """The limit ends before model build, bound and CP-SAT are done: the beam layout, checked,
    is the first solution (marked not optimal when below the bound), never NoSolutionFoundError."""
    problem = Problem(lib100(), 120, promoters=(SIGMA70,))
    sol = _valid_first(problem, SolverOptions(time_limit_s=0.2, seed=0, workers=1))
    assert sol.n_sites >= 1 and not sol.optimal  # the beam had less than 0.1 s: a short layout, honestly marked


def test_cp_sat_without_a_solution_keeps_the_start_layout(monkeypatch):
    """Fault injection: CP-SAT reaches its limit with nothing (status UNKNOWN)."""

    def no_solution(solver, model, options, limit_s, callback=None):
        return cp_model.UNKNOWN

    monkeypatch.setattr(enum_mod, "_run", no_solution)
    problem = Problem(lib100()[:40], 120, promoters=(SIGMA70,), forbid_kmers=("GATC",))
    sol = _valid_first(problem, SolverOptions(time_limit_s=5, seed=0, workers=1))
    assert sol.n_sites >= 5


def test_cpu_clock_keeps_the_optimum_on_saturated_cores(busy_cores):
    """Under clock="cpu" the solver gets its full budget of computation whatever the load: the
    100-site library still reaches its proven optimum (15 sites), as on an idle machine."""
    problem = Problem(lib100(), 120)
    sol = _valid_first(problem, SolverOptions(time_limit_s=10, seed=0, workers=1, clock="cpu"))
    assert sol.n_sites == 15 and sol.optimal


def test_unknown_clock_is_rejected():
    problem = Problem(lib100()[:5], 60)
    with pytest.raises(Exception, match="unknown clock"):
        next(solve(problem, SolverOptions(clock="sundial"), 1))
