"""The summary figures. Each takes `PlotData` and returns a matplotlib Figure (or None when not applicable).

Counts are drawn on integer axes, legends sit beside the axes (never over the data), and only
binding sites count as sites: background filler and promoter elements are drawn apart. Every
figure draws from `data.agg`, the streaming aggregate of all the run's rows (`aggregate.py`).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=True)

import matplotlib.pyplot as plt
import numpy as np

from .aggregate import GC_BINS, covered_positions
from .data import ROLE_FILLER, ROLE_PROMOTER, ROLE_SITE, PlotData
from .style import (
    FILLER_COLOR,
    PROMOTER_COLOR,
    STRAND_COLORS,
    caption,
    integer_axis,
    legend_outside,
    plan_color,
    style_axes,
)
from .timeline import run_timeline

TOP_REGULATORS = 30  # placed regulators shown (most sites first); the title says how many more there are
MAX_UNPLACED = 15  # regulators never placed that are drawn as rows (the report lists them all)
MAX_STEPS = 4000  # points per plan on the progress curve
GC_COARSE = 24  # bars of the GC histogram

__all__ = ["covered_positions", "gc_distribution", "occupancy", "progress_over_time", "regulator_positions",
           "site_usage", "sites_per_sequence"]


def site_usage(data: PlotData, top: int = TOP_REGULATORS):
    """Placed binding sites per regulator, stacked by plan; regulators never placed are listed with 0."""
    if data.rows == 0:
        return None
    counts = data.agg.site_counts
    totals: dict[str, int] = {}
    for (reg, _plan), n in counts.items():
        totals[reg] = totals.get(reg, 0) + n
    placed = sorted((r for r in totals), key=lambda r: (-totals[r], r))
    unplaced_all = [r for r in data.regulators if r not in totals]
    unplaced = unplaced_all[:MAX_UNPLACED]
    shown = placed[:top] + unplaced
    regs = shown[::-1]
    fig, ax = plt.subplots(figsize=(7.5, max(3.0, 0.26 * len(regs) + 1.3)))
    left = np.zeros(len(regs))
    for plan in data.plan_order:
        vals = np.array([counts.get((r, plan), 0) for r in regs], dtype=float)
        ax.barh(regs, vals, left=left, color=plan_color(data, plan), label=plan, height=0.75)
        left += vals
    for i, r in enumerate(regs):
        if r not in totals:
            ax.text(0, i, "  0 (never placed)", va="center", ha="left", fontsize=7.5, color="#b03030")
    hidden = len(placed) - len(placed[:top]) + len(unplaced_all) - len(unplaced)
    title = f"Binding sites per regulator ({len(placed)} placed, {len(unplaced_all)} never placed)"
    style_axes(ax, title + (f"; {hidden} not shown" if hidden else ""), "placed binding sites", "")
    ax.grid(axis="x", alpha=0.25)
    ax.grid(axis="y", visible=False)
    ax.set_xlim(0, max(1.0, float(left.max()) * 1.08))
    integer_axis(ax.xaxis)
    for lab in ax.get_yticklabels():
        if lab.get_text() in unplaced:
            lab.set_color("#b03030")
    legend_outside(ax, title="plan")
    caption(fig, data)
    fig.tight_layout()
    return fig


def occupancy(data: PlotData):
    """Fraction of sequences covered by a binding site at each position, per plan; promoter and filler shaded."""
    agg = data.agg
    if agg.rows == 0:
        return None
    L = agg.L
    fig, ax = plt.subplots(figsize=(8, 3.6))
    x = np.arange(L)
    other = {ROLE_PROMOTER: np.zeros(L), ROLE_FILLER: np.zeros(L)}

    def cover(plan: str, role: str, n: int) -> np.ndarray:
        c = agg.cover.get((plan, role))
        return np.zeros(L) if c is None else np.pad(c[:L], (0, max(0, L - len(c)))) / n

    for plan in data.plan_order:
        n = max(agg.plans[plan].rows, 1)
        site = cover(plan, ROLE_SITE, n)
        color = plan_color(data, plan)
        ax.plot(x, site, color=color, lw=1.6, label=f"{plan} binding sites (n={n})")
        ax.fill_between(x, 0, site, color=color, alpha=0.12)
        for kind in other:
            other[kind] = np.maximum(other[kind], cover(plan, kind, n))
    if other[ROLE_PROMOTER].any():
        ax.fill_between(x, 0, other[ROLE_PROMOTER], step="mid", color=PROMOTER_COLOR, alpha=0.25, label="promoter (-35/-10)")
    if other[ROLE_FILLER].any():
        ax.plot(x, other[ROLE_FILLER], color=FILLER_COLOR, lw=1.2, ls="--", label="background filler")
    ax.set_xlim(0, L - 1)
    ax.set_ylim(0, 1.02)
    style_axes(ax, "Where binding sites sit along the sequence", "position (bp, + strand)", "fraction of sequences covered")
    legend_outside(ax)
    caption(fig, data)
    fig.tight_layout()
    return fig


def sites_per_sequence(data: PlotData):
    """How many binding sites each sequence holds, per plan (integer bins)."""
    agg = data.agg
    if agg.rows == 0:
        return None
    top = max(len(ps.sites_hist) for ps in agg.plans.values())
    lo = min(int(np.flatnonzero(ps.sites_hist)[0]) for ps in agg.plans.values() if ps.sites_hist.any())
    xs = np.arange(lo, top)
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    k = len(data.plan_order)
    width = 0.8 / max(k, 1)
    for i, plan in enumerate(data.plan_order):
        ps = agg.plans[plan]
        hist = np.pad(ps.sites_hist, (0, top - len(ps.sites_hist)))[lo:top]
        ax.bar(xs + (i - (k - 1) / 2) * width, hist, width=width, color=plan_color(data, plan),
               label=f"{plan} (mean {ps.mean_sites:.2f})")
    ax.set_xticks(xs)
    integer_axis(ax.yaxis)
    style_axes(ax, "Binding sites per sequence", "binding sites in the sequence", "sequences")
    legend_outside(ax)
    caption(fig, data)
    fig.tight_layout()
    return fig


def gc_distribution(data: PlotData):
    """GC fraction of the designed sequences, per plan (a fine streaming histogram, re-binned)."""
    agg = data.agg
    if agg.rows == 0:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    lo_gc = min(ps.gc_min for ps in agg.plans.values())
    hi_gc = max(ps.gc_max for ps in agg.plans.values())
    lo = max(0, int((lo_gc - 0.02) * GC_BINS))
    hi = min(GC_BINS, int(np.ceil((hi_gc + 0.02) * GC_BINS)) + 1)
    step = max(1, int(np.ceil((hi - lo) / GC_COARSE)))
    edges_idx = np.arange(lo, hi + step, step)
    edges = np.minimum(edges_idx, GC_BINS) / GC_BINS
    for plan in data.plan_order:
        ps = agg.plans[plan]
        fine = np.pad(ps.gc_hist, (0, int(edges_idx[-1]) - GC_BINS)) if edges_idx[-1] > GC_BINS else ps.gc_hist
        coarse = np.add.reduceat(fine[lo:int(edges_idx[-1])], np.arange(0, int(edges_idx[-1]) - lo, step))
        color = plan_color(data, plan)
        ax.stairs(coarse, edges, fill=True, alpha=0.35, color=color, label=f"{plan} (median {ps.gc_median():.2f})")
        ax.stairs(coarse, edges, color=color, lw=1.2)
    integer_axis(ax.yaxis)
    style_axes(ax, "GC content of designed sequences", "GC fraction", "sequences")
    legend_outside(ax)
    caption(fig, data)
    fig.tight_layout()
    return fig


def regulator_positions(data: PlotData, bin_bp: int = 5):
    """Per regulator: where its sites start along the sequence, + strand up, - strand down; unplaced rows marked."""
    agg = data.agg
    if agg.rows == 0 or not data.regulators:
        return None
    L = agg.L
    counts: dict[str, int] = {}
    for (reg, _plan), n in agg.site_counts.items():
        counts[reg] = counts.get(reg, 0) + n
    keep = set(sorted(counts, key=lambda r: (-counts[r], r))[:TOP_REGULATORS])
    keep |= set([r for r in data.regulators if r not in counts][:MAX_UNPLACED])
    regs = [r for r in data.regulators if r in keep]
    hidden = len(data.regulators) - len(regs)
    edges = np.arange(0, L + bin_bp, bin_bp)
    fig, ax = plt.subplots(figsize=(8.5, max(2.6, 0.42 * len(regs) + 1.2)))
    hists = {}
    labels: list[str] = []
    for key, per_bp in agg.starts.items():  # starts per bp -> bin_bp bins
        per_bp = np.pad(per_bp, (0, max(0, len(edges) * bin_bp - len(per_bp))))
        hists[key] = np.add.reduceat(per_bp, np.arange(0, (len(edges) - 1) * bin_bp, bin_bp))[: len(edges) - 1]
    peak = max((int(h.max()) for h in hists.values()), default=1) or 1
    for row, reg in enumerate(reversed(regs)):
        ax.axhline(row, color="#dddddd", lw=0.6, zorder=0)
        plus = hists.get((reg, "+"), np.zeros(len(edges) - 1))
        minus = hists.get((reg, "-"), np.zeros(len(edges) - 1))
        scale = 0.45 / peak
        ax.bar(edges[:-1], plus * scale, width=bin_bp * 0.9, bottom=row, align="edge", color=STRAND_COLORS["+"],
               label="+ strand" if row == 0 else None)
        ax.bar(edges[:-1], -minus * scale, width=bin_bp * 0.9, bottom=row, align="edge", color=STRAND_COLORS["-"],
               label="- strand" if row == 0 else None)
        n_plus, n_minus = int(plus.sum()), int(minus.sum())
        labels.append(f"{reg}\n{n_plus + n_minus} sites ({n_plus} +, {n_minus} -)" if n_plus + n_minus else
                      f"{reg}\nnever placed")
        if not n_plus + n_minus:
            ax.text(L / 2, row, "never placed", va="center", ha="center", fontsize=8, color="#b03030")
    ax.set_yticks(range(len(regs)), labels, fontsize=8)
    ax.set_ylim(-0.6, len(regs) - 0.4)
    ax.set_xlim(0, L)
    style_axes(ax, f"Site starts per regulator and strand ({bin_bp}-bp bins; tallest bar = {peak} sites)"
               + (f"; {hidden} regulators not shown" if hidden else ""),
               "site start (bp, + strand coordinates)", "")
    ax.grid(axis="y", visible=False)
    legend_outside(ax)
    caption(fig, data)
    fig.tight_layout()
    return fig


def accepted_curve(data: PlotData) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(wall-clock seconds, plan, cumulative count) points of each plan's accepted rows, in time order per plan.

    Exact when a plan's rows fit the time sample; otherwise the sampled times (plus the first and
    last) with counts scaled to the plan's rows (first = 1, last = all).
    """
    walls: list[np.ndarray] = []
    plans: list[str] = []
    ranks: list[np.ndarray] = []
    for plan in data.plan_order:
        ps = data.agg.plans[plan]
        if not len(ps.times):
            continue
        t = np.sort(ps.times)
        if ps.rows > len(t):
            t = np.concatenate([[ps.first_at], t, [ps.last_at]])
            r = np.rint(1 + np.arange(len(t)) * (ps.rows - 1) / max(len(t) - 1, 1)).astype(np.int64)
        else:
            r = np.arange(1, len(t) + 1)
        walls.append(t)
        ranks.append(r)
        plans.extend([plan] * len(t))
    if not walls:
        return np.zeros(0), [], np.zeros(0, dtype=np.int64)
    return np.concatenate(walls), plans, np.concatenate(ranks)


def progress_over_time(data: PlotData):
    """Cumulative accepted sequences against run time (idle time between sessions cut out), time to first marked."""
    agg = data.agg
    if agg.rows == 0:
        return None
    walls, plans_list, ranks = accepted_curve(data)
    timeline, secs_all = run_timeline(data.events, walls.tolist())
    secs = np.array(secs_all)
    total = float(max(timeline.ends[-1] - timeline.starts[-1] + timeline.offsets[-1], secs.max(initial=0.0), 1e-9)) \
        if timeline.starts else float(secs.max(initial=1.0))
    unit, div = ("minutes", 60.0) if total > 180 else ("seconds", 1.0)
    plans = np.array(plans_list, dtype=object)
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    for plan in data.plan_order:
        sel = plans == plan
        x = secs[sel] / div
        if not len(x):
            continue
        color = plan_color(data, plan)
        counts = ranks[sel]
        if len(x) > MAX_STEPS:  # a long run: the curve at evenly spaced counts looks the same and draws fast
            keep = np.unique(np.linspace(0, len(x) - 1, MAX_STEPS).astype(int))
            x, counts = x[keep], counts[keep]
        xs = np.concatenate([[0.0], x, [total / div]])
        ys = np.concatenate([[0], counts, [counts[-1]]])
        ax.step(xs, ys, where="post", color=color, lw=1.6, label=f"{plan} (first after {x[0] * div:.1f} s)")
        ax.plot([x[0]], [1], marker="o", color=color, ms=5)
    first = float(secs.min()) if len(secs) else 0.0
    ax.axvline(first / div, color="#444444", ls=":", lw=1.0, label=f"time to first sequence: {first:.1f} s")
    for b in timeline.breaks:
        ax.axvline(b / div, color="#999999", ls="--", lw=0.8)
    if timeline.breaks:
        ax.plot([], [], color="#999999", ls="--", lw=0.8, label="a later session resumed")
    ax.set_xlim(0, total / div * 1.02)
    ax.set_ylim(0, None)
    style_axes(ax, "Accepted sequences over run time", f"run time ({unit}; idle time between sessions removed)",
               "accepted sequences (cumulative)")
    integer_axis(ax.yaxis)
    legend_outside(ax)
    caption(fig, data)
    fig.tight_layout()
    return fig
