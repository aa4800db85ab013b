"""Reading a dataset with polars: a streaming LazyFrame (`scan`), and `head`, `get`, `grep` as frames.

`scan` is a polars IO source over `reader.DatasetReader`: polars pushes the projection, the filter
and any row limit into it, so `scan().filter(...).collect()` holds one batch at a time plus the
rows that pass, `scan().head(5)` reads one row group, and `sink_parquet`/`sink_csv` stream. A
filter on record fields alone is applied to the base rows before any overlay is joined.

This module takes anything with `paths` and `manifest()` (a `store.Dataset`); it never imports the
store, which keeps the store -> query dependency one-way (an import-linter contract checks it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import polars as pl
import pyarrow as pa
from polars.io.plugins import register_io_source

from ..core.errors import InputError
from . import reader as rdr
from .layout import DatasetPaths
from .manifest import Manifest
from .reader import DatasetReader, Selection
from .schema import RECORD_FIELDS


class DatasetLike(Protocol):
    """What the readers need of a dataset: where it lives and its current manifest."""

    @property
    def paths(self) -> DatasetPaths: ...

    def manifest(self) -> Manifest: ...


def reader(ds: DatasetLike, man: Manifest | None = None) -> DatasetReader:
    """A reader over `man` (default: the dataset's current manifest)."""
    return DatasetReader(ds.paths, man if man is not None else ds.manifest())


def polars_schema(rd: DatasetReader, namespaces: list[str] | None = None) -> dict[str, pl.DataType]:
    """The polars schema of a scan (record fields, then the visible derived columns)."""
    sch = rd.arrow_schema(namespaces)
    empty = pl.from_arrow(pa.table({f.name: pa.array([], f.type) for f in sch}))
    assert isinstance(empty, pl.DataFrame)
    return dict(empty.schema)


def _frame(table: pa.Table, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    casts: dict[Any, Any] = {c: schema[c] for c in frame.columns if c in schema and frame.schema[c] != schema[c]}
    return frame.cast(casts) if casts else frame


def scan(ds: DatasetLike, man: Manifest | None = None, *, include_deleted: bool = False,
         namespaces: list[str] | None = None) -> pl.LazyFrame:
    """Records with overlays joined, as a streaming LazyFrame.

    `namespaces=None` shows every derived column; a list shows only those namespaces' columns
    (`[]`: the record fields alone). Tombstoned records are hidden unless `include_deleted`.
    """
    rd = reader(ds, man)
    schema = polars_schema(rd, namespaces)
    full = polars_schema(rd, None)
    nss = tuple(namespaces) if namespaces is not None else None

    def source(with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None,
               batch_size: int | None) -> Iterator[pl.DataFrame]:
        cols = tuple(with_columns) if with_columns is not None else tuple(schema)
        roots = list(dict.fromkeys(predicate.meta.root_names())) if predicate is not None else []
        early = predicate is not None and all(c in RECORD_FIELDS for c in roots)
        keep = None
        if early:
            def keep(t: pa.Table) -> pa.Array:
                return _frame(t.select(roots), full).select(predicate).to_series().fill_null(False).to_arrow()
        sel = Selection(cols, nss, include_deleted)
        late = predicate is not None and not early
        produced = 0
        for table in rd.arrow_batches(sel, keep=keep, keep_columns=roots if early else (), n_rows=None if late else n_rows,
                                      extra=[c for c in roots if c not in cols] if late else ()):
            frame = _frame(table, full)
            if late and predicate is not None:
                frame = frame.filter(predicate).select(cols)
                if n_rows is not None:
                    frame = frame.head(n_rows - produced)
            if frame.height:
                produced += frame.height
                yield frame
            if n_rows is not None and produced >= n_rows:
                return

    return register_io_source(source, schema=schema, explain_name="usr", explain_detail=ds.paths.dataset_id)


def head(ds: DatasetLike, n: int = 10, *, include_deleted: bool = False, columns: list[str] | None = None) -> pl.DataFrame:
    """The first `n` visible records (reads the first row group(s) only)."""
    man = ds.manifest()
    if columns:
        check_columns(columns, [*RECORD_FIELDS, *man.columns])
    rd = reader(ds, man)
    return _frame(rdr.head_table(ds.paths, man, n, include_deleted=include_deleted, columns=columns), polars_schema(rd))


def get(ds: DatasetLike, record_id: str, *, include_deleted: bool = False) -> dict | None:
    """One record by id, with its overlay columns (the id index finds its row group)."""
    rows = rdr.get_table(ds.paths, ds.manifest(), [record_id], include_deleted=include_deleted).to_pylist()
    return rows[0] if rows else None


def get_many(ds: DatasetLike, record_ids: list[str], *, include_deleted: bool = False,
             columns: list[str] | None = None) -> pl.DataFrame:
    """The records with these ids (in the given order; absent ids skipped)."""
    man = ds.manifest()
    table = rdr.get_table(ds.paths, man, record_ids, include_deleted=include_deleted, columns=columns)
    return _frame(table, polars_schema(reader(ds, man)))


def grep(ds: DatasetLike, pattern: str, *, limit: int = 20, include_deleted: bool = False, literal: bool = False) -> pl.DataFrame:
    """Records whose sequence matches a regular expression (case-insensitive), first `limit` of them."""
    man = ds.manifest()
    table = rdr.grep_table(ds.paths, man, pattern, limit=limit, include_deleted=include_deleted, literal=literal)
    return _frame(table, polars_schema(reader(ds, man)))


def check_columns(columns: list[str], known: object) -> None:
    """One clear error for column names the dataset does not have."""
    missing = [c for c in columns if c not in known]  # type: ignore[operator]
    if missing:
        raise InputError(f"unknown column(s) {', '.join(missing)}", hint="see `usr schema` for the column names")


__all__ = ["RECORD_FIELDS", "check_columns", "get", "get_many", "grep", "head", "polars_schema", "reader", "scan"]
