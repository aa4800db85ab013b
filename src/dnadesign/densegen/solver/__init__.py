"""DenseGen solver engine: dense DNA sequences packed with library binding sites (CP-SAT).

Public API: the data types, ``solve`` (enumerate distinct solutions, best first),
``check_solution`` (independent verification) and ``precheck`` (fast infeasibility checks).
See docs/solver.md for the model and the measured figures.
"""

from .check import check_solution
from .enumerate import solve
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
