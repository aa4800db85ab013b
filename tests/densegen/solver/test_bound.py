"""The path-relaxation site bound (solver/bound.py): valid against CP-SAT's proven optimum on
random problems, tight on the real 100-site benchmark library, and used by ``solve``."""

from __future__ import annotations

import csv
import dataclasses
import random
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ortools.sat.python import cp_model

from dnadesign.densegen.solver import (
    InfeasibleProblemError,
    Problem,
    PromoterConstraint,
    Site,
    SolverOptions,
    check_solution,
    precheck,
    solve,
)
from dnadesign.densegen.solver.bound import relax, site_bound
from dnadesign.densegen.solver.bound_fixing import tighten
from dnadesign.densegen.solver.constraints.weights import RegulatorWeights
from dnadesign.densegen.solver.dna import revcomp as reverse_complement
from dnadesign.densegen.solver.first_layouts import regulator_minimums
from dnadesign.densegen.solver.model import PositionalModel
from dnadesign.densegen.solver.path_layouts import layout_solution

LIB100 = Path(__file__).resolve().parents[2] / "data" / "tfbs_lib100.csv"
WEIGHTS = [(("R0", 3),), (("R1", 2), ("R2", 5)), (("R0", 1000),)]
SIGMA70 = PromoterConstraint("sigma70", "TTGACA", "TATAAT", 16, 18)


def lib100() -> tuple[Site, ...]:
    """The benchmark's plain 100-site RegulonDB library (bench/solver_vs_dense_arrays.py, seed 1)."""
    with open(LIB100, newline="") as fh:
        return tuple(Site(r["id"], r["tfbs"], r["tf"]) for r in csv.DictReader(fh))


def proven_optimum(problem: Problem) -> int | None:
    """Most site value (library sites, or their weights under a weights rule) in any solution,
    proven by CP-SAT (None if infeasible)."""
    pm = PositionalModel(problem)
    pm.model.maximize(pm.value_expr)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = 30
    status = solver.solve(pm.model)
    if status == cp_model.INFEASIBLE:
        return None
    assert status == cp_model.OPTIMAL
    return round(solver.objective_value)


@st.composite
def problems(draw):
    """Small problems rich in overlaps and containment: many sites are pieces of one parent
    string, some contain (or are) promoter elements."""
    parent = draw(st.text(alphabet="ACGT", min_size=24, max_size=24))
    seqs = []
    for _ in range(draw(st.integers(2, 8))):
        kind = draw(st.sampled_from(["piece", "piece", "element", "random", "reverse", "palindrome"]))
        if kind in ("piece", "reverse"):
            a = draw(st.integers(0, 19))
            piece = parent[a : a + draw(st.integers(4, 9))]
            # reverse complements of pieces and palindromes: the folds the compiled hub program cuts
            seqs.append(piece if kind == "piece" else reverse_complement(piece))
        elif kind == "palindrome":
            half = parent[draw(st.integers(0, 20)):][: draw(st.integers(2, 4))]
            seqs.append(half + reverse_complement(half))
        elif kind == "element":
            seqs.append(draw(st.sampled_from(["TTGAC", "ATTGACC", "GTATAC", "TATA", "TTGA"])))
        else:
            seqs.append(draw(st.text(alphabet="ACGT", min_size=4, max_size=8)))
    seqs = [s for s in seqs if len(s) >= 4]
    sites = tuple(Site(f"s{i}", s, f"R{i % 3}") for i, s in enumerate(seqs))
    length = draw(st.integers(12, 34))
    promoters = ()
    if length >= 20 and draw(st.booleans()):
        window = draw(st.sampled_from([None, (2, 6)]))
        lo = draw(st.integers(0, 3))
        promoters = (PromoterConstraint("p", "TTGA", "TATA", lo, lo + draw(st.integers(0, 3)), upstream_pos=window),)
    return Problem(
        sites,
        length,
        strands=draw(st.sampled_from(["single", "double"])),
        promoters=promoters,
        forbid_kmers=tuple(draw(st.sampled_from([(), (), ("ACGT",), ("AAAA",)]))),
        rules=draw(st.sampled_from([(), ()] + [(RegulatorWeights(w),) for w in WEIGHTS])),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(problems(), st.booleans())
def test_bound_never_below_the_proven_optimum(problem, hashed):
    """Both programs (pairwise arcs; overlap hubs, as on large libraries), with and without
    weights: the bound on the site value is never below CP-SAT's proven optimum."""
    try:
        precheck(problem)
    except InfeasibleProblemError:
        return
    best = proven_optimum(problem)
    bound = relax(problem, time_budget_s=None, max_iterations=60, hashed=hashed).bound
    if best is not None and bound is not None:
        assert bound >= best


def test_contained_sites_and_element_anchors_count():
    # "GACA" sits inside "TTGACA"; "ATTGACAT" holds the upstream element itself. Both fit, so
    # the bound must allow them even though they share their bases with the promoter.
    prom = PromoterConstraint("p", "TTGACA", "TATAAT", 3, 3)
    problem = Problem((Site("in", "GACA", "R"), Site("holds", "ATTGACAT", "R")), 20, promoters=(prom,))
    assert proven_optimum(problem) == 2
    assert site_bound(problem, time_budget_s=None) == 2


def test_tight_on_the_100_site_benchmark_library():
    sites = lib100()
    assert site_bound(Problem(sites, 120), time_budget_s=None, max_iterations=60) == 15
    assert site_bound(Problem(sites, 120, promoters=(SIGMA70,)), time_budget_s=None, max_iterations=40) <= 14


def test_solve_reports_the_bound_and_optimality():
    problem = Problem(lib100(), 120)
    sols = list(solve(problem, SolverOptions(time_limit_s=10, seed=1, workers=1, deterministic=True), 5))
    assert [s.n_sites for s in sols] == [15] * 5
    assert all(s.optimal and s.bound == 15.0 for s in sols)
    assert all(check_solution(problem, s) == [] for s in sols)


def test_promoter_100_sites_within_one_of_the_bound():
    problem = Problem(lib100(), 120, promoters=(SIGMA70,))
    first = next(solve(problem, SolverOptions(time_limit_s=4, seed=1, workers=1, deterministic=True), 1))
    assert check_solution(problem, first) == []
    assert first.bound is not None and first.bound - first.n_sites < 2


def test_min_total_sites_above_the_bound_is_reported():
    problem = Problem(lib100()[:20], 40, min_total_sites=9)
    with pytest.raises(InfeasibleProblemError, match="at most .* library sites fit in 40 bp"):
        next(solve(problem, SolverOptions(time_limit_s=5, workers=1, deterministic=True), 1))


@pytest.mark.parametrize("promoters", [(), (SIGMA70,)], ids=["plain", "sigma70"])
def test_relaxation_layouts_and_variants_pass_the_checker(promoters):
    problem = Problem(lib100()[:60], 100, promoters=promoters)
    relaxation = relax(problem, known=0, time_budget_s=None, max_iterations=40)
    assert relaxation.layouts
    for layout in relaxation.layouts:
        assert check_solution(problem, layout_solution(problem, layout)) == []
    first = relaxation.layouts[0]
    sites = {t[0] for t in first.items if t[0] >= 0}
    assert len(sites) <= relaxation.bound
    variants = list(relaxation.variants(first, random.Random(0)))
    assert len(variants) >= len(sites) // 2
    for v in variants:
        assert check_solution(problem, layout_solution(problem, v)) == []
        assert not {t[0] for t in v.items if t[0] >= 0} >= sites  # one of the first's sites is banned


def test_weighted_bound_counts_weights():
    """Two sites that cannot share 12 bp: the bound is the heavier one's weight, not 1 or 2."""
    problem = Problem((Site("a", "ACGTACGT", "A"), Site("b", "TTTTGGGG", "B")), 12, strands="single",
                      rules=(RegulatorWeights((("B", 7),)),))
    assert proven_optimum(problem) == 7
    for hashed in (False, True):
        assert relax(problem, time_budget_s=None, hashed=hashed).bound == 7


def test_hashed_bound_on_the_100_site_library_is_valid_and_close():
    """The hub program (exact overlaps) on the real library: never below the proven optimum
    (15 plain), and within one of the pairwise program's bound."""
    problem = Problem(lib100(), 120)
    hashed = relax(problem, time_budget_s=None, max_iterations=60, hashed=True)
    assert hashed.bound is not None and 15 <= hashed.bound <= 16
    for lay in hashed.layouts:
        assert check_solution(problem, layout_solution(problem, lay)) == []


def test_weighted_solve_reports_a_weighted_bound_at_least_its_objective():
    sites = lib100()[:40]
    problem = Problem(sites, 80, rules=(RegulatorWeights(((sites[0].regulator, 4), (sites[1].regulator, 2))),))
    first = next(solve(problem, SolverOptions(time_limit_s=5, seed=0, workers=1, deterministic=True), 1))
    assert check_solution(problem, first) == []
    assert first.bound is not None and first.bound >= first.objective - 1e-9
    assert first.bound <= relax(problem, time_budget_s=None, max_iterations=200).bound + 1  # capped by the path bound


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(problems(), st.booleans(), st.integers(1, 2))
def test_bound_with_regulator_minimums_never_below_the_proven_optimum(problem, hashed, k):
    """The bound with regulator minimums priced in (``Relaxation.required_bound``), on both
    programs: never below CP-SAT's proven optimum of the problem with the minimum."""
    problem = dataclasses.replace(problem, rules=(), min_count_by_regulator={problem.sites[0].regulator: k})
    try:
        precheck(problem)
    except InfeasibleProblemError:
        return
    best = proven_optimum(problem)
    relaxation = relax(problem, time_budget_s=None, max_iterations=20, hashed=hashed, fill_best=0)
    bound = relaxation.required_bound(regulator_minimums(problem), known=0, iterations=40)
    if best is not None and bound is not None:
        assert bound >= best


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(problems(), st.booleans(), st.integers(1, 4), st.booleans())
def test_fixed_bound_never_below_the_proven_optimum(problem, hashed, iterations, minimum):
    """Reduced-cost fixing (``bound_fixing.tighten``) from a deliberately loose start (a few
    subgradient steps), on both programs (pairwise; hubs, compiled), plain, weighted and with
    a regulator minimum: the lowered bound is never below CP-SAT's proven optimum."""
    if minimum:
        problem = dataclasses.replace(problem, min_count_by_regulator={problem.sites[0].regulator: 1})
    try:
        precheck(problem)
    except InfeasibleProblemError:
        return
    best = proven_optimum(problem)
    relaxation = relax(problem, time_budget_s=None, max_iterations=iterations, hashed=hashed, fill_best=0)
    bound = tighten(problem, relaxation, clock=time.process_time, max_steps=60)
    if relaxation.bound is None:
        assert bound is None
        return
    assert bound is not None and bound <= relaxation.bound
    if best is not None:
        assert bound >= best


@pytest.mark.parametrize("hashed", [False, True], ids=["pairwise", "hubs"])
@pytest.mark.parametrize(("length", "optimum"), [(120, 15), (200, 23)])
def test_fixing_brings_a_loose_bound_down_to_the_optimum(hashed, length, optimum):
    """On the real 100-site library (proven optima 15 at L=120, 23 at L=200), two subgradient
    steps leave the bound 5-27 sites too high; the fixing brings it down to the optimum, and
    never below it even when told a layout of that value is known."""
    problem = Problem(lib100(), length)
    relaxation = relax(problem, time_budget_s=None, max_iterations=2, hashed=hashed, fill_best=0)
    assert relaxation.bound is not None and relaxation.bound > optimum + 2
    assert tighten(problem, relaxation, clock=time.process_time, max_steps=80) == optimum
    assert tighten(problem, relaxation, clock=time.process_time, max_steps=80, known=optimum) == optimum


def test_fixing_leaves_promoter_bounds_alone():
    problem = Problem(lib100()[:40], 100, promoters=(SIGMA70,))
    relaxation = relax(problem, time_budget_s=None, max_iterations=2, fill_best=0)
    assert tighten(problem, relaxation, clock=time.process_time, max_steps=40) == relaxation.bound


def test_restricted_hub_program_equals_one_built_on_the_survivors():
    """Fixing drops sites by filtering the hub rows (no hashing again): the tables over the kept
    items, forwards and on the reversed strings, equal those of the survivors' own program, and
    the reversed program (forward hubs, ends and starts swapped) equals one on hashed reversed strings."""
    import numpy as np

    from dnadesign.densegen.solver.bound import _items, _Plain
    from dnadesign.densegen.solver.bound_fixing import ForcedPaths, _restrict
    from dnadesign.densegen.solver.hub_dp import HubDP
    from dnadesign.densegen.solver.overlaps import overlap_hubs

    problem = Problem(lib100(), 120)
    values = [1] * len(problem.sites)
    items = _items(problem, (), values, hashed=True)
    keep = np.random.default_rng(0).random(items.n_sites) < 0.4
    sub_items = _restrict(items, keep)
    kept = [problem.sites[i] for i in sorted(sub_items.site_origin)]
    fresh = _items(dataclasses.replace(problem, sites=tuple(kept)), (), [1] * len(kept), hashed=True)
    assert sub_items.seqs == fresh.seqs and sub_items.inside == fresh.inside
    w = np.random.default_rng(1).uniform(-0.5, 1.0, sub_items.n_sites)
    ours = ForcedPaths(sub_items, _Plain(sub_items, 120).dp, 120)
    theirs = ForcedPaths(fresh, _Plain(fresh, 120).dp, 120)
    assert np.allclose(ours.site_values(w), theirs.site_values(w))
    assert np.allclose(ours.fwd.best, theirs.fwd.best) and np.allclose(ours.rev.best, theirs.rev.best)
    # the reversed program reads the forward hubs swapped: the same tables as hashing the reversed strings
    plain = sub_items.plain
    hashed = HubDP(plain, *overlap_hubs([s[::-1] for s in sub_items.seqs]), plain, 120, plain, False, sub_items.site)
    hashed.run(sub_items.weights(w))
    assert np.allclose(hashed.best, ours.rev.best)
