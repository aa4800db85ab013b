"""Which library sites enter the model: a candidate pool for large libraries.

Measured at 1000 RegulonDB sites, L=200 (one worker, before this module): the beam alone took
33 s CPU and 560 MB, the positional model 34 s more and 1.4 GB (368k placement literals), before
any CP-SAT search. Dense layouts use few sites: short ones that overlap their neighbours. So for
libraries above ``POOL_MIN_ORIENTED`` oriented sites, the solve runs on a pool of the most
promising ``POOL_SITES`` sites (every solution of the pool is a solution of the full problem:
same ids, same rules) while the reported bound comes from the path relaxation of the *full*
library (overlaps hashed into hubs: ``bound.relax``), so ``optimal`` and ``bound`` stay honest.

Ranking: a site's cost in a dense layout is its length minus the overlaps it shares with its
neighbours; each site is scored by its length minus half of its largest overlap in and out
(with any other site of the library, either orientation), lowest first. Sites the constraints
need are always in: the best few of every regulator with a minimum, of every group member and
of every side-biased regulator or site, and sites that hold a promoter element. Under weights
the score is divided by the site's value (``value_scores``) and the bound is the full library's
weighted relaxation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Generator, Mapping

from .bound import relax, site_values
from .bound_fixing import tighten
from .budget import Budget, charge, counted, solve_clock
from .dna import oriented_sequences, placeable_orientations
from .enumerate import Enumeration
from .enumerate import solve as enumerate_solve
from .heuristics import Layout
from .hub_dp import load_kernels
from .overlaps import largest_overlaps
from .path_search import MIN_SECONDS as SEARCH_MIN_S
from .path_search import counted_rounds
from .precheck import precheck
from .promoter_bound import bound_problem, warm_bound
from .promoter_search import search_layouts
from .types import Problem, Solution, SolverOptions

POOL_MIN_ORIENTED = 600  # libraries with more oriented sites than this are solved on a pool
POOL_SITES = 150  # sites in the pool (300 oriented: the relaxation and model stay sub-second-ish)
VISITED_SHARE = 70  # percent of the pool taken from the full relaxation's paths (most visited first)
NEEDED_PER_RULE = 3  # extra sites per regulator a rule names, beyond its minimum
# The bound's shares (compiled hub program, kernels loaded before; docs/solver.md): 0.8 + 0.6 s
# gave the same bound as 1.2 + 0.8 s on the 12 bench draws of 1000 sites (and 1 site better than
# main's 1.2 + 0.8 s on 6 of them); 0.6 + 0.4 s was 1 site worse on 5.
BOUND_SHARE = 0.08  # share of the first-solution limit the full library's relaxation may use
BOUND_CAP_S = 0.8  # ... and at most this many seconds
FIXING_SHARE = 0.06  # share the reduced-cost fixing after it may use (``bound_fixing.tighten``)
FIXING_CAP_S = 0.6  # ... and at most this many seconds
FIXING_STEPS = 40  # DP passes of the fixing when ``deterministic``
PROMOTER_BOUND_SHARE = 0.08  # share for the promoter's own relaxation after that (``promoter_bound.warm_bound``)
PROMOTER_BOUND_CAP_S = 0.8  # ... and at most this many seconds
SEARCH_SHARE = 0.3  # share of the first-solution limit the search over the full library may use
PROMOTER_SEARCH_SHARE = 0.25  # ... with a promoter (after the warm bound; the pool's solve, on a larger pool, builds longer)
INNER_MARGIN_S = 0.3  # kept back from the pool's solve: its CP-SAT stops a little after its limit
TIE_BREAK_ROOM = 0.999999  # side-bias tie-break room above the site bound (objective units)


def site_scores(problem: Problem) -> list[float]:
    """Per site: length minus half its largest in- and out-overlap with other sites (best
    orientation; sites whose every orientation holds a forbidden k-mer score infinity)."""
    oriented = placeable_orientations(problem)
    seqs = [seq for _si, _strand, seq in oriented]
    owner = [si for si, _strand, _seq in oriented]
    out, into = largest_overlaps(seqs, owner)
    scores = [float("inf")] * len(problem.sites)
    for k, si in enumerate(owner):
        scores[si] = min(scores[si], len(seqs[k]) - 0.5 * float(out[k] + into[k]))
    return scores


def value_scores(scores: list[float], values: list[int]) -> list[float]:
    """Under weights: each site's score (bases it costs) per unit of objective value, so a site
    worth 3 competes with three sites worth 1 of a third of its cost."""
    return [score / value for score, value in zip(scores, values, strict=True)]


def choose_pool(problem: Problem, size: int | None = None, visits: Mapping[int, int] | None = None) -> list[int]:
    """Indices (sorted) of the ``size`` (default ``POOL_SITES``) most promising sites plus those
    the constraints need. ``visits`` (site -> relaxed paths of the full library it was on) ranks
    first: the relaxation picks sites together with their overlap partners."""
    size = POOL_SITES if size is None else size
    scores = site_scores(problem)
    if problem.weighted:
        scores = value_scores(scores, site_values(problem))
    order = sorted(range(len(problem.sites)), key=lambda i: (scores[i], len(problem.sites[i].sequence), i))
    order = [i for i in order if scores[i] != float("inf")]
    visited = sorted((i for i in (visits or {}) if scores[i] != float("inf")), key=lambda i: (-(visits or {})[i], scores[i], i))
    chosen: set[int] = set(visited[: size * VISITED_SHARE // 100])
    for i in order:
        if len(chosen) >= size:
            break
        chosen.add(i)
    by_reg: dict[str, list[int]] = {}
    for i in order:
        by_reg.setdefault(problem.sites[i].regulator, []).append(i)
    needs: dict[str, int] = {}
    for reg, k in problem.min_count_by_regulator.items():
        needs[reg] = max(needs.get(reg, 0), k + NEEDED_PER_RULE)
    for group in problem.groups:
        for reg in group.members:
            needs[reg] = max(needs.get(reg, 0), NEEDED_PER_RULE)
    listed_ids: set[str] = set()
    for bias in problem.side_biases:
        for name in (*bias.left, *bias.right):
            if name in by_reg:
                needs[name] = max(needs.get(name, 0), NEEDED_PER_RULE)
            else:
                listed_ids.add(name)
    for reg, k in needs.items():
        chosen.update(by_reg.get(reg, [])[:k])
    elements = [e for p in problem.promoters for e in (p.upstream, p.downstream)]
    holders = [i for i in order if any(e in s for e in elements for _st, s in oriented_sequences(problem.sites[i].sequence, problem.strands))]
    chosen.update(holders[:NEEDED_PER_RULE * 4])
    chosen.update(i for i in order if problem.sites[i].id in listed_ids)
    return sorted(chosen)


def solve(problem: Problem, options: SolverOptions, n_solutions: int) -> Enumeration:
    """``enumerate.solve`` on the full library, or on a pool of it for large libraries (with the
    full library's bound in every solution's ``bound`` and ``optimal``)."""
    oriented = len(problem.sites) * (2 if problem.strands == "double" else 1)
    if oriented <= POOL_MIN_ORIENTED or n_solutions <= 0:
        return enumerate_solve(problem, options, n_solutions)
    return Enumeration(_pooled(problem, options, n_solutions))


def _in_pool(layout: Layout, pool: list[int]) -> Layout:
    """``layout`` with its site indices those of the pool (every site of it is in the pool)."""
    at = {si: k for k, si in enumerate(pool)}
    return Layout(layout.sequence, tuple((at[t[0]] if t[0] >= 0 else t[0], *t[1:]) for t in layout.items))


def _searched(problem: Problem, options: SolverOptions, full, bound: int | None, clock) -> list[Layout]:
    """The densest checked layout of the local search over every site (``path_search``), which
    joins the pool with its sites and starts the pool's solve; [] when it finds none or the
    share of the limit is too small for it. The search stops early once it reaches ``bound``."""
    search_s = (PROMOTER_SEARCH_SHARE if problem.promoters else SEARCH_SHARE) * options.time_limit_s
    if search_s < SEARCH_MIN_S:
        return []
    end = clock() + search_s
    cancel = options.cancel

    def stop() -> bool:
        return clock() > end or (cancel is not None and cancel.is_set())

    rounds = counted_rounds(search_s) if counted(clock) else None
    enough = bound if bound is not None else math.inf
    found = search_layouts(problem, site_values(problem), list(full.layouts[:2]), stop, options.seed,
                           rounds=rounds, enough=enough)[:1]
    charge(clock, search_s)  # counted budgets: the round cap does about its share's work
    return found


def _pooled(problem: Problem, options: SolverOptions, n_solutions: int) -> Generator[Solution, None, str | None]:
    precheck(problem)  # reasons on the full library first (a pool could hide the real cause)
    clock = solve_clock(options.deterministic, options.clock)  # counts work when deterministic (budget.py)
    first = Budget(clock, options.time_limit_s)
    if not first.counted:
        load_kernels()  # numba's import and cache (~1 s of CPU once per process) outside the bound's share
    share = min(BOUND_CAP_S, BOUND_SHARE * options.time_limit_s)
    bounded = bound_problem(problem)  # with a promoter: the same problem without it (promoter_bound.py)
    if first.counted:
        full = relax(bounded, time_budget_s=None, max_iterations=8, seed=options.seed, fill_best=0)
        bound = tighten(bounded, full, clock=clock, max_steps=FIXING_STEPS)
        first.charge(share + min(FIXING_CAP_S, FIXING_SHARE * options.time_limit_s))  # their nominal shares
    else:
        full = relax(bounded, time_budget_s=share, max_iterations=10_000, seed=options.seed, clock=clock, fill_best=0)
        bound = tighten(bounded, full, clock=clock, deadline=clock() + min(FIXING_CAP_S, FIXING_SHARE * options.time_limit_s))
    if problem.promoters:  # the promoter's own relaxation, from the multipliers above
        warm_s = min(PROMOTER_BOUND_CAP_S, PROMOTER_BOUND_SHARE * options.time_limit_s)
        bound = warm_bound(problem, full, bound, clock=clock, time_budget_s=None if first.counted else warm_s, seed=options.seed)
        if first.counted:
            first.charge(warm_s)
    found = _searched(problem, options, full, bound, clock)
    pool = sorted(set(choose_pool(problem, visits=full.visits)).union(*(lay.library_sites for lay in found)))
    sub = dataclasses.replace(problem, sites=tuple(problem.sites[i] for i in pool))
    sub_options = dataclasses.replace(options, time_limit_s=max(0.05, first.left() - INNER_MARGIN_S))
    inner = enumerate_solve(sub, sub_options, n_solutions, seeds=tuple(_in_pool(lay, pool) for lay in found))
    for sol in inner:
        if bound is None:
            yield dataclasses.replace(sol, optimal=False, bound=None)
            continue
        # Objective units: with side biases the tie-break (< 1) may come on top of the sites.
        value = float(bound) + (TIE_BREAK_ROOM if problem.side_biases else 0.0)
        reached = (math.floor(sol.objective + 1e-9) if problem.weighted else sol.n_sites) >= bound
        yield dataclasses.replace(sol, optimal=reached, bound=value)
    return inner.end_reason
