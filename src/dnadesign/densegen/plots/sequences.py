"""The sequence gallery: a few designed sequences drawn on a bp axis with their bases and sites.

The rows come from the bounded, seeded sample of `aggregate.py` (`data.examples`). Binding sites
are coloured boxes (one colour per regulator, + strand above the sequence, - strand below, an
arrow giving the reading direction), promoter elements are grey and labelled with their
position name (-35 / -10), background filler is an outlined grey box on the sequence itself.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=True)

import matplotlib.pyplot as plt
import polars as pl
from matplotlib.patches import Patch, Rectangle

from .data import ROLE_FILLER, ROLE_PROMOTER, ROLE_SITE, PlotData
from .style import DPI, FILLER_COLOR, PROMOTER_COLOR, regulator_colors

PROMOTER_LABELS = {"upstream": "-35", "downstream": "-10"}


def element_label(site_id: str) -> str:
    """`sigma70:upstream` -> `-35`, `sigma70:downstream` -> `-10` (other names as they are)."""
    part = site_id.split(":")[-1]
    return PROMOTER_LABELS.get(part, part)


def _lanes(placements: list[dict]) -> list[tuple[dict, int]]:
    """Each placement with its lane: overlapping sites on one strand go on separate lanes."""
    ends: dict[str, list[int]] = {"+": [], "-": []}
    out = []
    for p in sorted(placements, key=lambda p: (p["offset"], p["end"])):
        lane_ends = ends["-" if p["strand"] == "-" else "+"]
        lane = next((i for i, e in enumerate(lane_ends) if e <= p["offset"]), len(lane_ends))
        if lane == len(lane_ends):
            lane_ends.append(0)
        lane_ends[lane] = p["end"]
        out.append((p, lane))
    return out


MONO_ADVANCE_EM = 1233 / 2048  # advance width of a DejaVu Sans Mono glyph, in em
PX_PER_BP = 13  # horizontal scale at the save resolution: a 100-bp sequence is ~8.7 inches wide
MIN_PX_PER_BP = 8  # below this the bases (6.4 pt) are not drawn
MAX_WIDTH_IN = 24.0
ROW_IN, TOP_IN, BOTTOM_IN, LEFT_IN, RIGHT_IN = 1.35, 0.45, 0.55, 0.3, 0.3


def _layout(L: int, rows: int) -> tuple[float, float, int]:
    """(figure width, figure height, pixels per bp at DPI) of the gallery; the layout is fixed (no tight_layout).

    A whole number of pixels per bp makes the monospace glyph advance land exactly on the bp grid
    in the PNG (Agg rounds glyph advances to whole pixels) and in vector output alike.
    """
    px = max(1, min(PX_PER_BP, int((MAX_WIDTH_IN - LEFT_IN - RIGHT_IN) * DPI / max(L, 1))))
    return LEFT_IN + RIGHT_IN + px * L / DPI, TOP_IN + BOTTOM_IN + ROW_IN * rows, px


def sequence_gallery(data: PlotData, n: int = 6):
    """Up to `n` designed sequences (the densest of each plan's seeded sample) with bases, bp ticks and their sites.

    The bases of a row are one monospace text whose glyph advance equals one bp on the axis, so
    they line up with the sites and ticks at any length (and draw fast).
    """
    ex = data.examples
    if ex is None or ex.height == 0:
        return None
    ex = ex.head(n)
    L = int(ex["length"].max())  # type: ignore[arg-type]
    colors = regulator_colors(data)
    by_id: dict[str, list[dict]] = {}
    placements = data.example_placements if data.example_placements is not None else pl.DataFrame()
    for p in placements.iter_rows(named=True):
        by_id.setdefault(p["id"], []).append(p)  # binding sites, promoter elements and filler, each with its role
    width, height, px_per_bp = _layout(L, ex.height)
    in_per_bp = px_per_bp / DPI
    base_pt = px_per_bp * 72.0 / (DPI * MONO_ADVANCE_EM)
    show_bases = px_per_bp >= MIN_PX_PER_BP  # up to ~440 bp; longer ones are drawn as a line
    tick_step = next(step for step in (10, 20, 50, 100, 200, 500, 1000, 10**9) if L / step <= 25)
    fig = plt.figure(figsize=(width, height), dpi=DPI)
    used: dict[str, Patch] = {}
    axes = []
    for k, row in enumerate(ex.iter_rows(named=True)):
        bottom = BOTTOM_IN + ROW_IN * (ex.height - 1 - k)
        ax = fig.add_axes((LEFT_IN / width, (bottom + 0.28) / height, in_per_bp * L / width, (ROW_IN - 0.55) / height))
        axes.append(ax)
        seq = row["sequence"]
        ax.set_xlim(-0.5, L - 0.5)
        ax.set_ylim(-2.0, 2.0)
        ax.spines[["top", "right", "left"]].set_visible(False)
        ax.set_yticks([])
        ax.set_xticks(range(0, L, tick_step))
        ax.tick_params(axis="x", labelsize=7, length=3, pad=1)
        if show_bases:
            ax.text(-0.5, 0, seq, ha="left", va="center", fontsize=base_pt,
                    family="DejaVu Sans Mono", color="#222222")
        else:
            ax.plot([0, len(seq) - 1], [0, 0], color="#888888", lw=1.0)
        placed = by_id.get(row["id"], [])
        for p, lane in _lanes([p for p in placed if p["role"] != ROLE_FILLER]) + [(p, 0) for p in placed
                                                                                 if p["role"] == ROLE_FILLER]:
            role = p["role"]
            w = p["end"] - p["offset"]
            x0 = p["offset"] - 0.5
            if role == ROLE_FILLER:
                ax.add_patch(Rectangle((x0, -0.42), w, 0.84, facecolor="none", edgecolor=FILLER_COLOR, lw=1.0, ls="--"))
                used.setdefault("background filler (not a site)", Patch(facecolor="none", edgecolor=FILLER_COLOR, ls="--"))
                continue
            sign = -1 if p["strand"] == "-" else 1
            y = sign * (0.78 + 0.55 * min(lane, 2))
            if role == ROLE_PROMOTER:
                label, color = element_label(p["site_id"]), PROMOTER_COLOR
                used.setdefault("promoter element", Patch(facecolor=PROMOTER_COLOR))
            else:
                label, color = p["regulator"], colors.get(p["regulator"], "#999999")
                used.setdefault(p["regulator"], Patch(facecolor=color))
            ax.add_patch(Rectangle((x0, y - 0.25), w, 0.5, facecolor=color, edgecolor="white", lw=0.6, alpha=0.9))
            arrow = f"{label} \u2192" if sign > 0 else f"\u2190 {label}"
            ax.text(x0 + w / 2, y, arrow if w >= 6 else label, ha="center", va="center", fontsize=6.5, color="white",
                    fontweight="bold", clip_on=True)
        n_sites = sum(1 for p in placed if p["role"] == ROLE_SITE)
        ax.set_title(f"{row['densegen__plan']}  |  {n_sites} binding sites  |  GC {row['densegen__gc']:.2f}  |  "
                     f"{L} bp  |  id {row['id'][:10]}", fontsize=8, loc="left", color="#333333", pad=2)
    axes[-1].set_xlabel("position (bp)", fontsize=8, labelpad=1)
    fig.text(LEFT_IN / width, 1 - 0.12 / height, "Designed sequences: sites above the sequence read on the + strand "
             "(\u2192), below on the - strand (\u2190)", fontsize=9, ha="left", va="top")
    if used:
        fig.legend(list(used.values()), list(used), loc="lower left", ncol=min(8, len(used)), frameon=False, fontsize=8,
                   bbox_to_anchor=(LEFT_IN / width, 0.0))
    return fig
