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
import pyarrow.compute as pc

ID_CHARS = 40
DIGEST_BYTES = 20
_HEX = b"0123456789abcdef"
# two hex characters read as one little-endian uint16 -> the byte they spell, or 0xFFFF if invalid
_PAIR = np.full(1 << 16, 0xFFFF, dtype=np.uint16)
for _hi, _ch in enumerate(_HEX):
    for _lo, _cl in enumerate(_HEX):
        _PAIR[_ch | (_cl << 8)] = (_hi << 4) | _lo


def as_string_array(ids: Any) -> pa.Array:
    """One contiguous Arrow `string`/`large_string` array from a list, Series, Array or ChunkedArray."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks() if ids.num_chunks != 1 else ids.chunk(0)
    elif not isinstance(ids, pa.Array):
        to_arrow = getattr(ids, "to_arrow", None)  # polars Series
        if to_arrow is not None:
            return as_string_array(to_arrow())
        ids = arrow_strings(list(ids))
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
    else:  # some ids are malformed: cut/pad every value to 40 characters, then read them as above
        fixed = pc.utf8_rpad(pc.utf8_slice_codeunits(arr.cast(pa.large_string()), 0, ID_CHARS), ID_CHARS, ".")
        fixed = pc.if_else(pc.is_null(fixed), pc.binary_repeat(pa.scalar(".", pa.large_string()), ID_CHARS), fixed)
        chars, _ = _chars(fixed)
    return chars, ok


def digests(ids: Any) -> tuple[np.ndarray, np.ndarray]:
    """`(digests, valid)`: an (n, 20) uint8 array of sha1 digests and a mask of well-formed ids.

    Malformed ids (wrong length, not lowercase hex, null) get an all-zero digest and `valid=False`.
    Works in blocks of 64k ids so temporaries stay in cache.
    """
    chars, ok = _chars(as_string_array(ids))
    n = len(chars)
    out = np.empty((n, DIGEST_BYTES), np.uint8)
    pairs_all = np.ascontiguousarray(chars).view("<u2")
    block = 1 << 16
    for start in range(0, n, block):
        pairs = np.take(_PAIR, pairs_all[start:start + block])
        if pairs.max(initial=0) == 0xFFFF:
            bad = (pairs == 0xFFFF).any(axis=1)
            ok[start:start + block] &= ~bad
            pairs[bad] = 0
        out[start:start + block] = pairs
    out[~ok] = 0
    return out, ok


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


# -- building Arrow arrays without `pa.array` (which imports pandas, ~0.2 s, when it is installed) --
def arrow_ints(values: np.ndarray) -> pa.Array:
    """A 1-D integer numpy array as an Arrow int64 array (zero-copy when already int64)."""
    a = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(a), [None, pa.py_buffer(a)])


def arrow_bools(values: np.ndarray) -> pa.Array:
    """A 1-D bool numpy array as an Arrow boolean array."""
    a = np.ascontiguousarray(values, dtype=bool)
    return pa.Array.from_buffers(pa.bool_(), len(a), [None, pa.py_buffer(np.packbits(a, bitorder="little"))])


def arrow_strings(values: list[str | None]) -> pa.Array:
    """Python strings as an Arrow string array (None -> null)."""
    enc = [b"" if v is None else str(v).encode() for v in values]
    offsets = np.zeros(len(enc) + 1, np.int64)
    np.cumsum([len(e) for e in enc], out=offsets[1:])
    valid = None
    if any(v is None for v in values):
        valid = pa.py_buffer(np.packbits(np.array([v is not None for v in values], bool), bitorder="little"))
    if offsets[-1] < 2**31 - 1:
        return pa.Array.from_buffers(pa.string(), len(enc), [valid, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(enc))])
    return pa.Array.from_buffers(pa.large_string(), len(enc), [valid, pa.py_buffer(offsets), pa.py_buffer(b"".join(enc))])


def empty_array(typ: pa.DataType) -> pa.Array:
    """A zero-length array of `typ`."""
    return pa.nulls(0, typ)
