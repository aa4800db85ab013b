"""Reduced-cost fixing: a tighter site bound from the path relaxation's multipliers.

Why: on 500-1000-site libraries at L=200 the Lagrangian path relaxation (``bound.py``) stalls a
few sites above the best layouts: its relaxed paths fold back on themselves (a run of shifted
windows of one promoter region, then the same sites in their other orientation), and the
multipliers price those repeats out only slowly. Most sites, though, are on no relaxed path
worth the bound: this module drops them and bounds what is left.

For multipliers ``lambda >= 0`` and a site ``s``, let ``UB(s)`` be ``sum(lambda)`` plus the best
relaxed path that holds ``s`` (as an item, or carried inside one): a forward table (paths ending
in the item) plus a table of the reversed strings (paths starting with it) read at the same
place. Any solution that uses ``s`` is worth at most ``UB(s)`` (the Lagrangian argument of
``bound.py``, restricted to paths through ``s``). So for any target ``T``, a solution worth ``T``
or more uses only the *survivors* ``{s : UB(s) >= T}``, and

    optimum  <=  max(T - 1, bound on the survivors' problem).

The survivors' bound is a second relaxation (fewer sites, cheaper passes), whose own multipliers
drop more sites at the same ``T``. ``tighten`` proves ``T - 1`` for ``T`` = the bound, then one
less, while the budget lasts. Only without a promoter (the path is then one chain from 0 to L);
with one the bound is left as it is.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .hub_dp import NEG, HubDP

if TYPE_CHECKING:
    from .bound import Relaxation, _Items, _PathDP
    from .types import Problem

FIX_EVERY = 6  # subgradient steps between two fixing passes on the survivors
REBUILD_SHARE = 0.7  # rebuild the survivors' program once they are below this share of its sites
MIN_THETA = 1e-3  # give a target up once the Polyak scale is this small
# Polyak steps of an attempt at target T aim at AIM * T, from scale THETA0: aiming at T - 1 itself
# gave steps too short to get there (RegulonDB 1000 sites, L=200: stuck at 55.1 for T = 55).
AIM, THETA0 = 0.6, 0.25


def _hubs_of(hubs: tuple[np.ndarray, np.ndarray, int], new_item: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """``overlap_hubs`` rows restricted to the items with ``new_item >= 0`` (renumbered), keeping
    the hubs that some kept item ends in and some kept item starts with (renumbered too)."""
    ends, starts, _n = hubs
    ends = ends[new_item[ends[:, 0]] >= 0]
    starts = starts[new_item[starts[:, 0]] >= 0]
    both = np.intersect1d(ends[:, 1], starts[:, 1])
    ends, starts = ends[np.isin(ends[:, 1], both)], starts[np.isin(starts[:, 1], both)]
    renum = np.full(int(max(ends[:, 1].max(initial=-1), starts[:, 1].max(initial=-1))) + 1, -1, dtype=np.int64)
    renum[both] = np.arange(len(both))
    out = []
    for rows in (ends, starts):
        rows = rows.copy()
        rows[:, 0], rows[:, 1] = new_item[rows[:, 0]], renum[rows[:, 1]]
        out.append(rows.reshape(-1, 3))
    return out[0], out[1], len(both)


def _restrict(items: _Items, keep: np.ndarray) -> _Items:
    """``items`` (no promoter) without the sites where ``keep`` (per remapped site) is False:
    hub rows filtered, no hashing again."""
    from .bound import _Items

    new_site = np.full(items.n_sites, -1, dtype=np.int64)
    new_site[keep] = np.arange(int(keep.sum()))
    kept = np.nonzero(keep[items.site])[0]
    new_item = np.full(len(items.seqs), -1, dtype=np.int64)
    new_item[kept] = np.arange(len(kept))
    sub = _Items(
        seqs=[items.seqs[i] for i in kept],
        origin=[items.origin[i] for i in kept],
        site=new_site[items.site[kept]],
        inside=[tuple(int(new_site[s]) for s in items.inside[i] if keep[s]) for i in kept],
        cost=None if items.cost is None else items.cost[np.ix_(kept, kept)],
        n_free=0, free_value=0, n_sites=int(keep.sum()), anchors=([], []),
        site_origin=[items.site_origin[s] for s in np.nonzero(keep)[0]],
        hubs=None if items.hubs is None else _hubs_of(items.hubs, new_item),
    )
    return sub


class ForcedPaths:
    """Best relaxed path through each site, for site weights: a forward program over the items
    and one over their reversed strings (a path starting with an item, read backwards)."""

    def __init__(self, items: _Items, fwd, L: int):
        self.items, self.fwd, self.L = items, fwd, L
        plain = items.plain
        self.rev: HubDP | _PathDP
        if items.hubs is not None:
            # The reversed strings' hubs are the hubs reversed: an item ending in x starts its
            # reversed string with rev(x) and vice versa (the same hubs, ends and starts swapped).
            ends, starts, n_hubs = items.hubs
            self.rev = HubDP(plain, starts, ends, n_hubs, plain, L, plain, False, items.site)
        else:
            assert items.cost is not None
            # rev(b) then rev(a) overlap as a then b: the reversed program runs on the transposed costs
            from .bound import _PathDP as PathDP

            self.rev = PathDP(items.cost.T.copy(), plain, L, plain, False)
        c = np.arange(L + 1)[:, None]
        back = L + plain[None, :] - c  # reversed end of an item ending at c
        self._ok = (c >= plain[None, :]) & (back <= L)
        self._rows_f = np.clip(c, 0, L) * np.ones_like(back)
        self._rows_r = np.clip(back, 0, L)

    def site_values(self, site_w: np.ndarray, run_forward: bool = True) -> np.ndarray:
        """Per (remapped) site: the best relaxed path weight through it (NEG if none fits).
        ``run_forward=False`` reuses the forward table of the last ``parts.solve``."""
        items = self.items
        w = items.weights(site_w)
        if run_forward:
            self.fwd.run(w)
        self.rev.run(w)
        cols = np.arange(len(w))[None, :]
        total = self.fwd.best[self._rows_f, cols] + self.rev.best[self._rows_r, cols] - w[None, :]
        forced = np.where(self._ok & (total > NEG / 2), total, NEG).max(axis=0)
        out = np.full(items.n_sites, NEG)
        np.maximum.at(out, items.site, forced)
        if len(items.carrier_item):
            np.maximum.at(out, items.carried_site, forced[items.carrier_item])
        return out


@dataclasses.dataclass
class _Round:
    """The relaxation of one set of surviving sites (``sites``: problem site indices)."""

    sites: list[int]
    items: _Items
    parts: object
    forced: ForcedPaths
    values: np.ndarray

    def restrict(self, keep: np.ndarray, L: int) -> _Round:
        """This round without the sites where ``keep`` is False."""
        from .bound import _Plain

        items = _restrict(self.items, keep)
        parts = _Plain(items, L)
        return _Round(list(items.site_origin), items, parts, ForcedPaths(items, parts.dp, L), self.values[keep])


def tighten(
    problem: Problem, relaxation: Relaxation, *, known: int = 0, deadline: float | None = None,
    clock: Callable[[], float], max_steps: int = 200,
) -> int | None:
    """The relaxation's bound, lowered by reduced-cost fixing while ``clock()`` is before
    ``deadline`` (``None``: at most ``max_steps`` DP passes in all, for reproducible runs);
    never below ``known`` (a value some layout already reaches). None when not computed.

    Each attempt at a target ``T`` (first the bound) gives ``max(T - 1, bound on the
    survivors)``; when that proves ``T - 1``, the next attempt aims one lower."""
    bound = relaxation.bound
    search = relaxation._search
    lam_full = search.best_lam if search is not None and search.best_lam is not None else relaxation._lam
    if bound is None or lam_full is None or search is None or problem.promoters or search.items.n_free:
        return bound
    full = _Round(list(search.items.site_origin), search.items, search.parts,
                  ForcedPaths(search.items, search.parts.dp, problem.length), search.values)
    budget = _Steps(clock, deadline, max_steps)
    warm = dict(zip(full.sites, lam_full.tolist(), strict=True))  # multipliers to start an attempt from
    target = bound
    while target > max(known, 0) and not budget.out():
        # survivors from the relaxation's own multipliers (an attempt's are tuned to its survivors)
        ub = full.forced.site_values(full.values - lam_full) + float(lam_full.sum())
        budget.steps += 1
        surv = _attempt(full, ub >= target - 1e-6, target, warm, budget, problem.length)
        bound = min(bound, max(target - 1, surv))
        if surv > target - 1:
            break
        target -= 1
    return max(bound, known)


class _Steps:
    """The fixing's budget: a deadline on ``clock``, or a number of DP passes."""

    def __init__(self, clock: Callable[[], float], deadline: float | None, max_steps: int):
        self.clock, self.deadline, self.max_steps, self.steps = clock, deadline, max_steps, 0

    def out(self) -> bool:
        if self.deadline is not None:
            return self.clock() > self.deadline
        return self.steps >= self.max_steps


def _attempt(full: _Round, alive: np.ndarray, target: int, warm: dict[int, float], budget: _Steps, L: int) -> int:
    """Subgradient steps on the survivors (``alive``, per site of ``full``) of ``target``,
    dropping more of them as the multipliers improve: the lowest floor of their dual met
    (``-1`` once none survive). ``warm`` (problem site -> multiplier) starts the steps and
    receives the survivors' final multipliers."""
    from .bound import _StepScale

    best = math.inf
    scale = _StepScale(THETA0)
    aim = AIM * target
    rnd = full
    while alive.any() and not budget.out():
        rnd = rnd.restrict(alive, L)
        lam = np.array([warm.get(si, 0.0) for si in rnd.sites])
        banned = np.zeros(len(rnd.sites))
        for step in range(1 << 30):
            site_w = rnd.values - lam + banned
            value, used, _plan = rnd.parts.solve(site_w)  # type: ignore[attr-defined]
            budget.steps += 1
            dual = max(value, 0.0) + float(lam.sum())
            scale.observe(dual)
            best = min(best, dual)
            if best < target - 1e-6 or budget.out() or scale.theta < MIN_THETA:
                break
            if step % FIX_EVERY == FIX_EVERY - 1:
                ub = rnd.forced.site_values(site_w, run_forward=False) + float(lam.sum())
                budget.steps += 1
                dead = (ub < target - 1e-6) & (banned == 0)
                if dead.any():
                    banned[dead], lam[dead] = -1e9, 0.0
                    if (banned == 0).mean() < REBUILD_SHARE:
                        break  # rebuild on the survivors (cheaper passes)
            g = 1.0 - np.bincount(np.asarray(used, dtype=np.int64), minlength=len(rnd.sites))
            g[banned != 0] = 0.0
            norm = float((g * g).sum())
            if norm == 0:
                break
            lam = np.maximum(0.0, lam - scale.theta * max(dual - aim, 0.5) / norm * g)
        warm.update(zip(rnd.sites, lam.tolist(), strict=True))
        alive = banned == 0
        if best < target - 1e-6 or scale.theta < MIN_THETA or alive.all():
            break
    if not alive.any():
        return -1
    return math.floor(best + 1e-6) if math.isfinite(best) else 1 << 30
