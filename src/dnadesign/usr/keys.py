"""Record ids as numbers: hex sha1 ids -> 20-byte digests and 64-bit keys, vectorised.

An id is 40 lowercase hex characters. The id index, appends, overlay writes and `validate` turn
millions of ids into numbers at once; this module does it on the Arrow buffers with numpy (a
lookup table over the characters), never with a Python call per id.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

ID_CHARS = 40
DIGEST_BYTES = 20
_LUT = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _LUT[_c] = _i


def as_string_array(ids: Any) -> pa.Array:
    """One contiguous Arrow `string`/`large_string` array from a list, Series, Array or ChunkedArray."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks() if ids.num_chunks != 1 else ids.chunk(0)
    elif not isinstance(ids, pa.Array):
        to_arrow = getattr(ids, "to_arrow", None)  # polars Series
        if to_arrow is not None:
            return as_string_array(to_arrow())
        ids = pa.array(list(ids) if not isinstance(ids, list) else ids, pa.string())
    if pa.types.is_string_view(ids.type) or pa.types.is_dictionary(ids.type):
        ids = ids.cast(pa.large_string())
    if not (pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type)):
        ids = ids.cast(pa.string())
    return ids


def _chars(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(n, 40) uint8 characters of each id (zeros where the id is not 40 characters) and a length-ok mask."""
    n = len(arr)
    if n == 0:
        return np.zeros((0, ID_CHARS), np.uint8), np.zeros(0, bool)
    _, offsets_buf, data_buf = arr.buffers()
    off_type = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    width = np.dtype(off_type).itemsize
    offsets = np.frombuffer(offsets_buf, dtype=off_type, count=n + 1, offset=arr.offset * width).astype(np.int64)
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    ok = np.diff(offsets) == ID_CHARS
    if arr.null_count:
        ok &= np.asarray(arr.is_valid())
    if ok.all() and offsets[-1] - offsets[0] == n * ID_CHARS:
        chars = data[offsets[0]:offsets[-1]].reshape(n, ID_CHARS)
    else:
        starts = np.where(ok, offsets[:-1], 0)
        chars = np.zeros((n, ID_CHARS), np.uint8)
        if ok.any():
            chars[ok] = data[starts[ok, None] + np.arange(ID_CHARS)]
    return chars, ok


def digests(ids: Any) -> tuple[np.ndarray, np.ndarray]:
    """`(digests, valid)`: an (n, 20) uint8 array of sha1 digests and a mask of well-formed ids.

    Malformed ids (wrong length, not lowercase hex, null) get an all-zero digest and `valid=False`.
    """
    chars, ok = _chars(as_string_array(ids))
    nib = _LUT[chars]
    ok = ok & (nib != 255).all(axis=1)
    nib = np.where(ok[:, None], nib, 0).astype(np.uint8)
    return (nib[:, 0::2] << 4) | nib[:, 1::2], ok


def keys64(digest: np.ndarray) -> np.ndarray:
    """The first 8 digest bytes as big-endian uint64: sorting keys sorts ids."""
    if len(digest) == 0:
        return np.zeros(0, np.uint64)
    return np.ascontiguousarray(digest[:, :8]).view(">u8").ravel().astype(np.uint64)


def id_keys(ids: Any) -> tuple[np.ndarray, np.ndarray]:
    """`(keys64, valid)` for ids given in any array-like form."""
    d, ok = digests(ids)
    return keys64(d), ok


def digests_void(digest: np.ndarray) -> np.ndarray:
    """Digest rows as one opaque 20-byte scalar each (for exact set operations with numpy)."""
    return np.ascontiguousarray(digest).view(np.dtype((np.void, DIGEST_BYTES))).ravel()


def hex_ids(digest: Iterable[bytes] | np.ndarray) -> list[str]:
    """Digests back to hex ids (for messages; not for bulk use)."""
    if isinstance(digest, np.ndarray):
        return [bytes(row).hex() for row in digest]
    return [bytes(d).hex() for d in digest]
