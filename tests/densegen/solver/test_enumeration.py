"""The enumeration's end reasons, its policies' source order, and enumeration on saturated cores.

Real CP-SAT on real RegulonDB rows; the busy-core fixture starts real busy-loop processes
(bounded lifetime, killed by pid at the end), as on an oversubscribed HPC node.
"""

from __future__ import annotations

import random
import time

from dnadesign.densegen.solver import Problem, Site, SolverOptions, check_solution, solve
from dnadesign.densegen.solver import pool as pool_mod
from dnadesign.densegen.solver import sources as src
from dnadesign.densegen.solver.bound import relax
from dnadesign.densegen.solver.budget import Budget
from dnadesign.densegen.solver.heuristics import greedy_layouts
from dnadesign.densegen.solver.model import PositionalModel
from dnadesign.densegen.solver.policies import END_REASONS, DiversePolicy, OptimalPolicy
from dnadesign.densegen.solver.state import EnumState

from .test_bound import lib100
from .test_budget import busy_cores  # noqa: F401  (fixture)


def _valid_run(problem: Problem, options: SolverOptions, n: int):
    it = solve(problem, options, n)
    sols = list(it)
    assert it.end_reason in END_REASONS
    assert len({s.sequence for s in sols}) == len(sols)
    for sol in sols:
        assert check_solution(problem, sol) == []
        assert sol.bound is not None and sol.n_sites <= sol.bound + 1e-9
    return it, sols


def test_end_reason_requested():
    it, sols = _valid_run(Problem(lib100()[:30], 80), SolverOptions(time_limit_s=5, deterministic=True), 3)
    assert len(sols) == 3 and it.end_reason == "requested"


def test_end_reason_exhausted_when_sources_are_dry():
    """One site, single strand, in exactly its own length, solutions with all sites only: one exists; five asked
    ends cleanly with the reason, no error."""
    problem = Problem((Site("a", "TTGATCAAGCTA", "LexA"),), 12, strands="single")
    it, sols = _valid_run(problem, SolverOptions(time_limit_s=5, deterministic=True, min_objective_fraction=1.0), 5)
    assert len(sols) == 1 and it.end_reason == "exhausted"


def test_end_reason_budget():
    problem = Problem(lib100(), 120)
    it, sols = _valid_run(problem, SolverOptions(time_limit_s=5, run_time_limit_s=3, clock="cpu"), 10_000)
    assert 1 <= len(sols) < 10_000 and it.end_reason == "budget"


def test_policies_list_their_sources_in_order():
    """Optimal mode screens the deferred pool, the neighbours, the alternatives and then the
    rearrangements before its CP-SAT search; diverse mode steers the relaxation first, then the
    held candidates, the deferred pool, the nudged relaxation layouts, the relaxation variants and the
    alternatives."""
    problem = Problem(lib100()[:20], 60)
    relaxation = relax(problem, time_budget_s=None, max_iterations=5)
    layout = greedy_layouts(problem, 0)[0]
    st = EnumState(problem, SolverOptions(), PositionalModel(problem), relaxation, random.Random(0),
                   Budget(time.monotonic, None), len(layout.library_sites), iter([]))
    st.layout = layout
    assert [type(s) for s in OptimalPolicy(st).sources] == [src.DeferredPool, src.Neighbours, src.Alternatives, src.Repeats]
    assert isinstance(OptimalPolicy(st).search, src.OptimalSearch)
    diverse = DiversePolicy(st)
    assert isinstance(diverse.steered, src.SteeredRelaxation) and isinstance(diverse.search, src.DiverseSearch)
    assert [type(s) for s in diverse.sources] == [src.Held, src.DeferredPool, src.Nudged, src.Neighbours, src.Alternatives]


def test_enumeration_on_saturated_cores_keeps_every_checked_layout(busy_cores):
    """Both cores saturated by busy loops: optimal and diverse enumeration under clock="cpu"
    give checked, distinct solutions, the first at the proven optimum (15 sites)."""
    problem = Problem(lib100(), 120)
    _it, sols = _valid_run(problem, SolverOptions(time_limit_s=10, run_time_limit_s=15, clock="cpu"), 12)
    assert sols[0].n_sites == 15 and sols[0].optimal
    assert all(s.n_sites >= 14 for s in sols)
    _it, div = _valid_run(problem, SolverOptions(time_limit_s=10, run_time_limit_s=15, clock="cpu", mode="diverse"), 6)
    assert len({s.site_ids for s in div}) == len(div) >= 3


def test_pooled_library_on_saturated_cores_with_a_tiny_wall_limit(busy_cores, monkeypatch):
    """A pooled library with a 0.5 s wall limit on saturated cores still returns a checked layout."""
    monkeypatch.setattr(pool_mod, "POOL_MIN_ORIENTED", 100)
    monkeypatch.setattr(pool_mod, "POOL_SITES", 40)
    problem = Problem(lib100(), 120)
    it, sols = _valid_run(problem, SolverOptions(time_limit_s=0.5, run_time_limit_s=2), 2)
    assert sols and sols[0].n_sites >= 1 and it.end_reason in END_REASONS
