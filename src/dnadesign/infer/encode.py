"""Sequences as numbers: an Arrow string array -> padded matrices of base codes, without a Python loop.

Codes are A=0, C=1, G=2, T=3 (U counts as T, either case) and N=4 for any other letter, a null
value and the padding after a sequence's end, so scorers can mask windows that leave the sequence.
Batches are split into buckets of similar length so one long sequence does not pad a whole batch.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

CODE_N = 4
MAX_CELLS = 1 << 21  # about 2M bases per bucket: a few MB per temporary array

BASE_CODES = np.full(256, CODE_N, dtype=np.uint8)
for _i, _b in enumerate("ACGT"):
    BASE_CODES[ord(_b)] = BASE_CODES[ord(_b.lower())] = _i
BASE_CODES[ord("U")] = BASE_CODES[ord("u")] = 3


@dataclass(frozen=True)
class Packed:
    """The bytes of a batch of strings: `data[offsets[i]:offsets[i+1]]` is value i; `valid` is False for nulls."""

    data: np.ndarray
    offsets: np.ndarray
    valid: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.where(self.valid, np.diff(self.offsets), 0)

    def __len__(self) -> int:
        return len(self.valid)


def pack(values: pa.Array | pa.ChunkedArray) -> Packed:
    """Zero-copy view of an Arrow string column (any string flavour) as bytes + offsets."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], pa.large_string())
    if not pa.types.is_large_string(values.type):
        values = values.cast(pa.large_string())
    n = len(values)
    bufs = values.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[values.offset: values.offset + n + 1] if n else np.zeros(1, np.int64)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if len(bufs) > 2 and bufs[2] is not None else np.zeros(0, np.uint8)
    valid = values.is_valid().to_numpy(zero_copy_only=False) if values.null_count else np.ones(n, dtype=bool)
    return Packed(data, offsets, valid)


def buckets(lengths: np.ndarray, max_cells: int = MAX_CELLS) -> Iterator[np.ndarray]:
    """Row indices grouped by length (ascending) so that rows x longest stays under `max_cells`.

    A row longer than `max_cells` gets a bucket of its own.
    """
    order = np.argsort(lengths, kind="stable")
    sorted_len = np.maximum(lengths[order], 1)
    n = len(order)
    start = 0
    while start < n:
        # (stop - start) * sorted_len[stop - 1] grows with stop: take the largest stop that fits
        size = bisect.bisect_right(range(start + 1, n + 1), max_cells,
                                   key=lambda stop: (stop - start) * int(sorted_len[stop - 1]))
        stop = start + max(1, size)
        yield order[start:stop]
        start = stop


def code_matrix(packed: Packed, rows: np.ndarray, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(codes, lengths) for `rows`: a uint8 matrix rows x (longest + pad), N-filled past each end."""
    lengths = packed.lengths[rows]
    longest = int(lengths.max()) if len(rows) else 0
    out = np.full((len(rows), longest + pad), CODE_N, dtype=np.uint8)
    if longest:
        pos = np.arange(longest)
        inside = pos[None, :] < lengths[:, None]
        src = packed.offsets[rows][:, None] + pos[None, :]
        out[:, :longest][inside] = BASE_CODES[packed.data[src[inside]]]
    return out, lengths
