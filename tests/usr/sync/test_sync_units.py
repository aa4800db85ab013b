"""Unit tests for sync pieces that need no sshd: merge rules, profiles, remote scripts run by a local sh."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dnadesign.core.errors import ConfigError
from dnadesign.usr.cli import app
from dnadesign.usr.layout import DatasetPaths
from dnadesign.usr.manifest import Manifest
from dnadesign.usr.schema import make_records
from dnadesign.usr.store import Dataset
from dnadesign.usr.sync import engine, scripts
from dnadesign.usr.sync.remotes import RemoteProfile, load_profiles, remotes_path
from dnadesign.usr.sync.state import Events, is_sync_event, local_state, safe_relpath

lines = st.lists(st.sampled_from(["# t", "- a", "- b", "- c", "x", "y", "z", ""]), max_size=8)


@settings(max_examples=200, deadline=None)
@given(lines, lines)
def test_meta_merge_converges_and_keeps_every_line(a, b):
    A = ("\n".join(a) + "\n").encode() if a else b"\n"
    B = ("\n".join(b) + "\n").encode() if b else b"\n"
    m = engine.merge_meta(A, B)
    assert set(A.decode().splitlines()) | set(B.decode().splitlines()) <= set(m.decode().splitlines())
    # pull (local := merge(local, remote)) then push (remote := merge(remote, local)) -> identical
    assert engine.merge_meta(B, m) == m
    assert engine.merge_meta(m, B) == m
    assert engine.merge_meta(B, A) == m  # symmetric


def test_meta_merge_superset_wins():
    assert engine.merge_meta(b"a\nb\n", b"a\nb\nc\n") == b"a\nb\nc\n"
    assert engine.merge_meta(b"a\nb\nc\n", b"a\n") == b"a\nb\nc\n"
    assert engine.merge_meta(None, b"x\n") == b"x\n"


def test_events_parse_skips_torn_line_and_duplicates():
    e1 = json.dumps({"event_id": "e1", "action": "append"}).encode()
    e2 = json.dumps({"event_id": "e2", "action": "pull", "args": {"sync": True}}).encode()
    ev = Events.parse(e1 + b"\n" + e1 + b"\nnot json\n" + e2 + b"\n" + b'{"event_id":"torn"')
    assert [k for k, _ in ev.lines][:1] == ["e1"] and ev.count() == 3
    assert "torn" not in ev.keys
    assert is_sync_event(e2) and not is_sync_event(e1)


@pytest.mark.parametrize("rel,ok", [("records/part-1.parquet", True), ("_artifacts/a b", False), ("../x", False),
                                    ("/etc/passwd", False), ("records/../../x", False), ("a/'q'", False), ("ok/.hidden", False)])
def test_safe_relpath(rel, ok):
    assert safe_relpath(rel) is ok


@pytest.mark.parametrize("base", ["relative/dir", "/a/../b", "/a;rm -rf", "/a b", "$HOME/x", "`id`"])
def test_profile_rejects_unsafe_base_dir(base):
    with pytest.raises(ConfigError):
        RemoteProfile(name="x", host="h", base_dir=base)


def test_profile_rejects_option_injection_in_host():
    with pytest.raises(ConfigError):
        RemoteProfile(name="x", host="-oProxyCommand=evil", base_dir="/d")


def test_remotes_add_show_list_file_mode(tmp_path, monkeypatch):
    path = tmp_path / "cfg" / "remotes.yaml"
    monkeypatch.setenv("USR_REMOTES_PATH", str(path))
    r = CliRunner().invoke(app, ["remotes", "add", "bu-scc", "--host", "scc1.bu.edu", "--user", "alice", "--base-dir", "~/usr",
                                 "--ssh-option", "ServerAliveInterval=5"])
    assert r.exit_code == 0, r.output
    assert remotes_path() == path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    prof = load_profiles()["bu-scc"]
    assert prof.destination == "alice@scc1.bu.edu" and prof.base_dir == "~/usr" and prof.ssh_options == ["ServerAliveInterval=5"]
    r = CliRunner().invoke(app, ["remotes", "show", "bu-scc"])
    assert r.exit_code == 0 and "~/usr" in r.output and "alice" in r.output
    r = CliRunner().invoke(app, ["remotes", "list", "--json"])
    assert json.loads(r.output)["data"][0]["name"] == "bu-scc"
    r = CliRunner().invoke(app, ["remotes", "add", "bu-scc", "--host", "x", "--base-dir", "/d"])
    assert r.exit_code == 1 and "--force" in r.output
    r = CliRunner().invoke(app, ["remotes", "show", "nope"])
    assert r.exit_code == 1 and "usr remotes add nope" in r.output


def test_bad_dataset_id_and_verify_mode_rejected_before_connecting(tmp_path, monkeypatch):
    monkeypatch.setenv("USR_REMOTES_PATH", str(tmp_path / "r.yaml"))
    CliRunner().invoke(app, ["remotes", "add", "h", "--host", "192.0.2.1", "--base-dir", "/d"])
    r = CliRunner().invoke(app, ["--root", str(tmp_path), "diff", "../etc", "h"])
    assert r.exit_code == 1 and "invalid dataset id" in r.output
    r = CliRunner().invoke(app, ["--root", str(tmp_path), "pull", "a/b", "h", "-y", "--verify", "bogus"])
    assert r.exit_code == 2 and "--verify" in r.output


def _sh(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-s", "--", *args], input=script.encode(), capture_output=True, timeout=30)


def test_inventory_script_run_by_local_sh(tmp_path):
    ds = Dataset.create(tmp_path, "ns/one", source="t")
    ds.append(make_records(["ACGT" * 5, "GGCC" * 5], source="t"))
    ds.snapshot("s1")
    (ds.dir / "_artifacts").mkdir()
    (ds.dir / "_artifacts" / "r.txt").write_text("hi\n")
    tok = scripts.token()
    res = _sh(scripts.INVENTORY, str(tmp_path), "ns/one", "0", "-", tok)
    assert res.returncode == 0, res.stderr
    sec = scripts.parse_sections(res.stdout, tok)
    assert sec["manifest"] == (ds.dir / "manifest.json").read_bytes()
    assert sec["events_full"] == (ds.dir / ".events.log").read_bytes()
    assert sec["dir"].decode() == str(ds.dir)
    assert b"_snapshots/s1.json" in sec["snapshots"]
    assert sec["aux_stat"].decode().split()[-1] == "./_artifacts/r.txt"
    parts = Manifest.load(ds.dir / "manifest.json").parts
    assert sorted(sec["files"].decode().splitlines()) == sorted(f"{p.bytes} {p.file}" for p in parts)
    # a caller that already has the log gets only the tail
    log = (ds.dir / ".events.log").read_bytes()
    from dnadesign.core.ids import sha256_bytes

    res = _sh(scripts.INVENTORY, str(tmp_path), "ns/one", str(len(log)), sha256_bytes(log), tok)
    sec = scripts.parse_sections(res.stdout, tok)
    assert sec["events_tail"] == b"" and "events_full" not in sec
    # absent dataset
    sec = scripts.parse_sections(_sh(scripts.INVENTORY, str(tmp_path), "ns/none", "0", "-", tok).stdout, tok)
    assert "absent" in sec and sec["base"].decode() == str(tmp_path)
    local = local_state(DatasetPaths(tmp_path, "ns/one"))
    assert set(local.aux) == {"_artifacts/r.txt"} and local.snapshots.keys() == {"s1.json"}


def test_commit_script_checks_manifest_and_verifies(tmp_path):
    d = tmp_path / "ns" / "one"
    (d / "records").mkdir(parents=True)
    (d / "records" / "part-a.parquet").write_bytes(b"data-a")
    (d / "manifest.json").write_bytes(b"old\n")
    from dnadesign.core.ids import sha256_bytes

    ok_args = dict(verify_hash=[("records/part-a.parquet", sha256_bytes(b"data-a"))], verify_size=[], manifest=b"new\n",
                   meta=b"# m\n", events=b'{"event_id":"x","action":"push"}\n', snapshot_moves=[], aux_moves=[])
    # the manifest moved since we read it -> 66 and the current manifest is printed
    res = _sh(scripts.commit_script(**ok_args), str(tmp_path), "ns/one", sha256_bytes(b"other\n"), "5")
    assert res.returncode == 66 and res.stdout.endswith(b"USR-MANIFEST-MOVED\nold\n")
    assert (d / "manifest.json").read_bytes() == b"old\n"
    # a file that fails verification -> 65, removed, nothing switched
    bad = dict(ok_args, verify_hash=[("records/part-a.parquet", "0" * 64)])
    res = _sh(scripts.commit_script(**bad), str(tmp_path), "ns/one", sha256_bytes(b"old\n"), "5")
    assert res.returncode == 65 and b"records/part-a.parquet" in res.stdout
    assert not (d / "records" / "part-a.parquet").exists() and (d / "manifest.json").read_bytes() == b"old\n"
    (d / "records" / "part-a.parquet").write_bytes(b"data-a")
    (d / ".events.log").write_bytes(b'{"event_id":"torn"')  # a torn last line is closed before appending
    res = _sh(scripts.commit_script(**ok_args), str(tmp_path), "ns/one", sha256_bytes(b"old\n"), "5")
    assert res.returncode == 0 and b"USR-COMMIT-OK" in res.stdout, res.stderr
    assert (d / "manifest.json").read_bytes() == b"new\n" and (d / "meta.md").read_bytes() == b"# m\n"
    assert (d / ".events.log").read_bytes() == b'{"event_id":"torn"\n{"event_id":"x","action":"push"}\n'
    assert not list((d / ".usr-sync").glob("commit.*"))


def test_commit_script_waits_for_the_remote_lock(tmp_path):
    d = tmp_path / "ns" / "one"
    d.mkdir(parents=True)
    from dnadesign.core.locks import FileLock

    script = scripts.commit_script(verify_hash=[], verify_size=[], manifest=b"m\n", meta=None, events=b"", snapshot_moves=[], aux_moves=[])
    with FileLock(d / ".usr.lock", timeout=1):  # the store's own lock blocks the remote-side flock
        res = _sh(script, str(tmp_path), "ns/one", "-", "1")
    assert res.returncode == 75 and not (d / "manifest.json").exists()
    res = _sh(script, str(tmp_path), "ns/one", "-", "1")
    assert res.returncode == 0 and (d / "manifest.json").read_bytes() == b"m\n"


def test_union_diff_directions(tmp_path):
    a = Dataset.create(tmp_path / "a", "ns/one", source="t")
    a.append(make_records(["ACGT" * 5], source="t"))
    b_root = tmp_path / "b"
    import shutil

    shutil.copytree(tmp_path / "a", b_root)
    Dataset.open(b_root, "ns/one").append(make_records(["TTTT" * 5], source="t"))
    la, lb = local_state(DatasetPaths(tmp_path / "a", "ns/one")), local_state(DatasetPaths(b_root, "ns/one"))
    lb.where = "r"
    d = engine.compute_diff("ns/one", la, lb, engine.SyncOptions())
    assert d.to_pull and not d.to_push and d.status == "differs"
    assert len(d.groups["primary"]["remote_only"]) == 1 and d.events["remote_only"] == 1
    d2 = engine.compute_diff("ns/one", la, la, engine.SyncOptions())
    assert d2.status == "up-to-date"
