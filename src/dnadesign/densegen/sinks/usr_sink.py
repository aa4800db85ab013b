"""USR sink: records plus the `densegen` overlay committed together in one manifest swap."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa

from ...core.errors import DnadesignError
from ...core.events import Actor
from ...usr.schema import RECORD_FIELDS
from ...usr.store import Dataset
from .records import COLUMNS, NAMESPACE, conform, empty_table


class UsrSink:
    """Appends accepted rows to `<usr_root>/<dataset_id>`; duplicates (by id) are skipped by USR."""

    name = "usr"

    def __init__(self, root: str | Path, dataset_id: str, actor: Actor, *, create: bool = True):
        self.root = Path(root)
        self.dataset_id = dataset_id
        self.actor = actor
        if create:
            self.ds = Dataset.create(self.root, dataset_id, exist_ok=True, actor=actor,
                                     source="densegen", notes=f"written by dense run {actor.run_id}")
        else:
            self.ds = Dataset(self.root, dataset_id, actor)

    @property
    def events_path(self) -> Path:
        return self.ds.events_path

    def location(self) -> str:
        return str(self.ds.dir)

    def exists(self) -> bool:
        return self.ds.exists()

    def frame(self, columns: list[str] | None = None, ids: list[str] | None = None) -> pl.DataFrame:
        """Committed rows (records + densegen overlay); rows without the overlay are left out.

        `columns` and `ids` narrow what is read (projection and filter are pushed into the scan).
        """
        empty = pl.from_arrow(empty_table())
        if not self.ds.exists():
            return empty.select(columns) if columns else empty
        lf = self.ds.scan(namespaces=[NAMESPACE])
        names = lf.collect_schema().names()
        if "densegen__plan" not in names:
            return empty.select(columns) if columns else empty
        want = columns or [c for c in [*RECORD_FIELDS, *COLUMNS] if c in names]
        lf = lf.filter(pl.col("densegen__plan").is_not_null())
        if ids is not None:
            lf = lf.filter(pl.col("id").is_in(ids))
        return lf.select([c for c in want if c in names]).collect()

    def all_ids(self) -> set[str]:
        """Every id in the dataset (any run), for deduplication."""
        if not self.ds.exists():
            return set()
        return set(self.ds.scan(namespaces=[]).select("id").collect()["id"].to_list())

    def write(self, table: pa.Table, *, event_args: dict | None = None) -> int:
        if table.num_rows == 0:
            return 0
        table = conform(table)  # canonical arrow types (a polars round trip yields large_* types)
        records = table.select(list(RECORD_FIELDS))
        overlay = table.select(["id", *[c for c in COLUMNS if c in table.column_names]])
        res = self.ds.append(records, on_conflict="ignore", overlays={NAMESPACE: overlay}, actor=self.actor,
                             event_args={"tool": "densegen", **(event_args or {})})
        return res.added

    def log(self, action: str, *, args: dict | None = None, metrics: dict | None = None) -> None:
        self.ds.log_event(action, args=args, metrics=metrics, actor=self.actor)

    def finalize(self) -> None:
        return None


class FlushFailed(DnadesignError):
    """A sink could not commit a batch; what was committed before stays valid."""
