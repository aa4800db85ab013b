"""The summary figures. Each takes `PlotData` and returns a matplotlib Figure (or None when not applicable).

Counts are drawn on integer axes, legends sit beside the axes (never over the data), and only
binding sites count as sites: background filler and promoter elements are drawn apart.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=True)

import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from .data import ROLE_FILLER, ROLE_PROMOTER, PlotData
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
OCCUPANCY_BLOCK = 20_000  # sequences per block when computing coverage
MAX_UNPLACED = 15
MAX_STEPS = 4000  # points per plan on the progress curve  # regulators never placed that are drawn as rows (the report lists them all)


def site_usage(data: PlotData, top: int = TOP_REGULATORS):
    """Placed binding sites per regulator, stacked by plan; regulators never placed are listed with 0."""
    if data.frame.height == 0:
        return None
    counts = data.sites.group_by("regulator", "plan").len()
    totals = dict(counts.group_by("regulator").agg(pl.col("len").sum()).iter_rows())
    placed = sorted((r for r in totals), key=lambda r: (-totals[r], r))
    unplaced_all = [r for r in data.regulators if r not in totals]
    unplaced = unplaced_all[:MAX_UNPLACED]
    shown = placed[:top] + unplaced
    regs = shown[::-1]
    fig, ax = plt.subplots(figsize=(7.5, max(3.0, 0.26 * len(regs) + 1.3)))
    left = np.zeros(len(regs))
    for plan in data.plan_order:
        sub = dict(counts.filter(pl.col("plan") == plan).select("regulator", "len").iter_rows())
        vals = np.array([sub.get(r, 0) for r in regs], dtype=float)
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


def covered_positions(placements: pl.DataFrame, L: int, block: int = OCCUPANCY_BLOCK) -> np.ndarray:
    """Per position, how many sequences have it covered by at least one of `placements` (overlaps counted once).

    Vectorised and done in blocks of sequences, so memory stays at `block` x L whatever the row count.
    """
    if placements.height == 0:
        return np.zeros(L)
    idx = placements["id"].rank("dense").cast(pl.Int64).to_numpy() - 1
    off = np.clip(placements["offset"].to_numpy().astype(np.int64), 0, L)
    end = np.clip(placements["end"].to_numpy().astype(np.int64), 0, L)
    total = np.zeros(L)
    for start in range(0, int(idx.max()) + 1, block):
        sel = (idx >= start) & (idx < start + block)
        diff = np.zeros((block, L + 1), dtype=np.int32)
        np.add.at(diff, (idx[sel] - start, off[sel]), 1)
        np.add.at(diff, (idx[sel] - start, end[sel]), -1)
        total += (np.cumsum(diff[:, :L], axis=1) > 0).sum(axis=0)
    return total


def occupancy(data: PlotData):
    """Fraction of sequences covered by a binding site at each position, per plan; promoter and filler shaded."""
    frame = data.frame
    if frame.height == 0:
        return None
    L = int(frame["length"].max())  # type: ignore[arg-type]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    x = np.arange(L)
    other = {ROLE_PROMOTER: np.zeros(L), ROLE_FILLER: np.zeros(L)}
    for plan in data.plan_order:
        sub = data.placements.filter(pl.col("plan") == plan)
        n = max(frame.filter(pl.col("densegen__plan") == plan).height, 1)
        cover = {"site": np.zeros(L), ROLE_PROMOTER: np.zeros(L), ROLE_FILLER: np.zeros(L)}
        for (role_key,), grp in sub.group_by("role"):
            cover[str(role_key)] = covered_positions(grp, L) / n
        color = plan_color(data, plan)
        ax.plot(x, cover["site"], color=color, lw=1.6, label=f"{plan} binding sites (n={n})")
        ax.fill_between(x, 0, cover["site"], color=color, alpha=0.12)
        for kind in other:
            other[kind] = np.maximum(other[kind], cover[kind])
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
    frame = data.frame
    if frame.height == 0:
        return None
    per_id = data.sites.group_by("id").len()
    joined = frame.select("id", "densegen__plan").join(per_id, on="id", how="left").with_columns(pl.col("len").fill_null(0))
    n_sites = joined["len"].to_numpy()
    plans = joined["densegen__plan"].to_numpy()
    bins = np.arange(n_sites.min(), n_sites.max() + 2)
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    k = len(data.plan_order)
    width = 0.8 / max(k, 1)
    for i, plan in enumerate(data.plan_order):
        v = n_sites[plans == plan]
        hist, _ = np.histogram(v, bins=bins)
        ax.bar(bins[:-1] + (i - (k - 1) / 2) * width, hist, width=width, color=plan_color(data, plan),
               label=f"{plan} (mean {v.mean():.2f})")
    ax.set_xticks(bins[:-1])
    integer_axis(ax.yaxis)
    style_axes(ax, "Binding sites per sequence", "binding sites in the sequence", "sequences")
    legend_outside(ax)
    caption(fig, data)
    fig.tight_layout()
    return fig


def gc_distribution(data: PlotData):
    """GC fraction of the designed sequences, per plan."""
    frame = data.frame
    if frame.height == 0:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    all_gc = frame["densegen__gc"].to_numpy()
    bins = np.linspace(max(0.0, all_gc.min() - 0.02), min(1.0, all_gc.max() + 0.02), 25)
    for plan in data.plan_order:
        v = frame.filter(pl.col("densegen__plan") == plan)["densegen__gc"].to_numpy()
        ax.hist(v, bins=bins.tolist(), histtype="stepfilled", alpha=0.35, color=plan_color(data, plan),
                label=f"{plan} (median {np.median(v):.2f})")
        ax.hist(v, bins=bins.tolist(), histtype="step", color=plan_color(data, plan), lw=1.2)
    integer_axis(ax.yaxis)
    style_axes(ax, "GC content of designed sequences", "GC fraction", "sequences")
    legend_outside(ax)
    caption(fig, data)
    fig.tight_layout()
    return fig


def regulator_positions(data: PlotData, bin_bp: int = 5):
    """Per regulator: where its sites start along the sequence, + strand up, - strand down; unplaced rows marked."""
    if data.frame.height == 0 or not data.regulators:
        return None
    L = int(data.frame["length"].max())  # type: ignore[arg-type]
    sites = data.sites
    counts = dict(sites.group_by("regulator").len().iter_rows())
    keep = set(sorted(counts, key=lambda r: (-counts[r], r))[:TOP_REGULATORS])
    keep |= set([r for r in data.regulators if r not in counts][:MAX_UNPLACED])
    regs = [r for r in data.regulators if r in keep]
    hidden = len(data.regulators) - len(regs)
    edges = np.arange(0, L + bin_bp, bin_bp)
    fig, ax = plt.subplots(figsize=(8.5, max(2.6, 0.42 * len(regs) + 1.2)))
    hists = {}
    labels: list[str] = []
    for (reg, strand), grp in sites.group_by("regulator", "strand"):
        hists[(reg, strand)] = np.histogram(grp["offset"].to_numpy(), bins=edges)[0]
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


def progress_over_time(data: PlotData):
    """Cumulative accepted sequences against run time (idle time between sessions cut out), time to first marked."""
    frame = data.frame
    if frame.height == 0:
        return None
    t = frame.select("densegen__plan", "densegen__accepted_at").sort("densegen__accepted_at")
    timeline, secs_all = run_timeline(data.events, t["densegen__accepted_at"].to_list())
    secs = np.array(secs_all)
    total = float(max(timeline.ends[-1] - timeline.starts[-1] + timeline.offsets[-1], secs.max(initial=0.0), 1e-9)) \
        if timeline.starts else float(secs.max(initial=1.0))
    unit, div = ("minutes", 60.0) if total > 180 else ("seconds", 1.0)
    plans = t["densegen__plan"].to_numpy()
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    for plan in data.plan_order:
        x = secs[plans == plan] / div
        if not len(x):
            continue
        color = plan_color(data, plan)
        counts = np.arange(1, len(x) + 1)
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
