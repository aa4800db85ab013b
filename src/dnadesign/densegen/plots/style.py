"""Shared look of the plots: palettes, axis styling, legends kept off the data, integer count axes."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg", force=True)

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from .data import PlotData


def _palette(name: str) -> list:
    """The colours of a qualitative (listed) colormap."""
    return list(getattr(plt.get_cmap(name), "colors", []))


DPI = 150  # resolution of the PNG files (and the figures drawn for the report)
PLAN_COLORS = _palette("tab10")
REG_COLORS = _palette("tab10") + _palette("Dark2") + _palette("Set1")
PROMOTER_COLOR = "#555555"
FILLER_COLOR = "#b8b8b8"
STRAND_COLORS = {"+": "#1f77b4", "-": "#d62728"}


def style_axes(ax, title: str, xlabel: str, ylabel: str) -> None:
    """Title at the left, labels, no top/right spines, a light horizontal grid."""
    ax.set_title(title, fontsize=11, loc="left")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", alpha=0.25)


def integer_axis(axis) -> None:
    """Ticks at whole numbers only (counts are never fractional)."""
    axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def legend_outside(ax, **kw):
    """A legend to the right of the axes, never over the data."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    return ax.legend(handles, labels, frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                     borderaxespad=0.0, **kw)


def plan_color(data: PlotData, plan: str):
    """The colour of a plan (stable across the plots of a run)."""
    return PLAN_COLORS[data.plan_order.index(plan) % len(PLAN_COLORS)] if plan in data.plan_order else "#999999"


def regulator_colors(data: PlotData) -> dict[str, Any]:
    """One colour per regulator of the run, in the order of `data.regulators` (stable across plots)."""
    return {r: REG_COLORS[i % len(REG_COLORS)] for i, r in enumerate(data.regulators)}


def caption(fig, data: PlotData) -> None:
    """The run id and row count in the bottom-right corner."""
    fig.text(0.99, 0.005, f"run {data.run_id} - {data.rows:,} sequences", ha="right", va="bottom", fontsize=7,
             color="#777777")
