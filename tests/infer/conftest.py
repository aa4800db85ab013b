"""Helpers for the `infer` tests: small real USR datasets and the CLI run in-process or as a process."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from dnadesign.usr.manifest import Manifest
from dnadesign.usr.schema import make_records
from dnadesign.usr.store import Dataset

DS = "demo/arrays"


def random_seqs(n: int, seed: int, length: int | tuple[int, int] = 100) -> list[str]:
    r = random.Random(seed)
    lo, hi = (length, length) if isinstance(length, int) else length
    return ["".join(r.choice("ACGT") for _ in range(r.randint(lo, hi))) for _ in range(n)]


def make_dataset(root: Path, n: int = 300, seed: int = 1, ds_id: str = DS, length: int | tuple[int, int] = 100) -> Dataset:
    ds = Dataset.create(root, ds_id, source="test", exist_ok=True)
    ds.append(make_records(random_seqs(n, seed, length), source="test"), on_conflict="ignore")
    return ds


def state(root: Path, ds_id: str = DS) -> tuple[bytes, bytes, bytes]:
    """Everything a failed run must leave untouched: manifest, event log, meta.md."""
    d = root / ds_id
    return ((d / "manifest.json").read_bytes(), (d / ".events.log").read_bytes(), (d / "meta.md").read_bytes())


def overlay_ids(root: Path, namespace: str, ds_id: str = DS) -> list[str]:
    """Every id written to a namespace, one entry per overlay-part row (duplicates show up twice)."""
    import pyarrow.parquet as pq

    man = Manifest.load(root / ds_id / "manifest.json")
    out: list[str] = []
    for entry in man.overlays.get(namespace, []):
        out += pq.read_table(root / ds_id / entry.file, columns=["id"]).column("id").to_pylist()
    return out


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "usr"
    r.mkdir()
    return r
