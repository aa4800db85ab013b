"""Plots of a DenseGen run (matplotlib, Agg backend), rendered into `<workspace>/outputs/plots/`.

This package's top level is the registry only (no matplotlib import): what plots exist, the
incumbent DenseGen's plot ids each one stands for, and a check of `plots.default`. `plots.render.render_plots` draws them; each plot reads the run's
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

# The incumbent DenseGen's plot ids (users' configs list them in `plots.default`) -> the plot here
# that shows the same thing. Both names are accepted wherever a plot is named.
INCUMBENT_PLOTS: dict[str, str] = {
    "placement_occupancy_map": "occupancy",
    "tfbs_concentration_profile": "positions",
    "plan_regulator_deployment_heatmap": "site_usage",
    "source_plan_input_heatmap": "site_usage",
    "source_cohort_concentration": "site_usage",
    "retained_pool_coverage_by_regulator": "site_usage",
    "retained_vs_deployed_length_mix_by_regulator": "site_usage",
    "retained_vs_deployed_tier_mix_by_regulator": "site_usage",
    "solve_pressure_and_progress": "progress",
    "attempt_outcome_timeline": "progress",
    "compression_ratio_by_plan": "sites_per_sequence",
    "dense_array_showcase_video": "sequences",
    "background_sequence_logo": "logos",
    "upstream_motif_supply_and_pwm_strength": "logos",
}
# Incumbent plots of its Stage-A pool mining, which has no counterpart here: accepted, drawn as nothing.
INCUMBENT_WITHOUT_EQUIVALENT: dict[str, str] = {
    name: "a plot of the incumbent's Stage-A pool mining, which DenseGen here does not do"
    for name in ("stage_a_pool_diversity", "stage_a_pool_score_strata", "stage_a_sampling_yield",
                 "score_strata_and_deployed_length_bridge")
}


def incumbent_names(plot: str) -> list[str]:
    """The incumbent's plot ids drawn by `plot` here."""
    return [old for old, new in INCUMBENT_PLOTS.items() if new == plot]


def unknown_plot_message(name: str) -> tuple[str, str]:
    """(message, hint) of the one error line for a plot name that is neither ours nor the incumbent's."""
    return (f"unknown plot {name!r}",
            f"choose from {', '.join(PLOTS)}; the incumbent's plot ids are accepted too (`dense ls-plots` lists both)")


def resolve_plot_names(names: list[str]) -> tuple[list[str], list[str]]:
    """(our plot names, in order and without repeats; notes for incumbent plots that have no equivalent).

    Incumbent ids map to our plots; an unknown name raises InputError (one line with the valid names).
    """
    from ...core.errors import InputError

    out: list[str] = []
    notes: list[str] = []
    for name in names:
        if name in PLOTS or name in INCUMBENT_PLOTS:
            out.append(INCUMBENT_PLOTS.get(name, name))
        elif name in INCUMBENT_WITHOUT_EQUIVALENT:
            notes.append(f"plot {name!r} is skipped: {INCUMBENT_WITHOUT_EQUIVALENT[name]}")
        else:
            msg, hint = unknown_plot_message(name)
            raise InputError(msg, hint=hint)
    return list(dict.fromkeys(out)), notes


def check_plot_names(cfg: LoadedConfig) -> list[str]:
    """Warnings for `plots.default` (incumbent plots without an equivalent); an unknown name is an InputError."""
    from ...core.errors import InputError

    try:
        return resolve_plot_names(list(cfg.model.plots.default))[1]
    except InputError as exc:
        raise InputError(f"{cfg.path}: plots.default names {exc.message}", hint=exc.hint) from None


def parse_plot_names(only: str | None) -> list[str] | None:
    """`--only a,b` -> ["a", "b"] (None when not given); incumbent ids map to ours; an unknown name is a usage error."""
    from ...core.errors import InputError, UsageError

    if not only:
        return None
    names = [n.strip() for n in only.split(",") if n.strip()]
    try:
        return resolve_plot_names(names)[0]
    except InputError as exc:
        raise UsageError(exc.message, hint=exc.hint) from None


__all__ = ["INCUMBENT_PLOTS", "INCUMBENT_WITHOUT_EQUIVALENT", "PLOTS", "PlotSpec", "check_plot_names",
           "incumbent_names", "parse_plot_names", "resolve_plot_names"]
