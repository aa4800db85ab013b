"""Candidate sources of the enumeration, one class each (the policies list them in order).

Layout sources hand out complete candidate layouts, cheapest first, and return None when they
are dry for now (a new solution or a lower level can refill them): ``DeferredPool``,
``Neighbours``, ``Alternatives``, ``Repeats`` and diverse mode's ``Held``.
``SteeredRelaxation`` hands out diverse layouts screened at the level. The CP-SAT searches
(``OptimalSearch``, ``DiverseSearch``) are the last source of each policy: generators of
solutions that also lower the level when a level is used up.
All of them work on the one ``EnumState``.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator

from ortools.sat.python import cp_model

from .budget import charge_cpsat
from .cpsat import Collect, StopAtTarget, run, solver_for
from .first_layouts import required_site_sets
from .heuristics import Layout, neighbour_layouts
from .state import EnumState
from .types import Solution

COLLECT_MAX_PLACEMENTS = 6000  # global solves collect many solutions on models up to this size
COLLECT_LIMIT_S = 3.0
TOP_LEVEL_LIMIT_S = 1.5  # optimal mode: cap of a global solve above the beam's site count
MAX_DEFERRED = 5000  # candidates kept for lower levels (and rearrangements kept for later)
DIVERSE_LEVEL_LIMIT_S = 3.0  # diverse mode: a CP-SAT search at the level finding nothing in this long drops the level
NUDGE_TRIES = 8  # diverse mode: nudged relaxation layouts per solution
MAX_STEER_FAILURES = 1  # diverse mode: steered rounds in a row without a layout at the level before steering pauses
MAX_LEVEL_SETS = 300  # diverse mode: site sets of a level probed one by one when the library has at most this many


def moves(st: EnumState, lay: Layout) -> Iterator[Layout]:
    """Candidates near a solution: relaxation variants (another site set), then symmetry moves
    (same sites: rearrangements, kept for after the new site sets)."""
    return itertools.chain(st.relaxation.variants(lay, st.rng), neighbour_layouts(st.problem, lay, st.rng))


def variants(st: EnumState, lay: Layout) -> Iterator[Layout]:
    """Diverse mode's moves: relaxation variants only (each another site set); rearrangements
    of a site set are never a diverse solution."""
    return st.relaxation.variants(lay, st.rng)


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

    def __init__(self, st: EnumState, moves_of=None) -> None:
        assert st.layout is not None
        self.moves_of = moves_of or moves
        self.current: Iterator[Layout] | None = self.moves_of(st, st.layout)
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
        self.current = self.moves_of(st, st.layout)


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


class Held(Repeats):
    """Diverse mode: screened candidates at the level that were not the most spread one, kept
    for the next rounds (screened again before use)."""


class Nudged:
    """Diverse mode: relaxation layouts nudged away from the last solution (a random 1 to a third
    of its sites banned) and from used sites (weight lowered per use), one DP pass each; up to
    ``NUDGE_TRIES`` per solution."""

    def __init__(self) -> None:
        self.tries = 0

    def take(self, st: EnumState) -> Layout | None:
        """The next nudged layout (unchecked), or None when this solution's tries are spent."""
        last = st.last_sites
        while last and self.tries < NUDGE_TRIES:
            self.tries += 1
            k = 1 + (self.tries - 1) % max(1, len(last) // 3)
            cand = st.relaxation.nudged(set(st.rng.sample(last, k)), st.usage, st.rng)
            if cand is not None:
                return cand
        return None

    def on_solution(self) -> None:
        """A new solution (or level): nudge away from it."""
        self.tries = 0


class SteeredRelaxation:
    """Diverse mode: relaxation layouts steered away from a third of the last sites and from used
    ones, at the current level (never below it). Dry after ``MAX_STEER_FAILURES`` rounds in a row
    without one, until the level drops."""

    def __init__(self) -> None:
        self.failures = 0

    def dry(self) -> bool:
        """True while steering is paused."""
        return self.failures >= MAX_STEER_FAILURES

    def take(self, st: EnumState) -> tuple[Layout | None, tuple | None]:
        """(the steered layout or None, its screened (solution, chosen) at the level or None)."""
        drop = set(st.rng.sample(st.last_sites, max(1, len(st.last_sites) // 3))) if st.last_sites else set()
        cand = st.relaxation.steered(drop, st.usage, at_least=st.level)
        if cand is None and st.usage:
            cand = st.relaxation.steered(drop, {}, at_least=st.level)  # the bans alone
        favour = required_site_sets(st.problem)[:1] if cand is None else []
        if favour:
            # a regulator rule asks for sites the densest paths leave out: push them through
            cand = st.relaxation.steered(drop, st.usage, at_least=st.level, favour=frozenset(favour[0]))
        hit = st.screen(cand, st.level, st.bound_sites) if cand is not None else None
        self.failures = 0 if hit is not None else self.failures + 1
        return cand, hit


class LevelSets:
    """Diverse mode, small libraries: every site set of the level, one at a time. When the
    placeable sites have at most ``MAX_LEVEL_SETS`` subsets of the level's size, each one that is
    new (no emitted set inside it) is probed, the most spread first, by the path relaxation with
    every other site banned (``Relaxation.restricted``: one DP pass, then a short subgradient run):
    either a layout with exactly that site set, or a proof that no solution within it reaches the
    level. When every new subset is proven, the level holds no new site set at all (a new set
    with more sites would contain a new subset of the level's size that reaches it), so it is
    given up without a CP-SAT search (``proven_empty``). Measured on 10 RegulonDB sites, L=120
    with sigma70: 31 of the 45 8-site sets found in 2.3 s CPU (CP-SAT, one solve per set: 27,
    about a second each, 18 undecided after 10 s) and 2 of the 9-site sets the 3 s searches left."""

    def __init__(self, st: EnumState) -> None:
        self.sites = [si for si, pvs in enumerate(st.pm.by_site) if pvs]  # placeable sites
        self.prove = not st.problem.weighted  # the relaxation bounds the site count only unweighted
        self.level: int | None = None
        self.pending: list[frozenset[int]] = []
        self.unproven: list[frozenset[int]] = []  # subsets of the level probed without a proof (a layout or neither)
        self.complete = False  # the level's subsets were all listed

    def take(self, st: EnumState) -> Layout | None:
        """A layout of the most spread untried new site set of the level, or None when none is left
        (or the library has too many site sets to go through)."""
        self._start(st)
        while self.pending and st.remaining() > 0:
            self.pending = [s for s in self.pending if st.new_site_set(set(s))]
            if not self.pending:
                break
            best = min(range(len(self.pending)), key=lambda i: st.closeness(set(self.pending[i])))
            sites = self.pending.pop(best)
            bound, cand = st.relaxation.restricted(set(self.sites) - sites, at_least=st.level)
            if cand is not None and set(cand.library_sites) == sites:
                self.unproven.append(sites)  # open until emitted (the screen may still reject it)
                return cand
            if not (self.prove and bound is not None and bound < st.level):
                self.unproven.append(sites)
        return None

    def proven_empty(self, st: EnumState) -> bool:
        """True when every new site set of the level's size was proven below the level."""
        self._start(st)
        self.pending = [s for s in self.pending if st.new_site_set(set(s))]
        self.unproven = [s for s in self.unproven if st.new_site_set(set(s))]
        return self.complete and self.prove and not self.pending and not self.unproven

    def _start(self, st: EnumState) -> None:
        """List the level's subsets when the level changed."""
        if self.level == st.level:
            return
        k, n = st.level, len(self.sites)
        self.level, self.unproven = k, []
        self.complete = 0 < k <= n and math.comb(n, k) <= MAX_LEVEL_SETS
        self.pending = [frozenset(c) for c in itertools.combinations(self.sites, k)] if self.complete else []


class OptimalSearch:
    """Optimal mode's last source: a global CP-SAT search at the level, hinted with the last
    solution. On models up to ``COLLECT_MAX_PLACEMENTS`` placements it enumerates and hands over
    every new placement set it meets; otherwise one solve that stops at the first solution. The
    level drops when CP-SAT proves it empty or the search times out."""

    level_limit_s: float | None = None  # cap of one search before the level drops (diverse mode)

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
        if self.level_limit_s is not None:
            limit = min(limit, self.level_limit_s)
        limit = min(limit, st.remaining())
        if self.collect_ok and len(pm.placements) <= COLLECT_MAX_PLACEMENTS:
            yield from self._collect(st, n_solutions, min(limit, COLLECT_LIMIT_S))
            return
        solver = solver_for(options, limit, len(pm.placements))
        ts = time.monotonic()
        status = run(solver, pm.model, options, limit, StopAtTarget(pm.n_sites_expr, st.level))
        charge_cpsat(st.run.clock, solver)  # counted budgets (deterministic=True)
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
        charge_cpsat(st.run.clock, solver)
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


class DiverseSearch(OptimalSearch):
    """Diverse mode's last source: the global CP-SAT search at the level (the model forbids every
    emitted site set and its supersets, so each solution is a new site set), as ordinary solves
    (measured: enumerating all solutions meets mostly rearrangements of known site sets, about
    one new set per 2.5 s on promoter-n20-L60), each capped at ``DIVERSE_LEVEL_LIMIT_S`` before
    the level drops."""

    level_limit_s = DIVERSE_LEVEL_LIMIT_S

    def __init__(self, st: EnumState, level_sets: LevelSets | None = None) -> None:
        super().__init__(st)
        self.collect_ok = False
        self.level_sets = level_sets

    def search(self, st: EnumState, n_solutions: int) -> Iterator[Solution]:
        """As ``OptimalSearch.search``; a level that ``LevelSets`` proved empty is dropped
        without a solve."""
        if self.level_sets is not None and self.level_sets.proven_empty(st):
            st.drop_level(proven_empty=True)
            return iter(())
        return super().search(st, n_solutions)
