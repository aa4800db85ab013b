"""Hand-on exports of a workspace's designed sequences (`dense export genbank`).

The rows come from the run's USR dataset when the config has a `usr` target, else from its
Parquet output (the parts its manifest names); both carry the same `densegen__*` columns. The
GenBank writing itself is `dnadesign.usr.export_genbank` (placements read by their documented
schema), streamed batch by batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..core.errors import NotFoundError
from ..usr import query
from ..usr.export_genbank import genbank_columns, write_genbank
from ..usr.reader import Selection
from ..usr.store import Dataset
from .config import LoadedConfig
from .plans import resolve_plans
from .sinks import ParquetSink

BATCH_ROWS = 8192


def _plan_filter(plan: str | None):
    if plan is None:
        return None
    return lambda t: pc.fill_null(pc.ends_with(t.column("source"), f":{plan}"), False)


def _usr_batches(root: Path, dataset: str, plan: str | None, limit: int | None) -> Iterator[pa.Table]:
    ds = Dataset(root, dataset)
    if not ds.exists():
        raise NotFoundError(f"run output {dataset} does not exist under {root}", hint="run `dense run` first")
    rd = query.reader(ds)
    cols = genbank_columns(query.polars_schema(rd), dataset)
    keep = _plan_filter(plan)
    return rd.arrow_batches(Selection(tuple(cols), None, False), keep=keep, keep_columns=("source",) if keep else (),
                                n_rows=limit)


def _parquet_batches(parts: list[Path], where: str, plan: str | None, limit: int | None) -> Iterator[pa.Table]:
    cols = genbank_columns(pq.ParquetFile(parts[0]).schema_arrow.names, where)  # checked before writing starts
    return _parquet_stream(parts, cols, plan, limit)


def _parquet_stream(parts: list[Path], cols: list[str], plan: str | None, limit: int | None) -> Iterator[pa.Table]:
    left = limit
    for part in parts:
        f = pq.ParquetFile(part)
        for batch in f.iter_batches(batch_size=BATCH_ROWS, columns=[c for c in cols if c in f.schema_arrow.names]):
            table = pa.Table.from_batches([batch])
            if plan is not None:
                table = table.filter(_plan_filter(plan)(table))
            if left is not None:
                table = table.slice(0, left)
                left -= table.num_rows
            if table.num_rows:
                yield table
            if left is not None and left <= 0:
                return


def genbank_batches(cfg: LoadedConfig, *, plan: str | None = None, limit: int | None = None) -> tuple[Iterator[pa.Table], str]:
    """Arrow batches of the run's records for GenBank (USR output first, else Parquet) and where from."""
    if plan is not None:
        names = [p.name for p in resolve_plans(cfg)]  # expanded names (fixed_element_matrix) included
        if plan not in names:
            raise NotFoundError(f"plan {plan!r} is not in {cfg.path.name}", hint=f"plans: {', '.join(names)}")
    usr = cfg.usr_target()
    if usr is not None:
        root, dataset = usr
        return _usr_batches(root, dataset, plan, limit), f"usr:{dataset}"
    pq_path = cfg.parquet_target()
    parts = ParquetSink(pq_path).part_paths() if pq_path is not None else []
    if not parts:
        raise NotFoundError(f"run {cfg.run_id} has no committed output yet", hint="run `dense run` first")
    return _parquet_batches(parts, str(pq_path), plan, limit), str(pq_path)


def export_genbank(cfg: LoadedConfig, path: Path, *, plan: str | None = None, limit: int | None = None) -> tuple[int, str]:
    """Write the run's designed sequences with every placed site as a GenBank file; (records, source)."""
    batches, source = genbank_batches(cfg, plan=plan, limit=limit)
    return write_genbank(batches, path), source
