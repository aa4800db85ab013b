"""The `usr` CLI: in-process for speed, plus real subprocesses for the console script itself."""

import json

import pytest

from dnadesign.usr.cli import app
from tests.conftest import invoke, run_cli


def usr(root, *args, **kw):
    return invoke(app, "--root", str(root), *args, **kw)


@pytest.fixture
def populated(usr_root, tmp_path):
    csv = tmp_path / "seqs.csv"
    csv.write_text("sequence,score,source\nACGTACGTAA,1.5,lab\nTTTTGGGGCC,2,lab\nGGGCCCAAAT,3.25,lab\n")
    assert usr(usr_root, "init", "demo/a", "--source", "test").returncode == 0
    r = usr(usr_root, "import", "demo/a", str(csv))
    assert r.returncode == 0, r.stderr
    assert "Imported 3 record(s)" in r.stdout and "score" in r.stderr  # extra column is reported, not silently dropped
    return usr_root, csv


def test_listing_commands_and_json(populated):
    root, csv = populated
    ls = json.loads(usr(root, "ls", "--json").stdout)
    assert ls[0]["dataset"] == "demo/a" and ls[0]["rows"] == 3
    info = json.loads(usr(root, "info", "demo/a", "--json").stdout)
    assert info["rows"] == 3 and info["events_log"].endswith("demo/a/.events.log")
    head = json.loads(usr(root, "head", "demo/a", "-n", "2", "--json").stdout)
    assert [h["sequence"] for h in head] == ["ACGTACGTAA", "TTTTGGGGCC"] and head[0]["source"] == "lab"
    r = usr(root, "head", "demo/a", "-n", "5")
    assert r.returncode == 0 and "GGGCCCAAAT" in r.stdout
    got = json.loads(usr(root, "get", "demo/a", head[0]["id"], "--json").stdout)
    assert got["sequence"] == "ACGTACGTAA"
    hits = json.loads(usr(root, "grep", "demo/a", "gggg", "--json").stdout)
    assert {h["sequence"] for h in hits} == {"TTTTGGGGCC"}
    sch = json.loads(usr(root, "schema", "demo/a", "--json").stdout)
    assert [c["column"] for c in sch][:3] == ["id", "bio_type", "sequence"]
    tail = usr(root, "events", "tail", "demo/a", "-n", "10", "--raw").stdout.splitlines()
    assert [json.loads(t)["action"] for t in tail] == ["init", "append"]


def test_attach_export_roundtrip(populated, tmp_path):
    root, csv = populated
    r = usr(root, "attach", "demo/a", str(csv), "--namespace", "lab", "--key", "sequence", "--columns", "score")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out.parquet"
    assert usr(root, "export", "demo/a", str(out)).returncode == 0
    import polars as pl

    frame = pl.read_parquet(out).sort("sequence")
    assert frame["lab__score"].to_list() == [1.5, 3.25, 2.0]
    fa = tmp_path / "out.fasta"
    assert usr(root, "export", "demo/a", str(fa)).returncode == 0
    assert fa.read_text().count(">") == 3
    # a later attach with text in a float column is refused, dataset unchanged
    bad = tmp_path / "bad.csv"
    bad.write_text("sequence,score\nACGTACGTAA,high\n")
    r = usr(root, "attach", "demo/a", str(bad), "--namespace", "lab", "--key", "sequence")
    assert r.returncode == 1 and "recorded as double" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("content,needle", [
    ("sequence\nACGTN\n", "not in alphabet dna_4"),
    ("sequence\nACGT\nacgt\n", "duplicate sequence"),
    ("sequence,id\nACGT,0000000000000000000000000000000000000000\n", "does not match its sequence"),
    ("name\nx\n", "no 'sequence' column"),
])
def test_bad_imports_fail_cleanly_and_change_nothing(populated, tmp_path, content, needle):
    root, _ = populated
    before = (root / "demo/a/manifest.json").read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    r = usr(root, "import", "demo/a", str(bad))
    assert r.returncode == 1 and needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert (root / "demo/a/manifest.json").read_bytes() == before


def test_bad_fasta_and_unsafe_ids(populated, tmp_path):
    root, _ = populated
    fa = tmp_path / "x.fa"
    fa.write_text("ACGT\n>a\nACGT\n")
    r = usr(root, "import", "demo/a", str(fa))
    assert r.returncode == 1 and "before the first '>'" in r.stderr
    for bad_id in ("../etc", "/abs/x", "demo/../../x", "Demo/a"):
        r = usr(root, "info", bad_id)
        assert r.returncode == 1 and "invalid dataset id" in r.stderr
    r = usr(root, "attach", "demo/a", str(tmp_path / "missing.csv"), "--namespace", "x")
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_attach_unknown_ids_and_delete_restore(populated, tmp_path):
    root, _ = populated
    ov = tmp_path / "ov.csv"
    ov.write_text("id,v\n" + "a" * 40 + ",1\n")
    r = usr(root, "attach", "demo/a", str(ov), "--namespace", "x")
    assert r.returncode == 1 and "not records" in r.stderr
    rid = json.loads(usr(root, "head", "demo/a", "-n", "1", "--json").stdout)[0]["id"]
    assert usr(root, "delete", "demo/a", "--id", rid, "--reason", "bad").returncode == 0
    assert len(json.loads(usr(root, "head", "demo/a", "--json").stdout)) == 2
    assert len(json.loads(usr(root, "head", "demo/a", "--json", "--include-deleted").stdout)) == 3
    assert usr(root, "restore", "demo/a", "--id", rid).returncode == 0
    assert len(json.loads(usr(root, "head", "demo/a", "--json").stdout)) == 3


def test_snapshot_materialize_compact_validate(populated, tmp_path):
    root, csv = populated
    assert usr(root, "snapshot", "create", "demo/a", "--name", "s1").returncode == 0
    snaps = json.loads(usr(root, "snapshot", "list", "demo/a", "--json").stdout)
    assert [s["name"] for s in snaps] == ["s1"]
    usr(root, "attach", "demo/a", str(csv), "--namespace", "lab", "--key", "sequence", "--columns", "score")
    assert usr(root, "materialize", "demo/a", "-y").returncode == 0
    info = json.loads(usr(root, "info", "demo/a", "--json").stdout)
    assert info["overlay_namespaces"] == [] and info["namespaces"] == ["lab"]  # folded into the base, still listed
    assert usr(root, "compact", "demo/a").returncode == 0
    v = usr(root, "validate", "demo/a", "--json")
    assert v.returncode == 0 and json.loads(v.stdout)["ok"]
    assert usr(root, "snapshot", "restore", "demo/a", "s1").returncode == 0
    assert "lab__score" not in usr(root, "head", "demo/a", "--json").stdout
    current = json.loads((root / "demo/a/manifest.json").read_text())["parts"][0]["file"]
    part = root / "demo/a" / current
    part.write_bytes(part.read_bytes()[:-20] + b"\0" * 20)
    v = usr(root, "validate", "demo/a")
    assert v.returncode == 1 and "INVALID" in v.stdout


def test_root_from_environment(usr_root):
    r = run_cli("usr", "init", "demo/env", env={"DNADESIGN_USR_ROOT": str(usr_root)})
    assert r.returncode == 0 and (usr_root / "demo/env/manifest.json").exists()


def test_console_script_runs_seed_commands(populated):
    """The runbook's `usr --root R head ID -n 5` and `usr --root R events tail ID -n 10` as real processes."""
    root, _ = populated
    r = run_cli("usr", "--root", str(root), "head", "demo/a", "-n", "5")
    assert r.returncode == 0 and "ACGTACGTAA" in r.stdout
    r = run_cli("usr", "--root", str(root), "events", "tail", "demo/a", "-n", "10")
    assert r.returncode == 0 and "append" in r.stdout
    r = run_cli("usr", "--root", str(root), "info", "../x")
    assert r.returncode == 1 and r.stderr.startswith("usr: error: invalid dataset id")


def test_events_tail_follow_prints_new_events(populated):
    """The follower announces on stderr when it is at the end of the log; the test waits for that
    line (not a fixed sleep), appends, and reads the new event as soon as it is printed."""
    import subprocess

    from dnadesign.usr.schema import make_records
    from dnadesign.usr.store import Dataset
    from tests.conftest import script

    root, _ = populated
    proc = subprocess.Popen([script("usr"), "--root", str(root), "events", "tail", "demo/a", "-n", "0", "--follow",
                             "--raw", "--interval", "0.1", "--idle-timeout", "120"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = proc.stderr.readline()  # bounded: the follower exits after 120 s idle
        assert ready.startswith("following ") and ".events.log" in ready
        Dataset.open(root, "demo/a").append(make_records(["CCCCAAAAGGGG"]))
        line = proc.stdout.readline()
        event = json.loads(line)
        assert event["action"] == "append" and event["metrics"]["rows_added"] == 1
    finally:
        proc.terminate()
        proc.wait(30)
