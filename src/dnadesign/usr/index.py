"""Per-part id index: the sorted 20-byte sha1 digests of a part's ids, memory-mapped for lookups.

It lets an append check new ids against a dataset of any size by binary search, touching only a
few pages per part, so appending N rows costs O(N log n) instead of re-reading the dataset. The
index is a cache beside the data (`_index/`): rebuilt from the part when missing, never synced.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ..core.atomic import atomic_write_bytes

DIGEST = np.dtype("S20")


def digests(ids: Iterable[str]) -> np.ndarray:
    """Hex sha1 ids -> sorted array of 20-byte digests."""
    arr = np.array([bytes.fromhex(i) for i in ids], dtype=DIGEST)
    arr.sort()
    return arr


def index_path(index_dir: Path, part_file: str) -> Path:
    return index_dir / (Path(part_file).stem + ".ids")


def write_index(index_dir: Path, part_file: str, ids: Iterable[str]) -> None:
    atomic_write_bytes(index_path(index_dir, part_file), digests(ids).tobytes())


def load_index(index_dir: Path, dataset_dir: Path, part_file: str) -> np.ndarray:
    """Memory-map a part's index, rebuilding it from the part if it is missing or the wrong size."""
    path = index_path(index_dir, part_file)
    if not path.exists() or path.stat().st_size % 20:
        ids = pq.read_table(dataset_dir / part_file, columns=["id"]).column("id").to_pylist()
        os.makedirs(index_dir, exist_ok=True)
        write_index(index_dir, part_file, ids)
    if path.stat().st_size == 0:
        return np.empty(0, dtype=DIGEST)
    return np.memmap(path, dtype=DIGEST, mode="r")


def contains(index: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Boolean mask: which sorted `queries` digests are in `index`."""
    if len(index) == 0 or len(queries) == 0:
        return np.zeros(len(queries), dtype=bool)
    pos = np.searchsorted(index, queries)
    pos[pos >= len(index)] = len(index) - 1
    return index[pos] == queries
