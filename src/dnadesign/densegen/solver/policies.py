"""The two enumeration policies: which candidate sources, in which order.

Optimal mode (best first; users value new site sets before rearrangements of one):
``DeferredPool``, ``Neighbours``, ``Alternatives``, ``Repeats`` (screened in Python, about a
millisecond each, up to ``MAX_FAST_TRIES`` per solution), then ``OptimalSearch`` (CP-SAT).

Diverse mode (a new site set per solution, level first, then spread): ``SteeredRelaxation`` at
the level, then ``Held``, ``DeferredPool``, ``Neighbours`` (relaxation variants only) and
``Alternatives`` (screened in Python; the most spread of a few is taken), then ``LevelSets`` (small
libraries: each new site set of the level probed by the relaxation, the most spread first), then
``DiverseSearch`` (CP-SAT at the level, one solution per new site set).

``run`` of either is a generator of solutions whose return value says why it ended:
``"requested"`` (the number asked for), ``"budget"`` (``run_time_limit_s`` spent) or
``"exhausted"`` (every source is dry and the levels down to the floor are used up).
"""

from __future__ import annotations

from collections.abc import Generator

from .heuristics import Layout
from .sources import (
    Alternatives,
    DeferredPool,
    DiverseSearch,
    Held,
    LevelSets,
    Neighbours,
    Nudged,
    OptimalSearch,
    Repeats,
    SteeredRelaxation,
    variants,
)
from .state import EnumState
from .types import Solution

MAX_FAST_TRIES = 2000  # candidates screened in Python (checker + no-goods) per solution
PICK_FROM = 6  # diverse mode: screened candidates at the level compared for spread per solution

REQUESTED, BUDGET, EXHAUSTED = "requested", "budget", "exhausted"
END_REASONS = (REQUESTED, BUDGET, EXHAUSTED)


def first_candidate(sources, st: EnumState) -> Layout | None:
    """The next layout of the first source, in order, that has one (None: all are dry)."""
    for source in sources:
        cand = source.take(st)
        if cand is not None:
            return cand
    return None


class _Policy:
    """The loop both policies share: at each level, the policy's screened candidate (``_hit``),
    else its CP-SAT search; a subclass sets ``search`` and ``neighbours`` and may react to a new
    round (``_round``) and to each emitted solution (``_emitted``)."""

    search: OptimalSearch
    neighbours: Neighbours
    fast_tries: int

    def run(self, st: EnumState, n_solutions: int) -> Generator[Solution, None, str]:
        """Solutions after the first; returns the end reason."""
        while st.emitted < n_solutions and st.level >= st.min_level:
            if st.remaining() <= 0:
                return BUDGET
            st.require(st.level)
            self._round(st)
            hit = self._hit(st)
            if hit is not None:
                yield self._emitted(st, st.emit(st.record(*hit)))
                continue
            for sol in self.search.search(st, n_solutions):
                yield self._emitted(st, sol)
        return REQUESTED if st.emitted >= n_solutions else EXHAUSTED

    def _round(self, st: EnumState) -> None:
        """Called before each round at ``st.level``."""

    def _hit(self, st: EnumState):
        raise NotImplementedError

    def _emitted(self, st: EnumState, sol: Solution) -> Solution:
        self.fast_tries = 0
        self.neighbours.on_solution(st)
        return sol


class OptimalPolicy(_Policy):
    """Layout sources in order, screened in Python, then the CP-SAT search."""

    def __init__(self, st: EnumState) -> None:
        self.deferred = DeferredPool()
        self.neighbours = Neighbours(st)
        self.repeats = Repeats()
        self.sources = (self.deferred, self.neighbours, Alternatives(), self.repeats)
        self.search = OptimalSearch(st)
        self.fast_tries = 0

    def _hit(self, st: EnumState):
        """The first candidate of the sources, in order, that passes the screen at the level."""
        while self.fast_tries < MAX_FAST_TRIES:
            cand, source = None, None
            for source in self.sources:
                cand = source.take(st)
                if cand is not None:
                    break
            if cand is None:
                return None
            if len(cand.library_sites) < st.level:
                self.deferred.put(cand)  # kept for the levels below
                continue
            if source is not self.repeats and frozenset(cand.library_sites) in st.emitted_site_sets:
                self.repeats.put(cand)  # a rearrangement: users value new site sets first
                continue
            self.fast_tries += 1
            hit = st.screen(cand, st.level, st.bound_sites)
            if hit is not None:
                return hit
        return None


class DiversePolicy(_Policy):
    """Level first, then spread: each solution is a new site set with the most sites any known
    new site set has (never below the level while the level has one), and among the candidates
    at the level the one farthest from the last three solutions and least used is taken.

    Sources: steered relaxation layouts at the level, then the candidates held from earlier
    rounds, the deferred pool, the relaxation variants of the solutions and the other layouts
    (screened in Python); up to ``PICK_FROM`` screened candidates are compared (fewer when one
    already shares at most two thirds with each of the last three solutions); then, on small
    libraries, the level's new site sets probed one by one; then the CP-SAT search at the level."""

    def __init__(self, st: EnumState) -> None:
        self.steered = SteeredRelaxation()
        self.held = Held()
        self.deferred = DeferredPool()
        self.neighbours = Neighbours(st, variants)
        self.nudged = Nudged()
        self.sources = (self.held, self.deferred, self.nudged, self.neighbours, Alternatives())
        self.level_sets = LevelSets(st)
        self.search = DiverseSearch(st, self.level_sets)
        self.fast_tries = 0
        self._level = st.level
        self._top = st.level  # the densest solution so far

    def _round(self, st: EnumState) -> None:
        if st.level != self._level:  # a new level: steering may find layouts again
            self._level, self.steered.failures = st.level, 0
            self.nudged.on_solution()

    def _emitted(self, st: EnumState, sol: Solution) -> Solution:
        super()._emitted(st, sol)
        self.nudged.on_solution()
        if sol.n_sites > self._top:  # denser than every earlier one (an unproven first solution)
            st.level = self._top = sol.n_sites
        return sol

    def _hit(self, st: EnumState):
        """The most spread of up to ``PICK_FROM`` screened candidates at the level (the others
        are held for the next rounds), or None when no source has one."""
        hits: list[tuple[tuple, Layout, tuple]] = []

        def far(key: tuple) -> bool:
            return key[0] == 0

        while self.fast_tries < MAX_FAST_TRIES and len(hits) < PICK_FROM and not any(far(h[0]) for h in hits):
            cand = first_candidate(self.sources, st)
            if cand is None:
                break
            sites = set(cand.library_sites)
            if len(sites) < st.level:
                self.deferred.put(cand)  # kept for the levels below
                continue
            if not st.new_site_set(sites) or any(sites == set(h[1].library_sites) for h in hits):
                continue  # a rearrangement or superset of an emitted site set: never diverse
            self.fast_tries += 1
            hit = st.screen(cand, st.level, st.bound_sites)
            if hit is not None:
                hits.append((st.closeness(sites), cand, hit))
        if not hits and not self.steered.dry():
            cand, hit = self.steered.take(st)  # the sources are dry: a subgradient run at the level
            if hit is not None and cand is not None:
                hits.append((st.closeness(set(cand.library_sites)), cand, hit))
        while not hits:
            # small libraries: the level's new site sets one by one, the most spread first
            cand = self.level_sets.take(st)
            if cand is None:
                return None
            hit = st.screen(cand, st.level, st.bound_sites)
            if hit is not None:
                hits.append((st.closeness(set(cand.library_sites)), cand, hit))
        hits.sort(key=lambda h: h[0])
        for _key, cand, _hit in hits[1:]:
            self.held.put(cand)
        return hits[0][2]

