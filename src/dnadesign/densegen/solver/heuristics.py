"""Fast constructive heuristics that produce complete *hints* for CP-SAT.

Nothing here decides a solution: every candidate is handed to CP-SAT as a hint and only what the
solver returns is emitted. A complete, feasible hint is accepted by CP-SAT's presolve in a
fraction of a second, which is what makes enumeration cheap.

- ``greedy_layouts``: dense first layouts from a beam search over chains of maximal overlaps
  per free segment (the best first, then alternatives with as many sites).
- ``neighbour_layouts``: symmetry moves on a solution: shift a block into a gap, flip a block to
  the other strand, swap two adjacent blocks. They keep the site set and the site count.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
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


BEAM_WIDTH = 48


def _pack_segment(problem: Problem, lo: int, hi: int, unused: set[int], rng: random.Random, forbidden: list[str], alternatives: list | None = None):
    """Beam search for a dense chain inside [lo, hi).

    A chain appends sites one after another, each overlapping the previous one by their largest
    agreeing overlap (shorter than both), so it never conflicts with earlier sites. States are
    ranked by (sites, -length); the best ``BEAM_WIDTH`` distinct states survive each step.
    """
    cands = []
    for si in sorted(unused):
        for strand, seq in oriented_sequences(problem.sites[si].sequence, problem.strands):
            if len(seq) <= hi - lo and not any(f in seq for f in forbidden):
                cands.append((si, strand, seq))
    width = hi - lo
    # state: (sites, -length, chain tuple of candidate indices, used frozenset)
    beam = [(0, 0, (), frozenset())]
    best = beam[0]
    while beam:
        nxt = {}
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
                state = (count + 1, -new_len, chain + (k,), used | {si})
                if key not in nxt or state[:2] > nxt[key][:2]:
                    nxt[key] = state
        beam = sorted(nxt.values(), key=lambda st: (-st[0], -st[1], st[2]))[:BEAM_WIDTH]
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


def greedy_layouts(problem: Problem, seed: int, exclude: frozenset[int] = frozenset()) -> list[Layout]:
    """The best beam layout first, then alternatives with as many sites in the widest segment.

    Alternatives differ in the order, orientation or choice of sites of the widest free
    segment; the other segments keep their best chains (skipped when they would reuse a site).
    Sites in ``exclude`` are not used (diverse mode steers away from used sites this way).
    """
    rng = random.Random(seed)
    L = problem.length
    bases = [rng.choice("ACGT") for _ in range(L)]
    items: list[tuple[int, str, int, str, str]] = []
    occupied = [False] * L
    for pi, prom in enumerate(problem.promoters):
        pairs = promoter_start_pairs(problem, pi)
        if not pairs:
            continue
        u, d = pairs[len(pairs) // 2]
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
    first_seg = None
    rest: list = []
    for n_seg, (lo, hi) in enumerate(segments):
        placed, text = _pack_segment(problem, lo, hi, unused, rng, forbidden, alternatives if n_seg == 0 else None)
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
