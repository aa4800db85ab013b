import json

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnadesign.core.errors import ConflictError, InputError, NotFoundError
from dnadesign.core.events import read_events
from dnadesign.usr import query
from dnadesign.usr.manifest import Manifest, union
from dnadesign.usr.schema import make_records
from dnadesign.usr.store import Dataset
from dnadesign.usr.validate import validate


def _ds(root, seqs=("ACGTAC", "GGGTTT", "CCCAAA")):
    ds = Dataset.create(root, "test/a")
    res = ds.append(make_records(list(seqs), source="t"))
    return ds, res.ids


def test_append_dedupes_and_records_events(usr_root):
    ds, _ids = _ds(usr_root)
    with pytest.raises(ConflictError):
        ds.append(make_records(["ACGTAC", "TTTTTT"]))
    assert ds.manifest().rows == 3  # nothing written by the failed append
    res = ds.append(make_records(["acgtac", "TTTTTT"]), on_conflict="ignore")
    assert (res.added, res.skipped) == (1, 1)
    assert ds.scan().collect().height == 4
    acts = [e["action"] for e in read_events(ds.events_path)]
    assert acts == ["init", "append", "append"]
    last = read_events(ds.events_path)[-1]
    assert last["fingerprint"]["rows"] == 4 and last["metrics"]["rows_added"] == 1
    assert last["fingerprint"]["manifest"] == ds.manifest().digest()


def test_overlays_newest_wins_and_types_are_enforced(usr_root):
    ds, ids = _ds(usr_root)
    ds.write_overlay("infer", pa.table({"id": ids[:2], "score": [1.0, 2.0], "label": ["a", "b"]}))
    ds.write_overlay("infer", pa.table({"id": ids[:1], "score": [9.0]}))
    frame = ds.scan().collect().sort("sequence")
    got = dict(zip(frame["id"], frame["infer__score"], strict=True))
    assert got[ids[0]] == 9.0 and got[ids[1]] == 2.0 and got[ids[2]] is None
    assert dict(zip(frame["id"], frame["infer__label"], strict=True))[ids[0]] == "a"  # older value kept when the newer part lacks it
    ds.write_overlay("infer", pa.table({"id": ids[:1], "score": pa.array([3], pa.int64())}))  # int widens to float
    with pytest.raises(ConflictError, match="recorded as double"):
        ds.write_overlay("infer", pa.table({"id": ids[:1], "score": ["high"]}))
    with pytest.raises(InputError, match="not records"):
        ds.write_overlay("infer", pa.table({"id": ["0" * 40], "score": [1.0]}))
    assert ds.write_overlay("infer", pa.table({"id": ["0" * 40, ids[2]], "score": [1.0, 4.0]}), allow_missing=True) == {"rows": 1, "dropped": 1, "folded_rows": 0}
    with pytest.raises(InputError, match="belongs to namespace"):
        ds.write_overlay("infer", pa.table({"id": ids[:1], "other__x": [1]}))
    with pytest.raises(InputError, match="reserved"):
        ds.write_overlay("usr", pa.table({"id": ids[:1], "x": [1]}))


def test_append_with_overlay_is_one_commit(usr_root):
    ds = Dataset.create(usr_root, "test/a")
    recs = make_records(["AAAACCCC", "GGGGTTTT"])
    ov = pa.table({"id": recs.column("id"), "plan": ["p1", "p2"]})
    ds.append(recs, overlays={"densegen": ov})
    frame = ds.scan().collect()
    assert sorted(frame["densegen__plan"].to_list()) == ["p1", "p2"]
    assert [e["action"] for e in read_events(ds.events_path)] == ["init", "append"]


def test_tombstones_hide_and_restore(usr_root):
    ds, ids = _ds(usr_root)
    ds.delete([ids[0]], reason="qc fail")
    assert ids[0] not in ds.scan().collect()["id"].to_list()
    assert ids[0] in ds.scan(include_deleted=True).collect()["id"].to_list()
    assert query.get(ds, ids[0]) is None and query.get(ds, ids[0], include_deleted=True)["usr__deleted_reason"] == "qc fail"
    ds.restore([ids[0]])
    assert ds.scan().collect().height == 3
    with pytest.raises(InputError):
        ds.delete(["f" * 40])


def test_snapshots_are_manifests_and_restore(usr_root):
    ds, _ids = _ds(usr_root)
    snap = ds.snapshot("before")
    ds.append(make_records(["TTTTAAAA"]))
    assert ds.manifest().rows == 4
    assert (ds.dir / "_snapshots" / "before.json").stat().st_size < 4096
    ds.restore_snapshot("before")
    assert ds.manifest().rows == 3 and snap.rows == 3
    with pytest.raises(ConflictError):
        ds.snapshot("before")
    with pytest.raises(NotFoundError):
        ds.restore_snapshot("nope")


def test_materialize_then_overlay_still_wins_and_compact_keeps_snapshot_files(usr_root):
    ds, ids = _ds(usr_root)
    ds.write_overlay("infer", pa.table({"id": ids, "score": [1.0, 2.0, 3.0]}))
    ds.snapshot("s1")
    ds.materialize(["infer"])
    man = ds.manifest()
    assert man.overlays == {} and len(man.parts) == 1
    ds.write_overlay("infer", pa.table({"id": ids[:1], "score": [7.0]}))
    got = dict(zip(*ds.scan().collect().select("id", "infer__score").to_dict(as_series=False).values(), strict=True))
    assert got[ids[0]] == 7.0 and got[ids[1]] == 2.0
    ds.compact()
    assert validate(ds).ok
    ds.restore_snapshot("s1")  # files named by the snapshot survived compaction
    assert validate(ds).ok and ds.scan().collect().height == 3


def test_compact_merges_parts_and_removes_orphans(usr_root):
    ds = Dataset.create(usr_root, "test/a")
    for i in range(5):
        ds.append(make_records([f"ACGT{'A' * i}C", f"TTT{'G' * i}C"]))
    (ds.dir / "records" / "part-orphan.parquet").write_bytes(b"junk")
    rep = validate(ds)
    assert rep.ok and any("not referenced" in w for w in rep.warnings)
    res = ds.compact()
    assert res["files_after"] == 1 and res["files_removed"] >= 6
    assert ds.scan().collect().height == 10 and validate(ds).warnings == []


def test_validate_detects_corruption(usr_root):
    ds, _ids = _ds(usr_root)
    part = ds.dir / ds.manifest().parts[0].file
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    rep = validate(ds)
    assert not rep.ok and "sha256" in rep.errors[0]


def test_head_skips_tombstoned_rows(usr_root):
    ds = Dataset.create(usr_root, "test/a")
    res = ds.append(make_records([f"{'ACGT'[i % 4]}{'ACGT'[(i // 4) % 4]}{'ACGT'[(i // 16) % 4]}AAAA" for i in range(40)]))
    ds.delete(res.ids[:30])
    h = query.head(ds, 5)
    assert h.height == 5 and not set(h["id"]) & set(res.ids[:30])


seq_st = st.text(alphabet="ACGT", min_size=4, max_size=12)


@settings(max_examples=40, deadline=None)
@given(st.lists(seq_st, max_size=12, unique=True), st.lists(seq_st, max_size=12, unique=True), st.lists(seq_st, max_size=6, unique=True))
def test_manifest_union_keeps_everything_and_is_symmetric(tmp_path_factory, common, left, right):
    root = tmp_path_factory.mktemp("u")
    ds = Dataset.create(root, "test/a")
    if common:
        ds.append(make_records(common))
    base = ds.manifest()
    a, b = base.copy(), base.copy()
    import uuid

    for target, seqs in ((a, left), (b, right)):
        seqs = [s for s in seqs if s not in common]  # a side never appends an id it already holds
        if seqs:
            entry = ds._write_part(f"records/part-x-{uuid.uuid4().hex}.parquet", make_records(seqs))
            target.parts.append(entry)
    m1, m2 = union(a, b), union(b, a)
    assert m1.to_json().replace(m1.updated_at.encode(), b"") == m2.to_json().replace(m2.updated_at.encode(), b"")
    assert {e.file for e in m1.parts} == {e.file for e in a.parts} | {e.file for e in b.parts}
    assert union(m1, a).parts == m1.parts  # idempotent
    m1.save(ds.paths.manifest)
    expected = set(common) | set(left) | set(right)
    assert set(ds.scan().collect()["sequence"]) == expected
    assert ds.scan().collect().height == len(expected)  # duplicates from both sides read once


def test_manifest_rejects_garbage(tmp_path):
    from dnadesign.core.errors import IntegrityError

    with pytest.raises(IntegrityError):
        Manifest.from_json(b"{not json")
    with pytest.raises(IntegrityError):
        Manifest.from_json(json.dumps({"format": "other"}).encode())
