"""An upper bound on the number of library sites, from a path relaxation (Lagrangian + DP).

Why: CP-SAT's own bound comes from the core-packing at-most-ones (``cores.py``), which shrink
every site by the largest overlap it could have with *any* other site. On 100-site libraries
that bound sits 2-4 sites above the best solutions and does not move. This module proves a
tighter one in numpy, in well under a second on those libraries.

The relaxation. Order the placed items of a solution by start. A site that lies inside another
placed item is a substring of it, so it is carried by that item (an item's weight includes the
sites it contains). For the rest, starts and ends increase together, and consecutive items
``a, b`` overlap by a suffix/prefix match, so ``end(b) >= end(a) + len(b) - maxov(a, b)``. A
solution is therefore a path over oriented sites whose costs sum to at most L and that visits
each site at most once. With a promoter, the path also passes through the upstream and then the
downstream element at an allowed pair of starts; an element may instead sit inside a library
site that contains it (an "anchor" carrying that site). A site holding both elements is simply
counted as free. Dropping "each site at most once" turns the best path into a dynamic program
over (end position, last item); pricing the rule back in with one Lagrange multiplier per site
gives, for every ``lambda >= 0``,

    sites in any solution  <=  max over paths of sum(1 - lambda[site]) + sum(lambda),

and subgradient (Polyak) steps on ``lambda`` drive that bound down. Everything else (k-mers, GC,
regulator rules, side biases) only removes solutions, so the bound stays valid; orientations
that contain a forbidden k-mer are left out, as in the model. Only the first promoter is used
(ignoring the others is still a relaxation).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .cores import max_overlap
from .dna import oriented_sequences, revcomp
from .precheck import promoter_start_pairs
from .types import Problem

NEG = -1e18
BIG = 1 << 20  # cost of a forbidden arc (the same site twice in a row)
MAX_WORK = 2e8  # skip the bound when one DP pass would touch more arc-positions than this


@dataclass(frozen=True)
class _Anchor:
    """Where a promoter element can sit: alone, or inside an oriented library site."""

    sequence: str  # the element itself, or the library site that contains it
    offset: int  # start of the element inside ``sequence``
    own: int  # the (remapped) containing site, -1 for the bare element
    inside: tuple[int, ...]  # sites that can sit inside it

    def weight(self, site_w: np.ndarray) -> float:
        own = site_w[self.own] if self.own >= 0 else 0.0
        return float(own + sum(max(site_w[s], 0.0) for s in self.inside))

    def carried(self, site_w: np.ndarray) -> list[int]:
        return ([self.own] if self.own >= 0 else []) + [s for s in self.inside if site_w[s] > 0]


@dataclass
class _Items:
    """Oriented library sites that take part in the path and their arc costs.

    An item also carries every site that is a substring of it (it can sit inside the item, for
    free): an item's weight is its own site's plus the positive weights of those it contains.
    """

    seqs: list[str]  # each oriented item as read on the + strand
    site: np.ndarray  # (remapped) site index of each item
    inside: list[tuple[int, ...]]  # sites contained in each item
    cost: np.ndarray  # cost[a, b] = len(b) - maxov(a, b); BIG for the same site
    n_free: int  # sites counted as free (holding both promoter elements)
    n_sites: int  # sites that carry a multiplier
    anchors: tuple[list[_Anchor], list[_Anchor]]  # upstream, downstream element anchors

    def __post_init__(self) -> None:
        rows = [(i, s) for i, inner in enumerate(self.inside) for s in inner]
        self._contain = np.zeros((len(self.seqs), self.n_sites))
        for i, s in rows:
            self._contain[i, s] = 1.0

    def weights(self, site_w: np.ndarray) -> np.ndarray:
        """Weight of each item under the site weights."""
        return site_w[self.site] + self._contain @ np.maximum(site_w, 0.0)

    def carried(self, item: int, site_w: np.ndarray) -> list[int]:
        """Sites an item counts under these weights."""
        return [int(self.site[item])] + [s for s in self.inside[item] if site_w[s] > 0]

    def arcs_from(self, seq: str) -> np.ndarray:
        """Cost of each item right after ``seq``."""
        return np.array([len(s) - max_overlap(seq, s) for s in self.seqs], dtype=np.int64)

    def arcs_into(self, seq: str) -> np.ndarray:
        """Cost of ``seq`` right after each item."""
        return np.array([len(seq) - max_overlap(s, seq) for s in self.seqs], dtype=np.int64)


def _items(problem: Problem, elements: tuple[str, ...]) -> _Items:
    forbidden = set(problem.forbid_kmers) | {revcomp(k) for k in problem.forbid_kmers}
    oriented: list[tuple[int, str]] = []
    for si, site in enumerate(problem.sites):
        if len(site.sequence) <= problem.length:
            for _strand, seq in oriented_sequences(site.sequence, problem.strands):
                if not any(f in seq for f in forbidden):
                    oriented.append((si, seq))
    # A site holding both elements can sit across the whole promoter: counted as free.
    free = {si for si, seq in oriented if len(elements) > 1 and all(e in seq for e in elements)}
    kept = [(si, seq) for si, seq in oriented if si not in free]
    remap = {si: k for k, si in enumerate(sorted({si for si, _ in kept}))}

    def inside(seq: str, own: int | None) -> tuple[int, ...]:
        return tuple(sorted({remap[sj] for sj, other in kept if sj != own and other in seq}))

    path = [(remap[si], seq, inside(seq, si)) for si, seq in kept]
    anchors: tuple[list[_Anchor], list[_Anchor]] = ([], [])
    for slot, element in zip(anchors, elements):
        slot.append(_Anchor(element, 0, -1, inside(element, None)))
        for si, seq in kept:
            start = seq.find(element)
            while start != -1:
                slot.append(_Anchor(seq, start, remap[si], inside(seq, si)))
                start = seq.find(element, start + 1)
    n = len(path)
    cost = np.empty((n, n), dtype=np.int64)
    for a, (sa, x, _) in enumerate(path):
        for b, (sb, y, _) in enumerate(path):
            cost[a, b] = BIG if sa == sb else len(y) - max_overlap(x, y)
    site = np.array([si for si, _, _ in path], dtype=np.int64)
    return _Items([seq for _, seq, _ in path], site, [inner for _, _, inner in path], cost, len(free), len(remap), anchors)


class _PathDP:
    """Best weighted path over the items, tabulated by end position.

    ``best[c, b]`` is the best weight of a path whose last item ``b`` ends at or before ``c``;
    the first item costs ``first[b]`` and the arc ``a -> b`` costs ``cost[a, b]``, which is at
    most the no-overlap cost ``plain`` (the length of ``b``, or of ``a`` on transposed costs).
    Arcs cheaper than that (a real overlap, about a third of them) are kept as a sparse list;
    all others are served by one maximum per end position.
    """

    def __init__(self, cost: np.ndarray, first: np.ndarray, horizon: int, plain: np.ndarray, plain_of_source: bool):
        n = len(first)
        self.cost = cost
        self.first = first
        self.horizon = max(0, horizon)
        self.plain = plain
        self.plain_of_source = plain_of_source
        no_overlap = plain[:, None] if plain_of_source else plain[None, :]
        self._plain_cost = np.broadcast_to(no_overlap, (n, n))
        a_idx, b_idx = np.nonzero(cost < self._plain_cost)
        # Sorted by destination, one dummy arc (from the always-NEG column n) per destination so
        # every segment is non-empty for ``maximum.reduceat``.
        a_all = np.concatenate([a_idx, np.full(n, n)])
        b_all = np.concatenate([b_idx, np.arange(n)])
        c_all = np.concatenate([cost[a_idx, b_idx], np.zeros(n, dtype=np.int64)])
        order = np.argsort(b_all, kind="stable")
        self._arc_src, self._arc_cost = a_all[order], c_all[order]
        self._seg = np.searchsorted(b_all[order], np.arange(n))

    def run(self, w: np.ndarray) -> None:
        H, n = self.horizon, len(self.first)
        best = np.full((H + 1, n + 1), NEG)  # column n stays NEG (dummy arcs)
        at = np.zeros((H + 1, n), dtype=np.int64)  # the end at which best[c, b] was reached
        row_max = np.full(H + 1, NEG)
        cols = np.arange(n)
        for c in range(1, H + 1):
            src = c - self._arc_cost
            vals = np.where(src >= 0, best[np.maximum(src, 0), self._arc_src], NEG)
            via = np.maximum.reduceat(vals, self._seg)
            lim = c - self.plain
            if self.plain_of_source:
                ok = lim >= 0
                if ok.any():
                    via = np.maximum(via, best[lim[ok], cols[ok]].max())
            else:
                via = np.maximum(via, np.where(lim >= 0, row_max[np.maximum(lim, 0)], NEG))
            prev = np.maximum(via, np.where(self.first <= c, 0.0, NEG))
            here = np.where(prev > NEG / 2, prev + w, NEG)
            better = here > best[c - 1, :n]
            best[c, :n] = np.where(better, here, best[c - 1, :n])
            at[c] = np.where(better, c, at[c - 1])
            row_max[c] = best[c, :n].max()
        self.best, self.at, self.w = best, at, w

    def top(self, c: int, then: np.ndarray) -> tuple[float, int, int]:
        """Best path that leaves room for ``then[b]`` more bases before ``c``: (value, last item,
        end limit); (NEG, -1, -1) when no path fits."""
        lim = np.minimum(c - then, self.horizon)
        ok = lim >= 0
        if not ok.any():
            return NEG, -1, -1
        vals = np.where(ok, self.best[np.where(ok, lim, 0), np.arange(len(lim))], NEG)
        b = int(vals.argmax())
        return float(vals[b]), b, int(lim[b])

    def trace(self, b: int, c: int) -> list[int]:
        """Items of the path behind ``best[c, b]`` (predecessors are found again, not stored)."""
        out = []
        n = len(self.first)
        rows = np.arange(n)
        while b >= 0 and c > 0:
            c = int(self.at[c, b])
            out.append(b)
            prev = self.best[c, b] - self.w[b]
            if self.first[b] <= c and prev <= 1e-9:
                break  # the path starts here
            found = -1
            for arc in (self.cost[:, b], self._plain_cost[:, b]):
                src = c - arc
                ok = (src >= 0) & (arc < BIG)
                vals = np.where(ok, self.best[np.maximum(src, 0), rows], NEG)
                a = int(vals.argmax())
                if vals[a] >= prev - 1e-7:
                    found, c = a, int(src[a])
                    break
            if found < 0:
                break
            b = found
        return out


def site_bound(problem: Problem, *, known: int = 0, time_budget_s: float | None = 2.0, max_iterations: int = 200) -> int | None:
    """Upper bound on the library sites of any solution of ``problem``; None if not computed.

    ``known`` is the site count of a known solution: the search stops once the bound reaches it.
    With ``time_budget_s=None`` only the iteration cap ends it (reproducible results).
    """
    prom = problem.promoters[0] if problem.promoters else None
    elements = (prom.upstream, prom.downstream) if prom else ()
    items = _items(problem, elements)
    n = len(items.seqs)
    if n * n * problem.length > MAX_WORK:
        return None
    if prom is None:
        parts: _Plain | _WithPromoter = _Plain(items, problem.length)
    else:
        parts = _WithPromoter(items, problem)
        if not parts.pairs:
            return None
    deadline = None if time_budget_s is None else time.monotonic() + time_budget_s
    lam = np.zeros(items.n_sites)
    best = math.inf
    theta, stale = 1.0, 0
    target = max(0, known - items.n_free)
    for _ in range(max_iterations):
        value, sites = parts.solve(1.0 - lam)
        if value <= NEG / 2:
            return None  # no relaxed layout at all: leave infeasibility to CP-SAT
        dual = value + lam.sum()
        if dual < best - 1e-9:
            best, stale = dual, 0
        else:
            stale += 1
            if stale >= 5:
                theta, stale = theta / 2, 0
        if math.floor(best + 1e-6) <= target or (deadline is not None and time.monotonic() > deadline):
            break
        g = 1.0 - np.bincount(np.asarray(sites, dtype=np.int64), minlength=items.n_sites)
        norm = float((g * g).sum())
        if norm == 0 or theta < 1e-4:
            break  # the relaxed path uses every site once: the bound cannot improve
        lam = np.maximum(0.0, lam - theta * max(dual - target, 0.5) / norm * g)
    if best == math.inf:
        return None
    return max(0, math.floor(best + 1e-6)) + items.n_free


class _Plain:
    """No promoter: one path from position 0 to L."""

    def __init__(self, items: _Items, L: int):
        self.items = items
        self.L = L
        lengths = np.array([len(s) for s in items.seqs], dtype=np.int64)
        self.dp = _PathDP(items.cost, lengths, L, lengths, False)
        self.none = np.zeros(len(items.seqs), dtype=np.int64)

    def solve(self, site_w: np.ndarray) -> tuple[float, list[int]]:
        if not len(self.items.seqs):
            return 0.0, []
        self.dp.run(self.items.weights(site_w))
        value, b, c = self.dp.top(self.L, self.none)
        if value <= 0:
            return 0.0, []
        return value, [s for i in self.dp.trace(b, c) for s in self.items.carried(i, site_w)]


class _WithPromoter:
    """Left path, upstream anchor, middle path, downstream anchor, right path.

    The left path runs forward from position 0; the right path is computed backwards (on the
    transposed arc costs) so one table serves every downstream anchor; each upstream anchor has
    its own short middle table, in coordinates relative to the anchor's end.
    """

    def __init__(self, items: _Items, problem: Problem):
        L = problem.length
        self.L = L
        self.items = items
        ups, downs = items.anchors
        self.pairs = promoter_start_pairs(problem, 0)
        self.ups = [(a, items.arcs_into(a.sequence), items.arcs_from(a.sequence)) for a in ups]
        self.downs = [(a, items.arcs_into(a.sequence), items.arcs_from(a.sequence)) for a in downs]
        n = len(items.seqs)
        lengths = np.array([len(s) for s in items.seqs], dtype=np.int64)
        self.left = _PathDP(items.cost, lengths, L, lengths, False)
        self.right = _PathDP(items.cost.T.copy(), np.ones(n, dtype=np.int64), L + 1, lengths, True)
        # Longest distance from an upstream anchor's end to a downstream anchor's end.
        span = max(
            d + len(b.sequence) - b.offset - (u - a.offset + len(a.sequence))
            for u, d in self.pairs
            for a in ups
            for b in downs
        )
        self.mids = [_PathDP(items.cost, frm, span, lengths, False) for _a, _into, frm in self.ups]
        self.link = [[len(b.sequence) - max_overlap(a.sequence, b.sequence) for b in downs] for a in ups]

    def solve(self, site_w: np.ndarray) -> tuple[float, list[int]]:
        has_items = bool(len(self.items.seqs))
        if has_items:
            w = self.items.weights(site_w)
            for dp in (self.left, self.right, *self.mids):
                dp.run(w)
        cache: dict = {}

        def part(key, dp, c, then, empty_ok):
            if key not in cache:
                v, b, lim = dp.top(c, then) if has_items else (NEG, -1, -1)
                if v <= 0 and empty_ok:
                    v, b, lim = 0.0, -1, -1
                cache[key] = (v, b, lim)
            return cache[key]

        best, arg = NEG, None
        for u, d in self.pairs:
            for i, (a, a_into, _a_from) in enumerate(self.ups):
                a_start = u - a.offset
                a_end = a_start + len(a.sequence)
                if a_start < 0:
                    continue
                left = part(("l", i, a_end), self.left, a_end, a_into, True)
                a_w = a.weight(site_w)
                for j, (b, b_into, b_from) in enumerate(self.downs):
                    b_end = d - b.offset + len(b.sequence)
                    if d - b.offset < 0 or b_end > self.L or (a.own >= 0 and a.own == b.own):
                        continue
                    rel = b_end - a_end
                    mid = part(("m", i, j, rel), self.mids[i], rel, b_into, False)
                    if rel >= self.link[i][j] and mid[0] < 0:
                        mid = (0.0, -1, -1)  # nothing between the anchors
                    if mid[0] <= NEG / 2:
                        continue
                    right = part(("r", j, b_end), self.right, self.L - b_end + 1, b_from, True)
                    total = left[0] + a_w + mid[0] + b.weight(site_w) + right[0]
                    if total > best:
                        best, arg = total, (a, b, (self.left, left), (self.mids[i], mid), (self.right, right))
        if arg is None:
            return NEG, []
        a, b, *paths = arg
        sites = a.carried(site_w) + b.carried(site_w)
        for dp, (_v, last, lim) in paths:
            if last >= 0:
                sites += [s for k in dp.trace(last, lim) for s in self.items.carried(k, site_w)]
        return best, sites
