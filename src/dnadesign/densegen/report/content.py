"""What the run report shows, gathered from the run's outputs (read-only, safe while a run writes).

Summary and per-plan figures come from `inspect_run` (the same numbers as `dense inspect run`),
solver bound gaps from the committed records' `solver_bound` / `solver_objective` /
`solver_status`, the analysis tables from `densegen.tables.read_tables` (when the run wrote them),
and the plots are drawn in memory as PNG. The rows are read once: the statistics, the bound gaps
and the plots' aggregate are folds of one `run_scan.scan_run` pass (only their columns, a batch
at a time).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ...core.errors import DnadesignError
from ...core.timeutil import utc_now_iso
from ..config import LoadedConfig
from ..inspect_run import PlanTotals, inspect_run
from ..run_scan import scan_run
from ..sinks.records import PLAN_COL

TABLE_NAMES = ("libraries", "attempts")
TOP_REASONS = 8


@dataclass
class Figure:
    name: str
    description: str
    png: bytes


@dataclass
class TableFiles:
    """One analysis table: its files (relative to the outputs directory), rows and a small summary."""

    name: str
    files: list[str] = field(default_factory=list)
    rows: int = 0
    summary: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class ReportContent:
    run_id: str
    created_at: str
    info: dict[str, Any]  # inspect_run()
    bound_gaps: list[dict[str, Any]]
    tables: list[TableFiles]
    tables_note: str | None
    figures: list[Figure]
    plot_notes: list[str]

    def as_json(self) -> dict[str, Any]:
        """Everything but the images (for `dense report --json`)."""
        return {"run_id": self.run_id, "created_at": self.created_at, "status": self.info["status"],
                "generated": self.info["generated"], "quota": self.info["quota"], "plans": self.info["plans"],
                "unplaced_regulators": self.info["unplaced_regulators"], "bound_gaps": self.bound_gaps,
                "tasks": self.info.get("tasks") or [],
                "tables": [{"name": t.name, "files": t.files, "rows": t.rows} for t in self.tables],
                "tables_note": self.tables_note, "plots": [f.name for f in self.figures], "plot_notes": self.plot_notes}


GAP_COLUMNS = [PLAN_COL, "densegen__solver_bound", "densegen__solver_objective", "densegen__solver_status"]


class BoundGaps:
    """Per plan: rows, rows proven optimal, and the gap between the solver's bound and its objective.

    A `run_scan.Fold` over GAP_COLUMNS; `result()` lists plans in the order they first appear.
    """

    columns = GAP_COLUMNS

    def __init__(self) -> None:
        self._acc: dict[str, dict[str, Any]] = {}

    def add(self, frame: pl.DataFrame) -> None:
        if frame.height == 0 or not set(GAP_COLUMNS) <= set(frame.columns):
            return
        gap = (pl.col("densegen__solver_bound") - pl.col("densegen__solver_objective")).clip(lower_bound=0.0)
        agg = (frame.with_columns(gap.alias("gap"))
               .group_by(PLAN_COL, maintain_order=True)
               .agg(pl.len().alias("rows"),
                    (pl.col("densegen__solver_status") == "optimal").sum().alias("optimal"),
                    pl.col("densegen__solver_bound").is_not_null().sum().alias("with_bound"),
                    (pl.col("gap") > 1e-9).sum().alias("with_gap"),
                    pl.col("gap").sum().alias("gap_sum"), pl.col("gap").count().alias("gap_n"),
                    pl.col("gap").max().alias("max_gap")))
        for r in agg.iter_rows(named=True):
            a = self._acc.setdefault(r[PLAN_COL], {"rows": 0, "optimal": 0, "with_bound": 0, "with_gap": 0,
                                                   "gap_sum": 0.0, "gap_n": 0, "max_gap": None})
            for k in ("rows", "optimal", "with_bound", "with_gap", "gap_n"):
                a[k] += int(r[k] or 0)
            a["gap_sum"] += float(r["gap_sum"] or 0.0)
            if r["max_gap"] is not None:
                a["max_gap"] = r["max_gap"] if a["max_gap"] is None else max(a["max_gap"], r["max_gap"])

    def result(self) -> list[dict[str, Any]]:
        return [{"plan": plan, "rows": a["rows"], "optimal": a["optimal"], "with_bound": a["with_bound"],
                 "with_gap": a["with_gap"], "mean_gap": a["gap_sum"] / a["gap_n"] if a["gap_n"] else None,
                 "max_gap": a["max_gap"]} for plan, a in self._acc.items()]


def _read_tables(cfg: LoadedConfig):
    """`densegen.tables.read_tables(cfg)`, or None when this version of DenseGen writes no tables."""
    try:
        module = importlib.import_module(f"{__package__.rsplit('.', 1)[0]}.tables")
    except ImportError:
        return None
    reader = getattr(module, "read_tables", None)
    return reader(cfg) if reader is not None else None


def _counts(frame: pl.DataFrame, *cols: str) -> list[tuple[str, str]]:
    present = [c for c in cols if c in frame.columns]
    if not present or frame.height == 0:
        return []
    grouped = frame.group_by(present).len().sort("len", descending=True).head(TOP_REASONS)
    return [(" / ".join(str(v) if v not in (None, "") else "-" for v in row[:-1]), str(row[-1]))
            for row in grouped.iter_rows()]


def table_files(cfg: LoadedConfig) -> tuple[list[TableFiles], str | None]:
    """The libraries and attempts tables of the run (files, rows, summary), or a note saying why there are none."""
    outputs = Path(cfg.outputs_dir)
    found = []
    for name in TABLE_NAMES:
        d = outputs / "tables" / name
        files = sorted(str(f.relative_to(outputs)) for f in d.glob("*.parquet")) if d.is_dir() else []
        found.append(TableFiles(name, files))
    if not any(t.files for t in found):
        return found, ("This run has no analysis tables (outputs/tables/libraries, outputs/tables/attempts): "
                       "they are written by `dense run` from the version that introduced them; run a new session to get them.")
    try:
        tables = _read_tables(cfg)
    except (DnadesignError, OSError, ValueError) as exc:
        return found, f"The analysis tables could not be read ({exc}); their files are linked below."
    if tables is None:
        return found, "This version of DenseGen cannot read the analysis tables; their files are linked below."
    libs, attempts = tables.libraries, tables.attempts
    found[0].rows, found[1].rows = libs.height, attempts.height
    summary = [("libraries by status / ended by", ""), *_counts(libs, "status", "ended_by")]
    if "time_to_first_s" in libs.columns and libs.height:
        ttf = libs["time_to_first_s"].drop_nulls()
        if ttf.len():
            summary.append(("median time to first solution (s)", f"{float(ttf.median()):.2f}"))
    found[0].summary = summary
    found[1].summary = [("attempts by outcome / reason", ""), *_counts(attempts, "outcome", "reason")]
    return found, None


def gather(cfg: LoadedConfig, plot_names: list[str] | None = None) -> ReportContent:
    """Everything the report shows, for the run of `cfg` (plots drawn in memory)."""
    from ..plots import PLOTS, resolve_plot_names
    from ..plots.aggregate import AggregateFold
    from ..plots.data import inputs_view, load_plot_data
    from ..plots.render import chosen_plots, iter_figures, png_bytes

    # one pass over the run's rows feeds the statistics, the bound gaps and the plots' aggregate
    totals, gaps, plotted = PlanTotals(), BoundGaps(), AggregateFold(inputs_view(cfg), cfg.model.runtime.seed)
    scan_run(cfg, [totals, gaps, plotted])
    info = inspect_run(cfg, totals)
    tables, tables_note = table_files(cfg)
    figures: list[Figure] = []
    notes: list[str] = []
    if info["generated"]:
        data = load_plot_data(cfg, agg=plotted.agg)
        notes.extend(data.inputs.notes)
        names = chosen_plots(cfg, plot_names)
        if plot_names is None:
            notes.extend(resolve_plot_names(list(cfg.model.plots.default))[1])
        for name, fig in iter_figures(names, data):
            figures.append(Figure(name, PLOTS[name].description, png_bytes(fig)))
        skipped = [n for n in names if n not in {f.name for f in figures}]
        if skipped:
            notes.append(f"not drawn for this run (nothing to show): {', '.join(skipped)}")
    else:
        notes.append("no committed sequences yet: no plots")
    return ReportContent(cfg.run_id, utc_now_iso(), info, gaps.result(), tables, tables_note, figures, notes)
