"""The site bound of large libraries with a promoter.

Measured at 1000 RegulonDB sites, L=200 (one worker): the promoter's own relaxation
(``bound._WithPromoter``: left chain, anchors, middle chain, right chain) cost 0.4-0.5 s per
subgradient step (ten DP tables and 188 table reads per step), so its 1.2 s share gave 2-3
steps and a bound of 83 (the library has 54 without a promoter). Two things now bound it:

1. ``bound_problem``: the same problem without its promoter. Any layout with a promoter, its
   elements ignored, is a layout without one holding the same library sites (a site holding a
   forbidden k-mer is never placed either way), so that problem's bound holds; its relaxation
   is one table per step and gets the reduced-cost fixing (``bound_fixing``): 54 there.
2. ``warm_bound``: the promoter's relaxation started from that relaxation's multipliers. For
   the same multipliers a relaxed promoter layout (chains and anchors in order) is a relaxed
   path without a promoter, so its dual starts at most at the plain one and a few steps take
   it below (1000 RegulonDB sites, L=120: 36 -> 35 after one step).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from .bound import Relaxation, relax
from .types import Problem

WARM_STEPS = 12  # subgradient steps of ``warm_bound`` when counted (deterministic budgets)


def bound_problem(problem: Problem) -> Problem:
    """``problem`` without its promoters (itself when it has none): its path bound is valid
    for ``problem`` (see the module docstring)."""
    return dataclasses.replace(problem, promoters=()) if problem.promoters else problem


def warm_bound(problem: Problem, plain: Relaxation, bound: int | None, *, clock: Callable[[], float] = time.monotonic,
               time_budget_s: float | None, seed: int = 0) -> int | None:
    """``bound`` (of ``bound_problem(problem)``), lowered by the promoter's own relaxation
    started from ``plain``'s best multipliers for ``time_budget_s`` on ``clock`` (``None``:
    ``WARM_STEPS`` steps). ``bound`` itself when ``problem`` has no promoter or nothing is known."""
    search = plain._search
    if not problem.promoters or bound is None or search is None:
        return bound
    lam = search.best_lam if search.best_lam is not None else plain._lam
    if lam is None:
        return bound
    start = dict(zip(search.items.site_origin, lam.tolist(), strict=True))
    own = relax(problem, known=0, time_budget_s=time_budget_s, max_iterations=WARM_STEPS if time_budget_s is None else 10_000,
                seed=seed, clock=clock, fill_best=0, start=start)
    return bound if own.bound is None else min(bound, own.bound)
