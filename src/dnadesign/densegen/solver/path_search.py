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
import time
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
ROUNDS_PER_S = 1000  # perturbation rounds per second of an idle machine (1000 sites, L=200: ~1700)
CHUNK_S = 0.02  # seconds of compiled rounds between two polls of ``stop()``


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


def counted_rounds(seconds: float) -> int:
    """Perturbation rounds that stand for ``seconds`` of search in deterministic mode."""
    return max(1, int(ROUNDS_PER_S * seconds))


def _kernel_library(lib: _Library) -> tuple:
    """The library as the kernels read it (``path_kernels``: arrays only, index ``n`` no item)."""
    n_sites = len(lib.value)
    pinned = np.zeros(n_sites, dtype=np.bool_) if lib.pinned is None else np.asarray(lib.pinned, dtype=np.bool_)
    site_hash = np.random.default_rng(0).integers(1, 2**63 - 1, size=n_sites, dtype=np.int64).astype(np.uint64)
    n = lib.n
    # Fewest bases an item can add anywhere (its length minus its largest overlaps in and out).
    low = (lib.length[:n] - lib.ov[:n, :n].max(axis=0) - lib.ov[:n, :n].max(axis=1)).astype(np.int64)
    by_low = np.argsort(low, kind="stable").astype(np.int64)
    return (lib.ov, lib.ov_t, lib.length, lib.site, lib.flip, lib.value, lib.in_flat, lib.in_start, pinned, site_hash,
            low, by_low)


def _capacity(lib: _Library, L: int) -> int:
    """Items a path of at most ``L`` bases can hold (each adds a base at least), plus slack."""
    return min(lib.n, L) + 2


class _State:
    """A path as the kernels hold it: ``P`` (count, length, items), coverage counts, value."""

    def __init__(self, lib: _Library, items: list[int], cap: int):
        from . import path_kernels as pk

        self.P = np.zeros(cap + 2, dtype=np.int64)
        self.P[0] = len(items)
        self.P[2 : 2 + len(items)] = items
        self.cnt = np.zeros(len(lib.value), dtype=np.int32)
        self.pcnt = np.zeros(len(lib.value), dtype=np.int32)
        self.val = np.zeros(1)
        pk.rebuild(_kernel_library(lib), self.P, self.cnt, self.pcnt, self.val)

    def args(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.P, self.cnt, self.pcnt, self.val

    def score(self) -> tuple[float, int]:
        return float(self.val[0]), -int(self.P[1])

    def items(self) -> list[int]:
        return [int(x) for x in self.P[2 : 2 + self.P[0]]]


class _Scratch:
    """Per-item work arrays of the kernels."""

    def __init__(self, n: int):
        self.gain = np.empty(n)
        self.best = np.empty(n, dtype=np.int64)
        self.bestp = np.empty(n, dtype=np.int64)
        self.top3 = np.empty((n, 3), dtype=np.int64)
        self.top3p = np.empty((n, 3), dtype=np.int64)


def _kernel_rng(rng: random.Random | None) -> np.ndarray:
    return np.array([(rng.getrandbits(64) if rng is not None else 0x9E3779B97F4A7C15) | 1], dtype=np.uint64)


def _on_kernels(lib: _Library, path: _Path, L: int, move: Callable[[tuple, _State, _Scratch], object]) -> bool:
    """Run ``move(klib, state, scratch)`` on ``path`` through the kernels; write the result back."""
    state = _State(lib, path.items, max(_capacity(lib, L), len(path.items)))
    done = bool(move(_kernel_library(lib), state, _Scratch(lib.n)))
    path.items = state.items()
    path.refresh()
    return done


def insert_greedy(lib: _Library, path: _Path, L: int, rng: random.Random | None = None, noise: float = 0.0) -> None:
    """Cheapest insertion (length per unit of value) until nothing more fits in ``L``."""
    from . import path_kernels as pk

    krng = _kernel_rng(rng)
    _on_kernels(lib, path, L, lambda k, s, w: pk.insert_greedy(k, *s.args(), L, noise if rng is not None else 0.0, krng,
                                                                w.gain, w.best, w.bestp))


def _shorten_once(lib: _Library, path: _Path) -> bool:
    """One move that shortens the path at equal or higher value; True when one was made."""
    from . import path_kernels as pk

    return _on_kernels(lib, path, max(path.cost, 1), lambda k, s, w: pk.shorten_once(k, *s.args(), w.gain, w.top3, w.top3p))


def improve(lib: _Library, path: _Path, L: int, stop: Callable[[], bool]) -> None:
    """Shorten, then insert, until neither helps (a kernel: ``stop`` is not polled inside)."""
    from . import path_kernels as pk

    krng = _kernel_rng(None)
    _on_kernels(lib, path, L, lambda k, s, w: pk.improve(k, *s.args(), L, krng, w.gain, w.best, w.bestp, w.top3, w.top3p))


def _is_pinned(lib: _Library, item: int) -> bool:
    return lib.pinned is not None and bool(lib.pinned[lib.site[item]])


def search(lib: _Library, L: int, starts: list[list[int]], rng: random.Random, stop: Callable[[], bool],
           keep: int = KEEP_BEST, rounds: int | None = None, enough: float = np.inf) -> list[_Path]:
    """Iterated local search from ``starts`` (item paths; cheapest insertion from an empty path is
    always one of them) until ``stop()``, after ``rounds`` perturbations or once a path is worth
    ``enough``: the best distinct paths found, best first. The rounds run in compiled chunks
    (``path_kernels.rounds``) with ``stop()`` polled between them; the chunking does not change
    the result."""
    from . import path_kernels as pk

    klib = _kernel_library(lib)
    cap = _capacity(lib, L)
    scratch = _Scratch(lib.n)
    krng = _kernel_rng(rng)
    pool = np.zeros((keep, cap + 2), dtype=np.int64)
    pool_val = np.zeros(keep)
    pool_key = np.zeros(keep, dtype=np.uint64)
    pool_used = np.zeros(keep, dtype=np.bool_)
    current: _State | None = None
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
        st = _State(lib, p.items, cap)  # within L: at most one item per base
        pk.improve(klib, *st.args(), L, krng, scratch.gain, scratch.best, scratch.bestp, scratch.top3, scratch.top3p)
        pk.remember(klib, st.P, st.val, pool, pool_val, pool_key, pool_used)
        if current is None or st.score() > current.score():
            current = st
        if stop():
            break
    assert current is not None
    top = _State(lib, current.items(), cap)
    trial = _State(lib, [], cap)
    ints = np.zeros(2, dtype=np.int64)
    params = (NOISE, WORSE_ACCEPT, float(RESTART_AFTER), float(MIN_SEGMENT), float(MAX_SEGMENT), float(enough))
    chunk = 2
    while top.val[0] < enough - 1e-9 and not stop() and (rounds is None or ints[1] < rounds):
        todo = chunk if rounds is None else min(chunk, rounds - int(ints[1]))
        t0 = time.perf_counter()
        pk.rounds(klib, L, current.args(), top.args(), trial.args(), ints, krng, params, pool, pool_val, pool_key,
                  pool_used, todo)
        if time.perf_counter() - t0 < CHUNK_S and chunk < 1 << 12:
            chunk *= 2  # chunks of about CHUNK_S seconds: stop() is polled between them
    order = sorted((k for k in range(keep) if pool_used[k]), key=lambda k: (-pool_val[k], pool[k, 1]))
    return [_Path(lib, [int(x) for x in pool[k, 2 : 2 + pool[k, 0]]]) for k in order]


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
