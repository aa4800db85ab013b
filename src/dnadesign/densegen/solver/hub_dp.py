"""The path relaxation's dynamic program over overlap hubs, for large libraries.

``bound._PathDP`` relaxes each arc ``a -> b`` that overlaps (a sparse list) at every end
position: at 2000 oriented sites a third of the 4 million pairs overlap by 3 bases or more, so
one pass touched ~27 million arc-positions (0.27 s) and shorter overlaps had to be folded into a
default arc. Here arcs go through hubs (``overlaps.overlap_hubs``): the best path ending in each
shared suffix ``x`` is tabulated once per end position, and every item starting with ``x`` reads
it. A pass then touches (items ending in a hub + items starting with one) per position, about
11k at 2000 sites with every overlap of 1 base or more: exact overlaps, and ~20x fewer reads.

Same semantics as ``_PathDP`` (``best[c, b]``: best weight of a path whose last item ``b`` ends
at or before ``c``; no item right after an item of its own site), with one difference that only
loosens it: with ``plain`` below the item lengths unlisted arcs are cheaper than they are. The
passes are compiled kernels (``hub_kernels``): 4-5x faster than the numpy passes they replaced,
and they keep a second-best per hub so that the own-site rule holds through hubs as well.
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


class HubDP(TableReads):
    """Best weighted path over items whose overlaps are hubs (see the module docstring).

    ``ends``/``starts`` are ``overlap_hubs`` rows ``(item, hub, k)``. Forward: the arc
    ``a -> b`` through hub ``x`` costs ``len(b) - k`` and an arc without a hub ``plain[b]``.
    ``backward`` runs on the transposed arcs (paths built right to left): ``b -> a`` costs
    ``len(b) - k``, without a hub ``plain[b]`` (of the source). ``site`` (default: each item its
    own) is each item's site: no item follows one of its own site. The passes are compiled
    (``hub_kernels``, imported on first use).
    """

    def __init__(self, lengths: np.ndarray, ends: np.ndarray, starts: np.ndarray, n_hubs: int,
                 first: np.ndarray, horizon: int, plain: np.ndarray, backward: bool, site: np.ndarray | None = None):
        n = len(first)
        self.first = np.ascontiguousarray(first, dtype=np.int64)
        self.horizon, self.backward, self.n_hubs = max(0, horizon), backward, n_hubs
        self.plain = np.ascontiguousarray(plain, dtype=np.int64)
        self.site = np.arange(n, dtype=np.int64) if site is None else np.ascontiguousarray(site, dtype=np.int64)
        into, out = (starts, ends) if backward else (ends, starts)
        # Edges item -> hub, grouped by hub; their share of the arc cost (backward: len(a) - k).
        order = np.argsort(into[:, 1], kind="stable")
        self._in_item = np.ascontiguousarray(into[order, 0], dtype=np.int64)
        self._in_off = np.ascontiguousarray(
            (lengths[self._in_item] - into[order, 2]) if backward else np.zeros(len(order)), dtype=np.int64)
        self._in_ptr = np.searchsorted(into[order, 1], np.arange(n_hubs + 1)).astype(np.int64)
        # Edges hub -> item, grouped by item; their share (forward: len(b) - k).
        order = np.argsort(out[:, 0], kind="stable")
        self._out_hub = np.ascontiguousarray(out[order, 1], dtype=np.int64)
        self._out_off = np.ascontiguousarray(
            np.zeros(len(order)) if backward else lengths[out[order, 0]] - out[order, 2], dtype=np.int64)
        self._out_ptr = np.searchsorted(out[order, 0], np.arange(n + 1)).astype(np.int64)

    def _edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (self.first, self.plain, self.site, self._in_item, self._in_off, self._in_ptr,
                self._out_hub, self._out_off, self._out_ptr)

    def run(self, w: np.ndarray) -> None:
        from .hub_kernels import fill

        self.w = np.ascontiguousarray(w, dtype=np.float64)
        self.best = fill(self.w, *self._edges(), self.horizon, self.backward)

    def trace(self, b: int, c: int) -> list[int]:
        """Items of the path behind ``best[c, b]`` (predecessors are found again, not stored)."""
        from .hub_kernels import trace

        return trace(self.best, self.w, *self._edges(), b, c, self.backward).tolist()


def load_kernels() -> None:
    """Import and load the compiled passes (numba's import and its cache: ~1 s of CPU once per
    process), so that a caller can keep that cost out of a phase's own time share."""
    from .hub_kernels import fill, trace

    z, one = np.zeros(1, dtype=np.int64), np.zeros((2, 1))
    fill(np.zeros(1), z, z, z, z, z, z, z, z, np.zeros(2, dtype=np.int64), 1, False)
    trace(one, np.zeros(1), z, z, z, z, z, z, z, z, np.zeros(2, dtype=np.int64), 0, 1, False)
