"""The run's outputs as one unit: open the sinks, look at them, align them, commit within quota.

A run writes to USR and/or Parquet. The first configured of (USR, Parquet) is the *primary*: what
it holds is the truth for resume and for quotas. `commit` enforces the quota at commit time, under
the primary's writers' lock: it counts what every writer (other array tasks, other workspaces
sharing the dataset) has committed for this run, drops rows already stored and rows beyond a
plan's remaining quota, and commits the rest. Concurrent writers therefore never overshoot. The
secondary sink then receives exactly the rows the primary added; a crash between the two is
repaired by `align` when the next session opens the outputs.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import polars as pl
import pyarrow as pa

from ..core.errors import ConflictError, DnadesignError
from ..core.events import Actor
from .config import LoadedConfig
from .sinks import ParquetSink, Sink, UsrSink
from .sinks.records import PLAN_COL, RUN_COL, empty_table


@dataclass
class CommitResult:
    """What one commit did, per plan."""

    added: dict[str, int] = field(default_factory=dict)  # rows committed now
    over_quota: dict[str, int] = field(default_factory=dict)  # dropped: the plan's quota was met at commit time
    duplicates_by_plan: dict[str, int] = field(default_factory=dict)  # dropped: the id was already stored
    committed: dict[str, int] = field(default_factory=dict)  # rows per plan committed by all writers, after this commit

    @property
    def rows(self) -> int:
        return sum(self.added.values())

    @property
    def duplicates(self) -> int:
        return sum(self.duplicates_by_plan.values())


class SinkWriteError(DnadesignError):
    """A sink failed to commit a batch (`sink` names it; `cause` is the original error)."""

    def __init__(self, sink: str, cause: BaseException):
        super().__init__(f"the {sink} output failed: {cause}")
        self.sink = sink
        self.cause = cause


SINK_ERRORS = (OSError, DnadesignError, pa.ArrowException)


def trim_to_quota(table: pa.Table, quotas: Mapping[str, int], committed: Mapping[str, int]) -> tuple[pa.Table, dict[str, int]]:
    """Keep, in order, at most `quota - committed` rows of each plan; returns (kept rows, dropped per plan).

    Rows of a plan without a quota (no longer in the config) are dropped.
    """
    left = {p: max(0, int(q) - int(committed.get(p, 0))) for p, q in quotas.items()}
    keep: list[bool] = []
    dropped: Counter = Counter()
    for plan in table.column(PLAN_COL).to_pylist():
        if left.get(plan, 0) > 0:
            left[plan] -= 1
            keep.append(True)
        else:
            keep.append(False)
            dropped[plan] += 1
    if all(keep):
        return table, {}
    return table.filter(pa.array(keep)), dict(dropped)


class RunOutputs:
    """The USR and/or Parquet sinks of one run."""

    def __init__(self, cfg: LoadedConfig, actor: Actor | None, *, create: bool = True):
        self.cfg = cfg
        self.run_id = cfg.run_id
        self.usr: UsrSink | None = None
        self.parquet: ParquetSink | None = None
        target = cfg.usr_target()
        if target is not None:
            root, dataset_id = target
            self.usr = UsrSink(root, dataset_id, actor or Actor.current("densegen", run_id=cfg.run_id), create=create)
        pq_path = cfg.parquet_target()
        if pq_path is not None:
            self.parquet = ParquetSink(pq_path, deduplicate=cfg.model.output.parquet.deduplicate)

    @property
    def sinks(self) -> list[Sink]:
        return [s for s in (self.usr, self.parquet) if s is not None]

    @property
    def primary(self) -> Sink:
        """The sink whose rows are the truth (USR when configured)."""
        return self.sinks[0]

    def locations(self) -> list[str]:
        return [s.location() for s in self.sinks]

    # -- looking ------------------------------------------------------------------------------
    def run_frame(self, columns: list[str] | None = None, sink: Sink | None = None) -> pl.DataFrame:
        """This run's committed rows in `sink` (default: the primary)."""
        sink = sink or self.primary
        if isinstance(sink, UsrSink) and not sink.exists():
            return cast(pl.DataFrame, pl.from_arrow(empty_table())).select(columns or pl.all())
        cols = list(dict.fromkeys([*(columns or []), RUN_COL])) if columns else None
        frame = sink.frame(cols)
        if frame.height == 0 or RUN_COL not in frame.columns:
            return frame.head(0).select(columns) if columns else frame.head(0)
        frame = frame.filter(pl.col(RUN_COL) == self.run_id)
        return frame.select(columns) if columns else frame

    def has_rows(self) -> bool:
        """Whether any sink holds rows of this run."""
        if self.parquet is not None and self.parquet.exists():
            return True
        return self.usr is not None and self.usr.exists() and bool(self.usr.plan_counts(self.run_id))

    def create(self) -> None:
        """Create the USR dataset when it does not exist yet (after validation, before the first commit)."""
        if self.usr is not None:
            self.usr.ensure()

    def plan_counts(self) -> dict[str, int]:
        """Rows per plan committed for this run by every writer (exact under `lock()`)."""
        return self.primary.plan_counts(self.run_id)

    def lock(self):
        """The primary sink's writers' lock."""
        return self.primary.lock()

    def known_ids(self, ids: list[str]) -> set[str]:
        """The subset of `ids` already committed in the primary sink."""
        return self.primary.has_ids(ids)

    # -- writing ------------------------------------------------------------------------------
    def commit(self, table: pa.Table, quotas: Mapping[str, int], *, event_args: dict | None = None) -> CommitResult:
        """Commit `table` within `quotas` (see the module docstring); the secondary gets the same rows."""
        res = CommitResult()
        primary = self.primary
        with primary.lock():
            committed = primary.plan_counts(self.run_id)
            ids = table.column("id").to_pylist()
            stored = self.known_ids(ids)
            dups: Counter = Counter()
            if stored:
                dups.update(p for i, p in zip(ids, table.column(PLAN_COL).to_pylist(), strict=True) if i in stored)
                table = table.filter(pa.array([i not in stored for i in ids]))
            table, res.over_quota = trim_to_quota(table, quotas, committed)
            try:
                added = primary.commit(table, event_args=event_args) if table.num_rows else table
            except SINK_ERRORS as exc:
                raise SinkWriteError(primary.name, exc) from exc
            if added.num_rows < table.num_rows:  # stored between the check and the commit (cannot happen under the lock)
                kept = set(added.column("id").to_pylist())
                dups.update(p for i, p in zip(table.column("id").to_pylist(), table.column(PLAN_COL).to_pylist(), strict=True)
                            if i not in kept)
            res.duplicates_by_plan = dict(dups)
            res.added = dict(Counter(added.column(PLAN_COL).to_pylist())) if added.num_rows else {}
            res.committed = primary.plan_counts(self.run_id)
        for sink in self.sinks[1:]:
            if added.num_rows:
                try:
                    sink.commit(added, event_args=event_args)
                except SINK_ERRORS as exc:
                    raise SinkWriteError(sink.name, exc) from exc
        return res

    def align(self) -> dict[str, int]:
        """Copy rows of this run that one sink committed and the other did not (a crash between the two).

        Only ids are read from both sides; full rows are read for the (few) missing ids only.
        """
        if self.usr is None or self.parquet is None:
            return {}
        usr, parquet = self.usr, self.parquet
        moved = {"to_parquet": 0, "to_usr": 0}
        with usr.lock(), parquet.lock():
            if usr.plan_counts(self.run_id) == parquet.plan_counts(self.run_id):
                return moved  # the usual case: equal counts per plan, no id-level comparison needed
            u_ids = set(self.run_frame(["id"], usr)["id"].to_list())
            p_ids = set(self.run_frame(["id"], parquet)["id"].to_list())
            if u_ids - p_ids:
                rows = usr.frame(ids=sorted(u_ids - p_ids)).filter(pl.col(RUN_COL) == self.run_id)
                moved["to_parquet"] = parquet.commit(rows.to_arrow()).num_rows
            if p_ids - u_ids:
                rows = parquet.frame(ids=sorted(p_ids - u_ids)).filter(pl.col(RUN_COL) == self.run_id)
                moved["to_usr"] = usr.commit(rows.to_arrow(), event_args={"reason": "align with parquet sink"}).num_rows
        return moved

    def clean(self) -> None:
        """Remove leftovers of killed writes (Parquet parts no manifest names)."""
        if self.parquet is not None:
            self.parquet.clean_orphans()

    def finalize(self) -> list[tuple[str, Exception]]:
        """Finish every sink (the Parquet export); returns the problems instead of raising."""
        problems: list[tuple[str, Exception]] = []
        for s in self.sinks:
            try:
                s.finalize()
            except (OSError, pa.ArrowException, ValueError) as exc:
                problems.append((s.name, exc))
        return problems

    def wipe(self, outputs_dir: Path) -> None:
        """Remove this run's outputs for `dense run --fresh`.

        A USR dataset inside the workspace is removed; one outside it (shared) is refused when it
        already holds rows of this run.
        """
        outputs = Path(outputs_dir).resolve()
        if self.usr is not None and self.usr.exists():
            ds_dir = Path(self.usr.location()).resolve()
            if outputs in ds_dir.parents:
                shutil.rmtree(ds_dir, ignore_errors=True)
            elif self.run_frame(["id"], self.usr).height:
                raise ConflictError(
                    f"--fresh cannot clear USR dataset {self.usr.dataset_id} at {self.usr.location()}: it lies outside "
                    f"the workspace and already holds rows of run {self.run_id}",
                    hint="change run.id in the config to start a new run in that dataset, or resume without --fresh",
                )
            self.usr = UsrSink(self.usr.root, self.usr.dataset_id, self.usr.actor, create=False)  # forget what it counted
        if self.parquet is not None:
            self.parquet.wipe()


def committed_frame(cfg: LoadedConfig, columns: list[str] | None = None) -> tuple[pl.DataFrame, Sink | None]:
    """This run's committed rows from the first sink that has them (USR preferred), read-only."""
    outs = RunOutputs(cfg, None, create=False)
    for sink in outs.sinks:
        if isinstance(sink, UsrSink) and not sink.exists():
            continue
        frame = outs.run_frame(columns, sink)
        if frame.height:
            return frame, sink
    empty = cast(pl.DataFrame, pl.from_arrow(empty_table()))
    return (empty.select(columns) if columns else empty), (outs.sinks[0] if outs.sinks else None)
