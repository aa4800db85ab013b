"""Make a start layout keep every rule: repairs and rule-aware free bases, asked of the rules.

The layout builders (the beam in ``heuristics.py``, realised relaxed paths in
``path_layouts.py``) know the promoter and forbidden k-mers; the other rules (pins, GC windows,
homopolymers, IUPAC / enzyme patterns, spacing, maximum counts) they leave to the checker, which
then rejects the layout. ``make_valid`` turns such a layout into one that keeps them, asking
each rule of ``constraints_of(problem)`` what it knows (``constraints.base.Constraint``):

1. placements a rule refuses (``allows`` / ``allows_start``) are dropped;
2. each rule's ``repair(problem, draft, rng)`` edits the placements (a pin places a site of its
   regulator in its window, a maximum count drops the extra sites, spacing drops the later site
   of a pair too close or too far apart);
3. the free bases are chosen left to right, each the first base (random order) for which every
   rule's ``bases_ok(problem, draft, i)`` holds (GC windows check that every window through
   ``i`` can still reach its bounds, a homopolymer the run through ``i``, patterns the matches
   through ``i``);
4. a position whose windows still break a rule (site bases alone, e.g. a GC-rich cluster) loses
   one library placement covering it and the round is repeated (at most ``MAX_ROUNDS``).

The result is not trusted: callers screen it with the independent checker like any candidate.
Problems without such rules keep their layouts unchanged (``layout_rules`` is empty).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .constraints import constraints_of
from .constraints.base import Constraint
from .heuristics import Layout
from .types import Problem

Item = tuple[int, str, int, str, str]  # (site index or -1, strand, start, + seq, fixed id or "")
MAX_ROUNDS = 12  # repair / fill rounds before the layout is handed over as it is


def layout_rules(problem: Problem) -> tuple[list[Constraint], list[Constraint], list[Constraint]]:
    """(rules that refuse placements, rules with a repair, rules that judge bases) of ``problem``."""
    rules = constraints_of(problem)
    pruners = [r for r in rules if r.overrides("allows") or r.overrides("allows_start")]
    aware = [r for r in rules if r.layout_aware()]
    repairers = [r for r in aware if r.overrides("repair")]
    judges = [r for r in aware if r.overrides("bases_ok")]
    return pruners, repairers, judges


@dataclass
class Draft:
    """A layout under construction: placed items and the bases they fix (``None``: free)."""

    problem: Problem
    items: list[Item]
    pruners: list[Constraint] = field(default_factory=list)  # rules whose ``allows*`` a new placement must pass
    bases: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rebuild()

    def rebuild(self) -> None:
        """Bases from the items alone (every fixed base belongs to an item)."""
        self.bases = [None] * self.problem.length
        for _si, _strand, start, seq, _fid in self.items:
            for k, ch in enumerate(seq):
                self.bases[start + k] = ch

    @property
    def library(self) -> list[Item]:
        """Library placements (promoter elements excluded)."""
        return [t for t in self.items if t[0] >= 0]

    def fixed_spans(self) -> list[tuple[int, int]]:
        """(start, end) of the fixed promoter elements."""
        return [(t[2], t[2] + len(t[3])) for t in self.items if t[0] < 0]

    def remove(self, item: Item) -> None:
        """Drop a library placement; its bases become free unless another item holds them."""
        self.items.remove(item)
        self.rebuild()

    def fits(self, seq: str, start: int) -> bool:
        """True when ``seq`` at ``start`` lies inside the sequence and agrees with fixed bases."""
        if start < 0 or start + len(seq) > self.problem.length:
            return False
        return all(self.bases[start + k] in (None, ch) for k, ch in enumerate(seq))

    def allowed(self, site: int, seq: str, start: int | None) -> bool:
        """May ``site`` read ``seq`` (and, unless ``start`` is None, start there) under every rule?"""
        s = self.problem.sites[site]
        return all(r.allows(self.problem, s, seq) and (start is None or r.allows_start(self.problem, s, start))
                   for r in self.pruners)

    def fixed_agree(self, seq: str, start: int) -> bool:
        """True when ``seq`` at ``start`` agrees with every fixed promoter element it overlaps."""
        for t in self.items:
            if t[0] >= 0:
                continue
            lo, hi = max(start, t[2]), min(start + len(seq), t[2] + len(t[3]))
            if lo < hi and seq[lo - start : hi - start] != t[3][lo - t[2] : hi - t[2]]:
                return False
        return True

    def clashes(self, seq: str, start: int) -> list[Item]:
        """Library items whose bases disagree with ``seq`` at ``start``."""
        end = start + len(seq)
        out = []
        for t in self.library:
            lo, hi = max(start, t[2]), min(end, t[2] + len(t[3]))
            if lo < hi and any(seq[i - start] != t[3][i - t[2]] for i in range(lo, hi)):
                out.append(t)
        return out

    def place(self, site: int, strand: str, start: int, seq: str) -> None:
        """Add a library placement (the caller checked that it fits)."""
        self.items.append((site, strand, start, seq, ""))
        for k, ch in enumerate(seq):
            self.bases[start + k] = ch

    def layout(self) -> Layout:
        seq = "".join(b if b is not None else "A" for b in self.bases)
        return Layout(seq, tuple(sorted(self.items, key=lambda t: (t[2], t[0]))))


def make_valid(problem: Problem, layout: Layout, rng: random.Random) -> Layout:
    """``layout`` edited so that the problem's rules can hold (see the module docstring); the
    layout itself when no rule repairs or judges bases."""
    pruners, repairers, judges = layout_rules(problem)
    if not repairers and not judges:
        return layout
    draft = Draft(problem, list(layout.items), pruners)
    for t in list(draft.library):
        if not draft.allowed(t[0], t[3], t[2]):
            draft.remove(t)
    for _round in range(MAX_ROUNDS):
        for rule in repairers:
            rule.repair(problem, draft, rng)
        free = [i for i, b in enumerate(draft.bases) if b is None]
        _fill(problem, draft, free, judges, rng)
        bad = next((i for i in range(problem.length) if not all(r.bases_ok(problem, draft, i) for r in judges)), None)
        if bad is None:
            return draft.layout()
        covering = [t for t in draft.library if t[2] <= bad < t[2] + len(t[3])]
        for i in free:
            draft.bases[i] = None
        if not covering:
            covering = _nearest(draft, bad)
            if not covering:
                break
        draft.remove(covering[0])
    for i, b in enumerate(draft.bases):
        if b is None:
            draft.bases[i] = rng.choice("ACGT")
    return draft.layout()


def _nearest(draft: Draft, i: int) -> list[Item]:
    """The library item closest to position ``i`` (a free base there could not be chosen)."""
    lib = draft.library
    if not lib:
        return []
    return [min(lib, key=lambda t: min(abs(t[2] - i), abs(t[2] + len(t[3]) - 1 - i)))]


def _fill(problem: Problem, draft: Draft, free: list[int], judges: list[Constraint], rng: random.Random) -> None:
    """Choose the free bases left to right: the first base (random order) every judge accepts
    at that position, else a random one (the scan after the fill then finds the fault)."""
    for i in free:
        order = rng.sample("ACGT", 4)
        for ch in order:
            draft.bases[i] = ch
            if all(r.bases_ok(problem, draft, i) for r in judges):
                break
        else:
            draft.bases[i] = order[0]
