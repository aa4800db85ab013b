"""Writing immutable part files: names, row groups, metadata, and the index entries that go with them.

A part is written to a temp file beside its final name, fsynced and renamed (see `core.atomic`);
a writer killed midway leaves only a `.part-*.tmp` file, which `validate` reports and `compact`
removes. Parts are cut into row groups of `ROW_GROUP_ROWS` so a lookup by id decodes one row group,
not the file.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..core.atomic import atomic_write_with
from ..core.ids import sha256_file
from ..core.timeutil import compact_stamp
from . import index as idx
from .manifest import FileEntry

ROW_GROUP_ROWS = 65_536
COMPRESSION = "zstd"


def new_name(subdir: str) -> str:
    """`<subdir>/part-<UTC stamp>-<random>.parquet`: names sort in the order parts were written."""
    return f"{subdir}/part-{compact_stamp()}-{uuid.uuid4().hex[:8]}.parquet"


def successor_name(first_input: str, token: str, seq: int) -> str:
    """Name for output `seq` of a rewrite whose inputs start with `first_input`.

    It sorts where `first_input` sorted (same stem, then `+`), so reads keep the dataset's order
    after compaction; a stem from an earlier rewrite is reused rather than extended.
    """
    path = Path(first_input)
    stem = path.stem.split("+")[0]
    return f"{path.parent.as_posix()}/{stem}+{token}{seq:05d}.parquet"


@dataclass
class Written:
    """A part just written: its manifest entry and its index entries (part-local row-group ordinals)."""

    entry: FileEntry
    run_part: idx.RunPart
    index_entries: np.ndarray


def _with_metadata(schema: pa.Schema, metadata: Mapping[str, str]) -> pa.Schema:
    meta = dict(schema.metadata or {})
    meta.update({k.encode(): v.encode() for k, v in metadata.items()})
    return schema.with_metadata(meta)


def write_table(dataset_dir: Path, relpath: str, table: pa.Table, metadata: Mapping[str, str]) -> Written:
    """Write one part from an in-memory table (row groups of ROW_GROUP_ROWS)."""
    return write_batches(dataset_dir, relpath, table.schema, [table], metadata)


def write_batches(dataset_dir: Path, relpath: str, schema: pa.Schema, batches: Iterable[pa.Table | pa.RecordBatch],
                  metadata: Mapping[str, str]) -> Written:
    """Stream tables into one part; returns its entry and index entries. Row groups are exactly
    ROW_GROUP_ROWS rows (the last one shorter) whatever the batch sizes."""
    path = dataset_dir / relpath
    schema = _with_metadata(schema, metadata)
    rg_rows: list[int] = []
    chunks: list[np.ndarray] = []

    def write(tmp: Path) -> None:
        with pq.ParquetWriter(tmp, schema, compression=COMPRESSION) as writer:
            for block in _regroup(batches, schema):
                writer.write_table(block, row_group_size=ROW_GROUP_ROWS)
                chunks.append(idx.part_entries(block.column("id"), [block.num_rows], len(rg_rows)))
                rg_rows.append(block.num_rows)

    atomic_write_with(path, write)
    rows = sum(rg_rows)
    entry = FileEntry(relpath, sha256_file(path), rows, path.stat().st_size)
    ents = np.concatenate(chunks) if chunks else np.zeros(0, np.uint64)
    return Written(entry, idx.RunPart(relpath, entry.sha256, rg_rows), ents)


def _regroup(batches: Iterable[pa.Table | pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.Table]:
    """Re-cut a stream of tables into blocks of ROW_GROUP_ROWS rows (one row group each)."""
    pending: list[pa.Table] = []
    count = 0
    for b in batches:
        t = b if isinstance(b, pa.Table) else pa.Table.from_batches([b])
        if t.num_rows == 0:
            continue
        t = t.select(schema.names).cast(schema)
        pending.append(t)
        count += t.num_rows
        while count >= ROW_GROUP_ROWS:
            whole = pa.concat_tables(pending)
            yield whole.slice(0, ROW_GROUP_ROWS).combine_chunks()
            rest = whole.slice(ROW_GROUP_ROWS)
            pending, count = ([rest], rest.num_rows) if rest.num_rows else ([], 0)
    if count:
        yield pa.concat_tables(pending).combine_chunks()
