"""What the plots read: the run's committed rows, its diagnostics timeline (every array task's too)
and what its inputs offer (regulators, background filler, PWM motifs).

Every placement gets a `role`: `site` (a regulator's binding site), `filler` (a site of a
`background_pool` input: random spacer sequence, never a binding site) or `promoter` (a fixed
promoter element). Plots count and colour only `site` placements as binding sites.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from ...core.errors import DnadesignError
from ...core.motifs import Motif
from ..config import LoadedConfig
from ..state import MetaDir
from ..telemetry import read_diagnostics

if TYPE_CHECKING:
    from .aggregate import Aggregate

ROLE_SITE, ROLE_FILLER, ROLE_PROMOTER = "site", "filler", "promoter"


@dataclass
class InputsView:
    """What the run's inputs offer: regulators (filler excluded), filler labels, PWM motifs."""

    regulators: list[str] = field(default_factory=list)
    filler_regulators: set[str] = field(default_factory=set)
    filler_inputs: set[str] = field(default_factory=set)
    motifs: list[Motif] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class PlotData:
    """What the figures draw: the streaming aggregate of the run's rows, its diagnostics and inputs."""

    run_id: str
    agg: Aggregate
    events: list[dict] = field(default_factory=list)
    inputs: InputsView = field(default_factory=InputsView)
    examples: pl.DataFrame | None = None  # gallery rows (from the sample), with their sequences
    example_placements: pl.DataFrame | None = None

    @property
    def rows(self) -> int:
        """Committed rows of the run (all of them, not a sample)."""
        return self.agg.rows

    @property
    def plan_order(self) -> list[str]:
        return self.agg.plan_order

    @property
    def regulators(self) -> list[str]:
        """Every regulator of the inputs, then any placed one the inputs no longer list."""
        placed = sorted({reg for reg, _plan in self.agg.site_counts})
        return list(dict.fromkeys([*self.inputs.regulators, *placed]))


def run_diagnostics(cfg: LoadedConfig) -> list[dict]:
    """The run's diagnostics lines: the workspace's and every array task's, in time order."""
    meta = MetaDir(Path(cfg.outputs_dir) / "meta")
    events = read_diagnostics(meta.events_path)
    tasks = meta.task_dirs()
    for task in tasks:
        for e in read_diagnostics(task.events_path):
            e.setdefault("_task", task.path.name)
            events.append(e)
    if tasks:
        events.sort(key=lambda e: str(e.get("ts", "")))
    return events


def inputs_view(cfg: LoadedConfig) -> InputsView:
    """Regulators, filler and motifs of the config's inputs; an input that cannot be read becomes a note.

    Cheap: PWM inputs contribute their motif names and matrices (no sampling), site tables their
    regulator column, single-label sequence inputs and background pools only their label.
    """
    from ..inputs import load_input, load_motifs

    view = InputsView()
    regs: list[str] = []
    for inp in cfg.model.inputs:
        try:
            if inp.type == "background_pool":
                view.filler_regulators.add(inp.regulator)
                view.filler_inputs.add(inp.name)
            elif inp.type == "pwm":
                motifs = load_motifs(cfg, inp)
                view.motifs.extend(motifs)
                regs.extend(m.name for m in motifs)
            elif inp.type == "usr_sequences" or (inp.type == "sequence_library" and not inp.regulator_column):
                regs.append(inp.regulator or inp.name)  # one label for the whole input: no need to read it
            else:
                records, _notes = load_input(cfg, inp, seed=cfg.model.runtime.seed)
                regs.extend(r.regulator for r in records)
        except (DnadesignError, OSError) as exc:
            view.notes.append(f"input {inp.name!r} could not be read for the plots: {exc}")
    view.regulators = [r for r in dict.fromkeys(regs) if r not in view.filler_regulators]
    return view


GALLERY_ROWS = 6


def pick_examples(agg: Aggregate, n: int = GALLERY_ROWS) -> pl.DataFrame:
    """The sampled sequences with the most binding sites, spread over the plans (ties: sample order)."""
    sample = agg.sample
    if sample is None or sample.height == 0:
        return pl.DataFrame()
    plans = agg.plan_order
    per_plan = max(1, n // max(1, len(plans)))
    picks = [sample.filter(pl.col("densegen__plan") == plan).sort(["_sites", "_key"], descending=[True, False])
             .head(per_plan) for plan in plans]
    return (pl.concat(picks) if picks else sample.head(0)).head(n)


def load_plot_data(cfg: LoadedConfig, batch_rows: int | None = None, agg: Aggregate | None = None) -> PlotData:
    """The run's rows aggregated in one streaming pass, the gallery rows, the diagnostics and the inputs view.

    `agg`: the run's aggregate when the caller has already folded the rows (`dense report`).
    """
    from ..run_scan import BATCH_ROWS, fetch_rows, iter_run_batches
    from .aggregate import STREAM_COLUMNS, aggregate

    view = inputs_view(cfg)
    if agg is None:
        agg = aggregate(iter_run_batches(cfg, STREAM_COLUMNS, batch_rows or BATCH_ROWS), view, cfg.model.runtime.seed)
    data = PlotData(cfg.run_id, agg, run_diagnostics(cfg), view)
    examples = pick_examples(agg)
    if examples.height:  # the few rows drawn whole: read again by id
        rows = fetch_rows(cfg, examples["id"].to_list(), ["id", "sequence", "densegen__placements", "densegen__filler"])
        if rows.height:
            data.examples = examples.join(rows, on="id", how="inner", maintain_order="left")
            data.example_placements = explode_placements(data.examples, view)
    return data


PLACEMENT_SCHEMA = {"id": pl.String, "plan": pl.String, "length": pl.Int32, "site_id": pl.String,
                    "regulator": pl.String, "offset": pl.Int32, "end": pl.Int32, "strand": pl.String,
                    "sequence": pl.String, "fixed": pl.Boolean, "role": pl.String}


def explode_placements(frame: pl.DataFrame, view: InputsView | None = None) -> pl.DataFrame:
    """One row per placement with its record's plan and length, and its role (site, filler, promoter).

    Filler comes from `densegen__filler` when the rows store it apart, and from placements of a
    background input's sites (rows written before filler was kept apart) otherwise. A `_row`
    column of `frame` (its row number) is carried along.
    """
    extra = {"_row": pl.Int64} if "_row" in frame.columns else {}
    schema = {**PLACEMENT_SCHEMA, **extra}
    if frame.height == 0:
        return pl.DataFrame(schema=schema)
    keys: list[str | pl.Expr] = ["id", pl.col("densegen__plan").alias("plan"), "length", *extra]
    out = (frame.select(*keys, "densegen__placements")
           .explode("densegen__placements").drop_nulls("densegen__placements").unnest("densegen__placements"))
    view = view or InputsView()
    filler = pl.col("regulator").is_in(sorted(view.filler_regulators))
    for name in view.filler_inputs:
        filler = filler | pl.col("site_id").str.starts_with(f"{name}:")
    role = (pl.when(pl.col("fixed")).then(pl.lit(ROLE_PROMOTER))
            .when(filler).then(pl.lit(ROLE_FILLER)).otherwise(pl.lit(ROLE_SITE)))
    out = out.with_columns(role.alias("role"))
    parts = [out.select(list(schema)).cast(schema)]  # type: ignore[arg-type]
    if "densegen__filler" in frame.columns:
        kept_apart = (frame.select(*keys, "densegen__filler").explode("densegen__filler")
                      .drop_nulls("densegen__filler").unnest("densegen__filler")
                      .with_columns(pl.lit(ROLE_FILLER).alias("role")))
        if kept_apart.height:
            parts.append(kept_apart.select(list(schema)).cast(schema))  # type: ignore[arg-type]
    return pl.concat(parts) if len(parts) > 1 else parts[0]
