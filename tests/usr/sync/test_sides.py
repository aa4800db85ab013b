"""diff / pull / push through both Side implementations without an sshd.

`path`: a remote that is a directory this machine mounts (LocalSide, what `usr remotes add NAME /path` gives).
`shell`: the SSH side's own protocol (its sh scripts and rsync) over `LocalShell`, the transport that runs
those scripts with this machine's sh. Real files, real rsync, real locks; the fault-injection hook runs a
real `compact` / `gc` between the transfer and the commit.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from dnadesign.core import events as ev
from dnadesign.usr.cli import app
from dnadesign.usr.manifest import Manifest
from dnadesign.usr.schema import make_records
from dnadesign.usr.store import Dataset
from dnadesign.usr.sync import engine
from dnadesign.usr.sync.remotes import RemoteProfile, get_profile
from dnadesign.usr.sync.ssh_side import SshSide
from dnadesign.usr.sync.transport import LocalShell

DS = "demo/one"


def seqs(n: int, seed: int, length: int = 40) -> list[str]:
    r = random.Random(seed)
    return ["".join(r.choice("ACGT") for _ in range(length)) for _ in range(n)]


def make(root: Path, n: int, seed: int) -> Dataset:
    ds = Dataset.create(root, DS, source="test", exist_ok=True)
    ds.append(make_records(seqs(n, seed), source="test"))
    return ds


def usr(*args: str, code: int | None = 0):
    res = CliRunner().invoke(app, [str(a) for a in args])
    if code is not None:
        assert res.exit_code == code, f"usr {' '.join(map(str, args))} -> {res.exit_code}\n{res.output}\n{res.exception!r}"
    return res


def rows(root: Path) -> set[str]:
    return set(Dataset.open(root, DS).scan().select("id").collect()["id"].to_list())


def content(root: Path) -> bytes:
    m = Manifest.load(root / DS / "manifest.json")
    m.updated_at = ""
    return m.to_json()


def event_ids(root: Path) -> list[str]:
    return [e["event_id"] for e in ev.read_events(root / DS / ".events.log")]


def valid(*roots: Path) -> None:
    """Every copy passes `usr validate` and holds no event twice."""
    for root in roots:
        res = usr("--root", root, "validate", DS)
        assert "INVALID" not in res.output
        ids = event_ids(root)
        assert len(ids) == len(set(ids)), f"duplicated event lines in {root}"


class Env:
    def __init__(self, kind: str, tmp_path: Path, monkeypatch):
        self.kind = kind
        self.L, self.R = tmp_path / "local", tmp_path / "remote"
        self.L.mkdir()
        self.R.mkdir()
        monkeypatch.setenv("USR_REMOTES_PATH", str(tmp_path / "remotes.yaml"))
        monkeypatch.setenv("DNADESIGN_USR_ROOT", str(self.L))
        if kind == "path":
            usr("remotes", "add", "far", self.R)
        else:
            usr("remotes", "add", "far", "--host", "localhost", "--base-dir", self.R)
        self.profile = get_profile("far")

    def remote(self):
        return SshSide(self.profile, DS, transport=LocalShell()) if self.kind == "shell" else None

    def diff(self, **opts):
        return engine.diff(self.L, DS, self.profile, engine.SyncOptions(**opts), remote=self.remote())[0]

    def pull(self, hooks=None, **opts):
        return engine.pull(self.L, DS, self.profile, engine.SyncOptions(**opts), remote=self.remote(), hooks=hooks)

    def push(self, hooks=None, **opts):
        return engine.push(self.L, DS, self.profile, engine.SyncOptions(**opts), remote=self.remote(), hooks=hooks)


@pytest.fixture(params=["path", "shell"])
def env(request, tmp_path, monkeypatch) -> Env:
    return Env(request.param, tmp_path, monkeypatch)


def test_divergent_copies_converge_by_union(env):
    L, R = env.L, env.R
    make(R, 60, 1)
    assert env.pull().state == "TRANSFERRED"
    remote = Dataset.open(R, DS)
    remote.append(make_records(seqs(20, 2), source="hpc"))
    remote.snapshot("hpc-snap")
    (R / DS / "_artifacts").mkdir()
    (R / DS / "_artifacts" / "report.txt").write_text("from hpc\n")
    local = Dataset.open(L, DS)
    local.append(make_records(seqs(10, 3) + seqs(5, 2), source="laptop"))  # 5 overlap the remote's batch
    ids = sorted(rows(L))
    local.write_overlay("infer", pa.table({"id": ids[:8], "infer__score": [float(i) for i in range(8)]}))
    local.add_note("laptop note")
    local.snapshot("laptop-snap")
    d = env.diff()
    assert d.to_pull and d.to_push and d.from_checkpoint
    a = env.pull()
    assert a.state == "TRANSFERRED" and a.snapshots_moved == ["hpc-snap.json"] and a.aux_moved == ["_artifacts/report.txt"]
    b = env.push()
    assert b.state == "TRANSFERRED" and b.snapshots_moved == ["laptop-snap.json"]
    assert content(L) == content(R) and rows(L) == rows(R) and len(rows(L)) == 60 + 20 + 10
    assert set(event_ids(L)) == set(event_ids(R))
    assert (L / DS / "meta.md").read_bytes() == (R / DS / "meta.md").read_bytes()
    assert (L / DS / "_artifacts" / "report.txt").read_text() == "from hpc\n"
    d = env.diff()
    assert d.status == "up-to-date" and d.from_checkpoint
    assert env.pull().state == "NO-OP" and env.push().state == "NO-OP"
    valid(L, R)


def test_pull_vs_compact_between_transfer_and_commit(env):
    """Issue 11 item 3: a real `compact` lands after the transfer and before the commit (it used to delete the new part)."""
    L, R = env.L, env.R
    make(R, 30, 10)
    Dataset.open(R, DS).append(make_records(seqs(10, 11), source="hpc"))
    env.pull()
    Dataset.open(R, DS).append(make_records(seqs(9, 12), source="hpc"))
    new_part = Manifest.load(R / DS / "manifest.json").parts[-1].file
    results = []

    def compact_local(attempt: int) -> None:
        if attempt == 1:
            results.append(Dataset.open(L, DS).compact())

    audit = env.pull(hooks=engine.SyncHooks(before_commit=compact_local))
    assert results and results[0]["files_removed"] >= 2  # the compaction did remove parts meanwhile
    assert audit.retries >= 1  # the manifest moved under us: re-planned, the compacted-away parts copied again
    man = Manifest.load(L / DS / "manifest.json")
    assert new_part in {e.file for e in man.parts}
    assert all((L / DS / e.file).exists() for e in man.all_files())
    assert rows(L) == rows(R) and len(rows(L)) == 49
    valid(L, R)


def test_push_vs_remote_compact_between_transfer_and_commit(env):
    L, R = env.L, env.R
    make(L, 30, 20)
    env.push()
    Dataset.open(L, DS).append(make_records(seqs(12, 21), source="laptop"))
    Dataset.open(R, DS).append(make_records(seqs(7, 22), source="hpc"))
    fired = []

    def compact_remote(attempt: int) -> None:
        if attempt == 1:
            fired.append(Dataset.open(R, DS).compact())

    audit = env.push(hooks=engine.SyncHooks(before_commit=compact_remote))
    assert fired and audit.retries >= 1
    man = Manifest.load(R / DS / "manifest.json")
    assert all((R / DS / e.file).exists() for e in man.all_files())
    assert len(rows(R)) == 30 + 12 + 7
    env.pull()
    assert rows(L) == rows(R)
    valid(L, R)


def test_gc_removing_a_present_file_before_the_commit_is_copied_again(env):
    """A file already at the destination (left by an interrupted run) that `gc` removes before the commit is re-copied."""
    L, R = env.L, env.R
    make(R, 25, 30)
    env.pull()
    Dataset.open(R, DS).append(make_records(seqs(6, 31), source="hpc"))
    part = Manifest.load(R / DS / "manifest.json").parts[-1].file
    shutil.copy2(R / DS / part, L / DS / part)  # an unreferenced leftover with the right size
    removed = []

    def gc_local(attempt: int) -> None:
        if attempt == 1:
            removed.append(Dataset.open(L, DS).gc())

    audit = env.pull(hooks=engine.SyncHooks(before_commit=gc_local))
    assert removed == [1] and audit.retries == 1
    assert (L / DS / part).exists() and rows(L) == rows(R)
    valid(L, R)


def test_corrupt_source_file_is_refused_and_nothing_changes(env):
    L, R = env.L, env.R
    make(R, 40, 40)
    env.pull()
    Dataset.open(R, DS).append(make_records(seqs(30, 41), source="hpc"))
    part = Manifest.load(R / DS / "manifest.json").parts[-1]
    data = bytearray((R / DS / part.file).read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different content
    (R / DS / part.file).write_bytes(bytes(data))
    before = (L / DS / "manifest.json").read_bytes()
    with pytest.raises(Exception, match="does not match its manifest"):
        env.pull()
    assert (L / DS / "manifest.json").read_bytes() == before
    assert not (L / DS / part.file).exists()
    valid(L)


def test_noop_diff_reads_only_the_tails_and_a_replaced_log_is_read_in_full(env):
    L, R = env.L, env.R
    ds = make(L, 10, 50)
    actor = ev.Actor.current("densegen")
    ev.append_events(ds.events_path, [ev.make_event("densegen_health", DS, actor, args={"i": i}) for i in range(3000)])
    env.push()
    d = env.diff()
    ev_ = d.as_dict()["changes"][".events.log"]
    assert d.status == "up-to-date" and ev_["from_checkpoint"]
    assert ev_["read_bytes"]["local"] < 3 * 4096 + 1024 and ev_["read_bytes"]["remote"] < 3 * 4096 + 1024, ev_
    assert ev_["local"] == ev_["remote"] == 3000 + 3
    # a local event and a remote event since: each side reads only its new line
    Dataset.open(L, DS).log_event("densegen_health", args={"status": "completed"})
    Dataset.open(R, DS).log_event("densegen_health", args={"status": "failed"})
    d = env.diff()
    assert d.events["local_only"] == 1 and d.events["remote_only"] == 1 and d.from_checkpoint
    # the remote log replaced behind our back (same events, different order): detected, read in full once, still exact
    log = R / DS / ".events.log"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[1:] + lines[:1]))
    d = env.diff()
    assert not d.from_checkpoint and d.events["local_only"] == 1 and d.events["remote_only"] == 1
    env.pull()
    env.push()
    d = env.diff()
    assert d.status == "up-to-date" and d.from_checkpoint
    assert set(event_ids(L)) == set(event_ids(R))
    valid(L, R)


def test_concurrent_pulls_append_each_event_once(env):
    L, R = env.L, env.R
    make(R, 20, 60)
    env.pull()
    remote = Dataset.open(R, DS)
    for i in range(5):
        remote.append(make_records(seqs(4, 61 + i), source="hpc"))
    errors: list[BaseException] = []

    def one() -> None:
        try:
            env.pull()
        except BaseException as exc:  # the loser may see the manifest move and retry; it must not fail
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert rows(L) == rows(R)
    assert set(event_ids(R)) <= set(event_ids(L))
    valid(L, R)


# -- CLI, path remotes only ------------------------------------------------------------------------
def test_cli_path_remote_bootstrap_noop_and_doctor(tmp_path, monkeypatch):
    e = Env("path", tmp_path, monkeypatch)
    make(e.L, 50, 70)
    res = usr("diff", DS, "far", code=3)
    assert "CHANGES (push)" in res.output
    res = usr("push", DS, "far", "-y", "--audit-json-out", tmp_path / "a.json")
    assert "Push complete." in res.output
    audit = json.loads((tmp_path / "a.json").read_text())["data"]
    assert audit["primary"]["rows_added"] == 50 and audit["transfer"]["ssh_calls"] == 0
    res = usr("diff", DS, "far", "--json", code=0)
    assert json.loads(res.output)["data"]["changes"][".events.log"]["from_checkpoint"]
    assert "NO-OP" in usr("pull", DS, "far", "-y").output
    L2 = tmp_path / "laptop2"
    usr("--root", L2, "pull", DS, "far", "-y")
    assert rows(L2) == rows(e.L) == rows(e.R)
    res = usr("remotes", "doctor", "--remote", "far")
    assert "Doctor checks passed." in res.output and "flock works" in res.output
    usr("remotes", "add", "gone", tmp_path / "not-mounted")
    res = usr("remotes", "doctor", "--remote", "gone", code=1)
    assert "base_dir exists" in res.output and "fix:" in res.output
    res = usr("diff", DS, "gone", code=3)  # an absent remote copy is a difference, not an error
    res = usr("push", DS, "gone", "-y", code=1)
    assert "does not exist" in res.output and "Traceback" not in res.output
    valid(e.L, e.R, L2)


def test_cli_bwlimit_reaches_rsync(tmp_path, monkeypatch):
    """`--bwlimit` is handed to rsync (observed through a logging wrapper in front of the real rsync)."""
    e = Env("path", tmp_path, monkeypatch)
    make(e.L, 30, 80)
    shim = tmp_path / "bin"
    shim.mkdir()
    argv_log = tmp_path / "rsync-argv.log"
    (shim / "rsync").write_text(f"#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{argv_log}'\nexec {shutil.which('rsync')} \"$@\"\n")
    (shim / "rsync").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    usr("push", DS, "far", "-y", "--bwlimit", "2M")
    assert "--bwlimit=2M" in argv_log.read_text()
    assert rows(e.R) == rows(e.L)
    valid(e.L, e.R)


def test_cli_remote_that_is_the_local_root_is_refused(tmp_path, monkeypatch):
    e = Env("path", tmp_path, monkeypatch)
    make(e.L, 5, 90)
    usr("remotes", "add", "self", e.L)
    res = usr("pull", DS, "self", "-y", code=2)
    assert "this very dataset directory" in res.output
    valid(e.L)


def test_cli_pull_killed_mid_transfer_leaves_the_live_tree_untouched_and_resumes(tmp_path, monkeypatch):
    e = Env("path", tmp_path, monkeypatch)
    ds = Dataset.create(e.R, DS, source="t")
    rnd = random.Random(7)
    ds.append(make_records(["".join(rnd.choice("ACGT") for _ in range(2000)) for _ in range(1200)], source="t"))
    make(e.L, 10, 91)  # a local copy with its own rows
    before = (e.L / DS / "manifest.json").read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", "from dnadesign.usr.cli import main; main()", "pull", DS, "far", "-y",
                             "--bwlimit", "300"], start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    staging = e.L / DS / ".usr-sync" / "in"
    try:
        import time

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:  # observed progress: part of a file arrived
            sizes = [p.stat().st_size for p in staging.rglob(".part-*")] if staging.exists() else []
            if sizes and max(sizes) >= 128 * 1024:
                break
            time.sleep(0.02)
        else:
            raise AssertionError(f"no transfer progress (exit {proc.poll()})")
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=10)
    assert (e.L / DS / "manifest.json").read_bytes() == before  # nothing committed
    valid(e.L)
    usr("pull", DS, "far", "-y")
    assert rows(e.R) <= rows(e.L)
    valid(e.L, e.R)


def test_profile_for_a_path_remote_rejects_ssh_keys():
    with pytest.raises(Exception, match="does not apply to a path remote"):
        RemoteProfile(name="x", host="h", base_dir="/mnt/x", type="path")
