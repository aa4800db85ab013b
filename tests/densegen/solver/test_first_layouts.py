"""The first solution without CP-SAT (solver/first_layouts.py) and the bound with regulator
minimums priced in (``Relaxation.required_bound``), on real RegulonDB libraries shaped like the
demo's (10 sites, L=100, LexA required, sigma70 hexamers forbidden)."""

from __future__ import annotations

import random

import pytest
from ortools.sat.python import cp_model

from dnadesign.densegen.solver import (
    Problem,
    PromoterConstraint,
    RegulatorGroup,
    Site,
    SolverOptions,
    check_solution,
    solve,
)
from dnadesign.densegen.solver import enumerate as enumeration
from dnadesign.densegen.solver.bound import relax
from dnadesign.densegen.solver.first_layouts import regulator_minimums, required_site_sets
from dnadesign.densegen.solver.model import PositionalModel

from .test_bound import lib100, proven_optimum

SIGMA70 = PromoterConstraint("sigma70", "TTGACA", "TATAAT", 16, 18, upstream_pos=(20, 60))
FORBID = ("TTGACA", "TATAAT")
STRESS = (RegulatorGroup("stress", ("LexA", "CpxR"), 1),)

# Two libraries drawn by `dense run` on workspaces/demo_sites (RegulonDB sites).
LIB_A = (("LexA", "TACTGTGCCATTTTTCAGTT"), ("ArcA", "TAAACATAAATGTCA"), ("FNR", "TTGATTTATTTCAC"),
         ("Fis", "GATCGCAAAACAGAC"), ("Fur", "TATAAATGATAATCA"), ("CpxR", "GCAACTCCCTGAAAC"),
         ("LexA", "AGCTGAATAAATATACAGCA"), ("Fur", "TAATAATCATTCTCG"), ("CpxR", "TGGACAATTTTTTAC"),
         ("FNR", "AATCAAATATTTACT"))
# Its densest layouts (7 sites) leave LexA out; with LexA, 6 sites is the optimum.
LIB_B = (("LexA", "CACTGTATAAATAAACAGCT"), ("Fis", "GGGTGAAAAAACAAC"), ("ArcA", "TTTATTAGTTGTATG"),
         ("CpxR", "TTTACTTTTGGTTAC"), ("FNR", "TACAATTTATTAACT"), ("Fur", "TATCATGATTAACAATCAT"),
         ("Fis", "GTTAGCCATAAATAA"), ("Fur", "AATAATGCTTCTCATTTTC"), ("CpxR", "AGTTACATGTTTAAC"),
         ("FNR", "TCCTCATTTTAATAA"))


def library(rows) -> tuple[Site, ...]:
    return tuple(Site(f"{tf}:{i}", seq, tf) for i, (tf, seq) in enumerate(rows))


def demo_problem(rows, promoters=()) -> Problem:
    return Problem(library(rows), 100, promoters=promoters, forbid_kmers=FORBID, groups=() if promoters else STRESS,
                   min_count_by_regulator={"LexA": 1}, min_total_sites=3)


def cpsat_best(problem: Problem, work: float = 5.0) -> int:
    """The most library sites CP-SAT finds within ``work`` units of deterministic time (one
    worker, so reproducible whatever the load: a wall-clock limit found nothing on saturated
    cores; 5 units are about 2 CPU s here). At L=100 it cannot prove these optima within 30 s,
    which the path relaxation does in milliseconds."""
    pm = PositionalModel(problem)
    pm.model.maximize(pm.n_sites_expr)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_deterministic_time = work
    assert solver.solve(pm.model) in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    return round(solver.objective_value)


class CountingOptimise:
    """Counts the first CP-SAT solves ``solve`` makes (the real ones still run)."""

    def __init__(self, real):
        self.real, self.calls = real, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.real(*args, **kwargs)


@pytest.fixture
def first_solves(monkeypatch) -> CountingOptimise:
    counter = CountingOptimise(enumeration._optimise)
    monkeypatch.setattr(enumeration, "_optimise", counter)
    return counter


@pytest.mark.parametrize("rows", [LIB_A, LIB_B], ids=["lib_a", "lib_b"])
def test_demo_libraries_first_solution_is_proven_without_cpsat(rows, first_solves):
    problem = demo_problem(rows)
    first = next(solve(problem, SolverOptions(time_limit_s=2, seed=7, workers=1, clock="cpu"), 1))
    assert check_solution(problem, first) == []
    assert "LexA" in first.regulators
    assert first.optimal and first.bound == first.n_sites
    assert first.n_sites >= cpsat_best(problem)
    assert first_solves.calls == 0


def test_required_bound_proves_the_layout_below_the_plain_bound():
    problem = demo_problem(LIB_B)
    relaxation = relax(problem, known=0, time_budget_s=None, max_iterations=60)
    assert relaxation.bound == 7 and cpsat_best(problem) == 6
    assert relaxation.required_bound(regulator_minimums(problem), known=6) == 6
    assert relaxation.required_bound([], known=6) is None


def random_library(rng: random.Random, n: int, required: str) -> tuple[Site, ...]:
    """``n`` sites of the 100-site RegulonDB library, at least one of them of ``required``."""
    sites = lib100()
    pool = [s for s in sites if s.regulator == required]
    picked = rng.sample(pool, 1) + rng.sample([s for s in sites if s not in pool[:1]], n - 1)
    return tuple(dict.fromkeys(picked))


@pytest.mark.parametrize("seed", range(8))
def test_required_bound_never_below_the_proven_optimum(seed):
    rng = random.Random(seed)
    sites = lib100()
    # the regulator of one of the longest sites: the densest paths tend to leave it out
    longest = sorted(sites, key=lambda s: -len(s.sequence))[: 10]
    required = rng.choice(longest).regulator
    promoters = (PromoterConstraint("sigma70", "TTGACA", "TATAAT", 16, 18),) if seed % 2 else ()
    k = 1 + (seed % 3 == 0)
    problem = Problem(random_library(rng, 7, required), 55 if promoters else 45, promoters=promoters,
                      min_count_by_regulator={required: k})
    optimum = proven_optimum(problem)
    relaxation = relax(problem, known=0, time_budget_s=None, max_iterations=60)
    bound = relaxation.required_bound(regulator_minimums(problem), known=0, iterations=80)
    if optimum is not None and bound is not None:
        assert bound >= optimum
    if optimum is not None:
        first = next(solve(problem, SolverOptions(time_limit_s=10, seed=seed, workers=1, deterministic=True), 1))
        assert check_solution(problem, first) == []
        if first.optimal:
            assert first.n_sites == optimum


def test_required_site_sets_lists_required_regulators_together_first():
    problem = demo_problem(LIB_A)
    sets = required_site_sets(problem)
    lexa = {i for i, s in enumerate(problem.sites) if s.regulator == "LexA"}
    cpxr = {i for i, s in enumerate(problem.sites) if s.regulator == "CpxR"}
    assert sets[0] == lexa
    assert {i for s in sets[1:] for i in s} == lexa | cpxr  # then each site alone, the group's members too
    assert all(len(s) == 1 for s in sets[1:])
    assert required_site_sets(Problem(problem.sites, 100)) == []


def test_small_models_are_solved_on_one_worker():
    from dnadesign.densegen.solver.cpsat import ONE_WORKER_MAX_PLACEMENTS, solver_for

    options = SolverOptions(time_limit_s=2, workers=2)
    demo = PositionalModel(demo_problem(LIB_A))
    assert len(demo.placements) <= ONE_WORKER_MAX_PLACEMENTS
    assert solver_for(options, 1.0, len(demo.placements)).parameters.num_workers == 1
    assert solver_for(options, 1.0, ONE_WORKER_MAX_PLACEMENTS + 1).parameters.num_workers == 2
