"""`usr migrate`: incumbent datasets (built from the reference layout) become datasets of this store,
keeping every row and derived column; what cannot be carried is refused or reported in one line.

Real subprocesses of the console script for the user path; `usr validate` checks every result.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dnadesign.core.errors import DatasetIdError, InputError
from dnadesign.core.events import read_events
from dnadesign.core.ids import record_id
from dnadesign.usr.incumbent import find_incumbent_datasets, map_dataset_id
from dnadesign.usr.migrate import migrate
from dnadesign.usr.store import Dataset
from tests.conftest import run_cli, script
from tests.usr.incumbent_fixture import build, incumbent_id, sequences


def usr(root: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return run_cli("usr", "--root", str(root), *args, **kw)


def tree_digest(path: Path) -> dict[str, str]:
    """sha256 of every file below `path` (to prove the source is left exactly as it was)."""
    return {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.rglob("*")) if p.is_file()}


def assert_valid(root: Path, dataset: str) -> None:
    r = usr(root, "validate", dataset)
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr


def one_error_line(r: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("usr: error: "), r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


@pytest.mark.parametrize(("old", "new"), [
    ("densegen_demo_hpc", "densegen/demo_hpc"), ("densegen/my_dataset", "densegen/my_dataset"),
    ("quickstart", "imported/quickstart"), ("Densegen_Demo", "densegen/demo"), ("infer/Run-1", "infer/run-1"),
])
def test_flat_and_qualified_ids_map_by_the_documented_rule(old, new):
    assert map_dataset_id(old) == new


@pytest.mark.parametrize("old", ["a/b/c", "-lead", "bad name", "ns/..x"])
def test_ids_without_a_valid_mapping_are_refused_with_a_hint(old):
    with pytest.raises(DatasetIdError) as e:
        map_dataset_id(old)
    assert "--to" in e.value.render()


def test_full_migration_keeps_rows_derived_columns_tombstones_state_snapshots_and_history(tmp_path):
    root = tmp_path / "root"
    inc = build(root)
    before = tree_digest(inc.path)
    r = usr(root, "migrate", "densegen_demo")
    assert r.returncode == 0, r.stderr
    assert "Migrated incumbent dataset densegen_demo" in r.stdout and "to densegen/demo" in r.stdout
    assert "not carried _artifacts/" in r.stdout and "line 6: torn last line" in r.stdout
    assert tree_digest(inc.path) == before  # the source is untouched
    assert not list(root.glob(".usr-migrate-*"))  # no staging left behind
    assert_valid(root, "densegen/demo")

    ds = Dataset.open(root, "densegen/demo")
    every = {r["sequence"]: r for r in ds.scan(include_deleted=True).collect().to_dicts()}
    assert len(every) == len(inc.sequences)  # every row, none duplicated
    visible = ds.scan().collect()
    assert visible.height == len(inc.sequences) - 1  # one tombstone hides one record
    new_id = {old: record_id("dna", s) for old, s in zip(inc.ids, inc.sequences, strict=True)}
    for k, (old, seq) in enumerate(zip(inc.ids, inc.sequences, strict=True)):
        rec = every[seq.upper()]
        assert rec["id"] == new_id[old]
        assert rec["source"] == f"densegen:regulondb:plan_{k % 2}"  # per-row source kept
        assert rec["created_at"].isoformat().startswith(f"2026-03-01T12:{k:02d}")  # created_at kept
        assert rec["densegen__plan"] == inc.plan[old]  # newest overlay part wins per key
        assert rec["densegen__used_tfbs_detail"][0]["regulator"] == "lexA"  # nested list<struct> kept
        assert rec["quickstart__X_value"] == k / 2  # materialized base column kept as an overlay
        assert rec["infer__score"] == inc.score.get(old)  # sequence-keyed overlay follows the sequence
    state = every[inc.sequences[0].upper()]
    assert state["usr_state__masked"] is True and state["usr_state__qc_status"] == "fail"
    assert state["usr_state__supersedes"] == new_id[inc.ids[1]]  # id-valued state follows the new ids
    assert state["usr_state__lineage"] == [new_id[inc.ids[1]], new_id[inc.ids[2]]]
    gone = every[inc.sequences[-1]]
    assert gone["usr__deleted"] is True and gone["usr__deleted_reason"] == "bad design"

    snaps = json.loads(usr(root, "snapshot", "list", "densegen/demo", "--json").stdout)
    assert [(s["name"], s["rows"]) for s in snaps] == [("incumbent-20260301T120000000000", 6), ("incumbent-20260301T130000000000", 9)]
    assert usr(root, "snapshot", "restore", "densegen/demo", "incumbent-20260301T120000000000").returncode == 0
    assert Dataset.open(root, "densegen/demo").manifest().rows == 6
    assert_valid(root, "densegen/demo")

    log = (root / "densegen/demo/.events.log").read_text()
    assert "SECRET" not in log and "hooks.slack.com/services" not in log and str(root) not in log
    events = read_events(root / "densegen/demo/.events.log")
    history = [e for e in events if e["action"] == "migrated_event"]
    assert [e["args"]["original_action"] for e in history] == ["init", "import_rows", "densegen_health", "attach"]
    assert history[2]["actor"]["tool"] == "densegen" and history[2]["ts"] == "2026-03-01T12:00:02.000000Z"
    assert len({e["event_id"] for e in events}) == len(events)
    assert [e["action"] for e in events if e["action"] == "migrate"] == ["migrate"]
    assert "previous usr" not in usr(root, "ls").stderr or "already converted" in usr(root, "ls").stderr


def test_in_place_namespaced_dataset_moves_the_incumbent_copy_aside(tmp_path):
    root = tmp_path / "root"
    inc = build(root, "densegen/my_dataset", snapshots=False, aux=False)
    before = tree_digest(inc.path)
    r = usr(root, "migrate", "densegen/my_dataset", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["dataset"] == "densegen/my_dataset" and rep["rows"] == len(inc.sequences)
    backup = root / "_incumbent" / "densegen" / "my_dataset"
    assert rep["source_moved_to"] == str(backup) and tree_digest(backup) == before
    assert (root / "densegen/my_dataset/manifest.json").exists()
    assert_valid(root, "densegen/my_dataset")
    assert [d["dataset"] for d in json.loads(usr(root, "ls", "--json").stdout)] == ["densegen/my_dataset"]
    assert find_incumbent_datasets(root) == []  # the moved copy is not offered for migration again


def test_dry_run_converts_and_validates_but_publishes_nothing(tmp_path):
    root = tmp_path / "root"
    build(root)
    r = usr(root, "migrate", "densegen_demo", "--dry-run")
    assert r.returncode == 0 and r.stdout.startswith("Would migrate"), r.stderr
    assert not (root / "densegen").exists() and not list(root.glob(".usr-migrate-*"))


def test_ls_notices_incumbent_datasets_and_says_how_to_convert(tmp_path):
    root = tmp_path / "root"
    build(root, "densegen_demo", snapshots=False)
    build(root, "quickstart", snapshots=False, events=False)
    r = usr(root, "ls")
    assert r.returncode == 0
    assert f"densegen_demo: dataset of the previous usr; convert it with `usr --root {root} migrate densegen_demo` (becomes densegen/demo)" in r.stderr
    assert "quickstart: dataset of the previous usr" in r.stderr and "(becomes imported/quickstart)" in r.stderr
    assert usr(root, "migrate", "quickstart").returncode == 0
    assert "quickstart: dataset of the previous usr, already converted to imported/quickstart" in usr(root, "ls").stderr
    # head on the old id points at migrate, not at init
    line = one_error_line(usr(root, "head", "densegen/demo"))
    assert "previous usr, not yet converted" in line and f"`usr --root {root} migrate densegen_demo`" in line
    r = usr(root, "head", "imported/quickstar")
    assert one_error_line(r).endswith("Did you mean imported/quickstart?")


def test_source_given_as_a_path_outside_the_root(tmp_path):
    old_root = tmp_path / "old_pkg_datasets"
    inc = build(old_root, "densegen_run7", snapshots=False)
    new_root = tmp_path / "new"
    r = usr(new_root, "migrate", str(inc.path), "--to", "densegen/run7_migrated")
    assert r.returncode == 0, r.stderr
    assert_valid(new_root, "densegen/run7_migrated")
    assert (inc.path / "records.parquet").exists()


def test_refusals_are_one_line_and_publish_nothing(tmp_path):
    root = tmp_path / "root"
    inc = build(root, snapshots=False)
    # 1. two rows that are one record here (the incumbent hashed case; this store does not)
    t = pq.read_table(inc.path / "records.parquet")
    dup_seq = inc.sequences[5].lower()
    extra = pa.table({c: t.column(c).slice(0, 1) for c in t.column_names})
    extra = extra.set_column(extra.schema.get_field_index("sequence"), "sequence", pa.array([dup_seq]))
    extra = extra.set_column(extra.schema.get_field_index("id"), "id", pa.array([incumbent_id("dna", dup_seq)]))
    pq.write_table(pa.concat_tables([t, extra.cast(t.schema)]), inc.path / "records.parquet")
    r = usr(root, "migrate", "densegen_demo")
    line = one_error_line(r)
    assert r.returncode == 1 and "row 6 and row 13: duplicate sequence" in line
    assert not (root / "densegen").exists() and not list(root.glob(".usr-migrate-*"))
    with pytest.raises(InputError) as e:  # the same, found across record batches
        migrate("densegen_demo", root, batch_rows=5)
    assert "13 rows but 12 distinct sequences" in e.value.message and "rows 6 and 13" in e.value.message
    assert "dedupe" in (e.value.hint or "") and not (root / "densegen").exists()
    pq.write_table(t, inc.path / "records.parquet")
    # 2. an overlay column of a foreign namespace
    bad = pa.table({"id": pa.array(inc.ids[:1]), "other__x": pa.array([1.0])})
    pq.write_table(bad, inc.path / "_derived" / "mine.parquet")
    line = one_error_line(usr(root, "migrate", "densegen_demo"))
    assert "belongs to namespace 'other'" in line
    (inc.path / "_derived" / "mine.parquet").unlink()
    # 3. not an incumbent dataset
    line = one_error_line(usr(root, "migrate", "nope"))
    assert "no incumbent dataset at nope" in line and "densegen_demo" in line
    # 4. success, then a second run refuses (already exists)
    assert usr(root, "migrate", "densegen_demo").returncode == 0
    line = one_error_line(usr(root, "migrate", "densegen_demo"))
    assert "dataset densegen/demo already exists" in line and "--to" in line
    assert_valid(root, "densegen/demo")


def test_snapshot_with_rows_the_current_table_lost_is_reported_not_carried(tmp_path):
    root = tmp_path / "root"
    inc = build(root)
    gone = sequences(1, seed=99)
    t = pq.read_table(inc.path / "_snapshots" / "records-20260301T120000000000.parquet")
    extra = pa.table({"id": pa.array([incumbent_id("dna", gone[0])]), "bio_type": ["dna"], "sequence": gone, "alphabet": ["dna_4"],
                      "length": pa.array([24], pa.int32()), "source": ["x"],
                      "created_at": pa.array([t.column("created_at")[0].as_py()], pa.timestamp("us", tz="UTC"))})
    pq.write_table(pa.concat_tables([t, extra.cast(t.schema)]), inc.path / "_snapshots" / "records-20260301T120000000000.parquet")
    rep = migrate("densegen_demo", root)
    assert [s["name"] for s in rep.snapshots] == ["incumbent-20260301T130000000000"]
    assert rep.snapshots_not_carried[0]["file"] == "_snapshots/records-20260301T120000000000.parquet"
    assert "1 record(s) the current records.parquet no longer has" in rep.snapshots_not_carried[0]["reason"]
    assert rep.rows == len(inc.sequences)


def test_large_dataset_in_batches(tmp_path):
    """Several record batches and snapshot prefixes: rows are neither lost nor duplicated."""
    root = tmp_path / "root"
    inc = build(root, n=2_000, lower_case=50)
    rep = migrate("densegen_demo", root, batch_rows=300)
    assert rep.rows == 2_000 and rep.ids_recomputed == 50
    assert_valid(root, "densegen/demo")
    ds = Dataset.open(root, "densegen/demo")
    frame = ds.scan(include_deleted=True).collect()
    assert frame.height == 2_000 and frame.get_column("id").n_unique() == 2_000
    assert frame.filter(frame.get_column("densegen__plan").is_null()).height == 0
    assert sorted(frame.get_column("sequence").to_list()) == sorted(s.upper() for s in inc.sequences)


def test_sigkill_mid_migration_publishes_nothing_and_a_rerun_completes(tmp_path):
    root = tmp_path / "root"
    inc = build(root, n=3_000)
    before = tree_digest(inc.path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    code = ("import sys; from dnadesign.usr.migrate import migrate; "
            f"migrate('densegen_demo', {str(root)!r}, batch_rows=100)")
    proc = subprocess.Popen([str(Path(script("usr")).parent / "python"), "-c", code], env=env)
    deadline = time.monotonic() + 120
    parts: list[Path] = []
    while time.monotonic() < deadline and proc.poll() is None:  # readiness: record parts appearing in staging
        parts = list(root.glob(".usr-migrate-*/densegen/demo/records/part-*.parquet"))
        if len(parts) >= 3:
            break
        time.sleep(0.01)
    assert proc.poll() is None and len(parts) >= 3, "the migration finished before it could be killed mid-write"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (root / "densegen" / "demo").exists()  # nothing half-published
    assert tree_digest(inc.path) == before
    assert usr(root, "ls").returncode == 0  # the leftover staging directory is not a dataset
    assert len(list(root.glob(".usr-migrate-*"))) == 1
    r = usr(root, "migrate", "densegen_demo")
    assert r.returncode == 0, r.stderr
    assert "left by a migration that was killed" in r.stdout and not list(root.glob(".usr-migrate-*"))
    assert_valid(root, "densegen/demo")
    assert Dataset.open(root, "densegen/demo").manifest().rows == 3_000


def test_plain_import_of_an_incumbent_records_file_points_at_migrate(tmp_path):
    inc = build(tmp_path / "old", snapshots=False)
    root = tmp_path / "root"
    r = usr(root, "import", "imported/raw", str(inc.path / "records.parquet"), "--create")
    assert f"is a dataset of the previous usr: `usr migrate {inc.path}` carries all of it" in r.stderr
    assert r.returncode == 1 and "does not match its sequence" in r.stderr  # its lower-case rows hash differently here
