"""Dataset ids, record ids and content hashes: the same value on every machine."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from .errors import DatasetIdError

_PART = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def validate_dataset_id(dataset_id: str) -> str:
    """Return `dataset_id` if it is `namespace/name` with safe parts, else raise DatasetIdError.

    Each part matches `[a-z0-9][a-z0-9_.-]*`; absolute paths, `..`, empty parts and anything that
    could escape a root or a remote shell are rejected before they touch a filesystem.
    """
    if not isinstance(dataset_id, str) or not dataset_id:
        raise DatasetIdError("dataset id is empty", hint="use the form namespace/name, e.g. densegen/demo")
    parts = dataset_id.split("/")
    if len(parts) != 2 or not all(_PART.match(p) for p in parts) or any(p in {".", ".."} or ".." in p for p in parts):
        raise DatasetIdError(
            f"invalid dataset id {dataset_id!r}",
            hint="use namespace/name with lowercase letters, digits, '_', '.', '-' (e.g. densegen/demo)",
        )
    return dataset_id


def record_id(bio_type: str, sequence: str) -> str:
    """sha1 of `"{bio_type}|{SEQUENCE}"`, the sequence upper-cased for dna/rna."""
    seq = sequence.strip()
    if bio_type in ("dna", "rna"):
        seq = seq.upper()
    return hashlib.sha1(f"{bio_type}|{seq}".encode()).hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of a byte string."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
