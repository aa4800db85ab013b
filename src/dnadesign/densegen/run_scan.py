"""A run's committed rows as a stream of small batches, reading only the columns asked for.

Plots, `dense inspect run` and `dense report` summarise a run whose dataset may hold millions of
rows (runs accumulate across resumes and array tasks). `iter_run_batches` reads the first sink
that holds rows of the run (USR preferred, as `outputs.committed_frame`), projects the columns
(Parquet column projection; USR reads only the namespaces and row groups it needs), keeps the
run's rows and yields polars frames of at most `batch_rows` rows, so memory is bounded by the
batch, not by the dataset. `fetch_rows` reads a few rows by id (the USR id index, or a filtered
Parquet scan) for figures drawn from a sample.

A summary that streams over the rows is a `Fold`: the columns it reads and an `add(frame)` per
batch. `scan_run` feeds several folds from ONE pass over the rows (the union of their columns),
so `dense report` reads the run once for its statistics, bound gaps and plots.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, cast

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from .config import LoadedConfig
from .outputs import RunOutputs
from .sinks import ParquetSink, Sink, UsrSink
from .sinks.records import NAMESPACE, PLAN_COL, RUN_COL

BATCH_ROWS = 100_000


def _lazy(sink: Sink) -> pl.LazyFrame | None:
    """The sink's committed rows as a lazy frame (None when it has none, or no DenseGen columns)."""
    if isinstance(sink, UsrSink):
        if not sink.exists():
            return None
        lf = sink.ds.scan(namespaces=["densegen"])
    elif isinstance(sink, ParquetSink):
        paths = sink.part_paths()
        if not paths:
            return None
        lf = pl.concat([pl.scan_parquet(p) for p in paths], how="diagonal_relaxed")
    else:  # pragma: no cover - every sink is one of the two
        return None
    names = lf.collect_schema().names()
    return lf if PLAN_COL in names and RUN_COL in names else None


def _sink_batches(sink: Sink, columns: list[str], batch_rows: int) -> Iterator[pa.Table]:
    """Arrow batches of `columns` (those the sink has, plus RUN_COL and PLAN_COL) of every committed row.

    Pulled one at a time from the USR reader or the Parquet files, so nothing is read ahead of
    the consumer (a streaming engine running ahead of a slow consumer would buffer batches).
    """
    if isinstance(sink, UsrSink):
        if not sink.exists():
            return
        from ..usr.query import reader
        from ..usr.reader import Selection

        rd = reader(sink.ds, sink.ds.manifest())
        names = set(sink.ds.scan(namespaces=[NAMESPACE]).collect_schema().names())
        if not {PLAN_COL, RUN_COL} <= names:
            return
        cols = tuple(dict.fromkeys(c for c in [*columns, RUN_COL, PLAN_COL] if c in names))
        yield from rd.arrow_batches(Selection(cols, (NAMESPACE,), False), batch_rows=batch_rows)
    elif isinstance(sink, ParquetSink):
        for path in sink.part_paths():
            pf = pq.ParquetFile(path)
            names = set(pf.schema_arrow.names)
            if not {PLAN_COL, RUN_COL} <= names:
                continue
            pcols = list(dict.fromkeys(c for c in [*columns, RUN_COL, PLAN_COL] if c in names))
            for rb in pf.iter_batches(batch_size=batch_rows, columns=pcols):
                yield pa.Table.from_batches([rb])


def run_sinks(cfg: LoadedConfig) -> list[Sink]:
    """The run's sinks, read-only, primary (USR) first."""
    return RunOutputs(cfg, None, create=False).sinks


def iter_run_batches(cfg: LoadedConfig, columns: list[str], batch_rows: int = BATCH_ROWS) -> Iterator[pl.DataFrame]:
    """This run's committed rows, only `columns` (those the sink has), in batches of at most `batch_rows`.

    The first sink with rows of the run is read; an empty run yields nothing. Parquet parts of
    different schemas (a column added later) give batches with different columns.
    """
    for sink in run_sinks(cfg):
        found = False
        for table in _sink_batches(sink, columns, batch_rows):
            frame = cast(pl.DataFrame, pl.from_arrow(table))
            frame = frame.filter((pl.col(RUN_COL) == cfg.run_id) & pl.col(PLAN_COL).is_not_null())
            if frame.height:
                found = True
                yield frame.select([c for c in dict.fromkeys(columns) if c in frame.columns])
        if found:
            return


class Fold(Protocol):
    """A summary built batch by batch: the columns it reads, and how a batch is added."""

    columns: list[str]

    def add(self, frame: pl.DataFrame) -> None: ...


def scan_run(cfg: LoadedConfig, folds: Sequence[Fold], batch_rows: int = BATCH_ROWS) -> None:
    """One pass over the run's rows, each batch handed to every fold (only the columns it asked for)."""
    columns = list(dict.fromkeys(c for fold in folds for c in fold.columns))
    for frame in iter_run_batches(cfg, columns, batch_rows):
        for fold in folds:
            fold.add(frame.select([c for c in fold.columns if c in frame.columns]))


def fetch_rows(cfg: LoadedConfig, ids: list[str], columns: list[str]) -> pl.DataFrame:
    """The rows of this run with these ids (any order), only `columns`; empty when none is found."""
    if not ids:
        return pl.DataFrame()
    for sink in run_sinks(cfg):
        if isinstance(sink, UsrSink):
            if not sink.exists():
                continue
            from ..usr.query import get_many

            frame = get_many(sink.ds, ids)
        else:
            lf = _lazy(sink)
            if lf is None:
                continue
            frame = lf.filter(pl.col("id").is_in(ids)).collect()
        if frame.height:
            return frame.select([c for c in columns if c in frame.columns])
    return pl.DataFrame()


__all__ = ["BATCH_ROWS", "Fold", "fetch_rows", "iter_run_batches", "run_sinks", "scan_run"]
