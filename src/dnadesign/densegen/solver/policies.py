"""The two enumeration policies: which candidate sources, in which order.

Optimal mode (best first; users value new site sets before rearrangements of one):
``DeferredPool``, ``Neighbours``, ``Alternatives``, ``Repeats`` (screened in Python, about a
millisecond each, up to ``MAX_FAST_TRIES`` per solution), then ``OptimalSearch`` (CP-SAT).

Diverse mode (a new site set per solution): ``SteeredRelaxation`` (screened in Python), then
``DiverseSearch`` (CP-SAT: beam hints, neighbourhoods, global solves).

``run`` of either is a generator of solutions whose return value says why it ended:
``"requested"`` (the number asked for), ``"budget"`` (``run_time_limit_s`` spent) or
``"exhausted"`` (every source is dry and the levels down to the floor are used up).
"""

from __future__ import annotations

from collections.abc import Generator

from .sources import (
    Alternatives,
    DeferredPool,
    DiverseSearch,
    Neighbours,
    OptimalSearch,
    Repeats,
    SteeredRelaxation,
)
from .state import EnumState
from .types import Solution

MAX_FAST_TRIES = 2000  # candidates screened in Python (checker + no-goods) per solution

REQUESTED, BUDGET, EXHAUSTED = "requested", "budget", "exhausted"
END_REASONS = (REQUESTED, BUDGET, EXHAUSTED)


class OptimalPolicy:
    """Layout sources in order, screened in Python, then the CP-SAT search."""

    def __init__(self, st: EnumState) -> None:
        self.deferred = DeferredPool()
        self.neighbours = Neighbours(st)
        self.repeats = Repeats()
        self.sources = (self.deferred, self.neighbours, Alternatives(), self.repeats)
        self.search = OptimalSearch(st)
        self.fast_tries = 0

    def run(self, st: EnumState, n_solutions: int) -> Generator[Solution, None, str]:
        """Solutions after the first, best first; returns the end reason."""
        while st.emitted < n_solutions and st.level >= st.min_level:
            if st.remaining() <= 0:
                return BUDGET
            st.require(st.level)
            hit = self._screened(st)
            if hit is not None:
                yield self._emitted(st, st.emit(st.record(*hit)))
                continue
            for sol in self.search.search(st, n_solutions):
                yield self._emitted(st, sol)
        return REQUESTED if st.emitted >= n_solutions else EXHAUSTED

    def _emitted(self, st: EnumState, sol: Solution) -> Solution:
        self.fast_tries = 0
        self.neighbours.on_solution(st)
        return sol

    def _screened(self, st: EnumState):
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


class DiversePolicy:
    """Steered relaxation layouts first, then the CP-SAT route."""

    def __init__(self, st: EnumState) -> None:
        self.steered = SteeredRelaxation()
        self.search = DiverseSearch(st)

    def run(self, st: EnumState, n_solutions: int) -> Generator[Solution, None, str]:
        """Solutions after the first, each with a new site set; returns the end reason."""
        while st.emitted < n_solutions and st.level >= st.min_level:
            if st.remaining() <= 0:
                return BUDGET
            st.require(st.level)
            if not self.steered.dry():
                hit = self.steered.take(st)
                if hit is not None:
                    yield st.emit(st.record(*hit))
                    continue
            for sol in self.search.search(st):
                self.steered.failures = 0  # a new solution: steer away from it again
                yield sol
        return REQUESTED if st.emitted >= n_solutions else EXHAUSTED
