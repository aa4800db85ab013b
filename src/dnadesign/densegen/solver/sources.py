"""Candidate sources of the enumeration, one class each (the policies list them in order).

Layout sources hand out complete candidate layouts, cheapest first, and return None when they
are dry for now (a new solution or a lower level can refill them): ``DeferredPool``,
``Neighbours``, ``Alternatives``, ``Repeats``. ``SteeredRelaxation`` hands out screened diverse
solutions. The CP-SAT searches (``OptimalSearch``, ``DiverseSearch``) are the last source of
each policy: generators of solutions that also lower the level when a level is used up.
All of them work on the one ``EnumState``.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter
from collections.abc import Iterator

from ortools.sat.python import cp_model

from .cpsat import Collect, StopAtTarget, run, solver_for
from .first_layouts import required_site_sets
from .heuristics import Layout, greedy_layouts, neighbour_layouts
from .model import PositionalModel
from .state import EnumState
from .types import Problem, Solution

EXTRA_SITES = 4  # extra library sites allowed in a diverse-mode neighbourhood solve
MAX_FAILURES = 3  # failed neighbourhoods in a row before a global solve
NEIGHBOUR_LIMIT_S = 1.0  # time cap of one neighbour / neighbourhood solve
COLLECT_MAX_PLACEMENTS = 6000  # global solves collect many solutions on models up to this size
COLLECT_LIMIT_S = 3.0
TOP_LEVEL_LIMIT_S = 1.5  # optimal mode: cap of a global solve above the beam's site count
DIVERSE_GLOBAL_LIMIT_S = 2.0  # diverse mode: cap of a global solve before the level drops
MAX_DEFERRED = 5000  # candidates kept for lower levels (and rearrangements kept for later)
STEER_TRIES = 1  # diverse mode: steered relaxation layouts per round (the densest valid one wins)
MAX_STEER_FAILURES = 5  # ... rounds in a row without a valid one before the CP-SAT route takes over


def moves(st: EnumState, lay: Layout) -> Iterator[Layout]:
    """Candidates near a solution: relaxation variants (another site set), then symmetry moves
    (same sites: rearrangements, kept for after the new site sets)."""
    return itertools.chain(st.relaxation.variants(lay, st.rng), neighbour_layouts(st.problem, lay, st.rng))


class DeferredPool:
    """Candidates with fewer sites than the level when they came: used once the level drops."""

    def __init__(self) -> None:
        self.items: list[Layout] = []

    def take(self, st: EnumState) -> Layout | None:
        """A deferred candidate that reaches the current level, or None."""
        for i, cand in enumerate(self.items):
            if len(cand.library_sites) >= st.level:
                return self.items.pop(i)
        return None

    def put(self, cand: Layout) -> None:
        """Keep a candidate for the levels below (up to ``MAX_DEFERRED``)."""
        if len(self.items) < MAX_DEFERRED:
            self.items.append(cand)


class Neighbours:
    """Moves of the last solution, then the partly used move streams of earlier ones (most
    recent first)."""

    def __init__(self, st: EnumState) -> None:
        assert st.layout is not None
        self.current: Iterator[Layout] | None = moves(st, st.layout)
        self.pending: list[Iterator[Layout]] = []

    def take(self, st: EnumState) -> Layout | None:
        """The next move, or None when every stream is used up."""
        cand = next(self.current, None) if self.current is not None else None
        while cand is None and self.pending:
            self.current = self.pending.pop()
            cand = next(self.current, None)
        return cand

    def on_solution(self, st: EnumState) -> None:
        """A new solution: its moves come first, the current stream waits."""
        assert st.layout is not None
        if self.current is not None:
            self.pending.append(self.current)
        self.current = moves(st, st.layout)


class Alternatives:
    """The other layouts of the relaxation and the beam."""

    def take(self, st: EnumState) -> Layout | None:
        """The next one, or None."""
        return next(st.alternatives, None)


class Repeats:
    """Candidates whose site set was already emitted (rearrangements): used only when no other
    source has a new site set left."""

    def __init__(self) -> None:
        self.items: list[Layout] = []

    def take(self, st: EnumState) -> Layout | None:
        """The oldest one kept, or None."""
        return self.items.pop(0) if self.items else None

    def put(self, cand: Layout) -> None:
        """Keep a rearrangement for later (up to ``MAX_DEFERRED``)."""
        if len(self.items) < MAX_DEFERRED:
            self.items.append(cand)


class SteeredRelaxation:
    """Diverse mode: relaxation layouts steered away from a third of the last sites and from used
    ones, screened in Python against the diverse rules too. Dry after ``MAX_STEER_FAILURES``
    rounds in a row without one, until a CP-SAT solution re-enables it."""

    def __init__(self) -> None:
        self.failures = 0

    def dry(self) -> bool:
        """True while steering is paused."""
        return self.failures >= MAX_STEER_FAILURES

    def take(self, st: EnumState):
        """A screened (solution, chosen) at or above the diverse floor, or None."""
        floor = diverse_floor(st)
        hit = None
        for _ in range(STEER_TRIES):
            drop = set(st.rng.sample(st.last_sites, max(1, len(st.last_sites) // 3))) if st.last_sites else set()
            cand = st.relaxation.steered(drop, st.usage, at_least=floor)
            if cand is None and st.usage:
                cand = st.relaxation.steered(drop, {}, at_least=floor)  # the bans alone
            favour = required_site_sets(st.problem)[:1] if cand is None else []
            if favour:
                # a regulator rule asks for sites the densest paths leave out: push them through
                cand = st.relaxation.steered(drop, st.usage, at_least=floor, favour=frozenset(favour[0]))
            got = st.screen(cand, floor, st.bound_sites) if cand is not None else None
            if got is not None and (hit is None or got[0].n_sites > hit[0].n_sites):
                hit = got
        if hit is None:
            self.failures += 1
        else:
            self.failures = 0
        return hit


def diverse_floor(st: EnumState) -> int:
    """Diverse mode accepts up to a fifth fewer sites than the first solution (at least one)."""
    return max(st.min_level, st.first_level - max(1, st.first_level // 5))


class OptimalSearch:
    """Optimal mode's last source: a global CP-SAT search at the level, hinted with the last
    solution. On models up to ``COLLECT_MAX_PLACEMENTS`` placements it enumerates and hands over
    every new placement set it meets; otherwise one solve that stops at the first solution. The
    level drops when CP-SAT proves it empty or the search times out."""

    def __init__(self, st: EnumState) -> None:
        self.collect_ok = not st.options.deterministic  # its patience is wall-clock based

    def search(self, st: EnumState, n_solutions: int) -> Iterator[Solution]:
        """Solutions found by one search (each emitted); may lower ``st.level``."""
        pm, options = st.pm, st.options
        assert st.layout is not None
        pm.set_hint(st.layout.sequence, st.layout.items)
        limit = options.time_limit_s
        if st.level > st.beam_sites:
            # The first solve beat the beam: this level has few known layouts; a short search
            # for more, then the level below, where beam layouts and their moves exist.
            limit = min(limit, TOP_LEVEL_LIMIT_S)
        limit = min(limit, st.remaining())
        if self.collect_ok and len(pm.placements) <= COLLECT_MAX_PLACEMENTS:
            yield from self._collect(st, n_solutions, min(limit, COLLECT_LIMIT_S))
            return
        solver = solver_for(options, limit, len(pm.placements))
        ts = time.monotonic()
        status = run(solver, pm.model, options, limit, StopAtTarget(pm.n_sites_expr, st.level))
        dt = time.monotonic() - ts
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            recorded = st.accept(solver.value, dt, int(solver.value(pm.n_sites_expr)) >= st.bound_sites, float(st.bound_sites))
            if recorded[0].sequence not in st.seen_seq:
                yield st.emit(recorded)
        else:
            st.drop_level(proven_empty=status == cp_model.INFEASIBLE)

    def _collect(self, st: EnumState, n_solutions: int, limit: float) -> Iterator[Solution]:
        """One search that hands over every new placement set it meets, instead of one solve per
        solution (small models; gap-base variants of a set are skipped)."""
        pm, options = st.pm, st.options
        coll = Collect(pm, n_solutions - st.emitted)
        solver = solver_for(options, limit, len(pm.placements))
        solver.parameters.enumerate_all_solutions = True
        ts = time.monotonic()
        status = run(solver, pm.model, options, limit, coll)
        dt = time.monotonic() - ts
        got = 0
        for seq, placements, chosen, obj in coll.found:
            keys = frozenset((p.site_index, p.start, p.sequence) for p in chosen if not p.fixed)
            if seq in st.seen_seq or len(keys) < st.level or any(prev <= keys for prev in st.emitted_sets):
                continue
            sol = Solution(seq, placements, obj, len(keys) >= st.bound_sites, dt, float(st.bound_sites), st.emitted)
            got += 1
            yield st.emit(st.record(sol, chosen))
            if st.emitted >= n_solutions:
                return
        if got:
            return
        if status == cp_model.INFEASIBLE:
            st.drop_level(proven_empty=True)
        else:
            self.collect_ok = False  # fall back to ordinary solves


class DiverseSearch:
    """Diverse mode's CP-SAT route: beam layouts as complete candidates (screened in Python, else
    validated by CP-SAT; skipped when they miss a regulator rule), fresh
    beam layouts away from the last and most used sites, neighbourhood solves (a third of the
    last sites dropped, the least used added), then global solves."""

    def __init__(self, st: EnumState) -> None:
        self.failures = 0  # neighbourhood solves in a row without a solution
        self.beam_tries = 0  # fresh diverse beam layouts tried since the last solution

    def search(self, st: EnumState) -> Iterator[Solution]:
        """At most one solution (emitted); may lower ``st.level`` or relax the distance rule."""
        pm, options, problem = st.pm, st.options, st.problem
        target = st.level
        kind = "global"
        cand = next(st.alternatives, None)  # other dense layouts (new orders, orientations, sites)
        while cand is not None and (cand.sequence in st.seen_seq or len(cand.items) - len(problem.promoters) * 2 < st.level
                                    or not meets_regulator_rules(problem, cand)):
            cand = next(st.alternatives, None)
        if cand is None and self.beam_tries < MAX_FAILURES:
            self.beam_tries += 1
            cand = _diverse_layout(problem, st.last_sites, st.usage, st.rng)
            n_cand = len(cand.items) - len(problem.promoters) * 2 if cand is not None else -1
            if cand is not None and not meets_regulator_rules(problem, cand):
                cand = None  # the model refuses it for sure: no CP-SAT call to confirm that
            elif cand is not None and cand.sequence not in st.seen_seq and diverse_floor(st) <= n_cand < st.level:
                target = n_cand  # a new site set is worth up to a fifth fewer sites
                st.require(target)
            elif cand is not None and (cand.sequence in st.seen_seq or n_cand < st.level):
                cand = None
        st.temp.extend(_distance_constraints(pm, st.recent_sets[-3:]))
        assert st.layout is not None
        if cand is not None:
            hit = st.screen(cand, target, st.bound_sites)
            if hit is not None:  # a model solution, without the CP-SAT call that would confirm it
                self.failures = 0
                self.beam_tries = 0
                yield st.emit(st.record(*hit))
                return
            kind = "neighbour"
            pm.set_hint(cand.sequence, cand.items)
        else:
            pm.set_hint(st.layout.sequence, st.layout.items)
            if self.failures < MAX_FAILURES and len(problem.sites) > len(st.last_sites) + EXTRA_SITES:
                kind = "neighbourhood"
                st.temp.append(_neighbourhood(pm, st.last_sites, st.usage, st.rng, self.failures))
        limit = options.time_limit_s if kind == "global" else min(options.time_limit_s, NEIGHBOUR_LIMIT_S)
        if kind == "global":
            limit = min(limit, DIVERSE_GLOBAL_LIMIT_S)
        limit = min(limit, st.remaining())
        solver = solver_for(options, limit, len(pm.placements))
        if kind == "neighbour":
            # Validate the complete candidate against every constraint: presolve fixes all
            # variables to the hint, so this is a model check, not a search.
            solver.parameters.fix_variables_to_their_hinted_value = True
        ts = time.monotonic()
        status = run(solver, pm.model, options, limit, StopAtTarget(pm.n_sites_expr, target))
        dt = time.monotonic() - ts
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            recorded = st.accept(solver.value, dt, int(solver.value(pm.n_sites_expr)) >= st.bound_sites, float(st.bound_sites))
            if recorded[0].sequence not in st.seen_seq:
                self.failures = 0
                self.beam_tries = 0
                yield st.emit(recorded)
        elif kind == "neighbourhood":
            self.failures += 1
        elif kind == "neighbour":
            pass  # candidate rejected by the model; try the next one
        elif st.recent_sets:
            st.recent_sets.clear()  # distance too strict (or too slow): keep only the exact no-goods
        else:
            st.drop_level(proven_empty=status == cp_model.INFEASIBLE)
            self.failures = 0


def meets_regulator_rules(problem: Problem, cand: Layout) -> bool:
    """False when the distinct sites of a complete candidate miss a regulator minimum or group
    (validated with every variable fixed to it, the model could only count fewer sites)."""
    regs = Counter(problem.sites[si].regulator for si in set(cand.library_sites))
    if any(regs[r] < k for r, k in problem.min_count_by_regulator.items()):
        return False
    return all(sum(1 for r in g.members if regs[r]) >= g.min_required for g in problem.groups)


def _diverse_layout(problem: Problem, last_sites: list[int], usage: Counter, rng: random.Random) -> Layout | None:
    """Beam layout without a random quarter of the last sites and without the most used sites."""
    if not last_sites:
        return None
    drop = set(rng.sample(last_sites, max(1, len(last_sites) // 4)))
    if usage:
        top = max(usage.values())
        drop |= {i for i, c in usage.items() if c == top and c > 1}
    layouts = greedy_layouts(problem, rng.randrange(1 << 30), frozenset(drop))
    return layouts[0] if layouts else None


def _neighbourhood(pm: PositionalModel, last_sites: list[int], usage: Counter, rng: random.Random, failures: int) -> int:
    """Diverse mode: allow only the last sites minus a third plus the least-used others."""
    n_lib = len(pm.problem.sites)
    last = set(last_sites)
    others = [i for i in range(n_lib) if i not in last]
    rng.shuffle(others)
    others.sort(key=lambda i: usage[i])
    keep = last | set(others[: EXTRA_SITES * (1 + failures)])
    if last_sites:
        keep -= set(rng.sample(last_sites, max(1, len(last_sites) // 3)))
    banned = [pm.used[i] for i in range(n_lib) if i not in keep]
    return pm.model.add(sum(banned) == 0).index


def _distance_constraints(pm: PositionalModel, sets: list[list[int]]) -> list[int]:
    """Diverse mode: share at most two thirds of the sites of each recent solution."""
    out = []
    for sites in sets:
        if len(sites) >= 2:
            out.append(pm.model.add(sum(pm.used[i] for i in sites) <= (2 * len(sites)) // 3).index)
    return out
