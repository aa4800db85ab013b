"""Parquet sink: immutable part files plus an atomically replaced manifest, exported to one file.

Layout for a target `outputs/tables/records.parquet`::

    outputs/tables/records.parquet          consolidated export (rewritten atomically at the end of a session)
    outputs/tables/records.parts/
        _manifest.json                      the committed parts (file, rows, sha256); replaced atomically
        part-<stamp>-<hex>.parquet          one per checkpoint, written temp + fsync + rename

A part is committed only when the manifest names it, so a SIGKILL at any moment leaves either
the previous manifest or the new one, never a torn Parquet file. Parts not named by the manifest
(a crash between the part and the manifest) are removed when the sink is opened.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ...core.atomic import atomic_write_json, atomic_write_with
from ...core.errors import IntegrityError
from ...core.ids import sha256_file
from ...core.timeutil import compact_stamp, utc_now_iso
from .records import conform, empty_table

MANIFEST = "_manifest.json"
FORMAT = "densegen-parquet-parts"


class ParquetSink:
    """Append-only Parquet output that survives SIGKILL."""

    name = "parquet"

    def __init__(self, path: str | Path, *, deduplicate: bool = True):
        self.path = Path(path)
        self.parts_dir = self.path.with_name(self.path.stem + ".parts")
        self.deduplicate = deduplicate
        self._ids: set[str] | None = None

    # -- manifest ------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.parts_dir / MANIFEST

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
            df = pl.from_arrow(empty_table())
            return df.select(columns) if columns else df
        lf = pl.concat([pl.scan_parquet(p) for p in paths], how="diagonal_relaxed")
        if ids is not None:
            lf = lf.filter(pl.col("id").is_in(ids))
        if columns:
            lf = lf.select(columns)
        return lf.collect()

    def ids(self) -> set[str]:
        if self._ids is None:
            self._ids = set(self.frame(["id"])["id"].to_list())
        return self._ids

    # -- writing -------------------------------------------------------------------------------
    def write(self, table: pa.Table, *, event_args: dict | None = None) -> int:
        if table.num_rows == 0:
            return 0
        table = conform(table)
        if self.deduplicate:
            known = self.ids()
            keep = [i not in known for i in table.column("id").to_pylist()]
            if not all(keep):
                table = table.filter(pa.array(keep))
            if table.num_rows == 0:
                return 0
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        name = f"part-{compact_stamp()}-{uuid.uuid4().hex[:8]}.parquet"
        path = self.parts_dir / name
        atomic_write_with(path, lambda p: pq.write_table(table, p, compression="zstd"))
        doc = self._load()
        doc["parts"].append({"file": name, "rows": table.num_rows, "sha256": sha256_file(path)})
        doc["rows"] = sum(p["rows"] for p in doc["parts"])
        doc["updated_at"] = utc_now_iso()
        atomic_write_json(self.manifest_path, doc)  # the commit point
        if self._ids is not None:
            self._ids.update(table.column("id").to_pylist())
        return table.num_rows

    def finalize(self) -> None:
        """Export the committed parts to the single target file (atomic replace)."""
        paths = self.part_paths()
        if not paths:
            return
        table = pa.concat_tables([conform(pq.read_table(p)) for p in paths])
        atomic_write_with(self.path, lambda p: pq.write_table(table, p, compression="zstd"))

    def wipe(self) -> None:
        import shutil

        shutil.rmtree(self.parts_dir, ignore_errors=True)
        self.path.unlink(missing_ok=True)
        self._ids = None
