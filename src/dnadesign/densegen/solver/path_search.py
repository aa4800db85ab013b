"""Dense first layouts for large libraries: an orienteering local search over the full library.

A layout without a promoter is a path over oriented sites (each site at most once, either
strand): its length is the first site's length plus, per next site, its length minus its
largest overlap with the previous one (``overlaps.overlap_matrix``), and sites inside a placed
site ride along for free. Finding the densest layout is a prize-collecting path
(orienteering) problem on the overlap graph; the pool route (``pool.py``) solves it on 150
sites only, so the sites a dense layout needs may be missing. This search runs on every
oriented site of the library:

- cheapest insertion: add the site (and strand, and position) that lengthens the path least per
  unit of value (own value plus the uncovered sites it contains) while the path fits in L;
- moves that shorten the path at equal value: exchange a placed site for the cheapest unused
  one at any position (a relocation when it is the same site), reversal of a segment with its
  strands flipped (``ov(a, b) == ov(rc(b), rc(a))``, so only the two ends change), dropping a
  site that another placed site already carries; each shortening is followed by insertions;
- perturbation (ruin and recreate): drop a random segment or random sites, re-insert with
  noisy costs, improve; a worse path is kept with a small probability, and the search returns
  to the best one after a run of moves without a better one.

Only problems without a promoter are searched (the path has no anchors); a regulator minimum
pins that many of the regulator's cheapest sites on every path (a group: its cheapest members'). The best paths are
realised (``path_layouts.realise``: carried sites, free stretches packed, rules given their say
by ``drafts.make_valid``), sites that happen to span a junction are added, and a layout is kept
only when the independent checker accepts it against the full problem.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .check import check_solution
from .dna import oriented_sequences, placeable_orientations
from .heuristics import Layout
from .overlaps import containers, overlap_matrix
from .path_layouts import Piece, layout_solution, realise
from .types import Problem

MIN_SEGMENT, MAX_SEGMENT = 2, 8  # sites a perturbation drops (a segment, or as many random sites)
NOISE = 0.35  # relative noise on insertion costs after a perturbation
WORSE_ACCEPT = 0.08  # probability of keeping a perturbed path below the current one
RESTART_AFTER = 60  # perturbations without a new best before returning to the best path
MAX_ITEMS = 3000  # oriented sites searched at most (overlap tables: 4 x 3000^2 bytes each, 8 while built)
MIN_SECONDS = 0.5  # callers skip the search when they can give it less (the tables take ~0.3 s at 2000)
KEEP_BEST = 4  # distinct best paths realised at the end


@dataclass
class _Library:
    """Oriented items of the library with their pairwise overlaps (index ``n``: no item)."""

    seqs: list[str]
    site: np.ndarray  # problem site index per item
    strand: list[str]
    length: np.ndarray  # per item (0 for the dummy)
    ov: np.ndarray  # (n + 1, n + 1) largest overlap a -> b; row / column n are zeros
    ov_t: np.ndarray  # its transpose, contiguous (rows gathered for the "into" side)
    flip: np.ndarray  # the item of the other strand (itself for a palindrome, -1 single strand)
    value: np.ndarray  # per problem site
    inside: list[np.ndarray]  # problem sites contained in each item (other than its own)
    in_flat: np.ndarray  # concatenated ``inside`` ...
    in_start: np.ndarray  # ... and where each item's part starts (n + 1 entries)
    pinned: np.ndarray | None = None  # per problem site: kept on every path (regulator minimums)

    @property
    def n(self) -> int:
        return len(self.seqs)


def library(problem: Problem, values: list[int]) -> _Library | None:
    """The oriented items (no forbidden k-mer, not longer than L); None when there are none."""
    oriented = placeable_orientations(problem)
    seqs = [seq for _si, _st, seq in oriented]
    site = [si for si, _st, _seq in oriented]
    strand = [st for _si, st, _seq in oriented]
    n = len(seqs)
    if not n:
        return None
    ov = np.zeros((n + 1, n + 1), dtype=np.int32)
    ov[:n, :n] = overlap_matrix(seqs)
    length = np.zeros(n + 1, dtype=np.int32)
    length[:n] = [len(s) for s in seqs]
    key = {(si, st): k for k, (si, st) in enumerate(zip(site, strand, strict=True))}
    flip = np.full(n, -1, dtype=np.int64)
    if problem.strands == "double":
        for k, (si, st) in enumerate(zip(site, strand, strict=True)):
            flip[k] = key.get((si, "-" if st == "+" else "+"), k)
    sites = np.array(site, dtype=np.int64)
    inside = [np.unique(sites[[j for j in outer if site[j] != site[k]]]) if len(outer) else np.zeros(0, dtype=np.int64)
              for k, outer in enumerate(_contained(seqs))]
    in_start = np.zeros(n + 1, dtype=np.int64)
    in_start[1:] = np.cumsum([len(x) for x in inside])
    in_flat = np.concatenate(inside) if in_start[-1] else np.zeros(0, dtype=np.int64)
    return _Library(seqs, sites, strand, length, ov, np.ascontiguousarray(ov.T), flip,
                    np.asarray(values, dtype=float), inside, in_flat.astype(np.int64), in_start)


def _contained(seqs: list[str]) -> list[list[int]]:
    """For each item, the items that are substrings of it (itself excluded)."""
    out: list[list[int]] = [[] for _ in seqs]
    for j, holders in enumerate(containers(seqs, seqs)):
        for k in holders:
            if k != j:
                out[k].append(j)
    return out


class _Path:
    """A path of items with its cost, the sites it places and the sites it carries."""

    def __init__(self, lib: _Library, items: list[int]):
        self.lib = lib
        self.items = list(items)
        self.refresh()

    def refresh(self) -> None:
        lib, items = self.lib, self.items
        idx = np.asarray(items, dtype=np.int64)
        self.cost = int(lib.length[idx].sum() - (lib.ov[idx[:-1], idx[1:]].sum() if len(idx) > 1 else 0))
        self.placed = np.zeros(len(lib.value), dtype=bool)
        self.placed[lib.site[idx]] = True
        self.covered = self.placed.copy()
        for k in items:
            self.covered[lib.inside[k]] = True
        self.value = float(lib.value[self.covered].sum())

    def copy(self) -> _Path:
        other = object.__new__(_Path)
        other.lib, other.items, other.cost = self.lib, list(self.items), self.cost
        other.placed, other.covered, other.value = self.placed.copy(), self.covered.copy(), self.value
        return other

    def score(self) -> tuple[float, int]:
        return self.value, -self.cost

    def ends(self, items: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per insertion position: the item before and after it (``n``: none)."""
        n = self.lib.n
        seq = self.items if items is None else items
        return np.array([n, *seq], dtype=np.int64), np.array([*seq, n], dtype=np.int64)


def _insertion_costs(lib: _Library, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
    """``delta[p, x]``: added length when item ``x`` goes between ``prev[p]`` and ``nxt[p]``."""
    joined = lib.ov[prev, nxt][:, None]
    return lib.length[None, :-1] - lib.ov[prev, :-1] - lib.ov_t[nxt, :-1] + joined


def _gains(lib: _Library, path: _Path) -> np.ndarray:
    """Per item: the value it adds (its own site unless covered, plus uncovered sites inside)."""
    open_value = np.where(path.covered, 0.0, lib.value)
    inner = np.add.reduceat(np.append(open_value[lib.in_flat], 0.0), lib.in_start[:-1]) if len(lib.in_flat) else 0.0
    inner = np.where(lib.in_start[1:] > lib.in_start[:-1], inner, 0.0)
    own = open_value[lib.site]
    return np.where(path.placed[lib.site], -1.0, own + inner)


def insert_greedy(lib: _Library, path: _Path, L: int, rng: random.Random | None = None, noise: float = 0.0) -> None:
    """Cheapest insertion (length per unit of value) until nothing more fits in ``L``."""
    while True:
        gain = _gains(lib, path)
        ok_item = gain > 0
        if not ok_item.any():
            return
        prev, nxt = path.ends()
        delta = _insertion_costs(lib, prev, nxt)
        cheapest = delta.min(axis=0)  # each item at its cheapest position
        fits = (cheapest <= L - path.cost) & ok_item
        if not fits.any():
            return
        ratio = np.maximum(cheapest, 0.25) / np.where(ok_item, gain, 1.0)
        if noise and rng is not None:
            ratio = ratio * (1.0 + noise * np.random.default_rng(rng.getrandbits(32)).random(lib.n))
        x = int(np.argmin(np.where(fits, ratio, np.inf)))
        p = int(np.argmin(delta[:, x]))
        path.items.insert(int(p), int(x))
        path.refresh()


def _shorten_once(lib: _Library, path: _Path) -> bool:
    """One move that shortens the path at equal or higher value; True when one was made."""
    items = path.items
    m = len(items)
    if m == 0:
        return False
    # Reversal of a segment with its strands flipped: only the two boundary arcs change.
    if m >= 2 and (lib.flip >= 0).all():
        prev, nxt = path.ends()
        first = np.asarray(items, dtype=np.int64)
        rc = lib.flip[first]
        i, j = np.triu_indices(m)
        before = lib.ov[prev[i], first[i]] + lib.ov[first[j], nxt[j + 1]]
        after = lib.ov[prev[i], rc[j]] + lib.ov[rc[i], nxt[j + 1]]
        gain = after - before
        k = int(np.argmax(gain))
        if gain[k] > 0:
            a, b = int(i[k]), int(j[k])
            path.items[a : b + 1] = [int(lib.flip[x]) for x in reversed(items[a : b + 1])]
            path.refresh()
            return True
    return _exchange(lib, path)


def _exchange(lib: _Library, path: _Path) -> bool:
    """Exchange (or relocate, or drop) one placed item for the cheapest item at least as
    valuable, at any position: the move that shortens the path most, if any."""
    items = path.items
    m = len(items)
    prev, nxt = path.ends()
    here = np.asarray(items, dtype=np.int64)
    # Value each placed item alone holds (its site and carried sites no other item covers).
    count = np.zeros(len(lib.value), dtype=np.int32)
    for k in items:
        count[lib.site[k]] += 1
        count[lib.inside[k]] += 1
    lost = np.array([lib.value[lib.site[k]] * (count[lib.site[k]] == 1) + float(lib.value[lib.inside[k]][count[lib.inside[k]] == 1].sum())
                     for k in items])
    merged = _insertion_costs(lib, prev[:m], nxt[1:])  # (m, N): into the edge left when r goes
    saving = merged[np.arange(m), here]  # length r's removal frees
    edges = _insertion_costs(lib, prev, nxt)  # (m + 1, N): into the other edges
    # Cheapest other edge when r goes (edges r and r + 1 become the merged one): the smaller
    # of the running minimum over edges before r and the one over edges after r + 1.
    big = np.full((1, lib.n), 1 << 20, dtype=edges.dtype)
    before_r = np.concatenate([big, np.minimum.accumulate(edges, axis=0)[: m - 1]])  # edges < r
    after_r = np.concatenate([np.minimum.accumulate(edges[::-1], axis=0)[::-1][2:], big])  # edges > r + 1
    other = np.minimum(before_r, after_r)
    gain = _gains(lib, path)
    same_site = lib.site[None, :] == lib.site[here][:, None]
    eligible = ((gain[None, :] >= lost[:, None] - 1e-9) & (gain[None, :] > 0)) | same_site
    if lib.pinned is not None:
        kept = lib.pinned[lib.site[here]]
        eligible[kept] = same_site[kept]  # a pinned site may move, never leave
        lost = np.where(kept, np.inf, lost)
    cost = np.where(eligible, np.minimum(merged, other), 1 << 20)
    x = np.argmin(cost, axis=1)
    best_cost = cost[np.arange(m), x]
    best_cost = np.where(lost <= 1e-9, np.minimum(best_cost, 0), best_cost)  # dropping it loses nothing
    improvement = saving - best_cost
    order = np.argsort(-improvement, kind="stable")
    before = path.score()
    for rr in order[:3]:
        if improvement[rr] <= 0:
            return False
        rr = int(rr)
        trial = path.items[:rr] + path.items[rr + 1 :]
        xx = int(x[rr])
        if not (lost[rr] <= 1e-9 and best_cost[rr] == 0 and cost[rr, xx] > 0):
            if merged[rr, xx] <= other[rr, xx]:
                at = rr
            else:
                column = edges[:, xx].copy()
                column[rr : rr + 2] = 1 << 20
                at = int(np.argmin(column))
            trial.insert(at if at <= rr else at - 1, xx)
        old = path.items
        path.items = trial
        path.refresh()
        if path.score() > before:
            return True
        path.items = old
        path.refresh()
    return False


def improve(lib: _Library, path: _Path, L: int, stop: Callable[[], bool]) -> None:
    """Shorten, then insert, until neither helps (or ``stop()``)."""
    insert_greedy(lib, path, L)
    while not stop() and _shorten_once(lib, path):
        insert_greedy(lib, path, L)


def _perturb(lib: _Library, path: _Path, rng: random.Random) -> _Path:
    out = path.copy()
    m = len(out.items)
    if m == 0:
        return out
    k = min(m, rng.randint(MIN_SEGMENT, MAX_SEGMENT))
    if rng.random() < 0.5:
        at = rng.randrange(m - k + 1)
        drop = set(range(at, at + k))
    else:
        drop = set(rng.sample(range(m), k))
    out.items = [x for r, x in enumerate(out.items) if r not in drop or _is_pinned(lib, x)]
    out.refresh()
    return out


def _is_pinned(lib: _Library, item: int) -> bool:
    return lib.pinned is not None and bool(lib.pinned[lib.site[item]])


def search(lib: _Library, L: int, starts: list[list[int]], rng: random.Random, stop: Callable[[], bool],
           keep: int = KEEP_BEST, rounds: int | None = None, enough: float = np.inf) -> list[_Path]:
    """Iterated local search from ``starts`` (item paths; cheapest insertion from an empty path is
    always one of them) until ``stop()``, after ``rounds`` perturbations or once a path is worth
    ``enough``: the best distinct paths found, best first."""
    best: dict[tuple[int, ...], _Path] = {}

    def remember(p: _Path) -> None:
        key = tuple(sorted(int(lib.site[k]) for k in p.items))
        if key not in best or p.score() > best[key].score():
            best[key] = p.copy()

    current: _Path | None = None
    pins = [] if lib.pinned is None else [int(np.flatnonzero(lib.site == si)[0]) for si in np.flatnonzero(lib.pinned)]
    for items in [[], *starts]:
        p = _Path(lib, [k for k in items if 0 <= k < lib.n])
        p.items += [k for k in pins if not p.placed[lib.site[k]]]  # every pinned site, once
        p.refresh()
        while p.cost > L and any(not _is_pinned(lib, x) for x in p.items):
            p.items.remove(next(x for x in reversed(p.items) if not _is_pinned(lib, x)))
            p.refresh()
        if p.cost > L:
            return []  # the pinned sites alone do not fit
        improve(lib, p, L, stop)
        remember(p)
        if current is None or p.score() > current.score():
            current = p
        if stop():
            break
    assert current is not None
    top = current.copy()
    stale = 0
    done = 0
    while top.value < enough - 1e-9 and not stop() and (rounds is None or done < rounds):
        done += 1
        trial = _perturb(lib, current, rng)
        insert_greedy(lib, trial, L, rng, NOISE)
        improve(lib, trial, L, stop)
        remember(trial)
        if trial.score() > top.score():
            top, stale = trial.copy(), 0
        else:
            stale += 1
        if trial.score() >= current.score() or (trial.value >= current.value - 1 and rng.random() < WORSE_ACCEPT):
            current = trial
        if stale >= RESTART_AFTER:
            current, stale = top.copy(), 0
    return sorted(best.values(), key=lambda p: p.score(), reverse=True)[:keep]


def _pins(problem: Problem, lib: _Library) -> np.ndarray | None:
    """Sites kept on every path so that each ``min_count_by_regulator`` and group holds: the ``k``
    sites of each such regulator that cost the fewest bases next to their best partners (length
    minus half the largest overlap in and out, as the pool ranks them), and the best site of a
    group's cheapest members; None when there are too few."""
    pinned = np.zeros(len(lib.value), dtype=bool)
    n = lib.n
    item_cost = lib.length[:n] - 0.5 * (lib.ov[:n, :n].max(axis=1) + lib.ov[:n, :n].max(axis=0))
    cost = np.full(len(lib.value), np.inf)
    np.minimum.at(cost, lib.site, item_cost)
    for regulator, k in problem.min_count_by_regulator.items():
        own = sorted((cost[si], si) for si, s in enumerate(problem.sites) if s.regulator == regulator and np.isfinite(cost[si]))
        if len(own) < k:
            return None
        pinned[[si for _n, si in own[:k]]] = True
    for group in problem.groups:  # at least min_required of its members: the cheapest members' best sites
        have = {problem.sites[si].regulator for si in np.flatnonzero(pinned)} & set(group.members)
        best: dict[str, tuple[float, int]] = {}
        for si, s in enumerate(problem.sites):
            if s.regulator in group.members and s.regulator not in have and np.isfinite(cost[si]):
                best[s.regulator] = min(best.get(s.regulator, (np.inf, -1)), (float(cost[si]), si))
        need = group.min_required - len(have)
        if need > len(best):
            return None
        if need > 0:
            pinned[[si for _c, si in sorted(best.values())[:need]]] = True
    return pinned


def _carried(item, spans: list[tuple[int, int]]) -> bool:
    """True when ``item`` lies inside another placed item (it is carried, not on the path)."""
    lo, hi = item[2], item[2] + len(item[3])
    return any(a <= lo and hi <= b and (a, b) != (lo, hi) for a, b in spans)


def _spanning(problem: Problem, layout: Layout) -> Layout:
    """``layout`` plus the unused sites its sequence holds anyway (across a junction)."""
    used = set(layout.library_sites)
    extra = []
    for si, site in enumerate(problem.sites):
        if si in used:
            continue
        for strand, seq in oriented_sequences(site.sequence, problem.strands):
            at = layout.sequence.find(seq)
            if at >= 0:
                extra.append((si, strand, at, seq, ""))
                break
    if not extra:
        return layout
    return Layout(layout.sequence, tuple(sorted((*layout.items, *extra), key=lambda t: (t[2], t[0]))))


def layouts(problem: Problem, values: list[int], starts: list[Layout], stop: Callable[[], bool], seed: int = 0,
            rounds: int | None = None, enough: float = np.inf) -> list[Layout]:
    """Checked layouts of ``problem`` (no promoter) from the local search, densest first.

    ``starts`` (layouts of the same problem, e.g. the relaxation's) seed the search next to the
    cheapest insertion; the search runs until ``stop()``, ``rounds`` perturbations or a path
    worth ``enough`` (the bound). Empty for problems with a promoter and for libraries above
    ``MAX_ITEMS`` oriented sites (the overlap table grows with its square).
    """
    oriented = len(problem.sites) * (2 if problem.strands == "double" else 1)
    if problem.promoters or oriented > MAX_ITEMS:
        return []
    lib = library(problem, values)
    if lib is None:
        return []
    if problem.min_count_by_regulator or problem.groups:
        lib.pinned = _pins(problem, lib)
        if lib.pinned is None:
            return []
    rng = random.Random(seed)
    key = {(int(si), st): k for k, (si, st) in enumerate(zip(lib.site, lib.strand, strict=True))}
    seeds = []
    for start in starts:
        spans = [(t[2], t[2] + len(t[3])) for t in start.items if t[0] >= 0]
        on_path = sorted((t for t in start.items if t[0] >= 0 and not _carried(t, spans)), key=lambda t: t[2])
        seeds.append([key[(t[0], t[1])] for t in on_path if (t[0], t[1]) in key])
    found = search(lib, problem.length, seeds, rng, stop, rounds=rounds, enough=enough)
    out: list[tuple[float, Layout]] = []
    for path in found:
        chain = [Piece(int(lib.site[k]), lib.strand[k], lib.seqs[k], tuple(int(s) for s in lib.inside[k])) for k in path.items]
        realised = realise(problem, [chain], [], rng, fill=True)
        if realised is None:
            continue
        lay = _spanning(problem, realised)
        if check_solution(problem, layout_solution_valued(problem, lay, values)):
            continue
        out.append((sum(values[si] for si in lay.library_sites), lay))
    return [lay for _v, lay in sorted(out, key=lambda t: -t[0])]


def layout_solution_valued(problem: Problem, layout: Layout, values: list[int]):
    """``layout_solution`` with the objective set to the layout's site value (weights)."""
    sol = layout_solution(problem, layout)
    return dataclasses.replace(sol, objective=float(sum(values[si] for si in layout.library_sites)))
