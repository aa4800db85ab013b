"""Plots of a DenseGen run (matplotlib, Agg backend), rendered into `<workspace>/outputs/plots/`.

This package's top level is the registry only (no matplotlib import): what plots exist and a
check of `plots.default`. `plots.render.render_plots` draws them; each plot reads the run's
committed rows (USR or Parquet output, the same columns) and, for the progress plot, the run's
diagnostics (`outputs/meta/events.jsonl`, and each array task's).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import LoadedConfig


@dataclass(frozen=True)
class PlotSpec:
    name: str
    description: str
    func_name: str  # "module:function" in this package: function(data: PlotData) -> matplotlib Figure | None


def _registry() -> dict[str, PlotSpec]:
    specs = [
        PlotSpec("site_usage", "Binding sites per regulator, stacked by plan; regulators never placed listed with 0.",
                 "figures:site_usage"),
        PlotSpec("occupancy", "Fraction of sequences covered by a binding site at each position, per plan.", "figures:occupancy"),
        PlotSpec("positions", "Per regulator: site start positions along the sequence, + strand up, - strand down.",
                 "figures:regulator_positions"),
        PlotSpec("sites_per_sequence", "Distribution of binding sites per sequence, per plan.", "figures:sites_per_sequence"),
        PlotSpec("gc", "Distribution of GC content of the designed sequences, per plan.", "figures:gc_distribution"),
        PlotSpec("progress", "Accepted sequences over run time per plan, time to the first sequence marked.",
                 "figures:progress_over_time"),
        PlotSpec("sequences", "A few designed sequences on a bp axis: bases, sites by strand, -35/-10, filler apart.",
                 "sequences:sequence_gallery"),
        PlotSpec("logos", "Sequence logos (information content) of the PWM inputs' motifs.", "logos:motif_logos"),
    ]
    return {s.name: s for s in specs}


PLOTS: dict[str, PlotSpec] = _registry()


def check_plot_names(cfg: LoadedConfig) -> list[str]:
    """Warnings for `plots.default` names that are not known plots."""
    unknown = [n for n in cfg.model.plots.default if n not in PLOTS]
    if unknown:
        return [f"plots.default names unknown plot(s) {', '.join(unknown)}; known: {', '.join(sorted(PLOTS))}"]
    return []


def parse_plot_names(only: str | None) -> list[str] | None:
    """`--only a,b` -> ["a", "b"] (None when not given); an unknown name is a usage error."""
    from ...core.errors import UsageError

    if not only:
        return None
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in PLOTS]
    if unknown:
        raise UsageError(f"unknown plot {unknown[0]!r}", hint=f"choose from {', '.join(PLOTS)}")
    return names


__all__ = ["PLOTS", "PlotSpec", "check_plot_names", "parse_plot_names"]
