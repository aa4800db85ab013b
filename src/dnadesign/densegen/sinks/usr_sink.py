"""USR sink: records plus the `densegen` overlay committed together in one manifest swap."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import cast

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ...core.events import Actor
from ...core.locks import FileLock
from ...usr.schema import RECORD_FIELDS
from ...usr.store import Dataset
from .counts import PlanCounter
from .records import COLUMNS, NAMESPACE, PLAN_COL, RUN_COL, conform, empty_table


def _empty(columns: list[str] | None) -> pl.DataFrame:
    df = cast(pl.DataFrame, pl.from_arrow(empty_table()))
    return df.select(columns) if columns else df


class UsrSink:
    """Appends accepted rows to `<usr_root>/<dataset_id>`; duplicates (by id) are skipped by USR."""

    name = "usr"

    def __init__(self, root: str | Path, dataset_id: str, actor: Actor | None, *, create: bool = True):
        self.root = Path(root)
        self.dataset_id = dataset_id
        self.actor = actor
        self.ds = Dataset(self.root, dataset_id, actor)
        self._counters: dict[str, PlanCounter] = {}
        if create:
            self.ensure()

    def ensure(self) -> None:
        """Create the dataset when it does not exist yet."""
        if not self.ds.exists():
            self.ds = Dataset.create(self.root, self.dataset_id, exist_ok=True, actor=self.actor, source="densegen",
                                     notes=f"written by dense run {self.actor.run_id if self.actor else ''}")

    @property
    def events_path(self) -> Path:
        return self.ds.events_path

    def location(self) -> str:
        return str(self.ds.dir)

    def exists(self) -> bool:
        return self.ds.exists()

    def lock(self) -> FileLock:
        """The dataset lock (re-entrant within a thread, so a commit can run under it)."""
        return self.ds.lock()

    def frame(self, columns: list[str] | None = None, ids: list[str] | None = None) -> pl.DataFrame:
        """Committed rows (records + densegen overlay); rows without the overlay are left out.

        `columns` and `ids` narrow what is read (projection and filter are pushed into the scan).
        """
        if not self.ds.exists():
            return _empty(columns)
        lf = self.ds.scan(namespaces=[NAMESPACE])
        names = lf.collect_schema().names()
        if PLAN_COL not in names:
            return _empty(columns)
        want = columns or [c for c in [*RECORD_FIELDS, *COLUMNS] if c in names]
        lf = lf.filter(pl.col(PLAN_COL).is_not_null())
        if ids is not None:
            lf = lf.filter(pl.col("id").is_in(ids))
        return lf.select([c for c in want if c in names]).collect()

    def all_ids(self) -> set[str]:
        """Every id in the dataset (any run), for deduplication."""
        if not self.ds.exists():
            return set()
        return set(self.ds.scan(namespaces=[]).select("id").collect()["id"].to_list())

    def has_ids(self, ids: list[str]) -> set[str]:
        """The subset of `ids` already stored (through the dataset's id index, not a scan)."""
        if not ids or not self.ds.exists():
            return set()
        return self.ds.has_ids(ids)

    def _overlay_files(self) -> list[str]:
        """Files that can hold committed densegen rows: the base parts (usr stores values written
        together with their records in the records' part) and any densegen overlay parts."""
        man = self.ds.manifest()
        return [e.file for e in man.parts] + [e.file for e in man.overlays.get(NAMESPACE, [])]

    def _count_file(self, run_id: str, rel: str) -> Counter:
        path = self.ds.paths.file(rel)
        names = pq.read_schema(path).names
        if RUN_COL not in names or PLAN_COL not in names:
            return Counter()
        t = pq.read_table(path, columns=[RUN_COL, PLAN_COL])
        mine = t.filter(pc.equal(t.column(RUN_COL), run_id))
        return Counter(mine.column(PLAN_COL).to_pylist())

    def plan_counts(self, run_id: str) -> dict[str, int]:
        """Committed rows of `run_id` per plan.

        Exact when taken under `lock()`: the first call counts with a scan (ids deduplicated,
        deleted rows left out); later calls add only the overlay parts committed since.
        """
        if not self.ds.exists():
            return {}
        counter = self._counters.setdefault(run_id, PlanCounter())
        files = self._overlay_files()
        if not counter.ready or not counter.update(files, lambda f: self._count_file(run_id, f)):
            frame = self.frame(["id", PLAN_COL, RUN_COL])
            frame = frame.filter(pl.col(RUN_COL) == run_id)
            exact = {r[0]: int(r[1]) for r in frame.group_by(PLAN_COL).len().iter_rows()} if frame.height else {}
            counter.reset(exact, files)
        return counter.counts()

    def commit(self, table: pa.Table, *, event_args: dict | None = None) -> pa.Table:
        """Append the rows whose id is new (records and overlay in one commit); returns those rows."""
        if table.num_rows == 0:
            return table
        table = conform(table)  # canonical arrow types (a polars round trip yields large_* types)
        records = table.select(list(RECORD_FIELDS))
        overlay = table.select(["id", *[c for c in COLUMNS if c in table.column_names]])
        res = self.ds.append(records, on_conflict="ignore", overlays={NAMESPACE: overlay}, actor=self.actor,
                             event_args={"tool": "densegen", **(event_args or {})})
        if res.added == table.num_rows:
            return table
        return table.filter(pc.is_in(table.column("id"), pa.array(res.ids, type=pa.string())))

    def write(self, table: pa.Table, *, event_args: dict | None = None) -> int:
        """Commit `table` (see `commit`); returns the number of rows added."""
        return self.commit(table, event_args=event_args).num_rows

    def log(self, action: str, *, args: dict | None = None, metrics: dict | None = None) -> None:
        """Append a DenseGen event (health, flush failure) to the dataset's `.events.log`."""
        self.ds.log_event(action, args=args, metrics=metrics, actor=self.actor)

    def finalize(self) -> None:
        return None
