"""The path relaxation's dynamic program over overlap hubs, for large libraries.

``bound._PathDP`` relaxes each arc ``a -> b`` that overlaps (a sparse list) at every end
position: at 2000 oriented sites a third of the 4 million pairs overlap by 3 bases or more, so
one pass touched ~27 million arc-positions (0.27 s) and shorter overlaps had to be folded into a
default arc. Here arcs go through hubs (``overlaps.overlap_hubs``): the best path ending in each
shared suffix ``x`` is tabulated once per end position, and every item starting with ``x`` reads
it. A pass then touches (items ending in a hub + items starting with one) per position, about
11k at 2000 sites with every overlap of 1 base or more: exact overlaps, and ~20x fewer reads.

Same semantics as ``_PathDP`` (``best[c, b]``: best weight of a path whose last item ``b`` ends
at or before ``c``), with two differences that only loosen it: an item may follow another
orientation of its own site through a hub (the multipliers price repeated sites anyway), and
with ``plain`` below the item lengths unlisted arcs are cheaper than they are.
"""

from __future__ import annotations

import numpy as np

NEG = -1e18
BIG = 1 << 20


class TableReads:
    """Reads of a filled table ``best`` (shared by the pairwise and the hub programs)."""

    best: np.ndarray
    horizon: int

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

    def tops(self, then: np.ndarray, size: int) -> np.ndarray:
        """``top(c, then)`` values for every ``c`` in ``range(size)``."""
        c = np.arange(size)[:, None]
        lim = np.minimum(c - then[None, :], self.horizon)
        cols = np.arange(len(then))[None, :]
        return np.where(lim >= 0, self.best[np.maximum(lim, 0), cols], NEG).max(axis=1)


def _segments(keys: np.ndarray, n: int) -> np.ndarray:
    """Start of each key's run in ``keys`` (sorted, every key in ``range(n)`` present)."""
    return np.searchsorted(keys, np.arange(n))


class HubDP(TableReads):
    """Best weighted path over items whose overlaps are hubs (see the module docstring).

    ``ends``/``starts`` are ``overlap_hubs`` rows ``(item, hub, k)``. Forward: the arc
    ``a -> b`` through hub ``x`` costs ``len(b) - k`` and an arc without a hub ``plain[b]``.
    ``backward`` runs on the transposed arcs (paths built right to left): ``b -> a`` costs
    ``len(b) - k``, without a hub ``plain[b]`` (of the source).
    """

    def __init__(self, lengths: np.ndarray, ends: np.ndarray, starts: np.ndarray, n_hubs: int,
                 first: np.ndarray, horizon: int, plain: np.ndarray, backward: bool):
        n = len(first)
        self.first, self.horizon, self.plain, self.backward = first, max(0, horizon), plain, backward
        self.n_hubs = n_hubs
        into, out = (starts, ends) if backward else (ends, starts)
        # Edges item -> hub (sorted by hub): the item's table row is ``offset`` before the hub's.
        order = np.argsort(into[:, 1], kind="stable")
        self._in_item, self._in_hub = into[order, 0], into[order, 1]
        self._in_off = (lengths[self._in_item] - into[order, 2]) if backward else np.zeros(len(order), dtype=np.int64)
        self._in_seg = _segments(self._in_hub, n_hubs)
        # Edges hub -> item (sorted by item), one dummy per item from the always-NEG hub column.
        o_item = np.concatenate([out[:, 0], np.arange(n)])
        o_hub = np.concatenate([out[:, 1], np.full(n, n_hubs)])
        o_off = np.concatenate([np.zeros(len(out), dtype=np.int64) if backward else lengths[out[:, 0]] - out[:, 2],
                                np.zeros(n, dtype=np.int64)])
        order = np.argsort(o_item, kind="stable")
        self._out_item, self._out_hub, self._out_off = o_item[order], o_hub[order], o_off[order]
        self._out_seg = _segments(self._out_item, n)
        self._lengths = lengths
        self._starts, self._ends = starts, ends
        self._preds: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def run(self, w: np.ndarray) -> None:
        # Tables carry ``pad`` rows of NEG before row 0, so a read ``offset`` rows back is one
        # flat ``take`` at a precomputed index plus ``c`` rows (no clipping, no masks).
        H, n, nh = self.horizon, len(self.first), self.n_hubs
        pad = int(max(self._lengths.max(initial=0), self.plain.max(initial=0))) + 1
        best_p = np.full((pad + H + 1, n + 1), NEG)  # column n stays NEG
        hub_p = np.full((pad + H + 1, nh + 1), NEG)  # best path ending in each hub; column nh NEG
        row_max_p = np.full(pad + H + 1, NEG)
        best_f, hub_f = best_p.reshape(-1), hub_p.reshape(-1)
        bw, hw = n + 1, nh + 1
        cols = np.arange(n)
        starts = np.where(self.first[None, :] <= np.arange(H + 1)[:, None], 0.0, NEG)
        has_in = len(self._in_item) > 0
        if self.backward:
            in_at = (pad - self._in_off) * bw + self._in_item
            plain_at = (pad - self.plain) * bw + cols
            out_at = pad * hw + self._out_hub
        else:
            in_at = pad * bw + self._in_item
            out_at = (pad - self._out_off) * hw + self._out_hub
            plain_rows = pad - self.plain
        for c in range(1, H + 1):
            if self.backward:
                if has_in:
                    hub_p[pad + c, :nh] = np.maximum.reduceat(best_f.take(in_at + c * bw), self._in_seg)
                via = np.maximum.reduceat(hub_f.take(out_at + c * hw), self._out_seg)
                np.maximum(via, best_f.take(plain_at + c * bw).max(), out=via)
            else:
                via = np.maximum.reduceat(hub_f.take(out_at + c * hw), self._out_seg)
                np.maximum(via, row_max_p.take(plain_rows + c), out=via)
            np.maximum(via, starts[c], out=via)
            via += w
            row = best_p[pad + c, :n]
            np.maximum(via, best_p[pad + c - 1, :n], out=row)
            row_max_p[pad + c] = row.max()
            if not self.backward and has_in:
                hub_p[pad + c, :nh] = np.maximum.reduceat(best_f.take(in_at + c * bw), self._in_seg)
        self.best, self.w = best_p[pad:], w

    def _reached(self, c: int, b: int) -> int:
        """The first end position at which ``best[:, b]`` (non-decreasing) reaches ``best[c, b]``."""
        return int(np.argmax(self.best[: c + 1, b] >= self.best[c, b]))

    def _predecessors(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Items that can come right before ``b`` through a hub, and the arc costs."""
        if b not in self._preds:
            own, other = (self._ends, self._starts) if self.backward else (self._starts, self._ends)
            srcs: list[np.ndarray] = []
            costs: list[np.ndarray] = []
            for _item, h, k in own[own[:, 0] == b]:
                members = other[other[:, 1] == h, 0]
                srcs.append(members)
                size = self._lengths[members] if self.backward else np.full(len(members), self._lengths[b])
                costs.append(size - k)
            self._preds[b] = (np.concatenate(srcs) if srcs else np.zeros(0, dtype=np.int64),
                              np.concatenate(costs) if costs else np.zeros(0, dtype=np.int64))
        return self._preds[b]

    def trace(self, b: int, c: int) -> list[int]:
        """Items of the path behind ``best[c, b]`` (predecessors are found again, not stored)."""
        out = []
        n = len(self.first)
        everyone = np.arange(n)
        while b >= 0 and c > 0:
            c = self._reached(c, b)
            out.append(b)
            prev = self.best[c, b] - self.w[b]
            if self.first[b] <= c and prev <= 1e-9:
                break  # the path starts here
            found = -1
            srcs, costs = self._predecessors(b)
            plain = self.plain if self.backward else np.full(n, self.plain[b])
            for cand, arc in ((srcs, costs), (everyone, plain)):
                if not len(cand):
                    continue
                src = c - arc
                vals = np.where(src >= 0, self.best[np.maximum(src, 0), cand], NEG)
                k = int(vals.argmax())
                if vals[k] >= prev - 1e-7:
                    found, c = int(cand[k]), int(src[k])
                    break
            if found < 0:
                break
            b = found
        return out
