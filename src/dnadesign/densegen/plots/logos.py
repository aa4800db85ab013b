"""Sequence logos (information content, logomaker) of the run's PWM inputs."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg", force=True)

import matplotlib.pyplot as plt
import numpy as np

from .data import PlotData
from .style import caption

MAX_LOGOS = 24  # more motifs than this: the first ones are drawn and the title says how many are left out
COLUMNS = 2
PSEUDOCOUNT = 0.01
MIN_BITS = 0.02
ROW_IN = 1.9


def information_matrix(matrix: np.ndarray) -> np.ndarray:
    """Rows of counts or probabilities (A, C, G, T) -> letter heights in bits (information content)."""
    m = np.asarray(matrix, dtype=float)
    p = (m + PSEUDOCOUNT * m.sum(axis=1, keepdims=True)) / (m.sum(axis=1, keepdims=True) * (1 + 4 * PSEUDOCOUNT))
    info = 2.0 + (p * np.log2(p)).sum(axis=1, keepdims=True)
    heights = p * np.clip(info, 0.0, 2.0)
    heights[heights < MIN_BITS] = 0.0  # invisible letters: not drawn (each glyph costs a path)
    return heights


def motif_logos(data: PlotData, limit: int = MAX_LOGOS):
    """One logo per PWM motif of the inputs (None when the run has no PWM input)."""
    motifs = data.inputs.motifs
    if not motifs:
        return None
    import logomaker
    import pandas as pd

    shown = motifs[:limit]
    rows = math.ceil(len(shown) / COLUMNS)
    cols = min(COLUMNS, len(shown))
    widest = max(m.width for m in shown)
    height = ROW_IN * rows + 0.6
    fig, axes = plt.subplots(rows, cols, figsize=(max(4.0, 0.28 * widest + 1.2) * cols, height), squeeze=False)
    # a fixed layout (tight_layout would measure every glyph path)
    fig.subplots_adjust(left=0.6 / (fig.get_figwidth()), right=0.98, top=1 - 0.75 / height, bottom=0.55 / height,
                        hspace=0.9 / ROW_IN, wspace=0.15)
    for ax in axes.ravel()[len(shown):]:
        ax.set_visible(False)
    for ax, motif in zip(axes.ravel(), shown, strict=False):
        heights = pd.DataFrame(information_matrix(motif.array()), columns=list("ACGT"))
        heights.index = np.arange(1, len(heights) + 1)
        logomaker.Logo(heights, ax=ax, color_scheme="classic", vpad=0.05, width=0.9)
        ax.set_ylim(0, 2)
        ax.set_yticks([0, 1, 2])
        ax.set_xticks(range(1, motif.width + 1, max(1, motif.width // 10)))
        ax.set_ylabel("bits", fontsize=8)
        ax.set_xlabel("position (bp)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_title(f"{motif.name} ({motif.width} bp)", fontsize=9, loc="left")
    more = len(motifs) - len(shown)
    fig.suptitle(f"Motif logos of the PWM inputs ({len(motifs)} motif(s)" + (f", {more} not shown)" if more else ")"),
                 fontsize=10, x=0.01, ha="left")
    caption(fig, data)
    return fig
