"""Compiled passes of the hub program (``hub_dp.HubDP``): the table fill and the trace.

One pass fills ``best[c, b]`` (best weight of a relaxed path whose last item ``b`` ends at or
before ``c``) for every end position, reading the arcs through overlap hubs. The tables of the
hubs keep, per end position, the best path ending in the hub *and* the best one whose last item
is another site (``top2``), so an item never follows an item of its own site (another
orientation, or itself): the fold ``a`` then ``rc(a)`` through a palindromic junction is cut,
which the numpy program allowed. Arc costs are split between the two edges of a hub: the arc
``a -> b`` through hub ``h`` costs ``out_off[b, h] + in_off[a, h]`` (forward: ``len(b) - k`` and
0; backward, on the reversed reading: 0 and ``len(a) - k``). An arc without a hub costs
``plain[b]`` (forward) or ``plain[a]`` (backward, the source's).

Imported lazily (numba's import costs ~0.5 s of CPU: only large libraries pay it).
"""

from __future__ import annotations

import numpy as np

from .jit import kernel

NEG = -1e18


@kernel
def fill(w, first, plain, site, in_item, in_off, in_ptr, out_hub, out_off, out_ptr, horizon, backward):
    """The table ``best`` (``horizon + 1`` rows, one column per item) of one pass under item
    weights ``w``. ``in_*``: edges item -> hub, grouped by hub (``in_ptr``); ``out_*``: edges
    hub -> item, grouped by item (``out_ptr``)."""
    n, nh = len(w), len(in_ptr) - 1
    best = np.full((horizon + 1, n), NEG)
    # Per end position and hub: the best path ending in the hub and its last item's site. When
    # that site is the reader's own, the best of the other sites is found again (rare).
    hv = np.full((horizon + 1, nh), NEG)
    hs = np.full((horizon + 1, nh), -1)
    # Forward plain arcs: the best path ending at or before c, its site, and the best of another site.
    r1, rs, r2 = np.full(horizon + 1, NEG), np.full(horizon + 1, -1), np.full(horizon + 1, NEG)
    for c in range(1, horizon + 1):
        p1, ps, p2 = NEG, -1, NEG  # backward plain arcs into c: the best, its site, another site's best
        if backward:
            for h in range(nh):
                v1, s1 = NEG, -1
                for e in range(in_ptr[h], in_ptr[h + 1]):
                    r = c - in_off[e]
                    if r >= 0:
                        a = in_item[e]
                        x = best[r, a]
                        s1 = site[a] if x > v1 else s1  # selects, not branches
                        v1 = max(v1, x)
                hv[c, h], hs[c, h] = v1, s1
            for a in range(n):
                r = c - plain[a]
                if r >= 0:
                    v, s = best[r, a], site[a]
                    if s == ps:
                        if v > p1:
                            p1 = v
                    elif v > p1:
                        p1, ps, p2 = v, s, p1
                    elif v > p2:
                        p2 = v
        q1, qs, q2 = NEG, -1, NEG
        for b in range(n):
            sb = site[b]
            via = NEG
            for e in range(out_ptr[b], out_ptr[b + 1]):
                r = c - out_off[e]
                if r >= 0:
                    h = out_hub[e]
                    v = hv[r, h]
                    if hs[r, h] == sb:  # the best is of b's own site (rare): the best of the others
                        v = NEG
                        for f in range(in_ptr[h], in_ptr[h + 1]):
                            a = in_item[f]
                            q = r - in_off[f]
                            if q >= 0 and site[a] != sb:
                                v = max(v, best[q, a])
                    via = max(via, v)
            if backward:
                v = p1 if ps != sb else p2
            else:
                r = c - plain[b]
                v = NEG
                if r >= 0:
                    v = r1[r] if rs[r] != sb else r2[r]
            if v > via:
                via = v
            if first[b] <= c and via < 0.0:
                via = 0.0
            via += w[b]
            prev = best[c - 1, b]
            if prev > via:
                via = prev
            best[c, b] = via
            if sb == qs:
                if via > q1:
                    q1 = via
            elif via > q1:
                q1, qs, q2 = via, sb, q1
            elif via > q2:
                q2 = via
        r1[c], rs[c], r2[c] = q1, qs, q2
        if not backward:
            for h in range(nh):  # forward: an item's edges into hubs cost nothing (in_off 0)
                v1, s1 = NEG, -1
                for e in range(in_ptr[h], in_ptr[h + 1]):
                    a = in_item[e]
                    x = best[c, a]
                    s1 = site[a] if x > v1 else s1  # selects, not branches
                    v1 = max(v1, x)
                hv[c, h], hs[c, h] = v1, s1
    return best


@kernel
def trace(best, w, first, plain, site, in_item, in_off, in_ptr, out_hub, out_off, out_ptr, b, c, backward):
    """Items of the path behind ``best[c, b]``, last first (predecessors found again in the
    table: an item of another site, through a hub or a plain arc, whose path reaches the value)."""
    n = len(w)
    out = np.empty(c + 1, dtype=np.int64)
    m = 0
    while b >= 0 and c > 0:
        while c > 0 and best[c - 1, b] >= best[c, b]:
            c -= 1  # the first end at which best[., b] reaches its value
        out[m] = b
        m += 1
        prev = best[c, b] - w[b]
        if first[b] <= c and prev <= 1e-9:
            break  # the path starts here
        found, at = -1, -1
        for e in range(out_ptr[b], out_ptr[b + 1]):
            h = out_hub[e]
            for f in range(in_ptr[h], in_ptr[h + 1]):
                a = in_item[f]
                r = c - out_off[e] - in_off[f]
                if r >= 0 and site[a] != site[b] and best[r, a] >= prev - 1e-7:
                    found, at = a, r
                    break
            if found >= 0:
                break
        if found < 0:
            for a in range(n):
                r = c - (plain[a] if backward else plain[b])
                if r >= 0 and site[a] != site[b] and best[r, a] >= prev - 1e-7:
                    found, at = a, r
                    break
        if found < 0:
            break
        b, c = found, at
    return out[:m]
