"""`usr validate`: check a dataset against its manifest and the record rules, streaming row groups.

Per part: presence, size, sha256 and row count against the manifest; the record columns and their
types; then, batch by batch, nulls, id syntax, the recomputed id (`sha1("{bio_type}|{SEQUENCE}")`),
`length`, alphabets and bio types. Across parts: duplicate ids. Per overlay part: the recorded
column types (compared by structure, so `list<element: ...>` equals `list<item: ...>`), duplicate
keys, and keys that are not records. Leftover files (unreferenced parts, `.tmp` files of killed
writes) are warnings that name the file and the fix.

Memory stays flat: one batch of rows plus 8 bytes per record (the sorted 64-bit id keys used for
the duplicate and foreign-key checks; exact ids are compared only for the rare key collisions).
The id hashing is one C call per row over a contiguous buffer; everything else is vectorised.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..core.ids import sha256_file
from .arrowtypes import same_type
from .keys import arrow_ints, digests, keys64
from .manifest import FileEntry, Manifest
from .schema import ALPHABETS, RECORD_FIELDS, RECORD_SCHEMA
from .store import Dataset

BATCH_ROWS = 131_072
_ALPHABET_NAMES = list(ALPHABETS)
_BIO_NAMES = ["dna", "rna", "protein"]
_ALPHABET_BIO = np.array([_BIO_NAMES.index(bio) for bio, _ in ALPHABETS.values()] + [-1])  # unknown alphabet -> -1
_ALLOWED = np.zeros((len(_ALPHABET_NAMES), 256), bool)
for _i, (_name, (_bio, _letters)) in enumerate(ALPHABETS.items()):
    for _ch in _letters:
        _ALLOWED[_i, ord(_ch)] = True
        if _bio != "protein":
            _ALLOWED[_i, ord(_ch.lower())] = True


@dataclass
class ValidationReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rows: int = 0
    files: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "files": self.files, "errors": self.errors, "warnings": self.warnings}


def _check_file(ds: Dataset, entry: FileEntry, rep: ValidationReport, hashes: bool, base: bool = False) -> pq.ParquetFile | None:
    path = ds.paths.file(entry.file)
    if not path.exists():
        rep.errors.append(f"{entry.file}: listed in the manifest but missing")
        return None
    size = path.stat().st_size
    if size != entry.bytes:
        rep.errors.append(f"{entry.file}: size {size} != manifest {entry.bytes} (truncated or replaced)")
        return None
    if hashes and sha256_file(path) != entry.sha256:
        rep.errors.append(f"{entry.file}: sha256 does not match the manifest (file corrupted or replaced)")
        return None
    try:
        pf = pq.ParquetFile(path, read_dictionary=["bio_type", "alphabet"] if base else None, pre_buffer=False)
    except (OSError, pa.ArrowException) as exc:
        rep.errors.append(f"{entry.file}: not a readable Parquet file ({str(exc).splitlines()[0][:120]})")
        return None
    if pf.metadata.num_rows != entry.rows:
        rep.errors.append(f"{entry.file}: {pf.metadata.num_rows} rows, manifest says {entry.rows}")
        return None
    return pf


def _batches(pf: pq.ParquetFile, columns: list[str]):
    """Tables of about BATCH_ROWS rows (whole row groups), with their first row number."""
    start, group, rows = 0, [], 0
    for rg in range(pf.num_row_groups):
        group.append(rg)
        rows += pf.metadata.row_group(rg).num_rows
        if rows >= BATCH_ROWS:
            yield start, pf.read_row_groups(group, columns=columns)
            start, group, rows = start + rows, [], 0
    if group:
        yield start, pf.read_row_groups(group, columns=columns)


def _offsets(arr: pa.Array) -> tuple[np.ndarray, bytes]:
    """(offsets rebased to 0, as int64; the bytes they index) of a string array, without casting it."""
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.large_string())
    width = 8 if pa.types.is_large_string(arr.type) else 4
    _, off, data = arr.buffers()
    o = np.frombuffer(off, dtype=np.int64 if width == 8 else np.int32, count=len(arr) + 1, offset=arr.offset * width).astype(np.int64)
    body = data.slice(int(o[0]), int(o[-1] - o[0])).to_pybytes() if data is not None else b""
    return o - o[0], body


def _sha1_rows(data: bytes | memoryview, bounds: list[int] | None = None, width: int = 0) -> np.ndarray:
    """sha1 digest of each row of `data`: rows end at `bounds`, or are `width` bytes each."""
    sha1 = hashlib.sha1
    if bounds is None:
        out = b"".join([sha1(data[i:i + width]).digest() for i in range(0, len(data), width)])
    else:
        out = b"".join([sha1(data[a:b]).digest() for a, b in itertools.pairwise(bounds)])
    return np.frombuffer(out, dtype=np.uint8).reshape(-1, 20)


def expected_digests(bio_type: pa.Array, sequence: pa.Array, stored: np.ndarray | None = None) -> np.ndarray:
    """(n, 20) sha1 digests of `"{bio_type}|{SEQUENCE}"` (upper-cased for dna/rna), one C call per row.

    Sequences are hashed as stored (they are stored upper-cased); rows that then differ from
    `stored` are hashed again upper-cased, which is exact and rare. A batch with one bio_type and
    one sequence length (the usual case) is laid out with numpy, without building strings.
    """
    n = len(sequence)
    if n == 0:
        return np.zeros((0, 20), np.uint8)
    offs, data = _offsets(sequence)
    lengths = np.diff(offs)
    kinds = pc.unique(bio_type.dictionary_decode() if pa.types.is_dictionary(bio_type.type) else bio_type)
    if len(kinds) == 1 and (lengths == lengths[0]).all():
        prefix = np.frombuffer(str(kinds[0].as_py()).encode() + b"|", np.uint8)
        width = len(prefix) + int(lengths[0])
        rows = np.empty((n, width), np.uint8)
        rows[:, :len(prefix)] = prefix
        rows[:, len(prefix):] = np.frombuffer(data, np.uint8).reshape(n, int(lengths[0]))
        out = _sha1_rows(rows.data.cast("B"), width=width)
    else:
        out = _joined_digests(bio_type, sequence)
    if stored is not None:
        redo = np.flatnonzero((out != stored).any(axis=1))
        if len(redo):
            take = arrow_ints(redo)
            bio_sub = bio_type.take(take)
            bio_txt = bio_sub.dictionary_decode() if pa.types.is_dictionary(bio_sub.type) else bio_sub
            nucleic = pc.is_in(bio_txt, value_set=pa.array(["dna", "rna"]))
            seq_sub = sequence.take(take)
            out = out.copy()
            out[redo] = _joined_digests(bio_txt, pc.if_else(nucleic, pc.utf8_upper(seq_sub), seq_sub))
    return out


def _joined_digests(bio_type: pa.Array, sequence: pa.Array) -> np.ndarray:
    bio = bio_type.dictionary_decode() if pa.types.is_dictionary(bio_type.type) else bio_type
    keyed = pc.binary_join_element_wise(bio.cast(pa.large_string()), sequence.cast(pa.large_string()), pa.scalar("|", pa.large_string()))
    koffs, kdata = _offsets(keyed)
    return _sha1_rows(kdata, koffs.tolist())


def _codes(arr: pa.Array, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the index of its value in `names` (len(names) if absent), and an absent mask.
    Works on the dictionary of a dictionary-encoded column (a handful of values)."""
    if pa.types.is_dictionary(arr.type):
        dict_codes = np.array([names.index(v) if v in names else len(names) for v in arr.dictionary.to_pylist()] + [len(names)], np.int64)
        idx_np = np.asarray(arr.indices.fill_null(len(dict_codes) - 1).to_numpy(zero_copy_only=False), np.int64)
        codes = dict_codes[idx_np]
    else:
        found = pc.index_in(arr, value_set=pa.array(names))
        codes = np.asarray(found.fill_null(len(names)).to_numpy(zero_copy_only=False), np.int64)
    return codes, codes == len(names)


_ALLOWED_BYTES = [bytes(np.flatnonzero(row).astype(np.uint8)) for row in _ALLOWED]


def _alphabet_bad(codes: np.ndarray, unknown: np.ndarray, sequence: pa.Array) -> np.ndarray:
    """Rows with a character outside their (known) alphabet."""
    offs, body = _offsets(sequence)
    present = np.unique(codes[~unknown])
    bad = np.zeros(len(codes), bool)
    if len(present) == 0:
        return bad
    if len(present) == 1 and not body.translate(None, _ALLOWED_BYTES[present[0]]):
        return bad  # the usual batch: one alphabet and every character in it (one C scan)
    chars = np.frombuffer(body, np.uint8)
    per_char = np.repeat(np.minimum(codes, len(_ALPHABET_NAMES) - 1).astype(np.int32), np.diff(offs))
    ok_chars = _ALLOWED.reshape(-1)[per_char * 256 + chars]
    bad_pos = np.flatnonzero(~ok_chars)
    if len(bad_pos):
        bad[np.searchsorted(offs[1:], bad_pos, "right")] = True
    return bad & ~unknown


def _example(ids: pa.Array, mask: np.ndarray) -> str:
    return str(ids[int(np.argmax(mask))].as_py())


def _check_base_part(entry: FileEntry, pf: pq.ParquetFile, rep: ValidationReport, max_examples: int) -> np.ndarray | None:
    """Row checks of one base part; returns its 64-bit id keys (None if the part is unusable)."""
    sch = pf.schema_arrow
    missing = [c for c in RECORD_FIELDS if c not in sch.names]
    if missing:
        rep.errors.append(f"{entry.file}: missing record column(s) {', '.join(missing)}")
        return None
    for f in RECORD_SCHEMA:
        if not same_type(sch.field(f.name).type, f.type):
            rep.errors.append(f"{entry.file}: column {f.name} is {sch.field(f.name).type}, expected {f.type}")
            return None
    keys = []
    examples = 0
    counts = {"null": 0, "id": 0, "length": 0, "alphabet": 0, "unknown": 0, "bio": 0}
    first: dict[str, str] = {}
    try:
        for start, t in _batches(pf, list(RECORD_FIELDS)):
            t = t.combine_chunks()
            nulls = [c for c in RECORD_FIELDS if t.column(c).null_count]
            if nulls:
                rep.errors.append(f"{entry.file}: null values in {', '.join(nulls)} (rows {start}..{start + t.num_rows - 1})")
                return None
            ids = t.column("id").chunk(0) if t.num_rows else pa.array([], pa.string())
            seq = t.column("sequence").chunk(0) if t.num_rows else pa.array([], pa.string())
            bio = t.column("bio_type").chunk(0) if t.num_rows else pa.array([], pa.string())
            d, well_formed = digests(ids)
            keys.append(keys64(d))
            wrong = ~well_formed | (expected_digests(bio, seq, d) != d).any(axis=1)
            if wrong.any():
                for row in np.flatnonzero(wrong)[: max(0, max_examples - examples)]:
                    rep.errors.append(f"{entry.file}, row {start + int(row)}: id {ids[int(row)].as_py()} does not match its sequence")
                    examples += 1
                counts["id"] += int(wrong.sum())
            lengths = np.asarray(pc.utf8_length(seq).to_numpy(zero_copy_only=False))
            bad_len = lengths != np.asarray(t.column("length").to_numpy())
            if bad_len.any():
                counts["length"] += int(bad_len.sum())
                first.setdefault("length", _example(ids, bad_len))
            alphabet = t.column("alphabet").chunk(0) if t.num_rows else pa.array([], pa.string())
            codes, unknown = _codes(alphabet, _ALPHABET_NAMES)
            bad_chars = _alphabet_bad(codes, unknown, seq)
            if unknown.any():
                counts["unknown"] += int(unknown.sum())
                first.setdefault("unknown", str(alphabet[int(np.argmax(unknown))].as_py()))
            if bad_chars.any():
                counts["alphabet"] += int(bad_chars.sum())
                first.setdefault("alphabet", _example(ids, bad_chars))
            bio_codes, _ = _codes(bio, _BIO_NAMES)
            bad_bio = (_ALPHABET_BIO[codes] != bio_codes) & ~unknown
            if bad_bio.any():
                counts["bio"] += int(bad_bio.sum())
                first.setdefault("bio", _example(ids, bad_bio))
    except (OSError, pa.ArrowException) as exc:
        rep.errors.append(f"{entry.file}: cannot be read ({str(exc).splitlines()[0][:120]})")
        return None
    if counts["id"] > examples:
        rep.errors.append(f"{entry.file}: {counts['id']} row(s) in all whose id does not match the sequence")
    if counts["length"]:
        rep.errors.append(f"{entry.file}: {counts['length']} row(s) whose length column is wrong (e.g. id {first['length']})")
    if counts["alphabet"]:
        rep.errors.append(f"{entry.file}: {counts['alphabet']} sequence(s) outside their alphabet (e.g. id {first['alphabet']})")
    if counts["unknown"]:
        rep.errors.append(f"{entry.file}: unknown alphabet {first['unknown']!r}")
    if counts["bio"]:
        rep.errors.append(f"{entry.file}: {counts['bio']} row(s) whose alphabet does not fit the bio_type (e.g. id {first['bio']})")
    return np.concatenate(keys) if keys else np.zeros(0, np.uint64)


def _exact_duplicates(ds: Dataset, man: Manifest, dup_keys: np.ndarray) -> int:
    """Rows beyond the first copy of an id, counted exactly for ids whose 64-bit key repeats."""
    counts: dict[str, int] = {}
    for entry in man.parts:
        pf = pq.ParquetFile(ds.paths.file(entry.file), pre_buffer=False)
        for _, t in _batches(pf, ["id"]):
            ids = t.column("id").combine_chunks()
            k = keys64(digests(ids)[0])
            at = np.searchsorted(dup_keys, k)
            at[at >= len(dup_keys)] = 0
            for i in np.flatnonzero(dup_keys[at] == k):
                rid = ids[int(i)].as_py()
                counts[rid] = counts.get(rid, 0) + 1
    return sum(c - 1 for c in counts.values() if c > 1)


def _check_overlay_part(entry: FileEntry, pf: pq.ParquetFile, man: Manifest, base_keys: np.ndarray, rep: ValidationReport) -> None:
    sch = pf.schema_arrow
    if "id" not in sch.names:
        rep.errors.append(f"{entry.file}: overlay part has no id column")
        return
    for name in sch.names:
        if name == "id":
            continue
        recorded = man.columns.get(name)
        if recorded is None:
            rep.errors.append(f"{entry.file}: column {name} has no recorded type in the manifest")
        elif not same_type(sch.field(name).type, recorded):
            rep.errors.append(f"{entry.file}: column {name} is {sch.field(name).type}, recorded as {recorded}")
    keys = []
    malformed = 0
    for _, t in _batches(pf, ["id"]):
        d, ok = digests(t.column("id"))
        malformed += int((~ok).sum())
        keys.append(keys64(d)[ok])
    k = np.sort(np.concatenate(keys)) if keys else np.zeros(0, np.uint64)
    if malformed:
        rep.errors.append(f"{entry.file}: {malformed} key(s) are not well-formed ids")
    if len(k) > 1 and (k[1:] == k[:-1]).any():
        rep.errors.append(f"{entry.file}: duplicate keys")
    if len(k):
        at = np.searchsorted(base_keys, k)
        at[at >= len(base_keys)] = 0
        foreign = int((base_keys[at] != k).sum()) if len(base_keys) else len(k)
        if foreign:
            rep.errors.append(f"{entry.file}: {foreign} key(s) are not records of the dataset")


def _base_derived_types(entry: FileEntry, pf: pq.ParquetFile, man: Manifest, rep: ValidationReport) -> None:
    """Derived columns stored in a base part (after materialize/compact) must match their recorded type."""
    for f in pf.schema_arrow:
        if f.name in RECORD_FIELDS:
            continue
        recorded = man.columns.get(f.name)
        if recorded is None:
            rep.errors.append(f"{entry.file}: column {f.name} has no recorded type in the manifest")
        elif not same_type(f.type, recorded):
            rep.errors.append(f"{entry.file}: column {f.name} is {f.type}, recorded as {recorded}")


def validate(ds: Dataset, *, hashes: bool = True, max_examples: int = 5) -> ValidationReport:
    """Check part hashes and row counts, record schema, recomputed ids, lengths, alphabets,
    duplicate ids, overlay keys and column types; report leftover files as warnings."""
    rep = ValidationReport()
    man = ds.manifest()
    key_chunks = []
    for entry in man.parts:
        rep.files += 1
        pf = _check_file(ds, entry, rep, hashes, base=True)
        if pf is None:
            continue
        _base_derived_types(entry, pf, man, rep)
        keys = _check_base_part(entry, pf, rep, max_examples)
        if keys is not None:
            rep.rows += entry.rows
            key_chunks.append(keys)
    base_keys = np.sort(np.concatenate(key_chunks)) if key_chunks else np.zeros(0, np.uint64)
    del key_chunks
    repeated = base_keys[1:] == base_keys[:-1] if len(base_keys) > 1 else np.zeros(0, bool)
    if repeated.any():
        dups = _exact_duplicates(ds, man, np.unique(base_keys[1:][repeated]))
        if dups:
            msg = f"{dups} duplicate id(s) across parts"
            if man.dedupe_on_read:
                rep.warnings.append(msg + " (hidden on read after a merge; `usr compact` removes them)")
            else:
                rep.errors.append(msg)
    for entries in man.overlays.values():
        for entry in entries:
            rep.files += 1
            pf = _check_file(ds, entry, rep, hashes)
            if pf is not None:
                _check_overlay_part(entry, pf, man, base_keys, rep)
    orphans, temps = ds.leftover_files(man)
    for rel in orphans:
        rep.warnings.append(f"{rel}: not referenced by the manifest or a snapshot (left by an interrupted write; `usr compact` removes it)")
    for rel in temps:
        rep.warnings.append(f"{rel}: temp file of an interrupted write (`usr compact` removes it)")
    return rep


__all__ = ["ValidationReport", "expected_digests", "validate"]
