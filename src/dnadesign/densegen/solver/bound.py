"""An upper bound on the site value (site count, or weighted value), from a path relaxation (Lagrangian + DP).

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

    value of any solution  <=  max over paths of sum(v[site] - lambda[site]) + sum(lambda),

where ``v`` is each site's objective value (1, or its regulator's weight under a weights rule:
``site_values``), and subgradient (Polyak) steps on ``lambda`` drive that bound down. Everything else (k-mers, GC,
regulator rules, side biases) only removes solutions, so the bound stays valid; orientations
that contain a forbidden k-mer are left out, as in the model. Only the first promoter is used
(ignoring the others is still a relaxation).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .check import check_solution
from .constraints import constraints_of
from .constraints.base import site_values as rule_site_values
from .cores import max_overlap
from .dna import occurrences, placeable_orientations
from .heuristics import Layout
from .hub_dp import HubDP, TableReads
from .overlaps import containers, overlap_hubs, overlap_matrix
from .path_layouts import Anchored, Piece, layout_solution, realise
from .precheck import promoter_start_pairs
from .types import Problem

RelaxedPlan = tuple[list[list[Piece]], list[Anchored]]  # the arguments ``realise`` takes after the problem

NEG = -1e18
BIG = 1 << 20  # cost of a forbidden arc (the same site twice in a row)
MAX_WORK = 2e8  # skip the relaxation when one DP pass would touch more arc-positions than this
STEER_ITERATIONS = 20  # subgradient steps of one steered (diverse-mode) layout
STEER_PENALTY = 0.05  # weight a steered layout takes off a site per earlier use
FAVOUR_ITERATIONS = 15  # subgradient steps of one favoured run (sites a regulator rule requires)
FAVOUR_BONUS = 2.0  # weight a favoured site gains in that run
REQUIRED_ITERATIONS = 40  # subgradient steps of the bound under regulator minimums
FILL_BEST = 4  # densest relaxed plans whose free stretches are packed when the bound is not reached
# Polyak step scale, halved after 5 steps without a better dual. The step aims at the best known
# value; with none (0: the large-library bound runs before any layout) it overshoots, and half the
# scale is 1 site better at 35 steps on the 1000-site bench libraries; with a known layout the
# full scale is (1 site better at 100 sites, L=200).
FIRST_STEP, FIRST_STEP_BLIND = 1.0, 0.5
WARM_STEP = 0.25  # ... and from multipliers that are already good (``relax(start=...)``)
MAX_ITEMS = 600  # above this many oriented sites (or MAX_WORK), overlaps are hashed hubs (hub_dp.py)
MAX_HASHED_ITEMS = 20000  # ... and no relaxation at all above this many oriented sites


@dataclass(frozen=True)
class _Anchor:
    """Where a promoter element can sit: alone, or inside an oriented library site."""

    sequence: str  # the element itself, or the library site that contains it
    offset: int  # start of the element inside ``sequence``
    own: int  # the (remapped) containing site, -1 for the bare element
    inside: tuple[int, ...]  # sites that can sit inside it
    origin: tuple[int, str] | None = None  # (problem site index, strand) of the containing site

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
    origin: list[tuple[int, str]]  # (problem site index, strand) of each item
    site: np.ndarray  # (remapped) site index of each item
    inside: list[tuple[int, ...]]  # sites contained in each item
    cost: np.ndarray | None  # cost[a, b] = len(b) - maxov(a, b); BIG for the same site (None: hubs)
    n_free: int  # sites counted as free (holding both promoter elements)
    free_value: int  # their summed value (``site_values``)
    n_sites: int  # sites that carry a multiplier
    anchors: tuple[list[_Anchor], list[_Anchor]]  # upstream, downstream element anchors
    site_origin: list[int]  # problem site index of each remapped site
    hubs: tuple[np.ndarray, np.ndarray, int] | None = None  # ``overlap_hubs`` of ``seqs`` (large libraries)

    def __post_init__(self) -> None:
        self.plain = np.array([len(s) for s in self.seqs], dtype=np.int64)  # an arc without overlap
        self.index = {orig: k for k, orig in enumerate(self.site_origin)}  # problem site -> remapped
        pairs = [(i, s) for i, inner in enumerate(self.inside) for s in inner]  # (item, site it carries)
        self.carrier_item = np.array([i for i, _ in pairs], dtype=np.int64)
        self.carried_site = np.array([s for _, s in pairs], dtype=np.int64)

    def weights(self, site_w: np.ndarray) -> np.ndarray:
        """Weight of each item under the site weights."""
        carried = np.bincount(self.carrier_item, weights=np.maximum(site_w[self.carried_site], 0.0), minlength=len(self.seqs))
        return site_w[self.site] + carried

    def carried(self, item: int, site_w: np.ndarray) -> list[int]:
        """Sites an item counts under these weights."""
        return [int(self.site[item])] + [s for s in self.inside[item] if site_w[s] > 0]

    def arcs_from(self, seq: str) -> np.ndarray:
        """Cost of each item right after ``seq`` (its length minus ``max_overlap(seq, item)``)."""
        ov = np.zeros(len(self.seqs), dtype=np.int64)
        for o in range(1, len(seq)):  # increasing: the largest overlap is written last
            hit = self._ends("prefix").get((o, seq[-o:]))
            if hit is not None:
                ov[hit] = o
        return self.plain - ov

    def arcs_into(self, seq: str) -> np.ndarray:
        """Cost of ``seq`` right after each item (its length minus ``max_overlap(item, seq)``)."""
        ov = np.zeros(len(self.seqs), dtype=np.int64)
        for o in range(1, len(seq)):
            hit = self._ends("suffix").get((o, seq[:o]))
            if hit is not None:
                ov[hit] = o
        return len(seq) - ov

    def _ends(self, kind: str) -> dict[tuple[int, str], np.ndarray]:
        """(k, proper prefix or suffix of length k) -> the items that have it (built once)."""
        cache = self.__dict__.setdefault("_end_index", {})
        if kind not in cache:
            groups: dict[tuple[int, str], list[int]] = defaultdict(list)
            for b, item in enumerate(self.seqs):
                for k in range(1, len(item)):
                    groups[(k, item[:k] if kind == "prefix" else item[-k:])].append(b)
            cache[kind] = {key: np.array(v, dtype=np.int64) for key, v in groups.items()}
        return cache[kind]


def _items(problem: Problem, elements: tuple[str, ...], values: list[int], hashed: bool = False) -> _Items:
    """The oriented items; ``hashed`` (large libraries): containment and overlaps found by
    hashing, overlaps kept as hubs (``hub_dp``) instead of a pairwise cost table."""
    oriented = placeable_orientations(problem)
    # A site holding both elements can sit across the whole promoter: counted as free.
    free = {si for si, _, seq in oriented if len(elements) > 1 and all(e in seq for e in elements)}
    kept = [(si, strand, seq) for si, strand, seq in oriented if si not in free]
    site_origin = sorted({si for si, _, _ in kept})
    remap = {si: k for k, si in enumerate(site_origin)}

    contains: dict[str, set[int]] | None = None
    if hashed:  # by hashing: the pairwise loop below is quadratic in Python
        contains = defaultdict(set)
        seqs = [seq for _, _, seq in kept]
        for j, outer in enumerate(containers(seqs, seqs)):
            for k in outer:
                contains[seqs[k]].add(j)

    def inside(seq: str, own: int | None) -> tuple[int, ...]:
        if contains is not None and seq in contains:
            return tuple(sorted({remap[kept[j][0]] for j in contains[seq] if kept[j][0] != own}))
        return tuple(sorted({remap[sj] for sj, _, other in kept if sj != own and other in seq}))

    anchors: tuple[list[_Anchor], list[_Anchor]] = ([], [])
    for slot, element in zip(anchors, elements, strict=False):  # fewer elements than slots: those stay empty
        slot.append(_Anchor(element, 0, -1, inside(element, None)))
        for si, strand, seq in kept:
            for start in occurrences(seq, element):
                slot.append(_Anchor(seq, start, remap[si], inside(seq, si), (si, strand)))
    hubs = None
    cost = None
    if hashed:
        hubs = overlap_hubs([seq for _, _, seq in kept])
    else:
        owner = np.array([si for si, _, _ in kept], dtype=np.int64)
        lengths = np.array([len(seq) for _, _, seq in kept], dtype=np.int64)
        cost = lengths[None, :] - overlap_matrix([seq for _, _, seq in kept])
        cost[owner[:, None] == owner[None, :]] = BIG
    return _Items(
        seqs=[seq for _, _, seq in kept],
        origin=[(si, strand) for si, strand, _ in kept],
        site=np.array([remap[si] for si, _, _ in kept], dtype=np.int64),
        inside=[inside(seq, si) for si, _, seq in kept],
        cost=cost,
        n_free=len(free),
        free_value=sum(values[si] for si in free),
        n_sites=len(remap),
        anchors=anchors,
        site_origin=site_origin,
        hubs=hubs,
    )


def _dp(items: _Items, first: np.ndarray, horizon: int, backward: bool = False) -> _PathDP | HubDP:
    """The path program over ``items``: pairwise (small libraries) or through hubs (large)."""
    assert items.plain is not None
    if items.hubs is not None:
        ends, starts, n_hubs = items.hubs
        return HubDP(items.plain, ends, starts, n_hubs, first, horizon, items.plain, backward, items.site)
    assert items.cost is not None
    cost = items.cost.T.copy() if backward else items.cost
    return _PathDP(cost, first, horizon, items.plain, backward)


class _PathDP(TableReads):
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
        # run() reads best[c - cost] from a buffer with ``_pad`` rows of NEG above position 0
        self._pad = int(max(self._arc_cost.max(initial=0), plain.max(initial=0), 1))
        self._arc_flat = (self._pad - self._arc_cost) * (n + 1) + self._arc_src
        self._first_ok = np.where(first[None, :] <= np.arange(self.horizon + 1)[:, None], 0.0, NEG)

    def run(self, w: np.ndarray) -> None:
        H, n = self.horizon, len(self.first)
        P = self._pad  # rows of NEG above position 0: ``c - cost`` never indexes below them
        buf = np.full((H + 1 + P, n + 1), NEG)  # row P + c holds best[c]; column n stays NEG (dummy arcs)
        flat = buf.reshape(-1)
        row_max = np.full(H + 1 + P, NEG)  # entry P + c: best[c].max()
        best = buf[P:]
        cols = np.arange(n)
        arc_at = self._arc_flat  # flat index of each arc's source at c = 0; + c * (n + 1) for c
        plain_at = P - self.plain
        first_ok = self._first_ok
        stride = n + 1
        for c in range(1, H + 1):
            via = np.maximum.reduceat(flat[arc_at + c * stride], self._seg)
            if self.plain_of_source:
                lim = c - self.plain
                ok = lim >= 0
                if ok.any():
                    via = np.maximum(via, best[lim[ok], cols[ok]].max())
            else:
                via = np.maximum(via, row_max[plain_at + c])
            prev = np.maximum(via, first_ok[c])
            here = np.where(prev > NEG / 2, prev + w, NEG)
            row = np.maximum(here, best[c - 1, :n])
            best[c, :n] = row
            row_max[P + c] = row.max()
        # at[c, b]: the last end <= c at which best[., b] improved (where the path behind it ends)
        improved = np.zeros((H + 1, n), dtype=np.int64)
        if H:
            improved[1:] = np.where(best[1:, :n] > best[:-1, :n], np.arange(1, H + 1)[:, None], 0)
        self.best, self.at, self.w = best, np.maximum.accumulate(improved, axis=0), w

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


@dataclass
class Relaxation:
    """What the path relaxation found: a site bound and real layouts met on the way.

    ``variants`` and ``steered`` keep using the final multipliers: the best relaxed path with
    some sites banned (and used sites made less attractive), realised, is a dense layout with
    another site set: a cheap large-neighbourhood move for both enumeration modes.
    """

    bound: int | None  # upper bound on the library sites of any solution; None if not computed
    layouts: list[Layout]  # checked layouts, most value first (above ``known``)
    visits: Counter[int] = field(default_factory=Counter)  # problem site -> relaxed paths it was on
    _search: _Subgradient | None = None
    _lam: np.ndarray | None = None
    _variant_plans: dict[int, RelaxedPlan | None] = field(default_factory=dict)  # banned site -> plan

    def variants(self, layout: Layout, rng: random.Random) -> Iterator[Layout]:
        """The best relaxed path with one site of ``layout`` banned, realised (unchecked), for
        each of its sites in random order."""
        if self._search is None or self._lam is None:
            return
        for site in rng.sample(layout.library_sites, len(layout.library_sites)):
            banned = frozenset({site})
            if site not in self._variant_plans:
                # The multipliers are final, so the relaxed path without ``site`` is the same for
                # every solution that holds it: solved once (with a promoter, four or more tables).
                value, _sites, plan = self._search.parts.solve(self._search.values - self._lam + self._offset(banned, {}, 0.0))
                self._variant_plans[site] = plan if value > 0 else None
            plan = self._variant_plans[site]
            if plan is not None:
                out = realise(self._search.problem, plan[0], plan[1], self._search.rng, banned=banned)
                if out is not None:
                    yield out

    def nudged(self, banned: set[int], usage: dict[int, int], rng: random.Random, penalty: float = STEER_PENALTY) -> Layout | None:
        """One relaxed path with the final multipliers, ``banned`` sites excluded and each site's
        weight lowered by ``penalty`` per earlier use, realised (unchecked; its free stretches
        packed): ``variants`` with several bans and usage, without ``steered``'s subgradient run
        (one DP pass instead of up to 20)."""
        if self._search is None or self._lam is None:
            return None
        value, _sites, plan = self._search.parts.solve(1.0 - self._lam + self._offset(banned, usage, penalty))
        if value <= 0:
            return None
        return realise(self._search.problem, plan[0], plan[1], rng, banned=frozenset(banned), fill=True)

    def steered(
        self, banned: set[int], usage: dict[int, int], *, at_least: int = 1, iterations: int = STEER_ITERATIONS, penalty: float = STEER_PENALTY,
        favour: frozenset[int] = frozenset(),
    ) -> Layout | None:
        """The densest checked layout of a short subgradient run (from the final multipliers)
        without the ``banned`` sites and with each site's weight lowered by ``penalty`` per
        earlier use (and raised by ``FAVOUR_BONUS`` for ``favour`` sites: sites a regulator rule
        requires); None if none has ``at_least`` sites (also the step-size target). The run
        ends early at a layout one site above ``at_least``."""
        if self._search is None or self._lam is None:
            return None
        offset = self._offset(banned, usage, penalty)
        index = self._search.items.index
        offset[[index[s] for s in favour - set(banned) if s in index]] += FAVOUR_BONUS
        _best, _lam, layouts = self._search.run(
            self._lam.copy(), at_least - 1, iterations, None, offset, frozenset(banned), enough=at_least + 1,
        )
        return layouts[0] if layouts else None

    def favoured(
        self, sites: set[int], *, enough: int, iterations: int = FAVOUR_ITERATIONS, bonus: float = FAVOUR_BONUS
    ) -> list[Layout]:
        """Checked layouts (most sites first) of a short subgradient run from the final
        multipliers in which ``sites`` weigh ``bonus`` more. The plain relaxation leaves out
        long sites, so when a regulator rule requires one its layouts fail the checker; paths
        pushed through such a site pass. Ends early at a layout with ``enough`` sites."""
        if self._search is None or self._lam is None:
            return []
        index = self._search.items.index
        offset = np.zeros(len(index))
        offset[[index[s] for s in sites if s in index]] = bonus
        _best, _lam, layouts = self._search.run(self._lam.copy(), 0, iterations, None, offset, frozenset(), enough=enough)
        return layouts

    def required_bound(
        self, requirements: list[tuple[list[int], int]], *, known: int, iterations: int = REQUIRED_ITERATIONS
    ) -> int | None:
        """An upper bound on the library sites of the solutions that hold at least ``k`` of the
        sites of each ``(sites, k)`` (a regulator's ``min_count_by_regulator``); None when not
        computed. Tighter than ``bound`` when the required sites are long (the densest paths
        leave them out), so a checked layout below ``bound`` can still be proven optimal.

        Each minimum is priced in with its own multiplier ``mu >= 0``: for every
        ``lambda, mu >= 0``, sites <= max over paths of sum(1 - lambda[s] + mu[r(s)]) +
        sum(lambda) - sum(mu * k), since a solution meeting the minimums only gains from the
        ``mu`` terms. Subgradient steps on both, from the final multipliers, until the floor
        reaches ``known``. Not computed when a site is counted as free (outside the paths)."""
        search = self._search
        if search is None or self._lam is None or search.items.n_free or not requirements:
            return None
        items = search.items
        member = np.zeros((len(requirements), items.n_sites))
        need = np.array([k for _sites, k in requirements], dtype=float)
        for r, (sites, _k) in enumerate(requirements):
            member[r, [items.index[x] for x in sites if x in items.index]] = 1.0
        lam, mu = self._lam.copy(), np.zeros(len(requirements))
        best, scale = math.inf, _StepScale(1.0)
        for _ in range(iterations):
            value, sites, _plan = search.parts.solve(search.values - lam + mu @ member)
            if value <= NEG / 2:
                return None
            dual = max(value, 0.0) + float(lam.sum()) - float(mu @ need)
            scale.observe(dual)
            best, theta = scale.best, scale.theta
            if math.floor(best + 1e-6) <= known or (search.cancel is not None and search.cancel.is_set()):
                break
            counts = np.bincount(np.asarray(sites, dtype=np.int64), minlength=items.n_sites).astype(float)
            g_lam, g_mu = 1.0 - counts, member @ counts - need
            norm = float((g_lam * g_lam).sum() + (g_mu * g_mu).sum())
            if norm == 0 or theta < 1e-4:
                break
            step = theta * max(dual - known, 0.5) / norm
            lam = np.maximum(0.0, lam - step * g_lam)
            mu = np.maximum(0.0, mu - step * g_mu)
        return None if best == math.inf else max(0, math.floor(best + 1e-6))

    def restricted(self, banned: set[int], *, at_least: int, iterations: int = STEER_ITERATIONS) -> tuple[int | None, Layout | None]:
        """Over the solutions without the ``banned`` sites: an upper bound on their site value
        (None when not computed) and a layout with at least ``at_least`` value, or None. One DP
        pass with the final multipliers first (its Lagrangian value is already a bound: when it is
        below ``at_least`` nothing is sought, else its path is realised, unchecked); then a short
        subgradient run (``steered`` without usage: a checked layout), whose best dual tightens
        the bound. Diverse mode goes through the site sets of a small library with it."""
        search, lam = self._search, self._lam
        if search is None or lam is None:
            return None, None
        offset = self._offset(banned, {}, 0.0)
        value, _sites, plan = search.parts.solve(search.values - lam + offset)
        if value <= NEG / 2:
            return None, None
        free = search.items.free_value
        bound = max(0, math.floor(value + lam.sum() + 1e-6)) + free
        if bound < at_least:
            return bound, None
        if plan is not None:
            lay = realise(search.problem, plan[0], plan[1], search.rng, banned=frozenset(banned), fill=True)
            if lay is not None and sum(search.site_value[si] for si in lay.library_sites) >= at_least:
                return bound, lay
        best, _lam, layouts = search.run(lam.copy(), at_least - 1, iterations, None, offset, frozenset(banned), enough=at_least + 1)
        if best is not None:
            bound = min(bound, max(0, math.floor(best + 1e-6)) + free)
        return bound, (layouts[0] if layouts else None)

    def _offset(self, banned, usage: dict[int, int], penalty: float) -> np.ndarray:
        """Site-weight shifts: ``-penalty`` per earlier use, and a ban for ``banned`` sites."""
        assert self._search is not None
        index = self._search.items.index
        offset = np.zeros(len(index))
        for site, uses in usage.items():
            if site in index:
                offset[index[site]] -= penalty * uses
        offset[[index[s] for s in banned if s in index]] = -1e9
        return offset


def site_values(problem: Problem) -> list[int]:
    """Objective value of each library site: 1, or its regulator's weight under a weights rule."""
    return rule_site_values(problem, constraints_of(problem))


def site_bound(problem: Problem, *, known: int = 0, time_budget_s: float | None = 2.0, max_iterations: int = 200) -> int | None:
    """Upper bound on the site value (count, or weighted) of any solution; None if not computed."""
    return relax(problem, known=known, time_budget_s=time_budget_s, max_iterations=max_iterations).bound


def relax(
    problem: Problem, *, known: int = 0, time_budget_s: float | None = 2.0, max_iterations: int = 200, seed: int = 0,
    clock: Callable[[], float] = time.monotonic, hashed: bool | None = None, fill_best: int = FILL_BEST,
    cancel: threading.Event | None = None, start: dict[int, float] | None = None,
) -> Relaxation:
    """Run the Lagrangian path relaxation: the bound on the site value (``site_values``: the site
    count unless a weights rule applies), plus layouts worth more than ``known``.

    Every relaxed path is also turned into a real layout (``path_layouts.realise``); layouts
    that pass the independent checker raise ``known``. The search stops once the bound reaches
    ``known`` (then the best layout is optimal), at the iteration cap, or at the time budget
    (``None``: iterations only, for reproducible results), measured on ``clock``. ``hashed``
    forces the large-library program (overlap hubs) on or off; by default it is chosen by size.
    If the best layout is below the bound then, the ``fill_best`` densest relaxed plans are
    realised again with their free stretches packed by the beam (``realise(fill=True)``). Once
    ``cancel`` is set, this and every later run of the search (steered, favoured, variants'
    callers) stop at their next step. ``start`` (problem site -> multiplier) starts the steps
    (e.g. from the multipliers of the same library's relaxation without its promoter).
    """
    deadline = None if time_budget_s is None else clock() + time_budget_s  # setup included
    prom = problem.promoters[0] if problem.promoters else None
    elements = (prom.upstream, prom.downstream) if prom else ()
    oriented = len(problem.sites) * (2 if problem.strands == "double" else 1)
    if hashed is None:
        hashed = oriented > MAX_ITEMS or oriented**2 * problem.length > MAX_WORK
    if hashed and oriented > MAX_HASHED_ITEMS:
        return Relaxation(None, [])
    values = site_values(problem)
    items = _items(problem, elements, values, hashed)
    if prom is None:
        parts: _Plain | _WithPromoter = _Plain(items, problem.length)
    else:
        parts = _WithPromoter(items, problem)
        if not parts.pairs:
            return Relaxation(None, [])
    search = _Subgradient(problem, items, parts, random.Random(seed), clock, values, fill_best)
    search.cancel = cancel
    lam0 = np.zeros(items.n_sites) if start is None else np.array([start.get(si, 0.0) for si in items.site_origin])
    best, lam, layouts = search.run(lam0, known, max_iterations, deadline, warm=start is not None)
    if best is None:
        return Relaxation(None, [])  # no relaxed layout at all: leave infeasibility to CP-SAT
    bound = max(0, math.floor(best + 1e-6)) + items.free_value
    return Relaxation(bound, layouts, search.visits, search, lam)


class _StepScale:
    """Polyak step scale of a subgradient run: halved after 5 steps without a better dual; keeps
    the best (lowest) dual seen."""

    def __init__(self, theta: float) -> None:
        self.best, self.theta, self.stale = math.inf, theta, 0

    def observe(self, dual: float) -> None:
        if dual < self.best - 1e-9:
            self.best, self.stale = dual, 0
        else:
            self.stale += 1
            if self.stale >= 5:
                self.theta, self.stale = self.theta / 2, 0


class _Subgradient:
    """Polyak subgradient steps on the multipliers, realising every relaxed path on the way."""

    def __init__(self, problem: Problem, items: _Items, parts, rng: random.Random, clock: Callable[[], float], values: list[int],
                 fill_best: int = 0):
        self.problem, self.items, self.parts, self.rng, self.clock = problem, items, parts, rng, clock
        self.site_value = values  # per problem site
        self.values = np.array([values[si] for si in items.site_origin], dtype=float)  # per remapped site
        self.fill_best = fill_best  # densest relaxed plans re-realised with packed stretches after the main run
        self.visits: Counter[int] = Counter()  # problem site -> relaxed paths (of ``run``) it was on
        self.cancel: threading.Event | None = None  # set by the caller: stop at the next step
        self.best_lam: np.ndarray | None = None  # multipliers of the best dual of the main run

    def run(self, lam, known: int, iterations: int, deadline: float | None, offset=None, banned=frozenset(), enough: int | None = None,
            warm: bool = False):
        """(best dual or None, final multipliers, checked layouts with more than ``known`` sites,
        most first). ``offset`` shifts the site weights (a ban is a large negative offset);
        ``banned`` sites are kept out of the realised layouts. Without ``offset`` it stops early
        once the dual's floor reaches ``known``: the best layout is then optimal; it also stops
        once a layout has ``enough`` sites."""
        items, problem = self.items, self.problem
        found: dict[str, tuple[int, Layout]] = {}
        unfilled: list[tuple[int, int, RelaxedPlan]] = []  # the densest plans as realised without packing
        best = math.inf
        scale = _StepScale(WARM_STEP if warm else FIRST_STEP if known > 0 else FIRST_STEP_BLIND)
        for step in range(iterations):
            site_w = self.values - lam if offset is None else self.values - lam + offset
            value, sites, plan = self.parts.solve(site_w)
            if value <= NEG / 2:
                return None, lam, []
            self.visits.update({items.site_origin[s] for s in sites})
            layout = realise(problem, plan[0], plan[1], self.rng, banned=banned, fill=offset is not None) if plan is not None else None
            if layout is not None and plan is not None and offset is None and self.fill_best:
                unfilled.append((sum(self.site_value[si] for si in layout.library_sites), step, plan))
                unfilled = sorted(unfilled, key=lambda t: (t[0], t[1]), reverse=True)[: self.fill_best]
            if layout is not None and layout.sequence not in found:
                got = sum(self.site_value[si] for si in layout.library_sites)
                if got > known and not check_solution(problem, layout_solution(problem, layout)):
                    found[layout.sequence] = (got, layout)
                    known = got
            dual = value + lam.sum()
            if offset is None and dual < scale.best:
                self.best_lam = lam  # the multipliers of the best dual (reduced-cost fixing starts there)
            scale.observe(dual)
            best, theta = scale.best, scale.theta
            target = max(0, known - items.free_value)
            if enough is not None and known >= enough:
                break
            if offset is None and math.floor(best + 1e-6) <= target:
                break  # (with shifted weights the dual bounds another objective: no such stop)
            if (deadline is not None and self.clock() > deadline) or (self.cancel is not None and self.cancel.is_set()):
                break
            g = 1.0 - np.bincount(np.asarray(sites, dtype=np.int64), minlength=items.n_sites)
            norm = float((g * g).sum())
            if norm == 0 or theta < 1e-4:
                break  # the relaxed path uses every site once: the bound cannot improve
            lam = np.maximum(0.0, lam - theta * max(dual - target, 0.5) / norm * g)
        if best != math.inf and known - items.free_value < math.floor(best + 1e-6):
            # Not proven optimal: pack the stretches the dropped second uses left in the densest
            # plans (done after the loop: packing inside it costs iterations, hence bound).
            for _n, _k, plan in unfilled:
                layout = realise(problem, plan[0], plan[1], self.rng, banned=banned, fill=True)
                if layout is None or layout.sequence in found:
                    continue
                got = sum(self.site_value[si] for si in layout.library_sites)
                if got > known and not check_solution(problem, layout_solution(problem, layout)):
                    found[layout.sequence] = (got, layout)
                    known = got
        layouts = [lay for _n, lay in sorted(found.values(), key=lambda t: -t[0])]
        return (None if best == math.inf else best), lam, layouts


def _piece(items: _Items, k: int) -> Piece:
    si, strand = items.origin[k]
    return Piece(si, strand, items.seqs[k], tuple(items.site_origin[s] for s in items.inside[k]))


class _Plain:
    """No promoter: one path from position 0 to L."""

    def __init__(self, items: _Items, L: int):
        self.items = items
        self.L = L
        lengths = np.array([len(s) for s in items.seqs], dtype=np.int64)
        self.dp = _dp(items, lengths, L)
        self.none = np.zeros(len(items.seqs), dtype=np.int64)

    def solve(self, site_w: np.ndarray) -> tuple[float, list[Any], RelaxedPlan | None]:
        """(value, sites counted, plan for ``realise``) of the best relaxed path."""
        if not len(self.items.seqs):
            return 0.0, [], None
        self.dp.run(self.items.weights(site_w))
        value, b, c = self.dp.top(self.L, self.none)
        if value <= 0:
            return 0.0, [], None
        path = self.dp.trace(b, c)[::-1]
        sites = [s for i in path for s in self.items.carried(i, site_w)]
        return value, sites, ([[_piece(self.items, i) for i in path]], [])


class _Reads:
    """``TableReads.tops(then, size)`` of one table for several ``then`` vectors at once.

    Each ``then[b]`` is the item's cost without overlap (``base``: one length per vector, that
    of the anchor read into, or the item's own length, ``plain``) minus an overlap that is zero
    for most items. Tables are non-decreasing down each column, so a column read at its
    no-overlap cost is covered by the maximum over the columns of that cost: one row maximum
    (per item length) serves every vector, and only the overlapping columns are read one by
    one. With a promoter at 1000 sites these reads cost 0.28 s of a 0.4 s step as fancy
    indexing over every column; grouped, about a tenth of that.
    """

    def __init__(self, thens: list[np.ndarray], const: list[int] | None, plain: np.ndarray | None = None):
        self.const = const  # per vector: one no-overlap cost for every item (else ``plain``)
        self.plain = plain
        base = [np.full(len(t), c) for t, c in zip(thens, const, strict=True)] if const is not None else [plain for _ in thens]
        self.sparse = [(np.nonzero(t < b_)[0], t[t < b_]) for t, b_ in zip(thens, base, strict=True)]
        if plain is not None:
            self.lengths, inverse = np.unique(plain, return_inverse=True)
            self.order = np.argsort(inverse, kind="stable")
            self.seg = np.searchsorted(inverse[self.order], np.arange(len(self.lengths)))

    def tops(self, dp, size: int) -> np.ndarray:
        best, H = dp.best, dp.horizon
        n = best.shape[1] if self.plain is None else len(self.plain)
        c = np.arange(size)
        out = np.full((len(self.sparse), size), NEG)
        if self.const is not None:
            row_max = best[:, :n].max(axis=1) if n else np.full(H + 1, NEG)
            for r, k in enumerate(self.const):
                ok = c >= k
                out[r, ok] = row_max[np.minimum(c[ok] - k, H)]
        else:
            assert self.plain is not None
            by_len = np.maximum.reduceat(best[:, self.order], self.seg, axis=1)  # (H + 1, lengths)
            lim = c[:, None] - self.lengths[None, :]
            dense = np.where(lim >= 0, by_len[np.clip(lim, 0, H), np.arange(len(self.lengths))[None, :]], NEG).max(axis=1)
            out[:] = dense[None, :]
        for r, (cols, t) in enumerate(self.sparse):
            if len(cols):
                lim = c[:, None] - t[None, :]
                vals = np.where(lim >= 0, best[np.clip(lim, 0, H), cols[None, :]], NEG).max(axis=1)
                np.maximum(out[r], vals, out=out[r])
        return out


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
        prom = problem.promoters[0]
        self.name, self.up, self.down = prom.name, prom.upstream, prom.downstream
        ups, downs = items.anchors
        self.pairs = promoter_start_pairs(problem, 0)
        self.ups = [(a, items.arcs_into(a.sequence), items.arcs_from(a.sequence)) for a in ups]
        self.downs = [(a, items.arcs_into(a.sequence), items.arcs_from(a.sequence)) for a in downs]
        n = len(items.seqs)
        lengths = np.array([len(s) for s in items.seqs], dtype=np.int64)
        self.left = _dp(items, lengths, L)
        self.right = _dp(items, np.ones(n, dtype=np.int64), L + 1, backward=True)
        # Longest distance from an upstream anchor's end to a downstream anchor's end.
        span = max(
            d + len(b.sequence) - b.offset - (u - a.offset + len(a.sequence))
            for u, d in self.pairs
            for a in ups
            for b in downs
        )
        self.span = span
        self._us = np.array([u for u, _ in self.pairs], dtype=np.int64)
        self._ds = np.array([d for _, d in self.pairs], dtype=np.int64)
        self.mids = [_dp(items, frm, span) for _a, _into, frm in self.ups]
        # the reads of those tables at each anchor (``TableReads.tops``), grouped
        self._into_left = _Reads([into for _a, into, _f in self.ups], [len(a.sequence) for a in ups])
        self._from_right = _Reads([frm for _b, _i, frm in self.downs], None, items.plain)
        self._into_down = _Reads([into for _b, into, _f in self.downs], [len(b.sequence) for b in downs])
        self.link = [[len(b.sequence) - max_overlap(a.sequence, b.sequence) for b in downs] for a in ups]

    def solve(self, site_w: np.ndarray) -> tuple[float, list[Any], RelaxedPlan | None]:
        """(value, sites counted, plan for ``realise``) of the best relaxed layout."""
        has_items = bool(len(self.items.seqs))
        if has_items:
            w = self.items.weights(site_w)
            for dp in (self.left, self.right, *self.mids):
                dp.run(w)
        best, arg = NEG, None
        found: tuple[Any, ...] | None = None
        if has_items:
            lefts = list(np.maximum(self._into_left.tops(self.left, self.L + 1), 0.0))
            rights = list(np.maximum(self._from_right.tops(self.right, self.L + 2), 0.0))
            mids = [self._into_down.tops(dp, self.span + 1) for dp in self.mids]
        else:
            lefts = [np.zeros(self.L + 1)] * len(self.ups)
            rights = [np.zeros(self.L + 2)] * len(self.downs)
        us, ds = self._us, self._ds
        for i, (a, _a_into, _a_from) in enumerate(self.ups):
            a_start = us - a.offset
            a_end = a_start + len(a.sequence)
            a_w = a.weight(site_w)
            for j, (b, _b_into, _b_from) in enumerate(self.downs):
                if a.own >= 0 and a.own == b.own:
                    continue
                b_start = ds - b.offset
                b_end = b_start + len(b.sequence)
                rel = b_end - a_end
                ok = (a_start >= 0) & (b_start >= 0) & (b_end <= self.L) & (rel >= 0)
                if not ok.any():
                    continue
                mid = mids[i][j] if has_items else np.full(self.span + 1, NEG)
                mid = np.where(np.arange(self.span + 1) >= self.link[i][j], np.maximum(mid, 0.0), mid)
                a_e_at, b_e_at, r = np.where(ok, a_end, 0), np.where(ok, b_end, 0), np.where(ok, rel, 0)
                total = lefts[i][a_e_at] + a_w + mid[r] + b.weight(site_w) + rights[j][self.L - b_e_at + 1]
                total = np.where(ok & (mid[r] > NEG / 2), total, NEG)
                k = int(total.argmax())
                if total[k] > best:
                    best, arg = float(total[k]), (i, j, k)
        if arg is not None:
            i, j, k = arg
            (a, a_into, _), (b, b_into, b_from) = self.ups[i], self.downs[j]
            u, d = int(us[k]), int(ds[k])
            a_stop = u - a.offset + len(a.sequence)
            b_stop = d - b.offset + len(b.sequence)

            def part(dp, c, then):
                v, last, lim = dp.top(c, then) if has_items else (NEG, -1, -1)
                return (v, last, lim) if v > 0 else (0.0, -1, -1)

            found = (a, u, b, d, (self.left, part(self.left, a_stop, a_into)),
                   (self.mids[i], part(self.mids[i], b_stop - a_stop, b_into)),
                   (self.right, part(self.right, self.L - b_stop + 1, b_from)))
        if found is None:
            return NEG, [], None
        a, u, b, d, *paths = found
        sites = a.carried(site_w) + b.carried(site_w)
        chains = []
        for dp, (_v, last, lim) in paths:
            path = dp.trace(last, lim) if last >= 0 else []
            if dp is not self.right:
                path = path[::-1]  # forward tables trace from the last item back
            sites += [s for k in path for s in self.items.carried(k, site_w)]
            chains.append([_piece(self.items, k) for k in path])
        anchors = [self._anchored(a, u, "upstream"), self._anchored(b, d, "downstream")]
        return best, sites, (chains, anchors)

    def _anchored(self, anchor: _Anchor, element_start: int, role: str) -> Anchored:
        origin = anchor.origin or (-1, "+")
        inside = tuple(self.items.site_origin[s] for s in anchor.inside)
        piece = Piece(origin[0], origin[1], anchor.sequence, inside)
        element = self.up if role == "upstream" else self.down
        return Anchored(piece, element_start - anchor.offset, element, anchor.offset, f"{self.name}:{role}")
