"""Analysis tables of a run: one row per library and one row per candidate solution, as Parquet.

`outputs/tables/libraries/<session>.parquet` and `outputs/tables/attempts/<session>.parquet`,
one file of each per session of each writer (`s0001.parquet` for a single run,
`task-0002-s0001.parquet` for an array task), so concurrent array tasks never write the same file.
A session rewrites its own two files atomically (temp file, fsync, rename) after each checkpoint
(at most every `WRITE_INTERVAL_S`) and at its end: a kill leaves the previous complete version,
never a torn file. The columns are documented in docs/dense.md ("Analysis tables").

`read_tables(workspace)` reads every file back as two polars frames.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..core.atomic import atomic_write_with

LIBRARIES = "libraries"
ATTEMPTS = "attempts"
WRITE_INTERVAL_S = 2.0  # a long session rewrites its files at most this often (plus at its end)

LIBRARY_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("session", pa.int32()), ("task", pa.string()), ("plan", pa.string()),
    ("library_index", pa.int32()), ("library_hash", pa.string()), ("sampled_sites", pa.int32()),
    ("regulators", pa.list_(pa.string())), ("status", pa.string()), ("ended_by", pa.string()),
    ("reason", pa.string()), ("bound", pa.float64()), ("best_sites", pa.int32()),
    ("time_to_first_s", pa.float64()), ("total_s", pa.float64()), ("cpu_to_first_s", pa.float64()),
    ("cpu_s", pa.float64()), ("solutions", pa.int32()),
    ("accepted", pa.int32()), ("started_at", pa.timestamp("us", tz="UTC")),
])

ATTEMPT_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("session", pa.int32()), ("task", pa.string()), ("plan", pa.string()),
    ("library_index", pa.int32()), ("attempt", pa.int32()), ("outcome", pa.string()), ("reason", pa.string()),
    ("n_sites", pa.int32()), ("optimal", pa.bool_()), ("bound", pa.float64()), ("solve_time_s", pa.float64()),
    ("record_id", pa.string()), ("at_s", pa.float64()),
])

SCHEMAS = {LIBRARIES: LIBRARY_SCHEMA, ATTEMPTS: ATTEMPT_SCHEMA}


def session_label(session: int, task: str | None) -> str:
    """The file stem of one session's tables: `s0003`, or `task-0002-s0003` for an array task."""
    return f"{task}-s{session:04d}" if task else f"s{session:04d}"


def tables_dir(outputs_dir: Path) -> Path:
    """`<outputs>/tables` (shared with the Parquet records output)."""
    return Path(outputs_dir) / "tables"


class RunTables:
    """The rows of one session's two tables; `write()` replaces its two files atomically."""

    def __init__(self, outputs_dir: Path, *, run_id: str, session: int, task: str | None = None):
        self.root = tables_dir(outputs_dir)
        self.label = session_label(session, task)
        self.base = {"run_id": run_id, "session": session, "task": task}
        self.rows: dict[str, list[dict[str, Any]]] = {LIBRARIES: [], ATTEMPTS: []}
        self._dirty = False
        self._last_write = 0.0

    def path(self, table: str) -> Path:
        """This session's file of `table` (`libraries` or `attempts`)."""
        return self.root / table / f"{self.label}.parquet"

    def add_library(self, **row: Any) -> None:
        """One finished library (see LIBRARY_SCHEMA for the fields)."""
        self.rows[LIBRARIES].append({**self.base, **row})
        self._dirty = True

    def add_attempt(self, **row: Any) -> None:
        """One candidate solution handed to the acceptor (see ATTEMPT_SCHEMA for the fields)."""
        self.rows[ATTEMPTS].append({**self.base, **row})
        self._dirty = True

    def maybe_write(self) -> bool:
        """`write()` when rows were added and `WRITE_INTERVAL_S` passed since the last write."""
        if not self._dirty or time.monotonic() - self._last_write < WRITE_INTERVAL_S:
            return False
        self.write()
        return True

    def write(self) -> None:
        """Replace this session's files with every row so far (atomic; nothing written when unchanged)."""
        if not self._dirty:
            return
        for name, schema in SCHEMAS.items():
            table = pa.Table.from_pylist(self.rows[name], schema=schema)
            path = self.path(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_with(path, _parquet_writer(table))
        self._dirty = False
        self._last_write = time.monotonic()


def _parquet_writer(table: pa.Table):
    def write(tmp: Path) -> None:
        pq.write_table(table, tmp)
    return write


def wipe_tables(outputs_dir: Path) -> None:
    """Remove every session's tables (`dense run --fresh`)."""
    for name in SCHEMAS:
        d = tables_dir(outputs_dir) / name
        if d.is_dir():
            for f in d.glob("*.parquet"):
                f.unlink(missing_ok=True)


@dataclass(frozen=True)
class Tables:
    """Every session's rows of the two tables, in (task, session) order."""

    libraries: pl.DataFrame
    attempts: pl.DataFrame


_STEM = re.compile(r"^(?:.+-)?s\d{4,}$")


def _outputs_dir(workspace: Any) -> Path:
    if hasattr(workspace, "outputs_dir"):  # a LoadedConfig
        return Path(workspace.outputs_dir)
    p = Path(workspace)
    if p.is_file() or (p / "config.yaml").is_file():
        from .config import load_config

        return load_config(p if p.is_file() else p / "config.yaml").outputs_dir
    return p / "outputs"


def read_tables(workspace: Any) -> Tables:
    """The libraries and attempts tables of a workspace as polars frames (empty, typed, when none).

    `workspace` is a workspace directory (its `config.yaml` says where the outputs are), a config
    file or a loaded config. Files being replaced by a running session are read whole or not at
    all (they are renamed into place); stray temp files are ignored.
    """
    root = tables_dir(_outputs_dir(workspace))
    frames = {}
    for name, schema in SCHEMAS.items():
        files = sorted(f for f in (root / name).glob("*.parquet") if _STEM.match(f.stem)) if (root / name).is_dir() else []
        parts = [pq.read_table(f).cast(schema) for f in files]
        table = pa.concat_tables(parts) if parts else schema.empty_table()
        frames[name] = pl.from_arrow(table)
    return Tables(libraries=frames[LIBRARIES], attempts=frames[ATTEMPTS])  # type: ignore[arg-type]


__all__ = ["ATTEMPT_SCHEMA", "LIBRARY_SCHEMA", "RunTables", "Tables", "read_tables", "session_label",
           "tables_dir", "wipe_tables"]
