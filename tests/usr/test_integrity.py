"""Trust in the checks: dense-shaped datasets validate, leftovers are reported and cleaned,
bad ids and damaged parts fail in one line with nothing left behind (issue 11)."""

from __future__ import annotations

import datetime as dt
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq

from dnadesign.core.events import Actor
from dnadesign.densegen.sinks.records import Accepted, build_table
from dnadesign.densegen.sinks.usr_sink import UsrSink
from dnadesign.densegen.solver.types import Placement
from dnadesign.usr.arrowtypes import same_type
from dnadesign.usr.cli import app
from dnadesign.usr.schema import make_records
from dnadesign.usr.store import Dataset
from dnadesign.usr.validate import validate
from tests.conftest import invoke, run_cli


def usr(root, *args):
    return invoke(app, "--root", str(root), *args)


def _accepted(seq: str, k: int) -> Accepted:
    placements = (Placement("lexA:1", "lexA", 2, "+", seq[2:10]), Placement("cpxR:4", "cpxR", 12, "-", seq[12:20]),
                  Placement("sigma70:upstream", "promoter", 30, "+", seq[30:36], fixed=True))
    return Accepted(plan=f"plan{k % 2}", sequence=seq, placements=placements, objective=2.0, bound=2.0 if k % 2 else None,
                    optimal=bool(k % 2), solve_time_s=0.01 * k, library_hash="abc", library_index=k, library_size=8,
                    accepted_at=dt.datetime(2026, 11, 30, 12, 0, k, tzinfo=dt.UTC))


def test_dense_written_dataset_validates(usr_root):
    """`densegen__placements` (list<struct>) and `densegen__regulators` (list<string>) are recorded
    as `list<item: ...>` and read back from Parquet as `list<element: ...>`: the same type."""
    sink = UsrSink(usr_root, "densegen/demo", Actor.current("densegen"))
    seqs = ["".join(random.Random(k).choices("ACGT", k=60)) for k in range(12)]
    for start in (0, 6):  # two runs' flushes: two parts, the densegen columns stored with the records
        sink.write(build_table([_accepted(s, k) for k, s in enumerate(seqs[start:start + 6], start)], run_id="r1"))
    ds = Dataset.open(usr_root, "densegen/demo")
    man = ds.manifest()
    stored = pq.read_schema(ds.paths.file(man.parts[0].file)).field("densegen__placements").type
    assert str(stored).startswith("list<element:") and man.columns["densegen__placements"].startswith("list<item:")
    assert same_type(stored, man.columns["densegen__placements"])
    # a later overlay of the same column, as polars hands it over (large_list, large_string), is accepted
    frame = ds.scan().select(["id", "densegen__placements"]).head(2).collect()
    ds.write_overlay("densegen", frame.to_arrow())
    rep = validate(ds)
    assert rep.ok, rep.errors
    r = usr(usr_root, "validate", "densegen/demo")
    assert r.returncode == 0 and r.stdout.startswith("OK")
    frame = ds.scan().collect()
    assert frame.height == 12 and frame["densegen__placements"].list.len().to_list() == [3] * 12
    ds.compact()  # folding the overlay into the base keeps the types valid too
    assert validate(ds).ok and ds.scan().collect().sort("id").equals(frame.sort("id"))


def test_leftover_temp_files_are_reported_and_compact_removes_them(usr_root):
    ds = Dataset.create(usr_root, "test/t")
    ds.append(make_records(["ACGTACGTAA", "CCCCGGGGTT"]))
    tmp = ds.dir / "records" / ".part-20261130T000000000000Z-deadbeef.parquet.abc123.tmp"
    tmp.write_bytes(b"half a parquet file")
    r = usr(usr_root, "validate", "test/t")
    assert r.returncode == 0  # a warning, not an error: the committed data is fine
    line = next(x for x in r.stdout.splitlines() if "deadbeef" in x)
    assert line.startswith("warning: records/.part-20261130T000000000000Z-deadbeef.parquet.abc123.tmp")
    assert "`usr compact` removes it" in line
    r = usr(usr_root, "compact", "test/t", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["files_removed"] == 1
    assert not tmp.exists() and validate(ds).warnings == []


def test_overlong_dataset_id_is_one_line_and_leaves_nothing(usr_root):
    long_id = "demo/" + "x" * 300
    r = run_cli("usr", "--root", str(usr_root), "init", long_id)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert "300 characters" in r.stderr and "Traceback" not in r.stderr
    assert list(usr_root.iterdir()) == []  # no empty namespace directory
    r = run_cli("usr", "--root", str(usr_root), "import", long_id, "/nonexistent.csv", "--create")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and list(usr_root.iterdir()) == []


def test_head_on_a_truncated_part_is_one_line(usr_root, tmp_path):
    ds = Dataset.create(usr_root, "test/t")
    ds.append(make_records(["ACGTACGTAA", "CCCCGGGGTT", "GGGGAAAATT"]))
    part = ds.paths.file(ds.manifest().parts[0].file)
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    for args in (["head", "test/t", "-n", "5"], ["grep", "test/t", "ACGT"], ["export", "test/t", str(tmp_path / "x.csv")]):
        r = run_cli("usr", "--root", str(usr_root), *args)
        assert r.returncode == 1, args
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "ComputeError" not in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert part.name in lines[0] and "usr validate" in lines[0]
    assert not (tmp_path / "x.csv").exists()
    v = usr(usr_root, "validate", "test/t")
    assert v.returncode == 1 and "INVALID" in v.stdout


def test_reads_touch_only_what_they_return(usr_root):
    """head / get / grep read the row groups they need: a damaged later part does not stop them."""
    ds = Dataset.create(usr_root, "test/t")
    first = ds.append(make_records(["ACGTACGTAA", "CCCCGGGGTT"])).ids
    ds.write_overlay("lab", pa.table({"id": first, "score": [1.0, 2.0]}))
    ds.append(make_records(["GGGGAAAATT", "TTTTAAAACC"]))
    last = ds.paths.file(ds.manifest().parts[-1].file)
    last.write_bytes(b"PAR1 garbage")
    r = usr(usr_root, "head", "test/t", "-n", "2", "--json")
    assert r.returncode == 0 and [x["lab__score"] for x in json.loads(r.stdout)] == [1.0, 2.0]
    r = usr(usr_root, "get", "test/t", first[1], "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["lab__score"] == 2.0
    r = usr(usr_root, "grep", "test/t", "cccc", "--limit", "1", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)[0]["sequence"] == "CCCCGGGGTT"
    assert usr(usr_root, "head", "test/t", "-n", "3").returncode == 1  # the third row lives in the damaged part


def test_validate_cross_checks_spill_to_partitions(usr_root, monkeypatch):
    """The duplicate-id and overlay-key checks give the same answers when the keys are split
    into many on-disk partitions (how validate keeps memory flat on big datasets)."""
    from dnadesign.usr import validate as v
    from dnadesign.usr.manifest import union

    ds = Dataset.create(usr_root, "test/s")
    seqs = ["".join(random.Random(k).choices("ACGT", k=30)) for k in range(60)]
    ids = ds.append(make_records(seqs[:40])).ids
    ds.write_overlay("lab", pa.table({"id": ids[:30], "x": [1.0] * 30}))
    # a part that repeats 5 records (as a bad merge would leave it)
    base = ds.manifest()
    other = base.copy()
    other.parts.append(ds._write_part("records/part-29991231T000000000000Z-00000000.parquet", make_records(seqs[35:60])))
    union(base, other).save(ds.paths.manifest)
    # an overlay part with a duplicate key and a key that is no record, written behind the store's back
    bad = pa.table({"id": [ids[0], ids[0], "f" * 40], "lab__x": [1.0, 2.0, 3.0]})
    entry = ds._write_part("_derived/lab/part-29991231T000000000000Z-11111111.parquet", bad, {"usr:namespace": "lab"})
    man = ds.manifest()
    man.overlays["lab"].append(entry)
    man.save(ds.paths.manifest)
    expected = validate(ds)
    monkeypatch.setattr(v.KeySpill, "ROWS_PER_PARTITION", 4)
    spilled = validate(ds)
    assert spilled.as_dict() == expected.as_dict()
    assert "5 duplicate id(s) across parts" in spilled.errors
    assert [e for e in spilled.errors if "11111111" in e] == [
        "_derived/lab/part-29991231T000000000000Z-11111111.parquet: duplicate keys",
        "_derived/lab/part-29991231T000000000000Z-11111111.parquet: 1 key(s) are not records of the dataset"]


def test_validate_finds_bad_rows_in_a_part(usr_root):
    """Rows written behind the store's back: each kind of damage is found and named."""
    import datetime as _dt

    from dnadesign.core.ids import record_id

    ds = Dataset.create(usr_root, "test/v")
    ds.append(make_records(["ACGTACGTAA", "CCCCGGGGTT"]))
    now = _dt.datetime(2026, 11, 30, tzinfo=_dt.UTC)
    rows = [  # (bio_type, sequence, alphabet, length, id)
        ("dna", "acgtacgtcc", "dna_4", 10, record_id("dna", "ACGTACGTCC")),  # lower case, id of the upper-cased: fine
        ("dna", "ACGTACGTGG", "dna_4", 9, record_id("dna", "ACGTACGTGG")),  # wrong length
        ("dna", "ACGTNCGTGA", "dna_4", 10, record_id("dna", "ACGTNCGTGA")),  # N is not dna_4
        ("dna", "ACGTACGTTT", "dna_4", 10, "0" * 40),  # id does not match
        ("protein", "MKVL", "dna_4", 4, record_id("protein", "MKVL")),  # alphabet of another bio_type
        ("rna", "ACGUACGU", "rna_4", 8, record_id("rna", "ACGUACGU")),  # fine
    ]
    table = pa.table({"id": [r[4] for r in rows], "bio_type": [r[0] for r in rows], "sequence": [r[1] for r in rows],
                      "alphabet": [r[2] for r in rows], "length": pa.array([r[3] for r in rows], pa.int32()),
                      "source": ["x"] * len(rows), "created_at": pa.array([now] * len(rows), pa.timestamp("us", tz="UTC"))})
    entry = ds._write_part("records/part-29991231T000000000000Z-22222222.parquet", table)
    man = ds.manifest()
    man.parts.append(entry)
    man.save(ds.paths.manifest)
    errors = validate(ds).errors
    name = "records/part-29991231T000000000000Z-22222222.parquet"
    assert f"{name}, row 3: id {'0' * 40} does not match its sequence" in errors
    assert any(e.startswith(f"{name}: 1 row(s) whose length column is wrong") for e in errors)
    assert any(e.startswith(f"{name}: 2 sequence(s) outside their alphabet") for e in errors)  # N, and MKVL
    assert any(e.startswith(f"{name}: 1 row(s) whose alphabet does not fit the bio_type") for e in errors)
    assert len(errors) == 4, errors


def test_primary_only_pull_of_a_dense_written_dataset_keeps_its_columns(tmp_path, monkeypatch):
    """Values written with their records live in the base parts; a `--primary-only` pull (base parts
    only) must bring their column types along, or reads hide them and `validate` fails."""
    monkeypatch.setenv("USR_REMOTES_PATH", str(tmp_path / "remotes.yaml"))
    far, laptop = tmp_path / "far", tmp_path / "laptop"
    far.mkdir()
    ds = Dataset.create(far, "densegen/demo")
    recs = make_records(["".join(random.Random(k).choices("ACGT", k=40)) for k in range(8)])
    ds.append(recs, overlays={"densegen": pa.table({"id": recs.column("id"), "plan": ["p"] * 8})})
    assert usr(far, "remotes", "add", "far", str(far)).returncode == 0
    r = usr(laptop, "pull", "densegen/demo", "far", "-y", "--primary-only")
    assert r.returncode == 0, r.stdout + r.stderr
    mine = Dataset.open(laptop, "densegen/demo")
    assert validate(mine).ok, validate(mine).errors
    assert mine.scan().collect()["densegen__plan"].to_list() == ["p"] * 8
