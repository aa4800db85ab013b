"""Real CP-SAT solves on real RegulonDB sites: constraints hold, enumeration, errors."""

from __future__ import annotations

import dataclasses

import pytest

from dnadesign.core.errors import InputError
from dnadesign.densegen.solver import (
    InfeasibleProblemError,
    Problem,
    PromoterConstraint,
    RegulatorGroup,
    SideBias,
    SolverOptions,
    check_solution,
    precheck,
    solve,
)
from dnadesign.densegen.solver.dna import revcomp
from dnadesign.densegen.solver.model import PositionalModel

from .conftest import load_sites

SIGMA70 = PromoterConstraint("sigma70", "TTGACA", "TATAAT", 16, 18)
FAST = SolverOptions(time_limit_s=5.0, seed=0, workers=1, deterministic=True)


def run(problem: Problem, n: int = 3, **kw):
    sols = list(solve(problem, dataclasses.replace(FAST, **kw), n))
    for s in sols:
        assert check_solution(problem, s) == [], s
        assert len(s.sequence) == problem.length
    assert len({s.sequence for s in sols}) == len(sols)
    return sols


def test_plain_enumeration_best_first(sites12):
    problem = Problem(sites12, 40)
    sols = run(problem, n=6)
    assert len(sols) == 6
    assert sols[0].optimal and sols[0].bound is not None
    assert sols[0].n_sites >= 2
    counts = [s.n_sites for s in sols]
    assert counts == sorted(counts, reverse=True)
    assert len({frozenset((p.site_id, p.offset, p.strand) for p in s.placements) for s in sols}) == 6


def test_placements_report_plus_strand_text(sites12):
    sol = run(Problem(sites12, 40), n=1)[0]
    by_id = {s.id: s for s in sites12}
    for p in sol.placements:
        site = by_id[p.site_id].sequence
        assert p.sequence == (site if p.strand == "+" else revcomp(site))
        assert sol.sequence[p.offset : p.end] == p.sequence


def test_single_strand_uses_plus_only(sites12):
    sols = run(Problem(sites12, 40, strands="single"), n=3)
    assert all(p.strand == "+" for s in sols for p in s.placements)


def test_promoter_spacer_and_windows(sites12):
    prom = dataclasses.replace(SIGMA70, upstream_pos=(10, 12))
    problem = Problem(sites12, 60, promoters=(prom,))
    for s in run(problem, n=3):
        fixed = {p.site_id: p for p in s.placements if p.fixed}
        up, down = fixed["sigma70:upstream"], fixed["sigma70:downstream"]
        assert 10 <= up.offset <= 12
        assert 16 <= down.offset - up.end <= 18
        assert up.regulator == "promoter" and s.n_sites == len(s.placements) - 2


def test_forbidden_kmers_both_strands_with_promoter_allowlist(sites12):
    # "TGAC" lies inside the -35 element; it must not appear anywhere else, on either strand.
    problem = Problem(sites12, 60, promoters=(SIGMA70,), forbid_kmers=("TGAC", "GATC"))
    for s in run(problem, n=3):
        up = next(p for p in s.placements if p.site_id == "sigma70:upstream")
        hits = [i for i in range(len(s.sequence) - 3) if s.sequence[i : i + 4] in ("TGAC", "GTCA", "GATC")]
        assert hits == [up.offset + 1]


def test_gc_bounds(sites12):
    problem = Problem(sites12, 50, gc_min=0.45, gc_max=0.55)
    for s in run(problem, n=3):
        gc = sum(ch in "GC" for ch in s.sequence)
        assert 23 <= gc <= 27


def test_regulator_requirements_inside_the_model():
    sites = load_sites(30)
    regs = sorted({s.regulator for s in sites})
    group = RegulatorGroup("g", tuple(regs[:4]), 2)
    need = {regs[5]: 1}
    problem = Problem(sites, 60, groups=(group,), min_count_by_regulator=need, min_total_sites=3)
    for s in run(problem, n=3):
        present = set(s.regulators)
        assert len(present & set(group.members)) >= 2
        assert regs[5] in present


def test_side_bias_moves_sites(sites12):
    plain = run(Problem(sites12, 60), n=1)[0]
    reg = plain.library_placements[0].regulator
    left = run(Problem(sites12, 60, side_biases=(SideBias(left=(reg,)),)), n=1)[0]
    right = run(Problem(sites12, 60, side_biases=(SideBias(right=(reg,)),)), n=1)[0]
    lo = min(p.offset for p in left.placements if p.regulator == reg)
    hi = max(p.offset for p in right.placements if p.regulator == reg)
    assert lo < hi
    assert left.n_sites == right.n_sites  # the bias never costs a site


def test_reproducible_with_one_worker(sites12):
    problem = Problem(sites12, 50, promoters=(SIGMA70,))
    a = [s.sequence for s in run(problem, n=4)]
    b = [s.sequence for s in run(problem, n=4)]
    assert a == b


def test_diverse_mode_gives_distinct_site_sets():
    problem = Problem(load_sites(20), 40)
    sols = run(problem, n=5, mode="diverse")
    assert len(sols) == 5
    assert len({s.site_ids for s in sols}) == 5


def test_core_packing_keeps_the_optimum():
    from ortools.sat.python import cp_model

    for start in (0, 20, 40):
        problem = Problem(load_sites(10, start), 36)
        values = []
        for cores in (True, False):
            pm = PositionalModel(problem, core_packing=cores)
            solver = cp_model.CpSolver()
            solver.parameters.num_workers = 1
            solver.parameters.max_time_in_seconds = 20
            assert solver.solve(pm.model) == cp_model.OPTIMAL
            values.append(solver.objective_value)
        assert values[0] == values[1]


@pytest.mark.parametrize(
    "problem, words",
    [
        (Problem(load_sites(5), 20, promoters=(SIGMA70,)), "needs at least"),
        (Problem(load_sites(5), 60, groups=(RegulatorGroup("g", ("NoSuchTF", "Other"), 1),)), "group 'g'"),
        (Problem(load_sites(5), 60, min_count_by_regulator={"NoSuchTF": 1}), "NoSuchTF"),
        (Problem(load_sites(5), 60, min_total_sites=9), "min_total_sites"),
        (Problem(load_sites(5), 60, gc_min=0.6, gc_max=0.4), "gc_min"),
        (
            Problem(load_sites(5), 60, promoters=(dataclasses.replace(SIGMA70, upstream_pos=(50, 55)),)),
            "cannot be placed",
        ),
    ],
)
def test_precheck_reports_reason(problem, words):
    with pytest.raises(InfeasibleProblemError, match=words) as info:
        precheck(problem)
    assert isinstance(info.value, InputError)
    with pytest.raises(InfeasibleProblemError):
        next(solve(problem, FAST, 1))


def test_solver_proves_infeasibility_with_reason(sites12):
    # Every site carries G or C, so with no G/C allowed no site fits: min_total_sites=1 is infeasible.
    problem = Problem(sites12, 40, gc_max=0.0, min_total_sites=1)
    precheck(problem)
    with pytest.raises(InfeasibleProblemError, match="CP-SAT proved"):
        next(solve(problem, FAST, 1))


def test_checker_catches_violations(sites12):
    problem = Problem(sites12, 60, promoters=(SIGMA70,), forbid_kmers=("GATC",))
    sol = run(problem, n=1)[0]
    p0 = next(p for p in sol.placements if not p.fixed)
    i = p0.offset
    flipped = sol.sequence[:i] + ("A" if sol.sequence[i] != "A" else "C") + sol.sequence[i + 1 :]
    assert any("does not match" in e for e in check_solution(problem, dataclasses.replace(sol, sequence=flipped)))
    moved = tuple(
        dataclasses.replace(p, offset=p.offset + 5) if p.site_id == "sigma70:downstream" else p for p in sol.placements
    )
    assert check_solution(problem, dataclasses.replace(sol, placements=moved))
    dup = sol.placements + (p0,)
    assert any("used 2 times" in e for e in check_solution(problem, dataclasses.replace(sol, placements=dup)))
    bad = "GATC" + sol.sequence[4:]
    assert any("forbidden" in e for e in check_solution(problem, dataclasses.replace(sol, sequence=bad, placements=())))


def test_screened_candidates_respect_the_no_goods(sites12):
    """Many solutions (most from Python-screened candidates): valid, distinct sequences, and no
    placement set contains an earlier one (the model's placement no-good)."""
    problem = Problem(sites12, 80, promoters=(SIGMA70,))
    sols = run(problem, n=25)
    assert len(sols) == 25
    sets = [frozenset((p.site_id, p.offset, p.strand) for p in s.library_placements) for s in sols]
    for k, later in enumerate(sets):
        assert not any(earlier <= later for earlier in sets[:k])


def test_neighbour_layouts_are_consistent(sites12):
    """Moves and block reorderings keep every item on its bases and the promoter fixed."""
    import random

    from dnadesign.densegen.solver.heuristics import greedy_layouts, neighbour_layouts

    problem = Problem(sites12, 80, promoters=(SIGMA70,))
    base = greedy_layouts(problem, 0)[0]
    fixed = {t for t in base.items if t[0] < 0}
    cands = list(neighbour_layouts(problem, base, random.Random(0)))
    assert cands
    for lay in cands:
        assert len(lay.sequence) == problem.length
        assert {t for t in lay.items if t[0] < 0} == fixed
        assert sorted(t[0] for t in lay.items) == sorted(t[0] for t in base.items)
        for _si, strand, start, seq, _f in lay.items:
            assert lay.sequence[start : start + len(seq)] == seq
            assert strand in "+-"


def test_collecting_global_search(sites12, monkeypatch):
    """Wall-clock mode uses the collecting global search once candidates run out; what it hands
    over is valid, distinct and respects the placement no-goods."""
    from dnadesign.densegen.solver import sources as sources_mod

    calls = []

    class Counting(sources_mod.Collect):
        def __init__(self, *a, **kw):
            calls.append(1)
            super().__init__(*a, **kw)

    monkeypatch.setattr(sources_mod, "Collect", Counting)
    problem = Problem(sites12, 30)  # dense: the moves of a 4-site layout run out
    sols = run(problem, n=30, deterministic=False, time_limit_s=5.0, run_time_limit_s=40.0)
    assert calls and len(sols) >= 10
    sets = [frozenset((p.site_id, p.offset, p.strand) for p in s.library_placements) for s in sols]
    for k, later in enumerate(sets):
        assert not any(earlier <= later for earlier in sets[:k])
