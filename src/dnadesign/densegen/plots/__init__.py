"""Plots of a DenseGen run (matplotlib, Agg backend), rendered into `<workspace>/outputs/plots/`.

Each plot reads the run's committed rows (USR or Parquet output, the same columns) and, for the
progress plot, `outputs/meta/events.jsonl`. `render_plots` writes one file per plot and format
and a `plots_manifest.json` listing them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...core.atomic import atomic_write_json
from ...core.errors import InputError
from ...core.timeutil import utc_now_iso


@dataclass(frozen=True)
class PlotSpec:
    name: str
    description: str
    func_name: str  # in figures.py: func(data: PlotData) -> matplotlib Figure | None

    @property
    def func(self) -> Callable:
        from . import figures  # matplotlib is imported only when a plot is drawn

        return getattr(figures, self.func_name)


def _registry() -> dict[str, PlotSpec]:
    specs = [
        PlotSpec("site_usage", "Placed sites per regulator (top regulators), stacked by plan.", "site_usage"),
        PlotSpec("occupancy", "Fraction of sequences covered by a site at each position, per plan.", "occupancy"),
        PlotSpec("sites_per_sequence", "Distribution of library sites per sequence, per plan.", "sites_per_sequence"),
        PlotSpec("gc", "Distribution of GC content of the designed sequences, per plan.", "gc_distribution"),
        PlotSpec("progress", "Accepted sequences over time, per plan (all sessions).", "progress_over_time"),
        PlotSpec("sequences", "A few designed sequences with their sites drawn along them (strand shown).", "sequence_gallery"),
    ]
    return {s.name: s for s in specs}


PLOTS: dict[str, PlotSpec] = _registry()


def render_plots(cfg, only: list[str] | None = None, formats: list[str] | None = None) -> list[Path]:
    """Render the chosen plots (default: `plots.default`, else all) in the chosen formats."""
    from .data import load_plot_data

    names = list(only or getattr(cfg.model.plots, "default", None) or PLOTS.keys())
    unknown = [n for n in names if n not in PLOTS]
    if unknown:
        raise InputError(f"unknown plot {unknown[0]!r}", hint=f"choose from {', '.join(PLOTS)} (see `dense ls-plots`)")
    fmts = list(formats or getattr(cfg.model.plots, "formats", None) or ["png", "pdf"])
    data = load_plot_data(cfg)
    if data.frame.height == 0:
        raise InputError(f"run {cfg.run_id} has no committed sequences to plot yet", hint="run `dense run` first")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    out_dir = Path(cfg.outputs_dir) / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    inventory = []
    for name in names:
        fig = PLOTS[name].func(data)
        if fig is None:
            continue
        for fmt in fmts:
            path = out_dir / f"{name}.{fmt}"
            tmp = path.with_name(f".{path.name}.tmp.{fmt}")
            fig.savefig(tmp, dpi=150, bbox_inches="tight", format=fmt)
            tmp.replace(path)
            written.append(path)
            inventory.append({"plot": name, "format": fmt, "path": str(path.relative_to(out_dir))})
        plt.close(fig)
    atomic_write_json(out_dir / "plots_manifest.json", {"run_id": cfg.run_id, "created_at": utc_now_iso(),
                                                       "rows": data.frame.height, "files": inventory})
    return written


__all__ = ["PLOTS", "PlotSpec", "render_plots"]
