"""Dense first layouts of large libraries with a promoter: the local search with the promoter as one item.

``path_search`` searches paths of library sites from position 0 to L; a promoter (upstream
element, spacer, downstream element, + strand) has no place in such a path. Here it gets one:

- the promoter becomes a **block**, one pseudo-site ``upstream + spacer + downstream`` whose
  spacer is real DNA chosen to hold as many library sites as fit between the elements
  (``block_spacers``: sites may overlap the elements where the bases agree); those sites ride
  inside the block like any carried site;
- the block is searched as a site of its own regulator with a minimum of one, so the search
  pins it on every path (it may move, never leave); its carried sites count;
- a path holding the block's other orientation is the reverse complement of a path holding it
  on + (``ov(a, b) == ov(rc(b), rc(a))``), so the layout is read on the other strand;
- the path is realised again around the real promoter (``path_layouts.realise`` with the two
  elements as anchors: the left chain right-aligned to the block, the right chain after it), at
  the allowed upstream start nearest to where the path puts it (position windows), and every
  layout is checked against the full problem.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from itertools import pairwise

import numpy as np

from .check import check_solution
from .cores import max_overlap
from .dna import placeable_orientations, revcomp
from .heuristics import Layout
from .path_layouts import Anchored, Piece, layout_solution, realise
from .path_search import layout_solution_valued
from .path_search import layouts as searched_layouts
from .precheck import promoter_start_pairs
from .types import Problem, PromoterConstraint, Site

BLOCK_REGULATOR = "__promoter_block__"  # the block's regulator in the searched problem (pinned by a minimum of 1)
BLOCK_ID = "__promoter_block__"
FIRST_PLACEMENTS = 12  # greedy spacer completions tried (from the cheapest first placements)


def block_spacers(problem: Problem, prom: PromoterConstraint, rng: random.Random) -> list[tuple[int, str, int]]:
    """Per spacer length: ``(spacer length, spacer bases, library sites it holds)``, most sites
    first. The spacer holds a greedy set of oriented library sites placed where they agree with
    the elements and with each other (touching the spacer, inside the block); its other bases are
    random."""
    up, down = prom.upstream, prom.downstream
    oriented = sorted({(si, seq) for si, _st, seq in placeable_orientations(problem)}, key=lambda t: (len(t[1]), t))
    out = []
    for s in range(prom.spacer_min, prom.spacer_max + 1):
        size = len(up) + s + len(down)
        lo, hi = len(up), len(up) + s  # the spacer's bases
        cands = []  # (spacer bases used, site, start, seq)
        for si, seq in oriented:
            n = len(seq)
            if n > size:
                break
            for t in range(max(0, lo - n + 1), min(size - n, hi - 1) + 1):
                # agrees with the upstream element where it covers it, and with the downstream one
                if t < lo and seq[: lo - t] != up[t:]:
                    continue
                if t + n > hi and seq[hi - t:] != down[: t + n - hi]:
                    continue
                cands.append((min(t + n, hi) - max(t, lo), si, t, seq))
        cands.sort()
        best: tuple[int, list[str | None]] = (0, [None] * s)
        for first in cands[:FIRST_PLACEMENTS]:  # greedy completions from the cheapest first placements
            bases: list[str | None] = [None] * s  # the spacer
            taken: set[int] = set()
            for _used, si, t, seq in [first, *cands]:
                part = seq[max(0, lo - t): hi - t]
                at = max(t, lo) - lo
                if si in taken or any(bases[at + k] not in (None, ch) for k, ch in enumerate(part)):
                    continue
                bases[at: at + len(part)] = list(part)
                taken.add(si)
            if len(taken) > best[0]:
                best = (len(taken), bases)
        spacer = "".join(b if b is not None else rng.choice("ACGT") for b in best[1])
        out.append((s, spacer, best[0]))
    return sorted(out, key=lambda t: (-t[2], t[0]))


def _flat(problem: Problem, block: str) -> Problem:
    """The problem without its promoter, with the block as one more site (index ``len(sites)``)
    of its own regulator, required once; forbidden k-mers are left out of it (the block holds
    the promoter's allowed copies), so sites holding one are dropped here instead."""
    forbidden = set(problem.forbid_kmers) | {revcomp(k) for k in problem.forbid_kmers}
    unplaceable = "A" * (problem.length + 1)  # keeps the site indices; never placed
    sites = tuple(dataclasses.replace(s, sequence=unplaceable) if any(f in s.sequence for f in forbidden) else s for s in problem.sites)
    minimums = {**problem.min_count_by_regulator, BLOCK_REGULATOR: 1}
    return dataclasses.replace(problem, sites=(*sites, Site(BLOCK_ID, block, BLOCK_REGULATOR)), promoters=(),
                               forbid_kmers=(), min_count_by_regulator=minimums)


def layouts(problem: Problem, values: list[int], stop: Callable[[], bool], seed: int = 0,
            rounds: int | None = None, enough: float = np.inf) -> list[Layout]:
    """Checked layouts of ``problem`` (one promoter) from the local search with the promoter as
    a pinned block, densest first; [] when the problem has no single promoter or nothing passes."""
    if len(problem.promoters) != 1:
        return []
    prom = problem.promoters[0]
    pairs = promoter_start_pairs(problem, 0)
    if not pairs:
        return []
    rng = random.Random(seed)
    allowed = {d - u - len(prom.upstream) for u, d in pairs}  # spacer lengths the windows leave
    s, spacer, _held = next(b for b in block_spacers(problem, prom, rng) if b[0] in allowed)
    block = prom.upstream + spacer + prom.downstream
    flat = _flat(problem, block)
    # the block counts 1 in the searched problem (its own checker counts it as a site): pinned
    # on every path, it only shifts every path's value by one
    found = searched_layouts(flat, [*values, 1], [], stop, seed, rounds=rounds, enough=enough + 1)
    out: list[tuple[float, Layout]] = []
    for lay in found:
        real = _around_promoter(problem, flat, lay, prom, s, block, pairs, rng)
        if real is None or check_solution(problem, layout_solution_valued(problem, real, values)):
            continue
        out.append((sum(values[si] for si in real.library_sites), real))
    return [lay for _v, lay in sorted(out, key=lambda t: -t[0])]


def _around_promoter(problem: Problem, flat: Problem, lay: Layout, prom: PromoterConstraint, s: int, block: str,
                     pairs: list[tuple[int, int]], rng: random.Random) -> Layout | None:
    """``lay`` (a layout of ``flat``) realised around the real promoter: the chains left and
    right of the block, the block's carried sites inside it, the block where ``lay`` has it
    when that start is allowed, else the chains rotated so that it fits (``_rotate``)."""
    b = len(problem.sites)
    L = problem.length
    items = list(lay.items)
    at = next((t for t in items if t[0] == b), None)
    if at is None:
        return None
    if at[1] == "-":  # read the whole layout on the other strand
        items = [(si, "-" if st == "+" else "+", L - start - len(seq), revcomp(seq), fid) for si, st, start, seq, fid in items]
        at = next(t for t in items if t[0] == b)
    on_path, carried = _split(items)

    def piece(t) -> Piece:  # the item with the sites carried inside it
        inner = tuple(sorted({c[0] for c in carried if t[2] <= c[2] and c[2] + len(c[3]) <= t[2] + len(t[3])}))
        return Piece(t[0] if t[0] != b else -1, t[1], t[3], inner)

    left = [piece(t) for t in on_path if t[2] < at[2]]
    right = [piece(t) for t in on_path if t[2] > at[2]]
    inside = piece(at).inside
    # the allowed upstream start nearest to the block's (the spacer length is the block's)
    starts = sorted({u for u, d in pairs if d - u == len(prom.upstream) + s})
    if not starts:
        return None
    if at[2] in starts:
        u = at[2]
    else:
        left, right, u = _rotate(left, right, block, starts, L)
    d = u + len(prom.upstream) + s
    if u == at[2]:  # the block is where the promoter may be: the layout as it is
        out = [t for t in items if t[0] != b]
        out += [(-1, "+", u, prom.upstream, f"{prom.name}:upstream"), (-1, "+", d, prom.downstream, f"{prom.name}:downstream")]
        seq = lay.sequence if lay.items == tuple(items) else revcomp(lay.sequence)
        direct = Layout(seq, tuple(sorted(out, key=lambda t: (t[2], t[0]))))
        if not check_solution(problem, layout_solution(problem, direct)):
            return direct
    up = Anchored(Piece(-1, "+", block, inside), u, prom.upstream, 0, f"{prom.name}:upstream")
    down = Anchored(Piece(-1, "+", block), u, prom.downstream, d - u, f"{prom.name}:downstream")
    return realise(problem, [left, [], right], [up, down], rng, fill=True)


def _span(seqs: list[str]) -> int:
    """Bases a chain takes with each next piece at its largest overlap with the previous one."""
    return sum(len(x) for x in seqs) - sum(max_overlap(a, b) for a, b in pairwise(seqs))


def _rotate(left: list[Piece], right: list[Piece], block: str, starts: list[int], L: int) -> tuple[list[Piece], list[Piece], int]:
    """Chains around the block such that it can start at an allowed start, and that start:
    while the left chain is too long for every allowed start, its first piece moves to the end
    of the right chain (and the other way round when the right chain does not fit after the
    block); a path's pieces only change neighbours at the two ends. The start is the first
    allowed one the left chain fits before (the nearest one when nothing fits)."""
    for _ in range(len(left) + len(right)):
        need = _span([p.sequence for p in left] + [block]) - len(block)  # bases before the block
        tail = _span([block] + [p.sequence for p in right]) - len(block)  # bases after it
        fit = [u for u in starts if need <= u <= L - len(block) - tail]
        if fit:
            return left, right, fit[0]
        if left and need > starts[-1]:
            left, right = left[1:], [*right, left[0]]
        elif right and need <= starts[-1]:
            left, right = [right[-1], *left], right[:-1]
        else:
            break
    need = _span([p.sequence for p in left] + [block]) - len(block)
    return left, right, min(starts, key=lambda x: (abs(x - need), x))


def _split(items: list) -> tuple[list, list]:
    """(items on the path, by start; items carried inside another placed item). Of several
    items with the same span, the first is on the path and carries the others."""
    placed = sorted((t for t in items if t[0] >= 0), key=lambda t: (t[2], -len(t[3]), t[0]))
    on_path: list = []
    carried: list = []
    for t in placed:
        lo, hi = t[2], t[2] + len(t[3])
        if any(o[2] <= lo and hi <= o[2] + len(o[3]) for o in on_path):
            carried.append(t)
        else:
            on_path.append(t)
    return on_path, carried


def search_layouts(problem: Problem, values: list[int], starts: list[Layout], stop: Callable[[], bool], seed: int = 0,
                   rounds: int | None = None, enough: float = np.inf) -> list[Layout]:
    """The local search's checked layouts of ``problem``, densest first: with a promoter, as a
    pinned block (``layouts``; ``starts`` unused), else over the plain path from ``starts``
    (``path_search.layouts``)."""
    if problem.promoters:
        return layouts(problem, values, stop, seed, rounds=rounds, enough=enough)
    return searched_layouts(problem, values, starts, stop, seed, rounds=rounds, enough=enough)
