"""Turn a path of the relaxation (bound.py) into a complete candidate layout.

The Lagrangian search visits many paths; once a site appears only once, a path is a real layout:
consecutive sites placed at their largest agreeing overlap never conflict (each overlap with an
earlier site lies inside the site in between). ``realise`` keeps the first use of each site,
places the chains (left of the upstream element right-aligned to it, the middle and right ones
forward from their element), puts contained sites inside their containers and fills the free
bases. Candidates are screened by the caller with the independent checker.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .cores import max_overlap
from .dna import oriented_sequences, revcomp
from .drafts import make_valid
from .heuristics import Layout, pack_segment
from .types import PROMOTER_REGULATOR, Placement, Problem, Solution

FILL_BEAM_WIDTH = 8  # beam width when packing the stretches a realised path leaves free


@dataclass(frozen=True)
class Piece:
    """One item of a path: a library site in one orientation (or a bare promoter element)."""

    site: int  # problem site index; -1 for a bare promoter element
    strand: str
    sequence: str  # as read on the + strand
    inside: tuple[int, ...] = ()  # problem site indices that may sit inside it


@dataclass(frozen=True)
class Anchored:
    """A promoter element at its start, alone or inside the site ``piece``."""

    piece: Piece
    start: int  # start of ``piece`` in the sequence
    element: str
    offset: int  # start of the element inside ``piece``
    fixed_id: str  # "<promoter>:upstream" or ":downstream"


def realise(
    problem: Problem,
    chains: list[list[Piece]],
    anchors: list[Anchored],
    rng: random.Random,
    banned: frozenset[int] = frozenset(),
    fill: bool = False,
) -> Layout | None:
    """A layout from ``chains`` around ``anchors`` (0 anchors: one chain; 2: left, middle, right).

    Sites in ``banned`` are not used (the caller steers away from them). With ``fill``, free
    stretches left by dropped second uses are packed with unused sites by the beam search.
    The rules beyond the promoter are then given their say (``drafts.make_valid``).
    """
    used: set[int] = set(banned)
    for a in anchors:
        if a.piece.site in banned:
            return None
        if a.piece.site >= 0:
            used.add(a.piece.site)
    clean = []
    for raw in chains:
        kept = []
        for p in raw:
            if p.site not in used:  # banned sites and second uses are dropped
                used.add(p.site)
                kept.append(p)
        clean.append(kept)
    placed: list[tuple[Piece, int]] = [(a.piece, a.start) for a in anchors]
    L = problem.length
    if not anchors:
        placed += _forward(clean[0], None, L)
    else:
        up, down = anchors
        placed += _backward(clean[0], (up.piece.sequence, up.start))
        mid = clean[1]
        while True:
            chain = _forward(mid, (up.piece.sequence, up.start), down.start + len(down.piece.sequence))
            if not chain or _fits_before(chain[-1], down):
                break
            mid = mid[: len(chain) - 1]  # the last one clashes with the downstream anchor
        placed += chain
        placed += _forward(clean[2], (down.piece.sequence, down.start), L)
    bases: list[str | None] = [None] * L
    items = []
    for piece, start in placed:
        if not _write(bases, piece.sequence, start):
            return None
        if piece.site >= 0:
            items.append((piece.site, piece.strand, start, piece.sequence, ""))
    for a in anchors:
        items.append((-1, "+", a.start + a.offset, a.element, a.fixed_id))
    _add_contained(problem, placed, used, items)
    if fill:
        _fill_gaps(problem, bases, used, items, rng)
    seq = "".join(b if b is not None else rng.choice("ACGT") for b in bases)
    return make_valid(problem, Layout(seq, tuple(sorted(items, key=lambda t: (t[2], t[0])))), rng)


def _forward(chain: list[Piece], after: tuple[str, int] | None, limit: int) -> list[tuple[Piece, int]]:
    """Place ``chain`` left to right at largest overlaps, after ``after`` (sequence, start);
    stop before the first piece that would end past ``limit``."""
    out = []
    prev, end = (after[0], after[1] + len(after[0])) if after else ("", 0)
    for p in chain:
        start = end - (max_overlap(prev, p.sequence) if prev else 0)
        if start + len(p.sequence) > limit:
            break
        out.append((p, start))
        prev, end = p.sequence, start + len(p.sequence)
    return out


def _backward(chain: list[Piece], before: tuple[str, int]) -> list[tuple[Piece, int]]:
    """Place ``chain`` right to left so it ends at the largest overlap with ``before``."""
    out = []
    nxt, start = before
    for p in reversed(chain):
        s = start - len(p.sequence) + max_overlap(p.sequence, nxt)
        if s < 0:
            break
        out.append((p, s))
        nxt, start = p.sequence, s
    return out


def _fits_before(last: tuple[Piece, int], down: Anchored) -> bool:
    """True when the last middle piece ends before the downstream anchor or overlaps it validly."""
    piece, start = last
    overlap = start + len(piece.sequence) - down.start
    return overlap <= 0 or (overlap < len(down.piece.sequence) and piece.sequence.endswith(down.piece.sequence[:overlap]))


def _write(bases: list, seq: str, start: int) -> bool:
    if start < 0 or start + len(seq) > len(bases):
        return False
    for i, ch in enumerate(seq):
        if bases[start + i] not in (None, ch):
            return False
        bases[start + i] = ch
    return True


def _fill_gaps(problem: Problem, bases: list, used: set[int], items: list, rng: random.Random) -> None:
    """Pack every free stretch, widest first, with a beam chain of unused sites."""
    shortest = min((len(s.sequence) for s in problem.sites), default=0)
    stretches, i = [], 0
    while i < len(bases):
        if bases[i] is None:
            j = i
            while j < len(bases) and bases[j] is None:
                j += 1
            if j - i >= shortest:
                stretches.append((i, j))
            i = j
        else:
            i += 1
    forbidden = sorted(set(problem.forbid_kmers) | {revcomp(k) for k in problem.forbid_kmers})
    unused = set(range(len(problem.sites))) - used
    for lo, hi in sorted(stretches, key=lambda st: st[0] - st[1]):
        placed, text = pack_segment(problem, lo, hi, unused, rng, forbidden, beam_width=FILL_BEAM_WIDTH)
        for k, ch in enumerate(text):
            bases[lo + k] = ch
        items.extend(placed)
        used.update(t[0] for t in placed)


def _add_contained(problem: Problem, placed, used: set[int], items: list) -> None:
    """Place unused sites that the relaxation counted inside a placed piece."""
    for piece, start in placed:
        for si in piece.inside:
            if si in used:
                continue
            for strand, seq in oriented_sequences(problem.sites[si].sequence, problem.strands):
                at = piece.sequence.find(seq)
                if at >= 0:
                    items.append((si, strand, start + at, seq, ""))
                    used.add(si)
                    break


def layout_solution(problem: Problem, layout: Layout) -> Solution:
    """The layout as a ``Solution`` (for the checker); objective = its library site count."""
    placements = []
    for si, strand, start, seq, fixed_id in layout.items:
        if si >= 0:
            site = problem.sites[si]
            placements.append(Placement(site.id, site.regulator, start, strand, seq))
        else:
            placements.append(Placement(fixed_id, PROMOTER_REGULATOR, start, "+", seq, fixed=True))
    return Solution(layout.sequence, tuple(placements), float(len(layout.library_sites)), False, 0.0)
