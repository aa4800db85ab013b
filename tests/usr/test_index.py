"""The id index (LSM runs of 48-bit keys + row group) and the manifest's compaction provenance."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnadesign.core.errors import ConflictError, InputError
from dnadesign.usr import index as idx
from dnadesign.usr.keys import digests, id_keys, keys64
from dnadesign.usr.manifest import union
from dnadesign.usr.schema import make_records
from dnadesign.usr.store import Dataset
from dnadesign.usr.validate import validate


def _runs(ds: Dataset, group: str = "base") -> list[idx.Run]:
    return idx.list_runs(ds.paths.index_dir, group)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=20, max_size=20), max_size=50))
def test_vectorised_hex_decoding_matches_bytes_fromhex(raw):
    ids = [r.hex() for r in raw] + ["ABC", "g" * 40, "A" * 40]
    d, ok = digests(pa.array([*ids, None]))
    assert ok.tolist() == [True] * len(raw) + [False] * 4
    assert [bytes(x) for x in d[: len(raw)]] == raw
    assert keys64(d[: len(raw)]).tolist() == [int.from_bytes(r[:8], "big") for r in raw]


def test_runs_stay_few_and_lookups_stay_exact(usr_root):
    ds = Dataset.create(usr_root, "test/i")
    all_ids = []
    for b in range(40):  # 40 appends: tier merges keep the run count logarithmic
        stem = f"{b:06b}".replace("0", "A").replace("1", "C")
        all_ids += ds.append(make_records([stem + s for s in ("GGTT", "TTGG", "GTGT")])).ids
    runs = _runs(ds)
    assert 1 <= len(runs) <= 8 and sum(r.n for r in runs) == len(all_ids)
    assert ds.has_ids([*all_ids, "0" * 40]) == set(all_ids)
    with pytest.raises(ConflictError, match="already exist"):
        ds.append(make_records(["AAAAAAGGTT"]))
    # the index is a cache: deleting it loses nothing, the next read rebuilds it
    for p in ds.paths.index_dir.iterdir():
        p.unlink()
    assert ds.has_ids(all_ids[:5]) == set(all_ids[:5])
    assert _runs(ds)


def test_48_bit_key_collisions_are_resolved_exactly(usr_root):
    """Two ids whose first 48 bits agree: the index finds both candidates, the row group decides."""
    ds = Dataset.create(usr_root, "test/c")
    base = make_records(["ACGTACGTAC"])
    real = base.column("id")[0].as_py()
    twin = real[:12] + ("0" if real[12] != "0" else "1") + real[13:]  # same 48-bit key, different id
    assert id_keys(pa.array([real]))[0][0] >> np.uint64(16) == id_keys(pa.array([twin]))[0][0] >> np.uint64(16)
    ds.append(base)
    assert ds.has_ids([twin]) == set()  # a candidate, not a member
    fake = base.set_column(0, "id", pa.array([twin]))  # a record under the colliding id (index behaviour only)
    res = ds.append(fake, on_conflict="error")
    assert res.added == 1 and ds.has_ids([real, twin]) == {real, twin}
    assert ds.locate(twin) is not None and ds.locate(twin) != ds.locate(real)
    with pytest.raises(InputError, match="not records"):
        ds.write_overlay("lab", pa.table({"id": [hashlib.sha1(b"x").hexdigest()], "v": [1.0]}))


def test_runs_for_retired_parts_are_dropped_and_legacy_files_removed(usr_root):
    ds = Dataset.create(usr_root, "test/g")
    for i in range(6):
        stem = f"{i:04b}".replace("0", "A").replace("1", "G")
        ds.append(make_records([f"ACGT{stem}AAAC", f"TTGC{stem}GGTA"]))
    (ds.paths.index_dir / "part-old.ids").write_bytes(b"\0" * 20)
    ds.compact(target_rows=100)
    live = {(e.file, e.sha256) for e in ds.manifest().parts}
    for run in _runs(ds):
        assert all((p.file, p.sha256) in live for p in run.parts)
    assert not list(ds.paths.index_dir.glob("*.ids"))
    assert validate(ds).ok


def test_union_drops_files_a_compaction_retired(usr_root):
    """Side A compacts; side B still lists the old parts and appended one more. The union keeps
    A's compacted part and B's new part, not the retired ones (no revival, no double storage)."""
    ds = Dataset.create(usr_root, "test/u")
    for i in range(3):
        ds.append(make_records([f"ACGTAC{'ACGT'[i]}GG", f"CCGTAC{'ACGT'[i]}TT"]))
    b = ds.manifest()
    ds.compact(target_rows=100)
    a = ds.manifest()
    assert len(a.parts) == 1 and set(a.parts[0].replaces) == {e.file for e in b.parts}
    extra = ds._write_part("records/part-99999999T999999999999Z-b0000000.parquet", make_records(["GGGGTTTTAA"]))
    b.parts.append(extra)
    for m in (union(a, b), union(b, a)):
        assert [e.file for e in m.parts] == sorted([a.parts[0].file, extra.file])
        assert m.dedupe_on_read  # both sides added parts the other lacks
    only_a = union(a, ds.manifest())
    assert [e.file for e in only_a.parts] == [a.parts[0].file] and not only_a.dedupe_on_read
    u = union(a, b)
    u.save(ds.paths.manifest)
    assert ds.scan().select("sequence").collect().height == 7 and validate(ds).ok


def _appended(ds: Dataset, batches: int) -> list[str]:
    ids: list[str] = []
    for b in range(batches):
        stem = f"{b:05b}".replace("0", "A").replace("1", "T")
        ids += ds.append(make_records([f"GG{stem}CCA", f"CA{stem}GTG"])).ids
    return ids


def test_a_reader_survives_a_merge_of_the_runs_it_listed(usr_root, monkeypatch):
    """Readers take no lock, so another task's append may merge (and unlink) the runs a reader
    has just listed before it maps them: a Slurm array task died of that (FileNotFoundError on
    `_index/base-*.run`). The reader lists again and answers exactly."""
    ds = Dataset.create(usr_root, "test/race")
    ids = _appended(ds, 3)
    real = idx.list_runs
    merged: list[int] = []

    def listed_then_merged(index_dir, group):
        runs = real(index_dir, group)
        if not merged and len(runs) > 1:  # the other writer's merge lands right after the listing
            want = {(e.file, e.sha256) for e in ds.manifest().parts}
            theirs = real(index_dir, group)  # the other process's own copies (ours stay unmapped)
            assert idx.merge_runs(index_dir, group, theirs, want) is not None
            for run in theirs:
                run.path.unlink()
            merged.append(len(runs))
        return runs

    monkeypatch.setattr(idx, "list_runs", listed_then_merged)
    assert ds.has_ids([*ids, "0" * 40]) == set(ids)
    assert merged and merged[0] > 1  # the fault was injected: the listed runs were gone
    assert len(real(ds.paths.index_dir, "base")) == 1  # the merged run was used, not a rescan
    assert validate(ds).ok


def test_mapped_runs_outlive_their_unlink(usr_root):
    """A reader that built its index keeps answering after a writer removes the run files."""
    ds = Dataset.create(usr_root, "test/unlinked")
    ids = _appended(ds, 3)
    gi = idx.GroupIndex(ds.dir, ds.paths.index_dir, idx.BASE_GROUP, ds.manifest().parts)
    for run in _runs(ds):
        run.path.unlink()
    keys, _ = id_keys(pa.array(ids))
    assert gi.may_contain(keys).all()
    assert validate(ds).ok
