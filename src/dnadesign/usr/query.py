"""Reading a dataset: a polars LazyFrame that streams (`scan`), and `head`, `get`, `grep`.

`scan` is a polars IO source over `reader.DatasetReader`: polars pushes the projection, the filter
and any row limit into it, so `scan().filter(...).collect()` holds one batch at a time plus the
rows that pass, `scan().head(5)` reads one row group, and `sink_parquet`/`sink_csv` stream.

This module takes anything with `paths` and `manifest()` (a `store.Dataset`); it never imports the
store, which keeps the store -> query dependency one-way (an import-linter contract checks it).
"""

from __future__ import annotations

from typing import Any, Protocol

import polars as pl
from polars.io.plugins import register_io_source

from ..core.errors import InputError
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


def scan(ds: DatasetLike, man: Manifest | None = None, *, include_deleted: bool = False,
         namespaces: list[str] | None = None) -> pl.LazyFrame:
    """Records with overlays joined, as a streaming LazyFrame.

    `namespaces=None` shows every derived column; a list shows only those namespaces' columns
    (`[]`: the record fields alone). Tombstoned records are hidden unless `include_deleted`.
    """
    rd = reader(ds, man)
    schema = rd.polars_schema(namespaces)
    nss = tuple(namespaces) if namespaces is not None else None

    def source(with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None,
               batch_size: int | None) -> Any:
        cols = tuple(with_columns) if with_columns is not None else tuple(schema)
        return rd.batches(Selection(cols, nss, include_deleted), predicate=predicate, n_rows=n_rows)

    return register_io_source(source, schema=schema, explain_name="usr", explain_detail=ds.paths.dataset_id)


def head(ds: DatasetLike, n: int = 10, *, include_deleted: bool = False, columns: list[str] | None = None) -> pl.DataFrame:
    """The first `n` visible records (reads the first row group(s) only)."""
    rd = reader(ds)
    schema = rd.polars_schema(None)
    if columns:
        check_columns(columns, schema)
    frames = list(rd.batches(Selection(tuple(columns) if columns else None, None, include_deleted), n_rows=max(n, 0)))
    if not frames:
        return pl.DataFrame(schema=schema).select(columns or list(schema))
    return pl.concat(frames, how="vertical_relaxed")


def get(ds: DatasetLike, record_id: str, *, include_deleted: bool = False) -> dict | None:
    """One record by id, with its overlay columns (the id index finds its row group)."""
    frame = reader(ds).rows_by_id([record_id], Selection(None, None, include_deleted))
    return frame.to_dicts()[0] if frame.height else None


def get_many(ds: DatasetLike, record_ids: list[str], *, include_deleted: bool = False,
             columns: list[str] | None = None) -> pl.DataFrame:
    """The records with these ids (in the given order; absent ids skipped)."""
    return reader(ds).rows_by_id(record_ids, Selection(tuple(columns) if columns else None, None, include_deleted))


def grep(ds: DatasetLike, pattern: str, *, limit: int = 20, include_deleted: bool = False, literal: bool = False) -> pl.DataFrame:
    """Records whose sequence matches a regular expression (case-insensitive), first `limit` of them.

    The pattern is tested on the base rows before any overlay is joined, and reading stops at `limit`.
    """
    expr = pl.col("sequence").str.contains(pattern.upper() if literal else f"(?i){pattern}", literal=literal)
    rd = reader(ds)
    frames = list(rd.batches(Selection(None, None, include_deleted), predicate=expr, n_rows=max(limit, 0)))
    if not frames:
        return pl.DataFrame(schema=rd.polars_schema(None))
    return pl.concat(frames, how="vertical_relaxed")


def check_columns(columns: list[str], schema: dict) -> None:
    """One clear error for column names the dataset does not have."""
    missing = [c for c in columns if c not in schema]
    if missing:
        raise InputError(f"unknown column(s) {', '.join(missing)}", hint="see `usr schema` for the column names")


def select_columns(frame: pl.DataFrame, columns: list[str] | None) -> pl.DataFrame:
    """`frame` restricted to `columns` (unknown names are one clear error)."""
    if not columns:
        return frame
    check_columns(columns, dict(frame.schema))
    return frame.select(columns)


__all__ = ["RECORD_FIELDS", "check_columns", "get", "get_many", "grep", "head", "reader", "scan", "select_columns"]
