"""usr diff/pull/push against a real sshd + rsync on 127.0.0.1."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from dnadesign.core import events as ev
from dnadesign.usr.cli import app
from dnadesign.usr.manifest import Manifest
from dnadesign.usr.schema import make_records
from dnadesign.usr.store import Dataset
from tests.usr.sync.sshd_fixtures import sshd_host, sync_env  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
DS = "demo/one"


def seqs(n: int, seed: int, length: int = 40) -> list[str]:
    r = random.Random(seed)
    return ["".join(r.choice("ACGT") for _ in range(length)) for _ in range(n)]


def make(root, n=100, seed=1, ds_id=DS) -> Dataset:
    ds = Dataset.create(root, ds_id, source="test", exist_ok=True)
    ds.append(make_records(seqs(n, seed), source="test"))
    return ds


def usr(*args: str, code: int | None = 0):
    res = CliRunner().invoke(app, list(args))
    if code is not None:
        assert res.exit_code == code, f"usr {' '.join(args)} -> {res.exit_code}\n{res.output}\n{res.exception!r}"
    return res


def rows(root, ds_id=DS) -> set[str]:
    return set(Dataset.open(root, ds_id).scan().select("id").collect()["id"].to_list())


def content(root, ds_id=DS) -> bytes:
    m = Manifest.load(root / ds_id / "manifest.json")
    m.updated_at = ""
    return m.to_json()


def event_ids(root, ds_id=DS) -> set[str]:
    return {e["event_id"] for e in ev.read_events(root / ds_id / ".events.log")}


def valid(*roots, ds_id=DS) -> None:
    """Issue 11's invariant: every copy a sync test wrote passes `usr validate`, and no event line is duplicated."""
    for root in roots:
        res = usr("--root", str(root), "validate", ds_id)  # exit 0 asserted
        assert "INVALID" not in res.output, res.output
        ids = [e["event_id"] for e in ev.read_events(root / ds_id / ".events.log")]
        assert len(ids) == len(set(ids)), f"duplicated event lines in {root}"


def wait_for_partial(dest_dir, min_bytes: int, proc, timeout: float = 30.0) -> None:
    """Block until rsync has written at least `min_bytes` of some file under `dest_dir` (observed progress)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        sizes = [p.stat().st_size for p in dest_dir.rglob(".part-*")] if dest_dir.exists() else []
        if sizes and max(sizes) >= min_bytes:
            return
        time.sleep(0.02)
    raise AssertionError(f"no transfer progress under {dest_dir} (process exit {proc.poll()})")


def test_bootstrap_push_then_pull_back_and_noop(sync_env):
    L, R = sync_env.local_root, sync_env.remote_root
    make(L, 120, 1)
    res = usr("--root", str(L), "diff", DS, "hpc", code=3)
    assert "CHANGES (push)" in res.output
    res = usr("--root", str(L), "push", DS, "hpc", "-y", "--audit-json-out", str(L / "audit.json"))
    assert "PUSH audit: TRANSFERRED" in res.output and "Push complete." in res.output
    audit = json.loads((L / "audit.json").read_text())["data"]
    assert audit["transfer_state"] == "TRANSFERRED" and audit["primary"]["changed"] and audit["primary"]["rows_added"] == 120
    assert rows(R) == rows(L) and len(rows(R)) == 120
    assert content(R) == content(L)
    assert event_ids(R) == event_ids(L)
    assert (R / DS / "meta.md").read_bytes() == (L / DS / "meta.md").read_bytes()
    res = usr("--root", str(L), "diff", DS, "hpc", code=0)
    assert "Status     : up-to-date" in res.output
    res = usr("--root", str(L), "push", DS, "hpc", "-y")
    assert "PUSH audit: NO-OP" in res.output
    # bootstrap the other way: a fresh local root pulls it
    L2 = L.parent / "local2"
    res = usr("--root", str(L2), "pull", DS, "hpc", "-y")
    assert "PULL audit: TRANSFERRED" in res.output
    assert rows(L2) == rows(R) and content(L2) == content(R)
    usr("--root", str(L2), "diff", DS, "hpc", code=0)
    valid(L, R, L2)


def test_incremental_pull_moves_only_new_files(sync_env):
    L, R = sync_env.local_root, sync_env.remote_root
    make(R, 200, 1)
    usr("--root", str(L), "pull", DS, "hpc", "-y")
    remote = Dataset.open(R, DS)
    remote.append(make_records(seqs(30, 7), source="hpc"))
    new_part = remote.manifest().parts[-1]
    res = usr("--root", str(L), "diff", DS, "hpc", "--json", code=3)
    doc = json.loads(res.output)["data"]
    assert doc["pull_needed"] and not doc["push_needed"]
    assert doc["changes"]["primary"]["remote_only"] == [new_part.file]
    audit_path = L / "a.json"
    usr("--root", str(L), "pull", DS, "hpc", "-y", "--audit-json-out", str(audit_path))
    audit = json.loads(audit_path.read_text())["data"]
    assert audit["transfer"]["files"] == 1
    assert audit["transfer"]["new_file_bytes"] == new_part.bytes
    assert 0 < audit["transfer"]["wire_bytes"] < 2 * new_part.bytes + 4096
    assert audit["primary"]["rows_added"] == 30
    assert rows(L) == rows(R) and len(rows(L)) == 230
    res = usr("--root", str(L), "diff", DS, "hpc", code=0)
    assert "sync event" in res.output  # our own pull event is not drift
    valid(L, R)


def test_incremental_push_overlay_and_tombstone(sync_env):
    L, R = sync_env.local_root, sync_env.remote_root
    make(R, 50, 3)
    usr("--root", str(L), "pull", DS, "hpc", "-y")
    local = Dataset.open(L, DS)
    ids = sorted(rows(L))
    local.write_overlay("infer", pa.table({"id": ids[:10], "infer__score": [float(i) for i in range(10)]}))
    local.delete(ids[10:12], reason="bad")
    res = usr("--root", str(L), "diff", DS, "hpc", code=3)
    assert "_derived/infer" in res.output and "Tombstones" in res.output
    res = usr("--root", str(L), "push", DS, "hpc", "-y", "--verify", "hash", "--no-verify-sidecars", "--no-verify-derived-hashes")
    assert "sidecars=off derived_hashes=off" in res.output
    remote_df = Dataset.open(R, DS).scan().collect()
    assert remote_df.height == 48
    assert "infer__score" in remote_df.columns
    assert content(R) == content(L)
    usr("--root", str(L), "diff", DS, "hpc", code=0)
    valid(L, R)


def test_divergent_histories_merge_by_union(sync_env):
    L, R = sync_env.local_root, sync_env.remote_root
    make(R, 80, 5)
    usr("--root", str(L), "pull", DS, "hpc", "-y")
    Dataset.open(R, DS).append(make_records(seqs(20, 11), source="hpc"))
    Dataset.open(R, DS).snapshot("hpc-snap")
    (R / DS / "_artifacts").mkdir()
    (R / DS / "_artifacts" / "report.txt").write_text("from hpc\n")
    loc = Dataset.open(L, DS)
    loc.append(make_records(seqs(15, 12) + seqs(5, 11), source="laptop"))  # 5 overlap with the remote's batch
    loc.add_note("laptop note")
    loc.snapshot("laptop-snap")
    before_l, before_r = event_ids(L), event_ids(R)
    res = usr("--root", str(L), "diff", DS, "hpc", "--json", code=3)
    doc = json.loads(res.output)["data"]
    assert doc["pull_needed"] and doc["push_needed"]
    usr("--root", str(L), "pull", DS, "hpc", "-y")
    usr("--root", str(L), "push", DS, "hpc", "-y")
    assert content(L) == content(R)
    assert Manifest.load(L / DS / "manifest.json").dedupe_on_read
    assert rows(L) == rows(R)
    assert len(rows(L)) == 80 + 20 + 15
    assert event_ids(L) == event_ids(R) and (before_l | before_r) <= event_ids(L)
    assert (L / DS / "meta.md").read_bytes() == (R / DS / "meta.md").read_bytes()
    assert "laptop note" in (R / DS / "meta.md").read_text()
    for side in (L, R):
        assert sorted(p.name for p in (side / DS / "_snapshots").iterdir()) == ["hpc-snap.json", "laptop-snap.json"]
    assert (L / DS / "_artifacts" / "report.txt").read_text() == "from hpc\n"
    res = usr("--root", str(L), "diff", DS, "hpc", code=0)
    assert "up-to-date" in res.output
    valid(L, R)


def test_verify_hash_detects_corrupted_remote_file(sync_env):
    L, R = sync_env.local_root, sync_env.remote_root
    make(R, 60, 21)
    usr("--root", str(L), "pull", DS, "hpc", "-y")
    Dataset.open(R, DS).append(make_records(seqs(40, 22), source="hpc"))
    part = Manifest.load(R / DS / "manifest.json").parts[-1]
    p = R / DS / part.file
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different content
    p.write_bytes(bytes(data))
    before = (L / DS / "manifest.json").read_bytes()
    res = usr("--root", str(L), "pull", DS, "hpc", "-y", "--verify", "hash", code=1)
    assert "does not match its manifest" in res.output
    assert (L / DS / "manifest.json").read_bytes() == before
    assert not (L / DS / part.file).exists()
    # size-only verification trades this fidelity for speed (documented): it would accept the file
    res = usr("--root", str(L), "pull", DS, "hpc", "-y", "--verify", "size", "--dry-run")
    assert "DRY-RUN" in res.output
    valid(L)


def test_verify_hash_detects_corruption_on_push(sync_env):
    L, R = sync_env.local_root, sync_env.remote_root
    make(L, 60, 31)
    usr("--root", str(L), "push", DS, "hpc", "-y")
    Dataset.open(L, DS).append(make_records(seqs(40, 32), source="laptop"))
    part = Manifest.load(L / DS / "manifest.json").parts[-1]
    p = L / DS / part.file
    data = bytearray(p.read_bytes())
    data[100] ^= 0x01
    p.write_bytes(bytes(data))
    before = (R / DS / "manifest.json").read_bytes()
    res = usr("--root", str(L), "push", DS, "hpc", "-y", code=1)
    assert "does not match its manifest" in res.output and part.file in res.output
    assert (R / DS / "manifest.json").read_bytes() == before
    assert not (R / DS / part.file).exists()
    valid(R)


def test_primary_only_and_skip_snapshots(sync_env):
    L, R = sync_env.local_root, sync_env.remote_root
    make(R, 40, 41)
    Dataset.open(R, DS).snapshot("s1")
    usr("--root", str(L), "pull", DS, "hpc", "-y", "--skip-snapshots")
    assert not (L / DS / "_snapshots" / "s1.json").exists()
    assert len(rows(L)) == 40
    Dataset.open(R, DS).append(make_records(seqs(10, 42), source="hpc"))
    usr("--root", str(L), "pull", DS, "hpc", "-y", "--primary-only")
    assert len(rows(L)) == 50
    res = usr("--root", str(L), "diff", DS, "hpc", "--primary-only", code=0)
    assert "up-to-date" in res.output
    usr("--root", str(L), "diff", DS, "hpc", code=3)  # snapshots/events still differ
    valid(L, R)


def test_noop_diff_uses_one_authentication(sync_env):
    L = sync_env.local_root
    make(L, 30, 51)
    usr("--root", str(L), "push", DS, "hpc", "-y")
    subprocess.run(["ssh", "-o", f"ControlPath={sync_env.control_dir}/%C", "-O", "exit", "-p", str(sync_env.host.port),
                    f"{sync_env.host.user}@127.0.0.1"], capture_output=True)
    before = sync_env.host.accepted()
    res = usr("--root", str(L), "diff", DS, "hpc", "--json", code=0)
    assert json.loads(res.output)["data"]["ssh_calls"] == 1
    assert sync_env.host.accepted() - before <= 1
    before = sync_env.host.accepted()
    Dataset.open(L, DS).append(make_records(seqs(5, 52), source="laptop"))
    usr("--root", str(L), "push", DS, "hpc", "-y")
    assert sync_env.host.accepted() - before <= 1  # the whole push multiplexes over one connection
    valid(L, sync_env.remote_root)


def test_noop_diff_reads_only_the_new_tail_of_a_long_event_log(sync_env):
    """With a checkpoint, a no-op diff reads a few KB of each log, whatever its length (issue 12)."""
    L, R = sync_env.local_root, sync_env.remote_root
    ds = make(L, 20, 53)
    actor = ev.Actor.current("densegen")
    ev.append_events(ds.events_path, [ev.make_event("densegen_health", DS, actor, args={"status": "running", "i": i})
                                      for i in range(5000)])
    usr("--root", str(L), "push", DS, "hpc", "-y")
    size = (L / DS / ".events.log").stat().st_size
    assert size > 1_000_000
    doc = json.loads(usr("--root", str(L), "diff", DS, "hpc", "--json", code=0).output)["data"]
    evs = doc["changes"][".events.log"]
    assert evs["from_checkpoint"] and evs["local"] == evs["remote"] == 5000 + 3
    assert evs["read_bytes"]["local"] < 16384 and evs["read_bytes"]["remote"] < 16384, evs
    assert doc["ssh_calls"] == 1
    # one new remote event: only it (and the windows) travel, and it is reported
    Dataset.open(R, DS).log_event("densegen_health", args={"status": "completed"})
    doc = json.loads(usr("--root", str(L), "diff", DS, "hpc", "--json", code=3).output)["data"]
    evs = doc["changes"][".events.log"]
    assert evs["remote_only"] == 1 and evs["read_bytes"]["remote"] < 16384 and evs["from_checkpoint"]
    usr("--root", str(L), "pull", DS, "hpc", "-y")
    assert event_ids(R) <= event_ids(L) and len(event_ids(L) - event_ids(R)) == 1  # + our own pull event
    valid(L, R)


def test_unknown_host_key_is_refused(sync_env, tmp_path):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    sync_env.profile("stranger", known_hosts=str(empty))
    make(sync_env.local_root, 10, 61)
    res = usr("diff", DS, "stranger", code=1)
    assert "host key" in res.output
    res = usr("remotes", "doctor", "--remote", "stranger", code=1)
    assert "FAIL" in res.output and "fix:" in res.output
    valid(sync_env.local_root)


def test_remotes_doctor_and_show(sync_env):
    res = usr("remotes", "doctor", "--remote", "hpc")
    assert "Doctor checks passed." in res.output and "remote flock" in res.output
    res = usr("remotes", "show", "hpc")
    assert str(sync_env.remote_root) in res.output
    sync_env.profile("nobase", base_dir=str(sync_env.remote_root / "missing"))
    res = usr("remotes", "doctor", "--remote", "nobase", code=1)
    assert "base_dir exists" in res.output and "mkdir -p" in res.output


def test_pull_while_remote_is_appended_to(sync_env):
    """A remote writer appending during pulls: every pull yields a consistent copy."""
    L, R = sync_env.local_root, sync_env.remote_root
    make(R, 20, 71)
    code = (
        "import random,sys\n"
        "from dnadesign.usr.store import Dataset\nfrom dnadesign.usr.schema import make_records\n"
        "ds=Dataset.open(sys.argv[1],'demo/one')\n"
        "for i in range(25):\n"
        "    r=random.Random(1000+i); ds.append(make_records([''.join(r.choice('ACGT') for _ in range(40)) for _ in range(20)],source='w'))\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", code, str(R)])
    try:
        for _ in range(4):
            usr("--root", str(L), "pull", DS, "hpc", "-y")
            man = Manifest.load(L / DS / "manifest.json")
            assert all((L / DS / e.file).exists() for e in man.all_files())
            assert len(rows(L)) == man.rows
    finally:
        writer.wait(timeout=60)
    usr("--root", str(L), "pull", DS, "hpc", "-y")
    assert rows(L) == rows(R) and len(rows(L)) == 20 + 25 * 20
    valid(L, R)


def test_killed_push_resumes(sync_env):
    L, R = sync_env.local_root, sync_env.remote_root
    ds = Dataset.create(L, DS, source="t")
    rnd = random.Random(5)
    big = ["".join(rnd.choice("ACGT") for _ in range(2000)) for _ in range(1500)]
    ds.append(make_records(big, source="t"))  # ~3 MB of incompressible-ish sequence
    proc = subprocess.Popen([sys.executable, "-c", "from dnadesign.usr.cli import main; main()", "--root", str(L), "push", DS, "hpc", "-y",
                             "--bwlimit", "500"], start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_partial(R / DS / ".usr-sync" / "in", 256 * 1024, proc)  # mid-file, by observed progress
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=10)
    assert not (R / DS / "manifest.json").exists()  # nothing committed: the remote copy is still "absent", not broken
    assert not list((R / DS).glob("records/*.parquet"))  # and nothing reached the live tree
    res = usr("--root", str(L), "push", DS, "hpc", "-y")
    assert "TRANSFERRED" in res.output
    assert rows(R) == rows(L)
    usr("--root", str(L), "diff", DS, "hpc", code=0)
    valid(L, R)


def test_push_reunions_when_remote_writer_commits_meanwhile(sync_env):
    """Fault injection: a remote append lands between the transfer and the commit."""
    from dnadesign.usr.sync import engine
    from dnadesign.usr.sync.remotes import get_profile

    L, R = sync_env.local_root, sync_env.remote_root
    make(L, 30, 81)
    usr("--root", str(L), "push", DS, "hpc", "-y")
    Dataset.open(L, DS).append(make_records(seqs(12, 82), source="laptop"))

    def remote_writer(attempt: int) -> None:
        if attempt == 1:
            Dataset.open(R, DS).append(make_records(seqs(7, 83), source="hpc"))

    audit = engine.push(L, DS, get_profile("hpc"), engine.SyncOptions(), hooks=engine.SyncHooks(before_commit=remote_writer))
    assert audit.retries == 1 and audit.state == "TRANSFERRED"
    assert rows(L) < rows(R) and len(rows(R)) == 30 + 12 + 7  # nothing the remote writer added was lost
    usr("--root", str(L), "pull", DS, "hpc", "-y")
    assert rows(L) == rows(R) and content(L) == content(R)
    usr("--root", str(L), "diff", DS, "hpc", code=0)
    valid(L, R)


def test_pull_survives_a_local_compact_between_transfer_and_commit(sync_env):
    """Issue 11 item 3 over real ssh: a real `compact` lands after rsync and before the commit."""
    from dnadesign.usr.sync import engine
    from dnadesign.usr.sync.remotes import get_profile

    L, R = sync_env.local_root, sync_env.remote_root
    make(R, 30, 84)
    Dataset.open(R, DS).append(make_records(seqs(10, 85), source="hpc"))
    usr("--root", str(L), "pull", DS, "hpc", "-y")
    Dataset.open(R, DS).append(make_records(seqs(9, 86), source="hpc"))
    compacted = []

    def compact_here(attempt: int) -> None:
        if attempt == 1:
            compacted.append(Dataset.open(L, DS).compact())

    audit = engine.pull(L, DS, get_profile("hpc"), engine.SyncOptions(), hooks=engine.SyncHooks(before_commit=compact_here))
    assert compacted and compacted[0]["files_removed"] >= 2 and audit.retries >= 1
    man = Manifest.load(L / DS / "manifest.json")
    assert all((L / DS / e.file).exists() for e in man.all_files())
    assert rows(L) == rows(R) and len(rows(L)) == 49
    valid(L, R)


def test_pull_brings_snapshot_files_after_remote_compaction(sync_env):
    L, R = sync_env.local_root, sync_env.remote_root
    remote = make(R, 25, 91)
    remote.append(make_records(seqs(25, 92), source="hpc"))
    remote.snapshot("before-compact")
    remote.compact()
    assert len(remote.manifest().parts) == 1
    res = usr("--root", str(L), "pull", DS, "hpc", "--dry-run")
    assert "DRY-RUN" in res.output and not (L / DS / "manifest.json").exists()
    res = usr("--root", str(L), "pull", DS, "hpc", code=2)  # no -y and no terminal: refuse instead of hanging
    assert "-y" in res.output
    usr("--root", str(L), "pull", DS, "hpc", "-y")
    valid(L, R)
    local = Dataset.open(L, DS)
    assert local.restore_snapshot("before-compact").rows == 50
    assert rows(L) == rows(R)
    valid(L)


def test_ssh_config_alias_with_the_users_own_controlmaster(sync_env, tmp_path):
    h = sync_env.host
    cfg = tmp_path / "ssh_config"
    cfg.write_text(f"Host hpcalias\n  HostName 127.0.0.1\n  Port {h.port}\n  User {h.user}\n  IdentityFile {h.key}\n"
                   f"  IdentitiesOnly yes\n  UserKnownHostsFile {h.known_hosts}\n  ControlMaster auto\n"
                   f"  ControlPath {sync_env.control_dir}/mine-%C\n  ControlPersist 30\n")
    sync_env.profile("alias", host="hpcalias", ssh_config=str(cfg), port=None, user=None, identity_file=None, known_hosts=None)
    L = sync_env.local_root
    make(L, 20, 101)
    before = h.accepted()
    usr("--root", str(L), "push", DS, "alias", "-y")
    usr("--root", str(L), "diff", DS, "alias", code=0)
    assert h.accepted() - before == 1  # push + diff: one authentication over the user's own master
    assert [p.name.startswith("mine-") for p in sync_env.control_dir.iterdir()] == [True]
    valid(L, sync_env.remote_root)
