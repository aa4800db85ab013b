"""The figures. Each takes `PlotData` and returns a matplotlib Figure (or None when not applicable)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=True)

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from .data import PlotData


def _palette(name: str) -> list:
    """The colours of a qualitative (listed) colormap."""
    return list(getattr(plt.get_cmap(name), "colors", []))


PLAN_COLORS = _palette("tab10")
REG_COLORS = _palette("tab10") + _palette("Dark2") + _palette("Set1")
FIXED_COLOR = "#555555"


def _style(ax, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=11, loc="left")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", alpha=0.25)


def _plan_color(data: PlotData, plan: str):
    return PLAN_COLORS[data.plan_order.index(plan) % len(PLAN_COLORS)] if plan in data.plan_order else "#999999"


def _caption(fig, data: PlotData) -> None:
    fig.text(0.99, 0.005, f"run {data.run_id} - {data.frame.height} sequences", ha="right", va="bottom", fontsize=7, color="#777777")


def site_usage(data: PlotData, top: int = 20):
    lib = data.placements.filter(~pl.col("fixed"))
    if lib.height == 0:
        return None
    counts = lib.group_by("regulator", "plan").len()
    totals = counts.group_by("regulator").agg(pl.col("len").sum().alias("total")).sort("total", descending=True)
    regs = totals["regulator"].to_list()[:top][::-1]
    fig, ax = plt.subplots(figsize=(7.5, max(3.0, 0.28 * len(regs) + 1.2)))
    left = np.zeros(len(regs))
    for plan in data.plan_order:
        sub = dict(counts.filter(pl.col("plan") == plan).select("regulator", "len").iter_rows())
        vals = np.array([sub.get(r, 0) for r in regs], dtype=float)
        ax.barh(regs, vals, left=left, color=_plan_color(data, plan), label=plan, height=0.75)
        left += vals
    _style(ax, f"Site usage by regulator (top {len(regs)} of {totals.height})", "placed sites", "")
    ax.grid(axis="x", alpha=0.25)
    ax.grid(axis="y", visible=False)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    _caption(fig, data)
    fig.tight_layout()
    return fig


def occupancy(data: PlotData):
    frame = data.frame
    if frame.height == 0:
        return None
    L = int(frame["length"].max())  # type: ignore[arg-type]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    x = np.arange(L)
    fixed_any = np.zeros(L)
    for plan in data.plan_order:
        sub = data.placements.filter(pl.col("plan") == plan)
        n = frame.filter(pl.col("densegen__plan") == plan).height
        cov = np.zeros(L)
        fixed = np.zeros(L)
        for _key, grp in sub.group_by("id"):
            mask = np.zeros(L, dtype=bool)
            fmask = np.zeros(L, dtype=bool)
            for off, end, fx in grp.select("offset", "end", "fixed").iter_rows():
                (fmask if fx else mask)[off:min(end, L)] = True
            cov += mask
            fixed += fmask
        color = _plan_color(data, plan)
        ax.plot(x, cov / max(n, 1), color=color, lw=1.6, label=f"{plan} (n={n})")
        ax.fill_between(x, 0, cov / max(n, 1), color=color, alpha=0.12)
        fixed_any = np.maximum(fixed_any, fixed / max(n, 1))
    if fixed_any.any():
        ax.fill_between(x, 0, fixed_any, step="mid", color=FIXED_COLOR, alpha=0.25, label="fixed promoter elements")
    ax.set_xlim(0, L - 1)
    ax.set_ylim(0, 1.02)
    _style(ax, "Placement occupancy along the sequence", "position (bp, + strand)", "fraction of sequences covered")
    ax.legend(frameon=False, fontsize=8, loc="lower center", ncol=min(3, len(data.plan_order) + 1), bbox_to_anchor=(0.5, -0.38))
    _caption(fig, data)
    fig.tight_layout()
    return fig


def sites_per_sequence(data: PlotData):
    frame = data.frame
    vals = frame["densegen__n_sites"].to_numpy()
    if len(vals) == 0:
        return None
    bins = np.arange(vals.min(), vals.max() + 2)
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    k = len(data.plan_order)
    width = 0.8 / max(k, 1)
    for i, plan in enumerate(data.plan_order):
        v = frame.filter(pl.col("densegen__plan") == plan)["densegen__n_sites"].to_numpy()
        hist, _ = np.histogram(v, bins=bins)
        ax.bar(bins[:-1] + (i - (k - 1) / 2) * width, hist, width=width, color=_plan_color(data, plan),
               label=f"{plan} (mean {v.mean():.2f})")
    ax.set_xticks(bins[:-1])
    _style(ax, "Library sites per sequence", "sites in the sequence", "sequences")
    ax.legend(frameon=False, fontsize=8)
    _caption(fig, data)
    fig.tight_layout()
    return fig


def gc_distribution(data: PlotData):
    frame = data.frame
    if frame.height == 0:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    all_gc = frame["densegen__gc"].to_numpy()
    bins = np.linspace(max(0.0, all_gc.min() - 0.02), min(1.0, all_gc.max() + 0.02), 25)
    for plan in data.plan_order:
        v = frame.filter(pl.col("densegen__plan") == plan)["densegen__gc"].to_numpy()
        ax.hist(v, bins=bins.tolist(), histtype="stepfilled", alpha=0.35, color=_plan_color(data, plan),
                label=f"{plan} (median {np.median(v):.2f})")
        ax.hist(v, bins=bins.tolist(), histtype="step", color=_plan_color(data, plan), lw=1.2)
    _style(ax, "GC content of designed sequences", "GC fraction", "sequences")
    ax.legend(frameon=False, fontsize=8)
    _caption(fig, data)
    fig.tight_layout()
    return fig


def progress_over_time(data: PlotData):
    """Cumulative accepted sequences against run time; idle time between sessions is cut out."""
    frame = data.frame
    if frame.height == 0:
        return None
    t = frame.select("densegen__plan", "densegen__accepted_at", "densegen__session").sort("densegen__accepted_at")
    # each session starts where the previous one ended (plus a small gap), so resumes do not flatten the curve
    shift: dict[int, float] = {}
    boundaries: list[tuple[float, int]] = []
    clock = 0.0
    for (sess,), grp in t.group_by("densegen__session", maintain_order=True):
        times = [x.timestamp() for x in grp["densegen__accepted_at"].to_list()]
        first, last = min(times), max(times)
        if shift:
            clock += max(1.0, 0.02 * clock)
            boundaries.append((clock, sess))
        shift[sess] = clock - first
        clock += last - first
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for plan in data.plan_order:
        sub = t.filter(pl.col("densegen__plan") == plan)
        secs = np.array([ts.timestamp() + shift[s] for ts, s in zip(sub["densegen__accepted_at"].to_list(),
                                                                   sub["densegen__session"].to_list(), strict=False)])
        ax.step(secs / 60.0, np.arange(1, len(secs) + 1), where="post", color=_plan_color(data, plan), lw=1.6, label=plan)
    for x, sess in boundaries:
        ax.axvline(x / 60.0, color="#999999", ls="--", lw=0.8)
        ax.text(x / 60.0, ax.get_ylim()[1] * 0.98, f" session {sess}", fontsize=7, color="#666666", va="top")
    _style(ax, "Accepted sequences over run time", "minutes of run time (idle time between sessions removed)",
           "accepted (cumulative)")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    _caption(fig, data)
    fig.tight_layout()
    return fig


def _pick_examples(data: PlotData, n: int) -> pl.DataFrame:
    frame = data.frame
    picks = []
    per_plan = max(1, n // max(1, len(data.plan_order)))
    for plan in data.plan_order:
        sub = frame.filter(pl.col("densegen__plan") == plan).sort("densegen__n_sites", descending=True).head(per_plan)
        picks.append(sub)
    out = pl.concat(picks) if picks else frame.head(0)
    return out.head(n)


def sequence_gallery(data: PlotData, n: int = 6):
    ex = _pick_examples(data, n)
    if ex.height == 0:
        return None
    L = int(ex["length"].max())  # type: ignore[arg-type]
    regs = sorted({p["regulator"] for row in ex["densegen__placements"].to_list() for p in row if not p["fixed"]})
    color = {r: REG_COLORS[i % len(REG_COLORS)] for i, r in enumerate(regs)}
    rows = ex.height
    fig, axes = plt.subplots(rows, 1, figsize=(min(16, 3 + L * 0.11), 1.15 * rows + 0.6), squeeze=False)
    for ax, row in zip(axes[:, 0], ex.iter_rows(named=True), strict=False):
        seq = row["sequence"]
        ax.set_xlim(-0.5, L - 0.5)
        ax.set_ylim(-2.6, 2.6)
        ax.axis("off")
        ax.plot([0, len(seq) - 1], [0, 0], color="#bbbbbb", lw=0.8, zorder=0)
        if L <= 120:
            for i, ch in enumerate(seq):
                ax.text(i, 0, ch, ha="center", va="center", fontsize=5.5, family="monospace", color="#333333")
        # stack overlapping sites on separate tracks, + strand above, - strand below
        tracks: dict[str, list[int]] = {"+": [], "-": []}
        for p in sorted(row["densegen__placements"], key=lambda p: (p["offset"], p["end"])):
            strand = p["strand"] if p["strand"] in tracks else "+"
            ends = tracks[strand]
            level = next((i for i, e in enumerate(ends) if e <= p["offset"]), len(ends))
            if level == len(ends):
                ends.append(0)
            ends[level] = p["end"]
            sign = 1 if strand == "+" else -1
            y = sign * (0.55 + 0.7 * min(level, 2))
            c = FIXED_COLOR if p["fixed"] else color[p["regulator"]]
            w = p["end"] - p["offset"]
            ax.add_patch(Rectangle((p["offset"] - 0.5, y - 0.28), w, 0.56, facecolor=c, alpha=0.85 if not p["fixed"] else 0.6,
                                   edgecolor="white", lw=0.6, hatch="//" if p["fixed"] else None))
            label = p["site_id"].split(":")[-1] if p["fixed"] else p["regulator"]
            ax.text(p["offset"] - 0.5 + w / 2, y, f"{label}{'>' if sign > 0 else '<'}" if sign > 0 else f"<{label}",
                    ha="center", va="center", fontsize=6, color="white", fontweight="bold", clip_on=True)
        ax.text(-0.5, 2.45, f"{row['densegen__plan']}  |  {row['densegen__n_sites']} sites  |  GC {row['densegen__gc']:.2f}  |  "
                f"{row['id'][:10]}", fontsize=7.5, color="#333333", va="top")
    fig.suptitle("Designed sequences: sites above the line read on the + strand, below on the - strand; hatched = fixed promoter",
                 fontsize=9, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig
