"""The shared state of one enumeration: what was emitted, the level, and how a candidate becomes
a solution.

Every candidate source and both policies (``sources.py``, ``policies.py``) read and change the
enumeration only through this one object: the model and its no-goods, the emitted sequences,
placement sets and site sets, site usage, the current level (the site count a next solution must
reach) and the proven bound, and the last solution's layout.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from .bound import Relaxation
from .budget import Budget
from .check import check_solution
from .heuristics import Layout
from .model import PositionalModel
from .types import Placement, Problem, Solution, SolverOptions

RECENT = 3  # diverse mode: solutions a new one should stay away from

Recorded = tuple[Solution, Layout, list[int]]  # a solution, its layout and its library site indices


@dataclass
class EnumState:
    """Shared state of an enumeration (see the module docstring)."""

    problem: Problem
    options: SolverOptions
    pm: PositionalModel
    relaxation: Relaxation
    rng: random.Random
    run: Budget  # the whole enumeration's budget (``run_time_limit_s``)
    beam_sites: int  # site count of the beam's start layout
    alternatives: Iterator[Layout]  # other relaxation and beam layouts, not yet tried
    bound_sites: int = 0  # proven bound on the sites of any remaining solution
    level: int = 0  # sites a next solution must have
    first_level: int = 0  # sites of the first solution
    min_level: int = 0  # the enumeration ends below this level
    layout: Layout | None = None  # the last solution's layout
    last_sites: list[int] = field(default_factory=list)  # ... and its library site indices
    emitted: int = 0
    seen_seq: set[str] = field(default_factory=set)
    usage: Counter[int] = field(default_factory=Counter)  # site -> solutions that used it
    recent_sets: list[list[int]] = field(default_factory=list)  # site lists of the solutions, in order
    emitted_sets: list[frozenset] = field(default_factory=list)  # library placement keys of each solution
    emitted_site_sets: set[frozenset[int]] = field(default_factory=set)
    temp: list[int] = field(default_factory=list)  # model constraints replaced every round
    weighted_bound: float | None = None  # under weights: the first solve's bound, valid for every later one

    def __post_init__(self) -> None:
        self.diverse = self.options.mode == "diverse"
        pm = self.pm
        self._lib_index = {(p.site_index, p.start, p.sequence): p for p in pm.placements}
        self._prom_index = {(p.site_id, p.start): p for p in pm.promoter_placements}

    def remaining(self) -> float:
        """Seconds left of the run budget (on the options' clock); none once the caller cancelled."""
        if self.options.cancel is not None and self.options.cancel.is_set():
            return 0.0
        return self.run.left()

    def require(self, target: int) -> None:
        """Replace this round's temporary constraints by ``sites >= target``."""
        m = self.pm.model
        for idx in self.temp:
            m.proto.constraints[idx].clear_linear()  # an emptied constraint is ignored
        self.temp.clear()
        self.temp.append(m.add(self.pm.n_sites_expr >= target).index)

    def drop_level(self, proven_empty: bool) -> None:
        """The level has no (more) solutions to offer: go one site lower."""
        self.level -= 1
        if proven_empty:
            self.bound_sites = min(self.bound_sites, self.level)

    def record(self, sol: Solution, chosen) -> Recorded:
        """Add the no-goods of a solution to the model and its sets to the state."""
        pm = self.pm
        if self.weighted_bound is not None:  # later levels count sites; report the bound in weighted value instead
            sol = replace(sol, bound=self.weighted_bound, optimal=sol.objective >= self.weighted_bound - 1e-9)
        self.emitted_sets.append(frozenset((p.site_index, p.start, p.sequence) for p in chosen if not p.fixed))
        pm.forbid_placements(chosen)
        pm.forbid_sequence(sol.sequence)
        sites = sorted({p.site_index for p in chosen if not p.fixed})
        self.emitted_site_sets.add(frozenset(sites))
        if self.diverse:
            pm.forbid_site_set(sites)
        for si in sites:
            self.usage[si] += 1
        self.recent_sets.append(sites)
        return sol, Layout(sol.sequence, pm.layout_items(chosen)), sites

    def accept(self, value, solve_time: float, optimal: bool, bound: float | None) -> Recorded:
        """Record the solution a CP-SAT solver holds (``value`` is its value function)."""
        pm = self.pm
        seq, placements, chosen = pm.decode(value)
        obj = pm.objective_to_float(value(pm.objective_expr))
        return self.record(Solution(seq, placements, obj, optimal, solve_time, bound, self.emitted), chosen)

    def emit(self, recorded: Recorded) -> Solution:
        """A recorded solution goes out: it becomes the last one."""
        sol, self.layout, self.last_sites = recorded
        self.seen_seq.add(sol.sequence)
        self.emitted += 1
        return sol

    def screen(self, cand: Layout, target: int, optimal_at: int):
        """Validate a complete candidate without CP-SAT: every item must be a model placement,
        the independent checker must accept it, and it must respect the no-goods and the level
        (the model constraints are exactly these, so CP-SAT would return this assignment).
        Returns (solution, chosen placements) or None."""
        ts = time.monotonic()
        pm = self.pm
        chosen = []
        for si, _st, start, sq, f in cand.items:
            p = self._lib_index.get((si, start, sq)) if si >= 0 else self._prom_index.get((f, start))
            if p is None:
                return None
            chosen.append(p)
        keys = frozenset((p.site_index, p.start, p.sequence) for p in chosen if not p.fixed)
        n = len(keys)
        if n < target or cand.sequence in self.seen_seq or any(prev <= keys for prev in self.emitted_sets):
            return None
        if self.diverse and not self.new_site_set({k[0] for k in keys}):
            return None
        chosen.sort(key=lambda p: (p.start, p.fixed is False, p.site_id))
        placements = tuple(Placement(p.site_id, p.regulator, p.start, p.strand, p.sequence, p.fixed) for p in chosen)
        obj_int = sum(pm.placement_value(p) for p in chosen)
        sol = Solution(cand.sequence, placements, pm.objective_to_float(obj_int), n >= optimal_at,
                       time.monotonic() - ts, float(optimal_at), self.emitted)
        if check_solution(self.problem, sol):
            return None
        return sol, chosen

    def new_site_set(self, sites: set[int]) -> bool:
        """Diverse mode's rule, as the model states it: no superset of an emitted site set (so
        every solution is a new combination of sites, never a rearrangement of one)."""
        return not any(prev <= sites for prev in self.emitted_site_sets)

    def closeness(self, sites: set[int]) -> tuple[int, float, int]:
        """Diverse mode's spread preference (smaller is more spread): how many of the last three
        solutions share more than two thirds of their sites with ``sites``, the largest Jaccard
        similarity to one of them, and the earlier uses of its sites."""
        recent = [set(prev) for prev in self.recent_sets[-RECENT:] if prev]
        close = sum(1 for prev in recent if len(sites & prev) > (2 * len(prev)) // 3)
        sim = max((len(sites & prev) / len(sites | prev) for prev in recent), default=0.0)
        return close, sim, sum(self.usage[i] for i in sites)
