"""Compiled moves of the orienteering local search (``path_search.py``), numba kernels.

One path is a flat state: ``P`` (int64, ``P[0]`` items on the path, ``P[1]`` its length in
bases, ``P[2:2 + P[0]]`` the items), ``cnt`` / ``pcnt`` (int32 per problem site: items that place
or carry it / items that place it) and ``val`` (float64[1]: the value of the covered sites). Every
move keeps the four consistent (``add`` / ``drop`` are the only writers); ``rebuild`` recomputes
them from the items. The library is the tuple ``lib`` of arrays ``path_search._kernel_library``
builds: ``ov``, ``ov_t`` (its transpose), ``length``, ``site``, ``flip``, ``value``, ``in_flat``,
``in_start``, ``pinned``, ``site_hash``; item ``n`` is "no item" (its row and column are zeros).

The random numbers come from a xorshift64* state in ``rng`` (uint64[1]) that the caller owns,
so a search cut into chunks of rounds (``rounds``) follows the same sequence as one run.

Imported lazily (inside ``path_search``'s functions): numba's import costs ~0.5 s of CPU.
"""

from __future__ import annotations

import numpy as np

from .jit import kernel

BIG = 1 << 20
EPS = 1e-9
SEGMENT_MOVE = 3  # longest run of items the or-opt move relocates


@kernel
def _rand(rng):
    """Uniform float in [0, 1) from the xorshift64* state ``rng[0]``."""
    x = rng[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    rng[0] = x
    return float((x * np.uint64(2685821657736338717)) >> np.uint64(11)) / 9007199254740992.0


@kernel
def _randint(rng, lo, hi):
    """Uniform int in [lo, hi]."""
    return lo + min(hi - lo, int(_rand(rng) * (hi - lo + 1)))


@kernel
def rebuild(lib, P, cnt, pcnt, val):
    """Recompute length, coverage and value of ``P`` from its items."""
    ov, length, site, value, in_flat, in_start = lib[0], lib[2], lib[3], lib[5], lib[6], lib[7]
    n = len(site)
    m = P[0]
    cnt[:] = 0
    pcnt[:] = 0
    cost = 0
    prev = n
    for r in range(m):
        x = P[2 + r]
        cost += length[x] - ov[prev, x]
        prev = x
        pcnt[site[x]] += 1
        cnt[site[x]] += 1
        for q in range(in_start[x], in_start[x + 1]):
            cnt[in_flat[q]] += 1
    P[1] = cost
    v = 0.0
    for s in range(len(value)):
        if cnt[s] > 0:
            v += value[s]
    val[0] = v


@kernel
def _edge(lib, P, e):
    """Items before and after edge ``e`` (0..m): ``n`` at the ends."""
    n = len(lib[3])
    m = P[0]
    a = P[2 + e - 1] if e > 0 else n
    b = P[2 + e] if e < m else n
    return a, b


@kernel
def add(lib, P, cnt, pcnt, val, x, e):
    """Insert item ``x`` at edge ``e`` (before the item now at ``e``)."""
    ov, length, site, value, in_flat, in_start = lib[0], lib[2], lib[3], lib[5], lib[6], lib[7]
    a, b = _edge(lib, P, e)
    m = P[0]
    for r in range(m, e, -1):
        P[2 + r] = P[2 + r - 1]
    P[2 + e] = x
    P[0] = m + 1
    P[1] += length[x] - ov[a, x] - ov[x, b] + ov[a, b]
    s = site[x]
    pcnt[s] += 1
    if cnt[s] == 0:
        val[0] += value[s]
    cnt[s] += 1
    for q in range(in_start[x], in_start[x + 1]):
        t = in_flat[q]
        if cnt[t] == 0:
            val[0] += value[t]
        cnt[t] += 1


@kernel
def drop(lib, P, cnt, pcnt, val, r):
    """Remove the item at position ``r``; returns it."""
    ov, length, site, value, in_flat, in_start = lib[0], lib[2], lib[3], lib[5], lib[6], lib[7]
    n = len(site)
    m = P[0]
    x = P[2 + r]
    a = P[2 + r - 1] if r > 0 else n
    b = P[2 + r + 1] if r + 1 < m else n
    for k in range(r, m - 1):
        P[2 + k] = P[2 + k + 1]
    P[0] = m - 1
    P[1] -= length[x] - ov[a, x] - ov[x, b] + ov[a, b]
    s = site[x]
    pcnt[s] -= 1
    cnt[s] -= 1
    if cnt[s] == 0:
        val[0] -= value[s]
    for q in range(in_start[x], in_start[x + 1]):
        t = in_flat[q]
        cnt[t] -= 1
        if cnt[t] == 0:
            val[0] -= value[t]
    return x


@kernel
def gains(lib, cnt, pcnt, out):
    """Per item: the value it adds (its site unless covered, plus uncovered sites it carries);
    -1 when its site is already placed."""
    site, value, in_flat, in_start = lib[3], lib[5], lib[6], lib[7]
    for x in range(len(site)):
        s = site[x]
        if pcnt[s] > 0:
            out[x] = -1.0
            continue
        g = value[s] if cnt[s] == 0 else 0.0
        for q in range(in_start[x], in_start[x + 1]):
            t = in_flat[q]
            if cnt[t] == 0:
                g += value[t]
        out[x] = g


@kernel
def _cheapest_edges(lib, P, best, bestp):
    """Per item: its cheapest insertion cost over the edges of ``P`` and that edge."""
    ov, ov_t, length = lib[0], lib[1], lib[2]
    n = len(lib[3])
    m = P[0]
    best[:] = BIG
    bestp[:] = 0
    for e in range(m + 1):
        a, b = _edge(lib, P, e)
        joined = ov[a, b]
        row_a = ov[a]
        row_b = ov_t[b]
        for x in range(n):
            d = length[x] - row_a[x] - row_b[x] + joined
            if d < best[x]:
                best[x] = d
                bestp[x] = e


@kernel
def _cheapest_edge(lib, P, x):
    """Item ``x``'s cheapest insertion cost over the edges of ``P`` and that edge."""
    ov, length = lib[0], lib[2]
    bx = BIG
    bp = 0
    for f in range(P[0] + 1):
        u, v = _edge(lib, P, f)
        d = length[x] - ov[u, x] - ov[x, v] + ov[u, v]
        if d < bx:
            bx = d
            bp = f
    return bx, bp


@kernel
def insert_greedy(lib, P, cnt, pcnt, val, L, noise, rng, gain, best, bestp):
    """Cheapest insertion (added bases per unit of value, times ``1 + noise * U`` when ``noise``)
    until nothing more fits in ``L``. ``gain``, ``best``, ``bestp`` are scratch (n items).

    ``best[x]`` is kept exact or, once the edge it used is split (``bestp[x] == -1``), as a lower
    bound: the remaining old edges cost at least as much, the two new ones are compared at once.
    An item whose bound wins the choice is recomputed over all edges before it is taken."""
    ov, ov_t, length = lib[0], lib[1], lib[2]
    n = len(lib[3])
    _cheapest_edges(lib, P, best, bestp)
    factor = np.ones(n)
    while True:
        gains(lib, cnt, pcnt, gain)
        room = L - P[1]
        if noise > 0:
            for x in range(n):
                factor[x] = 1.0 + noise * _rand(rng)
        while True:
            pick = -1
            pick_ratio = np.inf
            for x in range(n):
                g = gain[x]
                if g <= 0 or best[x] > room:
                    continue
                ratio = max(best[x], 0.25) / g * factor[x]
                if ratio < pick_ratio:
                    pick_ratio = ratio
                    pick = x
            if pick < 0:
                return
            if bestp[pick] >= 0:
                break
            best[pick], bestp[pick] = _cheapest_edge(lib, P, pick)
        e = bestp[pick]
        add(lib, P, cnt, pcnt, val, pick, e)
        # Edge e became edges e (a, pick) and e + 1 (pick, b); later edges moved up by one.
        a, _ = _edge(lib, P, e)
        _, b = _edge(lib, P, e + 1)
        j1 = ov[a, pick]
        j2 = ov[pick, b]
        row_a, row_p, col_p, col_b = ov[a], ov[pick], ov_t[pick], ov_t[b]
        for x in range(n):
            if bestp[x] == e:
                bestp[x] = -1  # its edge is gone: best[x] is now a lower bound
            elif bestp[x] > e:
                bestp[x] += 1
            d1 = length[x] - row_a[x] - col_p[x] + j1
            if d1 < best[x]:
                best[x] = d1
                bestp[x] = e
            d2 = length[x] - row_p[x] - col_b[x] + j2
            if d2 < best[x]:
                best[x] = d2
                bestp[x] = e + 1


@kernel
def _better(v1, c1, v2, c2):
    """(value, -cost) of path 1 above that of path 2."""
    return v1 > v2 + EPS or (v1 > v2 - EPS and c1 < c2)


@kernel
def reverse_once(lib, P):
    """The segment reversal (strands flipped) that shortens ``P`` most; True when one did.
    Only the two boundary arcs change (``ov(a, b) == ov(rc(b), rc(a))``)."""
    ov, flip = lib[0], lib[4]
    m = P[0]
    if m < 2:
        return False
    for r in range(m):
        if flip[P[2 + r]] < 0:
            return False
    n = len(lib[3])
    top = 0
    ti = -1
    tj = -1
    for i in range(m):
        a = P[2 + i - 1] if i > 0 else n
        xi = P[2 + i]
        fi = flip[xi]
        for j in range(i, m):
            b = P[2 + j + 1] if j + 1 < m else n
            xj = P[2 + j]
            g = ov[a, flip[xj]] + ov[fi, b] - ov[a, xi] - ov[xj, b]
            if g > top:
                top = g
                ti = i
                tj = j
    if ti < 0:
        return False
    i, j = ti, tj
    while i < j:
        t = P[2 + i]
        P[2 + i] = flip[P[2 + j]]
        P[2 + j] = flip[t]
        i += 1
        j -= 1
    if i == j:
        P[2 + i] = flip[P[2 + i]]
    P[1] -= top
    return True


@kernel
def _lost(lib, P, cnt, r):
    """Value the item at ``r`` alone holds (its site and carried sites no other item covers)."""
    site, value, in_flat, in_start = lib[3], lib[5], lib[6], lib[7]
    x = P[2 + r]
    v = value[site[x]] if cnt[site[x]] == 1 else 0.0
    for q in range(in_start[x], in_start[x + 1]):
        if cnt[in_flat[q]] == 1:
            v += value[in_flat[q]]
    return v


@kernel
def exchange_once(lib, P, cnt, pcnt, val, gain, top3, top3p):
    """Exchange (or relocate, or drop) one placed item for the cheapest item worth at least as
    much, at any edge: tries the three moves that shorten ``P`` most and keeps the first that
    raises (value, -length); True when one did. ``top3`` / ``top3p``: (n, 3) scratch."""
    ov, ov_t, length, site, pinned = lib[0], lib[1], lib[2], lib[3], lib[8]
    n = len(site)
    m = P[0]
    if m == 0:
        return False
    gains(lib, cnt, pcnt, gain)
    # The three cheapest edges of every item (an exchange at r cannot use edges r and r + 1).
    for x in range(n):
        for k in range(3):
            top3[x, k] = BIG
            top3p[x, k] = -1
    for e in range(m + 1):
        a, b = _edge(lib, P, e)
        joined = ov[a, b]
        row_a = ov[a]
        row_b = ov_t[b]
        for x in range(n):
            d = length[x] - row_a[x] - row_b[x] + joined
            if d < top3[x, 2]:
                if d < top3[x, 1]:
                    top3[x, 2] = top3[x, 1]
                    top3p[x, 2] = top3p[x, 1]
                    if d < top3[x, 0]:
                        top3[x, 1] = top3[x, 0]
                        top3p[x, 1] = top3p[x, 0]
                        top3[x, 0] = d
                        top3p[x, 0] = e
                    else:
                        top3[x, 1] = d
                        top3p[x, 1] = e
                else:
                    top3[x, 2] = d
                    top3p[x, 2] = e
    # Items that some other edge takes for less than the largest saving (the rest can only go
    # into the edge a removal leaves, where they cost at least low[x] + ov(a, b)).
    low, by_low = lib[10], lib[11]
    top_saving = 0
    for r in range(m):
        a, _ = _edge(lib, P, r)
        _, b = _edge(lib, P, r + 1)
        xr = P[2 + r]
        top_saving = max(top_saving, length[xr] - ov[a, xr] - ov[xr, b] + ov[a, b])
    # ... listed by that cost (a counting sort: costs are small integers).
    counts = np.zeros(max(top_saving, 0) + 2, dtype=np.int64)
    for x in range(n):
        c = top3[x, 0]
        if c < top_saving:
            counts[max(c, 0) + 1] += 1
    for c in range(1, len(counts)):
        counts[c] += counts[c - 1]
    n_cheap = counts[-1]
    cheap = np.empty(n_cheap, dtype=np.int64)
    for x in range(n):
        c = top3[x, 0]
        if c < top_saving:
            cheap[counts[max(c, 0)]] = x
            counts[max(c, 0)] += 1
    # Per position: the best replacement, its edge and the improvement.
    imp = np.full(m, -BIG, dtype=np.int64)
    rep = np.full(m, -1, dtype=np.int64)
    rep_e = np.full(m, -1, dtype=np.int64)
    for r in range(m):
        a = P[2 + r - 1] if r > 0 else n
        xr = P[2 + r]
        b = P[2 + r + 1] if r + 1 < m else n
        joined = ov[a, b]
        saving = length[xr] - ov[a, xr] - ov[xr, b] + joined
        kept = pinned[site[xr]]
        lost = _lost(lib, P, cnt, r)
        best_c = saving  # only replacements that cost less than the saving
        best_x = -1
        best_e = -1
        row_a = ov[a]
        col_b = ov_t[b]
        # Candidates: items in order of low[x] while they may fit the merged edge, then the cheap list.
        k = 0
        q = 0
        while True:
            if k < n and low[by_low[k]] + joined < best_c:
                x = by_low[k]
                k += 1
            elif q < n_cheap and top3[cheap[q], 0] < best_c:
                x = cheap[q]
                q += 1
            else:
                break
            same = site[x] == site[xr]
            if kept:
                if not same:
                    continue
            elif not same and not (gain[x] > 0 and gain[x] >= lost - EPS):
                continue
            c = length[x] - row_a[x] - col_b[x] + joined  # into the edge r leaves
            ce = r
            for t in range(3):
                f = top3p[x, t]
                if f >= 0 and f != r and f != r + 1:
                    if top3[x, t] < c:
                        c = top3[x, t]
                        ce = f if f < r else f - 1
                    break
            if c < best_c:
                best_c = c
                best_x = x
                best_e = ce
        if not kept and lost <= EPS and best_c > 0:  # dropping it loses nothing
            best_c = 0
            best_x = -1
        if best_x >= 0 or (not kept and lost <= EPS):
            imp[r] = saving - best_c
            rep[r] = best_x
            rep_e[r] = best_e
    v0 = val[0]
    c0 = P[1]
    for _ in range(3):
        rr = int(np.argmax(imp))
        if imp[rr] <= 0:
            return False
        imp[rr] = -BIG
        old = drop(lib, P, cnt, pcnt, val, rr)
        if rep[rr] >= 0:
            add(lib, P, cnt, pcnt, val, rep[rr], rep_e[rr])
        if _better(val[0], P[1], v0, c0):
            return True
        if rep[rr] >= 0:
            drop(lib, P, cnt, pcnt, val, rep_e[rr])
        add(lib, P, cnt, pcnt, val, old, rr)
    return False


@kernel
def move_segment_once(lib, P, max_len):
    """Or-opt: the move of a run of 1..``max_len`` consecutive items to another edge, as it is or
    reversed with its strands flipped, that shortens ``P`` most; True when one did. The items
    stay the same sites (a flip keeps the site and its carried sites), so only the length moves."""
    ov, flip = lib[0], lib[4]
    n = len(lib[3])
    m = P[0]
    can_flip = True
    for r in range(m):
        if flip[P[2 + r]] < 0:
            can_flip = False
    top = 0
    t_i = -1
    t_k = 0
    t_e = -1
    t_rev = False
    for k in range(1, max_len + 1):
        for i in range(m - k + 1):
            j = i + k - 1
            a = P[2 + i - 1] if i > 0 else n
            b = P[2 + j + 1] if j + 1 < m else n
            si = P[2 + i]
            sj = P[2 + j]
            out_gain = ov[a, b] - ov[a, si] - ov[sj, b]  # bases saved by taking the run out (<= 0 usually)
            fi = flip[si] if can_flip else -1
            fj = flip[sj] if can_flip else -1
            for e in range(m + 1):
                if i <= e <= j + 1:
                    continue
                u, v = _edge(lib, P, e)
                g = out_gain + ov[u, si] + ov[sj, v] - ov[u, v]
                if g > top:
                    top, t_i, t_k, t_e, t_rev = g, i, k, e, False
                if can_flip:
                    g = out_gain + ov[u, fj] + ov[fi, v] - ov[u, v]
                    if g > top:
                        top, t_i, t_k, t_e, t_rev = g, i, k, e, True
    if t_i < 0:
        return False
    seg = P[2 + t_i : 2 + t_i + t_k].copy()
    if t_rev:
        seg = flip[seg[::-1]]
    rest = np.concatenate((P[2 : 2 + t_i], P[2 + t_i + t_k : 2 + m]))
    at = t_e if t_e < t_i else t_e - t_k  # the edge's index once the run is out
    P[2 : 2 + at] = rest[:at]
    P[2 + at : 2 + at + t_k] = seg
    P[2 + at + t_k : 2 + m] = rest[at:]
    P[1] -= top
    return True


@kernel
def shorten_once(lib, P, cnt, pcnt, val, gain, top3, top3p):
    """One move that shortens ``P`` at equal or higher value (a reversal, else a run moved, else
    an exchange)."""
    if reverse_once(lib, P):
        return True
    if move_segment_once(lib, P, SEGMENT_MOVE):
        return True
    return exchange_once(lib, P, cnt, pcnt, val, gain, top3, top3p)


@kernel
def improve(lib, P, cnt, pcnt, val, L, rng, gain, best, bestp, top3, top3p):
    """Insert, then shorten and insert again until neither helps."""
    insert_greedy(lib, P, cnt, pcnt, val, L, 0.0, rng, gain, best, bestp)
    while shorten_once(lib, P, cnt, pcnt, val, gain, top3, top3p):
        insert_greedy(lib, P, cnt, pcnt, val, L, 0.0, rng, gain, best, bestp)


@kernel
def _perturb(lib, P, cnt, pcnt, val, rng, min_seg, max_seg):
    """Ruin: drop a random segment or random items (2-8), pinned sites excepted."""
    site, pinned = lib[3], lib[8]
    m = P[0]
    if m == 0:
        return
    k = min(m, _randint(rng, min_seg, max_seg))
    mark = np.zeros(m, dtype=np.bool_)
    if _rand(rng) < 0.5:
        at = _randint(rng, 0, m - k)
        for r in range(at, at + k):
            mark[r] = True
    else:
        chosen = 0
        while chosen < k:
            r = _randint(rng, 0, m - 1)
            if not mark[r]:
                mark[r] = True
                chosen += 1
    for r in range(m - 1, -1, -1):
        if mark[r] and not pinned[site[P[2 + r]]]:
            drop(lib, P, cnt, pcnt, val, r)


@kernel
def path_key(lib, P):
    """Order-free hash of the sites a path places (distinct paths in the kept pool)."""
    site, site_hash = lib[3], lib[9]
    h = np.uint64(0)
    for r in range(P[0]):
        h += site_hash[site[P[2 + r]]]
    return h


@kernel
def remember(lib, P, val, pool, pool_val, pool_key, pool_used):
    """Keep ``P`` among the best distinct site sets (``pool``: rows like ``P``, best kept)."""
    h = path_key(lib, P)
    v = val[0]
    c = P[1]
    slot = -1
    for k in range(len(pool_val)):
        if pool_used[k] and pool_key[k] == h:
            if _better(v, c, pool_val[k], pool[k, 1]):
                slot = k
                break
            return
    if slot < 0:
        for k in range(len(pool_val)):  # a free slot, else the worst one if P beats it
            if not pool_used[k]:
                slot = k
                break
        if slot < 0:
            worst = 0
            for k in range(1, len(pool_val)):
                if _better(pool_val[worst], pool[worst, 1], pool_val[k], pool[k, 1]):
                    worst = k
            if not _better(v, c, pool_val[worst], pool[worst, 1]):
                return
            slot = worst
    pool[slot, :] = 0
    pool[slot, : 2 + P[0]] = P[: 2 + P[0]]
    pool_val[slot] = v
    pool_key[slot] = h
    pool_used[slot] = True


@kernel
def rounds(lib, L, cur, top, trial, ints, rng, params, pool, pool_val, pool_key, pool_used, count):
    """``count`` rounds of ruin and recreate from the current path ``cur``; ``top`` holds the best.

    ``cur`` / ``top`` / ``trial``: (P, cnt, pcnt, val) tuples. ``ints``: int64[2] (stale rounds,
    rounds done), carried between calls. ``params``: (noise, worse_accept, restart_after,
    min_seg, max_seg, enough). Stops early once ``top`` is worth ``enough``; returns the rounds run.
    """
    noise, worse, restart_after, min_seg, max_seg, enough = params
    n = len(lib[3])
    nv = len(lib[5])
    gain = np.empty(n)
    best = np.empty(n, dtype=np.int64)
    bestp = np.empty(n, dtype=np.int64)
    top3 = np.empty((n, 3), dtype=np.int64)
    top3p = np.empty((n, 3), dtype=np.int64)
    tP, tc, tp, tv = trial
    cP, cc, cp, cv = cur
    bP, bc, bp, bv = top
    done = 0
    while done < count and bv[0] < enough - EPS:
        done += 1
        tP[:] = cP
        tc[:nv] = cc
        tp[:nv] = cp
        tv[0] = cv[0]
        _perturb(lib, tP, tc, tp, tv, rng, int(min_seg), int(max_seg))
        insert_greedy(lib, tP, tc, tp, tv, L, noise, rng, gain, best, bestp)
        improve(lib, tP, tc, tp, tv, L, rng, gain, best, bestp, top3, top3p)
        remember(lib, tP, tv, pool, pool_val, pool_key, pool_used)
        if _better(tv[0], tP[1], bv[0], bP[1]):
            bP[:] = tP
            bc[:] = tc
            bp[:] = tp
            bv[0] = tv[0]
            ints[0] = 0
        else:
            ints[0] += 1
        if not _better(cv[0], cP[1], tv[0], tP[1]) or (tv[0] >= cv[0] - 1 - EPS and _rand(rng) < worse):
            cP[:] = tP
            cc[:] = tc
            cp[:] = tp
            cv[0] = tv[0]
        if ints[0] >= restart_after:  # back to the best path
            cP[:] = bP
            cc[:] = bc
            cp[:] = bp
            cv[0] = bv[0]
            ints[0] = 0
    ints[1] += done
    return done
