"""Unit tests for sync pieces that need no sshd: merge rules, profiles, the remote scripts run by a local sh."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dnadesign.core.errors import ConfigError
from dnadesign.core.ids import sha256_bytes
from dnadesign.core.locks import FileLock
from dnadesign.usr.cli import app
from dnadesign.usr.manifest import Manifest
from dnadesign.usr.schema import make_records
from dnadesign.usr.store import Dataset
from dnadesign.usr.sync import plan, scripts
from dnadesign.usr.sync.eventlog import EMPTY_MARK, WINDOW, build_view, is_sync_event
from dnadesign.usr.sync.local_side import LocalSide
from dnadesign.usr.sync.remotes import RemoteProfile, load_profiles, remotes_path
from dnadesign.usr.sync.side import CommitRequest, FileCheck
from dnadesign.usr.sync.state import safe_relpath

lines = st.lists(st.sampled_from(["# t", "- a", "- b", "- c", "x", "y", "z", ""]), max_size=8)


@settings(max_examples=200, deadline=None)
@given(lines, lines)
def test_meta_merge_converges_and_keeps_every_line(a, b):
    A = ("\n".join(a) + "\n").encode() if a else b"\n"
    B = ("\n".join(b) + "\n").encode() if b else b"\n"
    m = plan.merge_meta(A, B)
    assert set(A.decode().splitlines()) | set(B.decode().splitlines()) <= set(m.decode().splitlines())
    # pull (local := merge(local, remote)) then push (remote := merge(remote, local)) -> identical
    assert plan.merge_meta(B, m) == m
    assert plan.merge_meta(m, B) == m
    assert plan.merge_meta(B, A) == m  # symmetric


def test_meta_merge_superset_wins():
    assert plan.merge_meta(b"a\nb\n", b"a\nb\nc\n") == b"a\nb\nc\n"
    assert plan.merge_meta(b"a\nb\nc\n", b"a\n") == b"a\nb\nc\n"
    assert plan.merge_meta(None, b"x\n") == b"x\n"


def test_event_view_skips_torn_line_and_duplicates():
    e1 = json.dumps({"event_id": "e1", "action": "append"}).encode()
    e2 = json.dumps({"event_id": "e2", "action": "pull", "args": {"sync": True}}).encode()
    v = build_view(b"", b"", e1 + b"\n" + e1 + b"\nnot json\n" + e2 + b"\n" + b'{"event_id":"torn"', EMPTY_MARK, ())
    assert list(v.lines)[:1] == ["e1"] and v.count == 3
    assert "torn" not in v.lines and v.from_start
    assert v.mark.size == len(e1) * 2 + len(e2) + len(b"not json") + 4  # the torn line is not part of the mark
    assert v.lines["e2"].sync and not v.lines["e1"].sync
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


def test_remotes_add_path_forms(tmp_path, monkeypatch):
    monkeypatch.setenv("USR_REMOTES_PATH", str(tmp_path / "r.yaml"))
    mount = tmp_path / "mnt" / "usr"
    r = CliRunner().invoke(app, ["remotes", "add", "proj", str(mount)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["remotes", "add", "proj2", f"file://{mount}/"])
    assert r.exit_code == 0, r.output
    profs = load_profiles()
    assert profs["proj"].type == profs["proj2"].type == "path"
    assert profs["proj"].base_dir == profs["proj2"].base_dir == str(mount)
    r = CliRunner().invoke(app, ["remotes", "show", "proj"])
    assert "path" in r.output and str(mount) in r.output
    # usage mistakes: one line, exit 2, nothing stored
    for args, words in ((["remotes", "add", "x", "relative/dir"], "absolute"), (["remotes", "add", "x"], "--host and --base-dir"),
                        (["remotes", "add", "x", str(mount), "--host", "h"], "--host does not apply"),
                        (["remotes", "add", "x", "file://host/x"], "file://")):
        r = CliRunner().invoke(app, args)
        assert r.exit_code in (1, 2) and words in r.output, (args, r.output)
        assert "Traceback" not in r.output
    assert set(load_profiles()) == {"proj", "proj2"}


def test_bad_dataset_id_verify_mode_and_bwlimit_rejected_before_connecting(tmp_path, monkeypatch):
    monkeypatch.setenv("USR_REMOTES_PATH", str(tmp_path / "r.yaml"))
    CliRunner().invoke(app, ["remotes", "add", "h", "--host", "192.0.2.1", "--base-dir", "/d"])
    r = CliRunner().invoke(app, ["--root", str(tmp_path), "diff", "../etc", "h"])
    assert r.exit_code == 1 and "invalid dataset id" in r.output
    r = CliRunner().invoke(app, ["--root", str(tmp_path), "pull", "a/b", "h", "-y", "--verify", "bogus"])
    assert r.exit_code == 2 and "--verify" in r.output
    r = CliRunner().invoke(app, ["--root", str(tmp_path), "push", "a/b", "h", "-y", "--bwlimit", "fast; rm -rf /"])
    assert r.exit_code == 2 and "--bwlimit" in r.output


def _sh(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-s", "--", *args], input=script.encode(), capture_output=True, timeout=30)


def _inventory(root, ds_id, mark=EMPTY_MARK) -> dict[str, bytes]:
    tok = scripts.token()
    res = _sh(scripts.INVENTORY, *scripts.inventory_args(tok, str(root), ds_id, mark.size, mark.head_sha, mark.lead_sha))
    assert res.returncode == 0, res.stderr
    return scripts.parse_sections(res.stdout, tok)


def test_inventory_script_run_by_local_sh(tmp_path):
    ds = Dataset.create(tmp_path, "ns/one", source="t")
    ds.append(make_records(["ACGT" * 5, "GGCC" * 5], source="t"))
    ds.snapshot("s1")
    (ds.dir / "_artifacts").mkdir()
    (ds.dir / "_artifacts" / "r.txt").write_text("hi\n")
    sec = _inventory(tmp_path, "ns/one")
    assert sec["manifest"] == (ds.dir / "manifest.json").read_bytes()
    assert sec["events_tail"] == (ds.dir / ".events.log").read_bytes() and sec["events_from"] == b"0"
    assert sec["dir"].decode() == str(ds.dir)
    assert b"_snapshots/s1.json" in sec["snapshots"]
    assert sec["aux_stat"].decode().split()[-1] == "./_artifacts/r.txt"
    parts = Manifest.load(ds.dir / "manifest.json").parts
    assert sorted(sec["files"].decode().splitlines()) == sorted(f"{p.bytes} {p.file}" for p in parts)
    sec = _inventory(tmp_path, "ns/none")
    assert "absent" in sec and sec["base"].decode() == str(tmp_path)
    local = LocalSide(tmp_path, "ns/one").inventory(EMPTY_MARK, ())
    assert set(local.aux) == {"_artifacts/r.txt"} and local.snapshots.keys() == {"s1.json"}


def test_inventory_reads_the_log_from_a_mark_and_detects_a_replaced_log(tmp_path):
    ds = Dataset.create(tmp_path, "ns/one", source="t")
    log = ds.dir / ".events.log"
    for i in range(60):  # > WINDOW bytes, so head and lead windows differ
        ds.log_event("densegen_health", args={"status": "running", "i": i})
    assert log.stat().st_size > 2 * WINDOW
    first = build_view(b"", b"", log.read_bytes(), EMPTY_MARK, ())
    ds.log_event("densegen_health", args={"status": "completed"})
    sec = _inventory(tmp_path, "ns/one", first.mark)
    assert int(sec["events_from"]) == first.mark.size
    assert sec["events_tail"] == log.read_bytes()[first.mark.size:]  # only the new line travels
    view = build_view(sec["events_head"], sec["events_lead"], sec["events_tail"], first.mark, ())
    assert view.count == 62 and len(view.lines) == 1 and not view.from_start
    assert view.mark == build_view(b"", b"", log.read_bytes(), EMPTY_MARK, ()).mark  # same mark as a full read
    # the local reader gives the same view
    lv = LocalSide(tmp_path, "ns/one").read_events(first.mark, ())
    assert lv.mark == view.mark and set(lv.lines) == set(view.lines) and lv.read_bytes < 3 * WINDOW
    # a log rewritten before the mark is read in full, and says so
    data = bytearray(log.read_bytes())
    data[first.mark.size - 10] ^= 1
    log.write_bytes(bytes(data))
    sec = _inventory(tmp_path, "ns/one", first.mark)
    assert sec["events_from"] == b"0" and sec["events_tail"] == bytes(data)
    lv = LocalSide(tmp_path, "ns/one").read_events(first.mark, ())
    assert lv.reset and lv.from_start and lv.count == 62


def _commit(tmp_path, req: CommitRequest, ids=()):
    tok = scripts.token()
    res = _sh(scripts.commit_script(req, list(ids)), *scripts.commit_args(tok, str(tmp_path), "ns/one", req))
    assert res.returncode == 0, res.stderr
    return scripts.parse_sections(res.stdout, tok)


def test_commit_script_checks_expectations_verifies_and_reports_structured_results(tmp_path):
    d = tmp_path / "ns" / "one"
    (d / ".usr-sync" / "in" / "records").mkdir(parents=True)
    (d / ".usr-sync" / "in" / "records" / "part-a.parquet").write_bytes(b"data-a")
    (d / "manifest.json").write_bytes(b"old\n")
    event = b'{"event_id":"x","action":"push"}\n'
    ok = CommitRequest(sha256_bytes(b"old\n"), "-", b"new\n", b"# m", data=(FileCheck("records/part-a.parquet", "hash", sha256_bytes(b"data-a")),),
                       events=event, events_seen=0, lock_wait=5)
    # the manifest moved since the plan -> "moved" with the current manifest; nothing changed
    sec = _commit(tmp_path, CommitRequest(**{**ok.__dict__, "expect_manifest": sha256_bytes(b"other\n")}), ["x"])
    assert sec["status"] == b"moved" and sec["manifest"] == b"old\n"
    assert (d / "manifest.json").read_bytes() == b"old\n" and (d / ".usr-sync/in/records/part-a.parquet").exists()
    # a file that fails verification -> verify_failed naming it; it is removed, nothing switched
    bad = CommitRequest(**{**ok.__dict__, "data": (FileCheck("records/part-a.parquet", "hash", "0" * 64),)})
    sec = _commit(tmp_path, bad, ["x"])
    assert sec["status"] == b"verify_failed" and sec["bad"].split() == [b"records/part-a.parquet"]
    assert not (d / ".usr-sync/in/records/part-a.parquet").exists() and not (d / "records" / "part-a.parquet").exists()
    assert (d / "manifest.json").read_bytes() == b"old\n"
    # a named file that is neither staged nor in place -> verify_failed naming it as missing
    missing = CommitRequest(**{**ok.__dict__, "data": (FileCheck("records/part-b.parquet", "size", "3"),)})
    sec = _commit(tmp_path, missing, ["x"])
    assert sec["status"] == b"verify_failed" and sec["missing"].split() == [b"records/part-b.parquet"] and not sec["bad"]
    assert (d / "manifest.json").read_bytes() == b"old\n"
    # success: staged file moved in, meta (no trailing newline, byte-exact) and manifest replaced, torn line closed
    (d / ".usr-sync" / "in" / "records" / "part-a.parquet").write_bytes(b"data-a")
    (d / ".events.log").write_bytes(b'{"event_id":"torn"')
    sec = _commit(tmp_path, CommitRequest(**{**ok.__dict__, "events_seen": 0}), ["x"])
    assert sec["status"] == b"ok" and sec["events_appended"] == b"1", sec
    assert (d / "manifest.json").read_bytes() == b"new\n" and (d / "meta.md").read_bytes() == b"# m"
    assert (d / "records" / "part-a.parquet").read_bytes() == b"data-a"
    assert (d / ".events.log").read_bytes() == b'{"event_id":"torn"\n' + event
    assert not list((d / ".usr-sync").glob("commit.*")) and (d / ".usr.lock").read_bytes() == b""
    # the same lines again, sent against an older view of the log: the line appended meanwhile is skipped
    again = CommitRequest(sha256_bytes(b"new\n"), sha256_bytes(b"# m"), None, None, events=event, events_seen=19, lock_wait=5)
    sec = _commit(tmp_path, again, ["x"])
    assert sec["status"] == b"ok" and sec["events_appended"] == b"0"
    assert (d / ".events.log").read_bytes().count(b'"x"') == 1


def test_commit_script_waits_for_the_store_lock(tmp_path):
    d = tmp_path / "ns" / "one"
    d.mkdir(parents=True)
    req = CommitRequest("-", "-", b"m\n", None, lock_wait=1)
    with FileLock(d / ".usr.lock", timeout=1):  # the store's own lock blocks the remote-side flock
        sec = _commit(tmp_path, req)
    assert sec["status"] == b"lock_timeout" and b'"pid"' in sec["holder"] and not (d / "manifest.json").exists()
    sec = _commit(tmp_path, req)
    assert sec["status"] == b"ok" and (d / "manifest.json").read_bytes() == b"m\n"


@contextlib.contextmanager
def held_elsewhere(path):
    """Hold a FileLock from another thread for the duration of the block."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with FileLock(path, timeout=10):
            taken.set()
            release.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    assert taken.wait(30)
    try:
        yield
    finally:
        release.set()
        t.join(30)


def test_local_commit_matches_the_script(tmp_path):
    """LocalSide.commit gives the same structured results as the remote script."""
    side = LocalSide(tmp_path, "ns/one")
    d = tmp_path / "ns" / "one"
    (d / ".usr-sync" / "in" / "records").mkdir(parents=True)
    (d / ".usr-sync" / "in" / "records" / "part-a.parquet").write_bytes(b"data-a")
    (d / "manifest.json").write_bytes(b"old\n")
    event = b'{"event_id":"x","action":"pull"}\n'
    ok = CommitRequest(sha256_bytes(b"old\n"), "-", b"new\n", b"# m", data=(FileCheck("records/part-a.parquet", "hash", sha256_bytes(b"data-a")),),
                       events=event, lock_wait=5)
    res = side.commit(CommitRequest(**{**ok.__dict__, "expect_meta": "f" * 64}))
    assert res.status == "moved" and res.manifest == b"old\n" and res.meta is None
    res = side.commit(CommitRequest(**{**ok.__dict__, "data": (FileCheck("records/part-b.parquet", "size", "3"),)}))
    assert res.status == "verify_failed" and res.missing == ("records/part-b.parquet",)
    with held_elsewhere(d / ".usr.lock"):  # another thread (this thread's own holds nest)
        assert side.commit(CommitRequest(**{**ok.__dict__, "lock_wait": 0})).status == "lock_timeout"
    res = side.commit(ok)
    assert res.status == "ok" and res.events_appended == 1
    assert (d / "manifest.json").read_bytes() == b"new\n" and (d / "meta.md").read_bytes() == b"# m"
    assert (d / ".events.log").read_bytes() == event and (d / "records" / "part-a.parquet").exists()
    assert side.commit(CommitRequest(sha256_bytes(b"new\n"), sha256_bytes(b"# m"), None, None, events=event)).events_appended == 0


def test_union_diff_directions(tmp_path):
    a = Dataset.create(tmp_path / "a", "ns/one", source="t")
    a.append(make_records(["ACGT" * 5], source="t"))
    b_root = tmp_path / "b"
    import shutil

    shutil.copytree(tmp_path / "a", b_root)
    Dataset.open(b_root, "ns/one").append(make_records(["TTTT" * 5], source="t"))
    la = LocalSide(tmp_path / "a", "ns/one").inventory(EMPTY_MARK, ())
    lb = LocalSide(b_root, "ns/one", name="r").inventory(EMPTY_MARK, ())
    d = plan.compute_diff("ns/one", la, lb, plan.SyncOptions())
    assert d.to_pull and not d.to_push and d.status == "differs"
    assert len(d.groups["primary"]["remote_only"]) == 1 and d.events["remote_only"] == 1
    d2 = plan.compute_diff("ns/one", la, la, plan.SyncOptions())
    assert d2.status == "up-to-date"


def test_commit_script_rehashes_a_staged_file_replaced_while_it_waited_for_the_lock(tmp_path):
    """Staged files are hashed before the lock; one replaced meanwhile (new inode) is hashed again under it."""
    d = tmp_path / "ns" / "one"
    staged = d / ".usr-sync" / "in" / "records" / "part-a.parquet"
    staged.parent.mkdir(parents=True)
    staged.write_bytes(b"data-a")
    req = CommitRequest("-", "-", b"m\n", None, data=(FileCheck("records/part-a.parquet", "hash", sha256_bytes(b"data-a")),), lock_wait=30)
    tok = scripts.token()
    with FileLock(d / ".usr.lock", timeout=1):
        proc = subprocess.Popen(["sh", "-s", "--", *scripts.commit_args(tok, str(tmp_path), "ns/one", req)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdin.write(scripts.commit_script(req, []).encode())
        proc.stdin.close()
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(p.stat().st_size for p in (d / ".usr-sync").glob("commit.*.pre")):
            time.sleep(0.01)  # readiness: the pre-lock check has recorded the file it hashed
        tmp = staged.with_name("swap")
        tmp.write_bytes(b"data-X")  # same size, other content, new inode
        os.replace(tmp, staged)
    out = proc.stdout.read()
    proc.wait(timeout=30)
    sec = scripts.parse_sections(out, tok)
    assert sec["status"] == b"verify_failed" and sec["bad"].split() == [b"records/part-a.parquet"]
    assert not (d / "manifest.json").exists() and not (d / "records" / "part-a.parquet").exists()
