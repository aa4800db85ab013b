"""Parquet sink: immutable part files plus an atomically replaced manifest, exported to one file.

Layout for a target `outputs/tables/records.parquet`::

    outputs/tables/records.parquet          consolidated export (rewritten atomically at the end of a session)
    outputs/tables/records.parts/
        _manifest.json                      the committed parts (file, rows, sha256, rows per run and plan)
        part-<stamp>-<hex>.parquet          one per checkpoint, written temp + fsync + rename
        .lock                               writers (array tasks of one workspace) take turns here

A part is committed only when the manifest names it, so a SIGKILL at any moment leaves either
the previous manifest or the new one, never a torn Parquet file. Parts not named by the manifest
(a crash between the part and the manifest) are removed when the sink is opened. Every change to
the parts directory happens under `.lock`, so several processes can share one sink.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from collections import Counter
from pathlib import Path
from typing import cast

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ...core.atomic import atomic_write_json, atomic_write_with
from ...core.errors import IntegrityError
from ...core.ids import sha256_bytes, sha256_file
from ...core.locks import FileLock
from ...core.timeutil import compact_stamp, utc_now_iso
from .counts import PlanCounter
from .records import PLAN_COL, RUN_COL, conform, empty_table

MANIFEST = "_manifest.json"
LOCK = ".lock"
FORMAT = "densegen-parquet-parts"
EXPORT_KEY = b"densegen:parts_manifest_sha256"
LOCK_TIMEOUT_S = 600.0


def _empty(columns: list[str] | None) -> pl.DataFrame:
    df = cast(pl.DataFrame, pl.from_arrow(empty_table()))
    return df.select(columns) if columns else df


def _run_plan_counts(table: pa.Table) -> dict[str, dict[str, int]]:
    """{run_id: {plan: rows}} of a flat table."""
    if RUN_COL not in table.column_names or PLAN_COL not in table.column_names:
        return {}
    out: dict[str, dict[str, int]] = {}
    for run, plan in zip(table.column(RUN_COL).to_pylist(), table.column(PLAN_COL).to_pylist(), strict=True):
        if run is None or plan is None:
            continue
        d = out.setdefault(run, {})
        d[plan] = d.get(plan, 0) + 1
    return out


class ParquetSink:
    """Append-only Parquet output that survives SIGKILL and concurrent writers."""

    name = "parquet"

    def __init__(self, path: str | Path, *, deduplicate: bool = True):
        self.path = Path(path)
        self.parts_dir = self.path.with_name(self.path.stem + ".parts")
        self.deduplicate = deduplicate
        self._ids: set[str] | None = None
        self._id_parts: set[str] = set()
        self._counters: dict[str, PlanCounter] = {}

    # -- manifest ------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.parts_dir / MANIFEST

    def lock(self) -> FileLock:
        """The writers' lock of this sink (re-entrant within a thread)."""
        return FileLock(self.parts_dir / LOCK, timeout=LOCK_TIMEOUT_S, what="parquet output lock")

    def _load(self) -> dict:
        if not self.manifest_path.exists():
            return {"format": FORMAT, "version": 1, "parts": []}
        try:
            doc = json.loads(self.manifest_path.read_text())
        except ValueError as exc:  # cannot happen with atomic writes, but say so clearly if it does
            raise IntegrityError(f"parquet parts manifest {self.manifest_path} is not valid JSON ({exc})",
                                 hint="restore it from a backup or start over with `dense run --fresh`") from None
        return doc

    def exists(self) -> bool:
        return bool(self._load()["parts"])

    def location(self) -> str:
        return str(self.path)

    def clean_orphans(self) -> int:
        """Remove part files (and temp files) the manifest does not name; returns how many."""
        if not self.parts_dir.exists():
            return 0
        with self.lock():
            named = {p["file"] for p in self._load()["parts"]}
            removed = 0
            for p in self.parts_dir.iterdir():
                if (p.suffix == ".parquet" and p.name not in named) or p.name.endswith(".tmp"):
                    p.unlink(missing_ok=True)
                    removed += 1
        return removed

    # -- reading -------------------------------------------------------------------------------
    def part_paths(self) -> list[Path]:
        return [self.parts_dir / p["file"] for p in self._load()["parts"]]

    def frame(self, columns: list[str] | None = None, ids: list[str] | None = None) -> pl.DataFrame:
        """Committed rows (the parts the manifest names); `columns` / `ids` narrow what is read."""
        paths = self.part_paths()
        if not paths:
            return _empty(columns)
        lf = pl.concat([pl.scan_parquet(p) for p in paths], how="diagonal_relaxed")
        if ids is not None:
            lf = lf.filter(pl.col("id").is_in(ids))
        if columns:
            lf = lf.select(columns)
        return lf.collect()

    def _refresh_ids(self, doc: dict) -> set[str]:
        """Every committed id, reading only the parts not seen before."""
        files = [p["file"] for p in doc["parts"]]
        if self._ids is None or not self._id_parts <= set(files):
            self._ids, self._id_parts = set(), set()
        for f in files:
            if f not in self._id_parts:
                self._ids.update(pq.read_table(self.parts_dir / f, columns=["id"]).column("id").to_pylist())
                self._id_parts.add(f)
        return self._ids

    def ids(self) -> set[str]:
        """Every committed id."""
        return set(self._refresh_ids(self._load()))

    def has_ids(self, ids: list[str]) -> set[str]:
        """The subset of `ids` already committed."""
        return set(ids) & self._refresh_ids(self._load()) if ids else set()

    def plan_counts(self, run_id: str) -> dict[str, int]:
        """Committed rows of `run_id` per plan (exact; take `lock()` around it to hold it still)."""
        doc = self._load()
        entries = {p["file"]: p for p in doc["parts"]}
        counter = self._counters.setdefault(run_id, PlanCounter())

        def count(f: str) -> Counter:
            known = entries[f].get("counts")
            if isinstance(known, dict):
                return Counter(known.get(run_id, {}))
            table = pq.read_table(self.parts_dir / f, columns=[c for c in (RUN_COL, PLAN_COL)
                                                              if c in pq.read_schema(self.parts_dir / f).names])
            return Counter(_run_plan_counts(table).get(run_id, {}))

        if not counter.ready or not counter.update(entries, count):
            counter.reset({}, [])
            counter.update(entries, count)
        return counter.counts()

    # -- writing -------------------------------------------------------------------------------
    def commit(self, table: pa.Table, *, event_args: dict | None = None) -> pa.Table:
        """Commit the rows not stored yet as one part; returns the rows actually added."""
        if table.num_rows == 0:
            return table
        table = conform(table)
        with self.lock():
            doc = self._load()
            if self.deduplicate:
                known = self._refresh_ids(doc)
                keep = [i not in known for i in table.column("id").to_pylist()]
                if not all(keep):
                    table = table.filter(pa.array(keep))
                if table.num_rows == 0:
                    return table
            self.parts_dir.mkdir(parents=True, exist_ok=True)
            name = f"part-{compact_stamp()}-{uuid.uuid4().hex[:8]}.parquet"
            path = self.parts_dir / name
            atomic_write_with(path, lambda p: pq.write_table(table, p, compression="zstd"))
            doc["parts"].append({"file": name, "rows": table.num_rows, "sha256": sha256_file(path),
                                 "counts": _run_plan_counts(table)})
            doc["rows"] = sum(p["rows"] for p in doc["parts"])
            doc["updated_at"] = utc_now_iso()
            atomic_write_json(self.manifest_path, doc)  # the commit point
            if self._ids is not None:
                self._ids.update(table.column("id").to_pylist())
                self._id_parts.add(name)
        return table

    def write(self, table: pa.Table, *, event_args: dict | None = None) -> int:
        """Commit `table` (see `commit`); returns the number of rows added."""
        return self.commit(table, event_args=event_args).num_rows

    def finalize(self) -> None:
        """Export the committed parts to the single target file (atomic replace; skipped when up to date)."""
        with self.lock():
            if not self.manifest_path.exists():
                return
            digest = sha256_bytes(self.manifest_path.read_bytes())
            paths = self.part_paths()
            if not paths:
                return
            if self.path.exists():
                meta: dict = {}
                with contextlib.suppress(OSError, pa.ArrowInvalid):  # an unreadable export is simply rewritten
                    meta = pq.read_schema(self.path).metadata or {}
                if meta.get(EXPORT_KEY) == digest.encode():
                    return
            table = pa.concat_tables([conform(pq.read_table(p)) for p in paths])
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), EXPORT_KEY: digest.encode()})
            atomic_write_with(self.path, lambda p: pq.write_table(table, p, compression="zstd"))

    def wipe(self) -> None:
        """Remove every part, the manifest and the export (`dense run --fresh`)."""
        if self.parts_dir.exists():
            with self.lock():
                for p in self.parts_dir.iterdir():
                    if p.is_dir():
                        shutil.rmtree(p)
                    elif p.name != LOCK:
                        p.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)
        self._ids = None
        self._id_parts = set()
        self._counters = {}
