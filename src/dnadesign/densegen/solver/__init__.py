"""DenseGen solver engine: dense DNA sequences packed with library binding sites (CP-SAT).

Public API: the data types, ``solve`` (enumerate distinct solutions, best first),
``check_solution`` (independent verification) and ``precheck`` (fast infeasibility checks).
See docs/solver.md for the model and the measured figures.
"""

from .check import check_solution
from .precheck import precheck
from .types import (
    PROMOTER_REGULATOR,
    InfeasibleProblemError,
    NoSolutionFoundError,
    Placement,
    Problem,
    PromoterConstraint,
    RegulatorGroup,
    SideBias,
    Site,
    Solution,
    SolverOptions,
)


def solve(problem: Problem, options: SolverOptions, n_solutions: int):
    """Enumerate up to `n_solutions` distinct sequences, best first (see `enumerate.solve`).

    Returns an iterator of solutions whose `end_reason` says, once it has ended, why:
    `"requested"`, `"budget"` (run_time_limit_s spent) or `"exhausted"` (no further solution at
    or above the allowed level). Libraries above 300 double-stranded sites are solved on a pool
    of their most promising sites (`pool.py`), with the full library's bound.
    Imported on first call, so the types, `precheck` and `check_solution` load without OR-Tools.
    """
    from .pool import solve as _solve

    return _solve(problem, options, n_solutions)


__all__ = [
    "PROMOTER_REGULATOR",
    "InfeasibleProblemError",
    "NoSolutionFoundError",
    "Placement",
    "Problem",
    "PromoterConstraint",
    "RegulatorGroup",
    "SideBias",
    "Site",
    "Solution",
    "SolverOptions",
    "check_solution",
    "precheck",
    "solve",
]
