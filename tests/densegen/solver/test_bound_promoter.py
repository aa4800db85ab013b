"""The site bound with a promoter on large libraries (``solver/promoter_bound.py``) and the
grouped table reads of the promoter's relaxation (``bound._Reads``): never below CP-SAT's
proven optimum on random promoter problems (with and without position windows), and the
grouped reads equal the plain ones."""

from __future__ import annotations

import time

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnadesign.densegen.solver import InfeasibleProblemError, Problem, PromoterConstraint, Site, precheck
from dnadesign.densegen.solver.bound import _items, _WithPromoter, relax, site_values
from dnadesign.densegen.solver.bound_fixing import tighten
from dnadesign.densegen.solver.promoter_bound import bound_problem, warm_bound

from .test_bound import WEIGHTS, lib100, proven_optimum


@st.composite
def promoter_problems(draw):
    """Small problems with one promoter (windows or none), rich in overlaps, containment and
    sites that hold or are promoter elements (``test_bound.problems`` with the promoter forced)."""
    from dnadesign.densegen.solver.constraints.weights import RegulatorWeights

    parent = draw(st.text(alphabet="ACGT", min_size=24, max_size=24))
    seqs = []
    for _ in range(draw(st.integers(2, 8))):
        kind = draw(st.sampled_from(["piece", "piece", "element", "random"]))
        if kind == "piece":
            a = draw(st.integers(0, 19))
            seqs.append(parent[a : a + draw(st.integers(4, 9))])
        elif kind == "element":
            seqs.append(draw(st.sampled_from(["TTGAC", "ATTGACC", "GTATAC", "TATA", "TTGA", "TTGAGGTATA"])))
        else:
            seqs.append(draw(st.text(alphabet="ACGT", min_size=4, max_size=8)))
    seqs = [s for s in seqs if len(s) >= 4]
    sites = tuple(Site(f"s{i}", s, f"R{i % 3}") for i, s in enumerate(seqs))
    length = draw(st.integers(20, 34))
    lo = draw(st.integers(0, 3))
    up_window = draw(st.sampled_from([None, None, (2, 6), (0, 1), (8, 14)]))
    down_window = draw(st.sampled_from([None, None, (10, 20)]))
    promoter = PromoterConstraint("p", "TTGA", "TATA", lo, lo + draw(st.integers(0, 3)), upstream_pos=up_window,
                                  downstream_pos=down_window)
    return Problem(
        sites,
        length,
        strands=draw(st.sampled_from(["single", "double"])),
        promoters=(promoter,),
        forbid_kmers=tuple(draw(st.sampled_from([(), (), ("ACGT",), ("AAAA",), ("TTGA",)]))),
        rules=draw(st.sampled_from([(), ()] + [(RegulatorWeights(w),) for w in WEIGHTS])),
    )


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(promoter_problems(), st.booleans(), st.integers(1, 4), st.integers(1, 12))
def test_promoter_bound_never_below_the_proven_optimum(problem, hashed, iterations, warm_steps):
    """The large-library route's bound with a promoter: the relaxation of the problem without
    its promoter (a few steps: deliberately loose), its reduced-cost fixing, then the
    promoter's own relaxation warm-started from its multipliers; every stage is never below
    CP-SAT's proven optimum of the problem *with* the promoter, and each only lowers the last."""
    try:
        precheck(problem)
    except InfeasibleProblemError:
        return
    best = proven_optimum(problem)
    flat = bound_problem(problem)
    assert not flat.promoters and flat.sites == problem.sites
    plain = relax(flat, time_budget_s=None, max_iterations=iterations, hashed=hashed, fill_best=0)
    fixed = tighten(flat, plain, clock=time.process_time, max_steps=40)
    import dnadesign.densegen.solver.promoter_bound as pb

    steps, pb.WARM_STEPS = pb.WARM_STEPS, warm_steps
    try:
        warm = warm_bound(problem, plain, fixed, time_budget_s=None)
    finally:
        pb.WARM_STEPS = steps
    if fixed is None:
        assert warm is None
        return
    assert plain.bound is not None and warm is not None and warm <= fixed <= plain.bound
    if best is not None:
        assert warm >= best


def test_warm_bound_is_the_bound_without_a_promoter():
    problem = Problem(lib100()[:30], 80)
    plain = relax(problem, time_budget_s=None, max_iterations=5, fill_best=0)
    assert bound_problem(problem) is problem
    assert warm_bound(problem, plain, plain.bound, time_budget_s=None) == plain.bound


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.sampled_from([60, 120, 200]), st.booleans())
def test_grouped_reads_equal_the_plain_reads(seed, length, hashed):
    """``_WithPromoter.solve`` with the grouped reads of its tables (``bound._Reads``) gives the
    same value and sites as with one ``TableReads.tops`` per anchor, for random site weights on
    the real 100-site library (sigma70: element-holding sites are anchors)."""
    problem = Problem(lib100(), length, promoters=(PromoterConstraint("sigma70", "TTGACA", "TATAAT", 16, 18),))
    prom = problem.promoters[0]
    items = _items(problem, (prom.upstream, prom.downstream), site_values(problem), hashed)
    parts = _WithPromoter(items, problem)
    w = 1.0 - np.random.default_rng(seed).random(items.n_sites) * 1.5
    grouped = parts.solve(w)

    class PerAnchor:
        def __init__(self, thens):
            self.thens = thens

        def tops(self, dp, size):
            return np.array([dp.tops(t, size) for t in self.thens]).reshape(len(self.thens), size)

    parts._into_left = PerAnchor([into for _a, into, _f in parts.ups])
    parts._from_right = PerAnchor([frm for _a, _i, frm in parts.downs])
    parts._into_down = PerAnchor([into for _a, into, _f in parts.downs])
    plain = parts.solve(w)
    assert abs(grouped[0] - plain[0]) < 1e-9 and grouped[1] == plain[1]
