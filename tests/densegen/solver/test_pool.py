"""Large libraries: hashed overlaps, the sparse path relaxation and the candidate pool.

Real RegulonDB rows (``tests/data/tfbs_lib100.csv``, whose optimum at L=120 CP-SAT proves to be
15 sites plain); the thresholds that switch to the large-library path are lowered so that the
same code runs on a library small enough to know its optimum.
"""

from __future__ import annotations

import dataclasses

from dnadesign.densegen.solver import Problem, PromoterConstraint, SideBias, SolverOptions, check_solution, solve
from dnadesign.densegen.solver import bound as bound_mod
from dnadesign.densegen.solver import cpsat as cpsat_mod
from dnadesign.densegen.solver import enumerate as enum_mod
from dnadesign.densegen.solver import pool as pool_mod
from dnadesign.densegen.solver import sources as sources_mod
from dnadesign.densegen.solver.cores import max_overlap
from dnadesign.densegen.solver.dna import oriented_sequences
from dnadesign.densegen.solver.overlaps import containers, largest_overlaps, overlap_arcs

from .test_bound import lib100

SIGMA70 = PromoterConstraint("sigma70", "TTGACA", "TATAAT", 16, 18)


def _oriented(sites):
    seqs, owner = [], []
    for si, site in enumerate(sites):
        for _strand, seq in oriented_sequences(site.sequence, "double"):
            seqs.append(seq)
            owner.append(si)
    return seqs, owner


def test_hashed_overlaps_equal_the_pairwise_ones():
    seqs, owner = _oriented(lib100()[:60])
    a, b, ov = overlap_arcs(seqs, owner, 1)
    got = {(int(x), int(y)): int(k) for x, y, k in zip(a, b, ov, strict=True)}
    want = {
        (x, y): max_overlap(seqs[x], seqs[y])
        for x in range(len(seqs))
        for y in range(len(seqs))
        if owner[x] != owner[y] and max_overlap(seqs[x], seqs[y]) > 0
    }
    assert got == want
    out, into = largest_overlaps(seqs, owner)
    for x in range(len(seqs)):
        assert out[x] == max([k for (p, _q), k in want.items() if p == x], default=0)
        assert into[x] == max([k for (_p, q), k in want.items() if q == x], default=0)
    held = containers(seqs, seqs)
    for x in range(len(seqs)):
        assert held[x] == [y for y in range(len(seqs)) if seqs[x] in seqs[y]]


def test_sparse_relaxation_bound_is_valid(monkeypatch):
    """Forced onto the large-library path (hashed overlaps >= 3 bases, shorter ones folded into
    a cheaper default arc), the bound is looser but never below the proven optimum (15 plain,
    14 with sigma70 at most: the exact bound there)."""
    monkeypatch.setattr(bound_mod, "MAX_ITEMS", 10)
    plain = bound_mod.relax(Problem(lib100(), 120), time_budget_s=None, max_iterations=60)
    assert plain.bound is not None and plain.bound >= 15
    prom = bound_mod.relax(Problem(lib100(), 120, promoters=(SIGMA70,)), time_budget_s=None, max_iterations=60)
    assert prom.bound is not None and prom.bound >= 14
    for lay in plain.layouts + prom.layouts:  # realised layouts are real layouts, checked
        assert len(lay.sequence) == 120


def test_pool_solutions_are_solutions_of_the_full_problem(monkeypatch):
    """A library above the pool threshold is solved on a pool of its sites; every solution passes
    the checker against the full library, and bound/optimal refer to the full library."""
    monkeypatch.setattr(pool_mod, "POOL_MIN_ORIENTED", 100)
    monkeypatch.setattr(pool_mod, "POOL_SITES", 40)
    problem = Problem(lib100(), 120, min_count_by_regulator={lib100()[0].regulator: 1})
    chosen = pool_mod.choose_pool(problem)
    assert 40 <= len(chosen) < 100
    assert any(problem.sites[i].regulator == lib100()[0].regulator for i in chosen)
    sols = list(solve(problem, SolverOptions(time_limit_s=20, seed=0, deterministic=True), 5))
    assert len(sols) == 5 and len({s.sequence for s in sols}) == 5
    for sol in sols:
        assert check_solution(problem, sol) == []
        assert sol.bound is not None and sol.bound >= 15  # valid for the full library
        assert sol.optimal == (sol.n_sites >= int(sol.bound + 1e-9))
    assert sols[0].n_sites >= 12


def test_pool_ranks_short_overlapping_sites_first():
    sites = lib100()
    problem = Problem(sites, 120)
    scores = pool_mod.site_scores(problem)
    chosen = pool_mod.choose_pool(dataclasses.replace(problem), size=20)
    worst_in = max(scores[i] for i in chosen)
    assert sum(1 for s in scores if s < worst_in) < 20


def test_solves_without_presolve_keep_every_solution_checked(monkeypatch):
    """Large models are solved with CP-SAT's presolve off; forced here on a small one (a side
    bias makes the first solve a CP-SAT one), every solution passes the checker."""
    monkeypatch.setattr(cpsat_mod, "PRESOLVE_MAX_PLACEMENTS", 0)
    made = []
    original = cpsat_mod.solver_for

    def counting(*args, **kwargs):
        solver = original(*args, **kwargs)
        made.append(solver.parameters.cp_model_presolve)
        return solver

    monkeypatch.setattr(enum_mod, "solver_for", counting)
    monkeypatch.setattr(sources_mod, "solver_for", counting)
    sites = lib100()[:40]
    problem = Problem(sites, 90, promoters=(SIGMA70,), side_biases=(SideBias(left=(sites[0].regulator,)),))
    sols = list(solve(problem, SolverOptions(time_limit_s=10, seed=0, deterministic=True), 6))
    assert made and not any(made)
    assert len(sols) == 6
    assert all(check_solution(problem, s) == [] for s in sols)
