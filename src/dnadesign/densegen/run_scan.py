"""A run's committed rows as a stream of small batches, reading only the columns asked for.

Plots, `dense inspect run` and `dense report` summarise a run whose dataset may hold millions of
rows (runs accumulate across resumes and array tasks). `iter_run_batches` reads the first sink
that holds rows of the run (USR preferred, as `outputs.committed_frame`), projects the columns
(Parquet column projection; USR reads only the namespaces and row groups it needs), keeps the
run's rows and yields polars frames of at most `batch_rows` rows, so memory is bounded by the
batch, not by the dataset. `fetch_rows` reads a few rows by id (the USR id index, or a filtered
Parquet scan) for figures drawn from a sample.
"""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

from .config import LoadedConfig
from .outputs import RunOutputs
from .sinks import ParquetSink, Sink, UsrSink
from .sinks.records import PLAN_COL, RUN_COL

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


def run_sinks(cfg: LoadedConfig) -> list[Sink]:
    """The run's sinks, read-only, primary (USR) first."""
    return RunOutputs(cfg, None, create=False).sinks


def iter_run_batches(cfg: LoadedConfig, columns: list[str], batch_rows: int = BATCH_ROWS) -> Iterator[pl.DataFrame]:
    """This run's committed rows, only `columns` (those the sink has), in batches of at most `batch_rows`.

    The first sink with rows of the run is read; an empty run yields nothing.
    """
    for sink in run_sinks(cfg):
        lf = _lazy(sink)
        if lf is None:
            continue
        names = set(lf.collect_schema().names())
        cols = [c for c in dict.fromkeys(columns) if c in names]
        query = lf.filter((pl.col(RUN_COL) == cfg.run_id) & pl.col(PLAN_COL).is_not_null()).select(cols)
        found = False
        for batch in query.collect_batches(chunk_size=batch_rows):
            if batch.height:
                found = True
                yield batch
        if found:
            return


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


__all__ = ["BATCH_ROWS", "fetch_rows", "iter_run_batches", "run_sinks"]
