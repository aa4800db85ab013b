"""Denser start layouts from the path relaxation (bound.py ``fill_best``): the stretches that
dropped second uses leave in the densest relaxed plans are packed after the subgradient run.
Real sites (the benchmark's 100-site RegulonDB library), the independent checker."""

from __future__ import annotations

from dnadesign.densegen.solver import Problem, check_solution
from dnadesign.densegen.solver.bound import relax
from dnadesign.densegen.solver.path_layouts import layout_solution

from .test_bound import lib100


def test_packed_relaxed_plans_give_denser_layouts():
    """Packing (``fill_best``) gives a denser best layout at L=200 than the plain realised paths
    (19 -> 21 measured), at least 21 sites, every one checked; the bound is the same either way."""
    problem = Problem(lib100(), 200)
    plain = relax(problem, time_budget_s=None, max_iterations=40, seed=0, fill_best=0)
    packed = relax(problem, time_budget_s=None, max_iterations=40, seed=0)
    assert packed.bound == plain.bound
    assert len(packed.layouts[0].library_sites) > len(plain.layouts[0].library_sites)
    assert len(packed.layouts[0].library_sites) >= 21
    for lay in packed.layouts:
        assert check_solution(problem, layout_solution(problem, lay)) == []


def test_no_packing_once_the_bound_is_reached():
    """At L=80 the relaxation proves 10 with a 10-site layout: nothing is re-realised, so the
    result is the same with and without ``fill_best`` (small libraries keep their behaviour)."""
    problem = Problem(lib100(), 80)
    a = relax(problem, time_budget_s=None, max_iterations=40, seed=0, fill_best=0)
    b = relax(problem, time_budget_s=None, max_iterations=40, seed=0)
    assert a.bound == b.bound == 10 == len(a.layouts[0].library_sites)
    assert [lay.sequence for lay in a.layouts] == [lay.sequence for lay in b.layouts]
