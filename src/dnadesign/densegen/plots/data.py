"""What the plots read: the run's committed rows and its diagnostics timeline (every array task's too)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..config import LoadedConfig
from ..outputs import committed_frame
from ..state import MetaDir
from ..telemetry import read_diagnostics


@dataclass
class PlotData:
    run_id: str
    frame: pl.DataFrame  # flat rows: record fields + densegen__* columns
    placements: pl.DataFrame  # one row per placement: id, plan, regulator, offset, end, strand, fixed, length
    events: list[dict] = field(default_factory=list)
    plan_order: list[str] = field(default_factory=list)


def run_diagnostics(cfg: LoadedConfig) -> list[dict]:
    """The run's diagnostics lines: the workspace's and every array task's, in time order."""
    meta = MetaDir(Path(cfg.outputs_dir) / "meta")
    events = read_diagnostics(meta.events_path)
    tasks = meta.task_dirs()
    for task in tasks:
        events.extend(read_diagnostics(task.events_path))
    if tasks:
        events.sort(key=lambda e: str(e.get("ts", "")))
    return events


def load_plot_data(cfg: LoadedConfig) -> PlotData:
    """The committed rows, their placements and the diagnostics of a run."""
    frame, _ = committed_frame(cfg)
    frame = frame.sort("densegen__accepted_at") if frame.height else frame
    plans = list(dict.fromkeys(frame["densegen__plan"].to_list())) if frame.height else []
    placements = explode_placements(frame)
    return PlotData(cfg.run_id, frame, placements, run_diagnostics(cfg), plans)


def explode_placements(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per placement (library sites and fixed elements) with its record's plan and length."""
    if frame.height == 0:
        return pl.DataFrame(schema={"id": pl.String, "plan": pl.String, "length": pl.Int32, "site_id": pl.String,
                                    "regulator": pl.String, "offset": pl.Int32, "end": pl.Int32, "strand": pl.String,
                                    "sequence": pl.String, "fixed": pl.Boolean})
    return (frame.select("id", pl.col("densegen__plan").alias("plan"), "length", "densegen__placements")
            .explode("densegen__placements").drop_nulls("densegen__placements").unnest("densegen__placements"))
