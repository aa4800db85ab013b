"""Fast constructive heuristics that produce complete *hints* for CP-SAT.

Nothing here decides a solution: every candidate is either handed to CP-SAT as a complete hint
or screened by the enumerator with the independent checker plus the model's no-goods.

- ``greedy_layouts``: dense first layouts from a beam search over chains of maximal overlaps
  per free segment (the best first, then alternatives with as many sites).
- ``neighbour_layouts``: symmetry moves on a solution: shift a block into a gap, flip a block to
  the other strand, swap two adjacent blocks, then random reorderings (and flips) of the blocks
  between fixed elements. They keep the site set and the site count.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .cores import max_overlap
from .dna import oriented_sequences, revcomp
from .precheck import promoter_start_pairs
from .types import Problem


@dataclass(frozen=True)
class Layout:
    """A complete candidate: sequence plus (site index or -1, strand, start, seq, fixed id)."""

    sequence: str
    items: tuple[tuple[int, str, int, str, str], ...]  # (site index, strand, start, + seq, fixed id or "")

    @property
    def library_sites(self) -> list[int]:
        """Site indices of the library placements (promoter elements excluded)."""
        return [t[0] for t in self.items if t[0] >= 0]


BEAM_WIDTH = 48


def pack_segment(
    problem: Problem,
    lo: int,
    hi: int,
    unused: set[int],
    rng: random.Random,
    forbidden: list[str],
    alternatives: list | None = None,
    beam_width: int = BEAM_WIDTH,
    stop: Callable[[], bool] | None = None,
    work: Callable[[int], None] | None = None,
):
    """Beam search for a dense chain inside [lo, hi).

    A chain appends sites one after another, each overlapping the previous one by their largest
    agreeing overlap (shorter than both), so it never conflicts with earlier sites. States are
    ranked by (sites, -length); the best ``beam_width`` distinct states survive each step.
    When ``stop()`` turns true the search ends with the best chain so far (a time budget).
    ``work(n)`` is told the candidate expansions of each step (counted budgets, ``budget.py``).
    """
    cands = []
    for si in sorted(unused):
        for strand, seq in oriented_sequences(problem.sites[si].sequence, problem.strands):
            if len(seq) <= hi - lo and not any(f in seq for f in forbidden):
                cands.append((si, strand, seq))
    width = hi - lo
    # state: (sites, -length, chain tuple of candidate indices, used frozenset)
    State = tuple[int, int, tuple[int, ...], frozenset[int]]
    beam: list[State] = [(0, 0, (), frozenset())]
    best = beam[0]
    while beam and not (stop is not None and best[0] > 0 and stop()):
        nxt: dict[tuple[frozenset[int], int], State] = {}
        if work is not None:
            work(len(beam) * len(cands))
        for count, neg_len, chain, used in beam:
            length = -neg_len
            last = cands[chain[-1]][2] if chain else ""
            for k, (si, _strand, seq) in enumerate(cands):
                if si in used:
                    continue
                ov = max_overlap(last, seq) if last else 0
                new_len = length + len(seq) - ov
                if new_len > width:
                    continue
                key = (used | {si}, k)
                state = (count + 1, -new_len, (*chain, k), used | {si})
                if key not in nxt or state[:2] > nxt[key][:2]:
                    nxt[key] = state
        beam = sorted(nxt.values(), key=lambda st: (-st[0], -st[1], st[2]))[:beam_width]
        if beam and beam[0][:2] > best[:2]:
            best = beam[0]
            if alternatives is not None:
                alternatives[:] = [b for b in beam if b[0] == best[0]]

    def realise(chain):
        placed, text, last = [], "", ""
        for k in chain:
            si, strand, seq = cands[k]
            ov = max_overlap(last, seq) if last else 0
            placed.append((si, strand, lo + len(text) - ov, seq, ""))
            text += seq[ov:]
            last = seq
        return placed, text

    if alternatives is not None:
        alternatives[:] = [realise(b[2]) for b in alternatives]
    placed, text = realise(best[2])
    for si, *_ in placed:
        unused.discard(si)
    return placed, text


def greedy_layout(problem: Problem, seed: int) -> Layout:
    """A dense, valid-looking first layout (constraints other than spacing are not enforced)."""
    return greedy_layouts(problem, seed)[0]


def greedy_layouts(
    problem: Problem, seed: int, exclude: frozenset[int] = frozenset(), stop: Callable[[], bool] | None = None,
    work: Callable[[int], None] | None = None,
) -> list[Layout]:
    """The best beam layout first, then alternatives with as many sites in the widest segment.

    Alternatives differ in the order, orientation or choice of sites of the widest free
    segment; the other segments keep their best chains (skipped when they would reuse a site).
    Sites in ``exclude`` are not used (diverse mode steers away from used sites this way).
    With promoters, the first, middle and last allowed promoter positions are tried (an element
    at an end leaves one wide free segment) and the layouts of the densest one are returned.
    ``stop()`` (a time budget) ends each segment's search early and skips the other positions;
    ``work(n)`` is told each beam step's candidate expansions.
    """
    if not problem.promoters:
        return _greedy_layouts(problem, seed, exclude, lambda n: n // 2, stop, work)
    best = _greedy_layouts(problem, seed, exclude, lambda n: n // 2, stop, work)
    for pick in (lambda n: 0, lambda n: n - 1):
        if stop is not None and stop():
            break
        out = _greedy_layouts(problem, seed, exclude, pick, stop, work)
        if len(out[0].library_sites) > len(best[0].library_sites):
            best = out
    return best


def _greedy_layouts(problem: Problem, seed: int, exclude: frozenset[int], pick, stop: Callable[[], bool] | None = None,
                    work: Callable[[int], None] | None = None) -> list[Layout]:
    rng = random.Random(seed)
    L = problem.length
    bases = [rng.choice("ACGT") for _ in range(L)]
    items: list[tuple[int, str, int, str, str]] = []
    occupied = [False] * L
    for pi, prom in enumerate(problem.promoters):
        pairs = promoter_start_pairs(problem, pi)
        if not pairs:
            continue
        u, d = pairs[pick(len(pairs))]
        for start, seq, role in ((u, prom.upstream, "upstream"), (d, prom.downstream, "downstream")):
            items.append((-1, "+", start, seq, f"{prom.name}:{role}"))
            for j, ch in enumerate(seq):
                bases[start + j] = ch
                occupied[start + j] = True
    segments = []
    i = 0
    while i < L:
        if occupied[i]:
            i += 1
            continue
        j = i
        while j < L and not occupied[j]:
            j += 1
        segments.append((i, j))
        i = j
    segments.sort(key=lambda s: s[0] - s[1])  # widest first
    forbidden = sorted(set(problem.forbid_kmers) | {revcomp(k) for k in problem.forbid_kmers})
    unused = set(range(len(problem.sites))) - set(exclude)
    fixed_items = list(items)
    alternatives: list = []
    first_seg: tuple[int, int] = (0, 0)
    rest: list = []
    for n_seg, (lo, hi) in enumerate(segments):
        placed, text = pack_segment(problem, lo, hi, unused, rng, forbidden, alternatives if n_seg == 0 else None, stop=stop,
                                    work=work)
        for k, ch in enumerate(text):
            bases[lo + k] = ch
        items.extend(placed)
        if n_seg == 0:
            first_seg = (lo, hi)
        else:
            rest.extend(placed)
    out = [Layout("".join(bases), tuple(sorted(items, key=lambda t: (t[2], t[0]))))]
    rest_sites = {t[0] for t in rest}
    for placed, text in alternatives[1:]:
        if {t[0] for t in placed} & rest_sites:
            continue
        alt = list(out[0].sequence)
        lo, _hi = first_seg
        for k, ch in enumerate(text):
            alt[lo + k] = ch
        alt_items = fixed_items + rest + placed
        out.append(Layout("".join(alt), tuple(sorted(alt_items, key=lambda t: (t[2], t[0])))))
    return out


def _blocks(items, L):
    """Groups of items whose intervals overlap (touching intervals are separate blocks)."""
    order = sorted(items, key=lambda t: (t[2], t[2] + len(t[3])))
    blocks: list[list] = []
    end = -1
    for it in order:
        if blocks and it[2] < end:
            blocks[-1].append(it)
            end = max(end, it[2] + len(it[3]))
        else:
            blocks.append([it])
            end = it[2] + len(it[3])
    return blocks


def neighbour_layouts(problem: Problem, layout: Layout, rng: random.Random) -> Iterator[Layout]:
    """Distinct layouts with the same sites, from block shifts, flips and swaps (random order)."""
    L = problem.length
    seq = layout.sequence
    blocks = _blocks(layout.items, L)
    spans = [(min(t[2] for t in b), max(t[2] + len(t[3]) for t in b)) for b in blocks]
    movable = [k for k, b in enumerate(blocks) if all(t[0] >= 0 for t in b)]
    moves = []
    for k in movable:
        lo, hi = spans[k]
        left_free = lo - (spans[k - 1][1] if k > 0 else 0)
        right_free = (spans[k + 1][0] if k + 1 < len(blocks) else L) - hi
        for d in range(1, left_free + 1):
            moves.append(("shift", k, -d))
        for d in range(1, right_free + 1):
            moves.append(("shift", k, d))
        if problem.strands == "double":
            moves.append(("flip", k, 0))
        if k + 1 < len(blocks) and k + 1 in movable:
            moves.append(("swap", k, 0))
    rng.shuffle(moves)
    for kind, k, d in moves:
        bases = list(seq)
        new_items = [t for j, b in enumerate(blocks) if j not in (k, k + 1 if kind == "swap" else k) for t in b]
        lo, hi = spans[k]
        block_text = seq[lo:hi]
        if kind == "shift":
            for i, ch in enumerate(block_text):
                bases[lo + d + i] = ch
            new_items += [(si, st, s + d, sq, f) for si, st, s, sq, f in blocks[k]]
        elif kind == "flip":
            rc = revcomp(block_text)
            for i, ch in enumerate(rc):
                bases[lo + i] = ch
            for si, st, s, sq, f in blocks[k]:
                new_start = lo + (hi - (s + len(sq)))
                new_items.append((si, "-" if st == "+" else "+", new_start, revcomp(sq), f))
            if problem.strands != "double":
                continue
        else:  # swap blocks k and k+1, keeping the gap between them
            lo2, hi2 = spans[k + 1]
            gap = seq[hi:lo2]
            text2 = seq[lo2:hi2]
            new_text = text2 + gap + block_text
            for i, ch in enumerate(new_text):
                bases[lo + i] = ch
            shift2 = lo - lo2
            shift1 = (lo + len(text2) + len(gap)) - lo
            new_items += [(si, st, s + shift2, sq, f) for si, st, s, sq, f in blocks[k + 1]]
            new_items += [(si, st, s + shift1, sq, f) for si, st, s, sq, f in blocks[k]]
        yield Layout("".join(bases), tuple(sorted(new_items, key=lambda t: (t[2], t[0]))))
    yield from _permuted_layouts(problem, layout, blocks, spans, rng)


PERMUTATION_TRIES = 300


def _permuted_layouts(problem: Problem, layout: Layout, blocks, spans, rng: random.Random) -> Iterator[Layout]:
    """Random reorderings (and, on two strands, flips) of the movable blocks of each run between
    fixed blocks; the gaps keep their order and length, so every block keeps its internal
    overlaps and the run its span (junction k-mers and the rest are checked by the caller)."""
    L = problem.length
    seq = layout.sequence
    fixed = [k for k, b in enumerate(blocks) if any(t[0] < 0 for t in b)]
    runs = []
    prev_end, prev_k = 0, -1
    for k in [*fixed, len(blocks)]:
        members = list(range(prev_k + 1, k))
        lo = prev_end
        hi = spans[k][0] if k < len(blocks) else L
        if len(members) >= 1:
            runs.append((lo, hi, members))
        if k < len(blocks):
            prev_end, prev_k = spans[k][1], k
    runs = [r for r in runs if len(r[2]) >= 2 or problem.strands == "double"]
    if not runs:
        return
    double = problem.strands == "double"
    seen = {seq}
    repeats = 0
    for _ in range(PERMUTATION_TRIES):
        if repeats >= 30:
            return  # (nearly) every reordering has been produced
        bases = list(seq)
        items = [t for k in fixed for t in blocks[k]]
        for lo, hi, members in runs:
            gaps = []
            cur = lo
            for k in members:
                gaps.append(seq[cur : spans[k][0]])
                cur = spans[k][1]
            tail = seq[cur:hi]
            order = members[:]
            rng.shuffle(order)
            pos = lo
            text = []
            for g, k in zip(gaps, order, strict=False):
                text.append(g)
                pos += len(g)
                blo, bhi = spans[k]
                btext = seq[blo:bhi]
                flip = double and rng.random() < 0.5
                if flip:
                    btext = revcomp(btext)
                    for si, st, s0, sq, f in blocks[k]:
                        items.append((si, "-" if st == "+" else "+", pos + (bhi - (s0 + len(sq))), revcomp(sq), f))
                else:
                    items += [(si, st, s0 - blo + pos, sq, f) for si, st, s0, sq, f in blocks[k]]
                text.append(btext)
                pos += bhi - blo
            text.append(tail)
            for i, ch in enumerate("".join(text)):
                bases[lo + i] = ch
        new_seq = "".join(bases)
        if new_seq in seen:
            repeats += 1
            continue
        seen.add(new_seq)
        repeats = 0
        yield Layout(new_seq, tuple(sorted(items, key=lambda t: (t[2], t[0]))))
