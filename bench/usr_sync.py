"""Benchmark `usr` sync against a real sshd + rsync on 127.0.0.1.

Figures (one JSON line on stdout, progress on stderr):
- incremental pull after appending 1% new rows to a 1M-row dataset: bytes moved (rsync wire bytes plus
  the remote-call output) vs the bytes of the new part files;
- a no-op `diff` on a dataset of 1,000 part files: seconds (cold: includes the SSH authentication;
  warm: over the ControlMaster a previous command left) and SSH authentications counted in sshd's log.

Usage (root or any user that can run sshd): uv run python bench/usr_sync.py [--rows 1000000] [--parts 1000]
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import yaml

from dnadesign.core.ids import sha256_file
from dnadesign.usr.manifest import FileEntry
from dnadesign.usr.schema import make_records
from dnadesign.usr.store import Dataset
from dnadesign.usr.sync import engine
from dnadesign.usr.sync.remotes import get_profile


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def random_seqs(n: int, length: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    codes = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, size=(n, length))]
    blob = codes.tobytes().decode()
    return [blob[i * length:(i + 1) * length] for i in range(n)]


def start_sshd(d: Path) -> tuple[int, int]:
    for name in ("host_ed25519", "user_ed25519"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    shutil.copy(d / "user_ed25519.pub", d / "authorized_keys")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\nPidFile {d}/sshd.pid\n"
        f"AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nLogLevel VERBOSE\n")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    subprocess.run([sshd, "-f", str(d / "sshd_config"), "-E", str(d / "sshd.log")], check=True)
    for _ in range(200):
        if (d / "sshd.pid").exists() and (d / "sshd.pid").read_text().strip():
            break
        time.sleep(0.05)
    hostkey = " ".join((d / "host_ed25519.pub").read_text().split()[:2])
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {hostkey}\n")
    return port, int((d / "sshd.pid").read_text().strip())


def auths(d: Path) -> int:
    return (d / "sshd.log").read_text(errors="replace").count("Accepted publickey")


def build_many_parts(root: Path, ds_id: str, parts: int, rows_per_part: int) -> None:
    """A dataset of `parts` base part files, written directly (the store's append is O(parts) per call)."""
    ds = Dataset.create(root, ds_id, source="bench")
    man = ds.manifest()
    (ds.dir / "records").mkdir(exist_ok=True)
    for i in range(parts):
        t = make_records(random_seqs(rows_per_part, 40, 10_000 + i), source="bench")
        rel = f"records/part-{i:06d}.parquet"
        pq.write_table(t, ds.dir / rel)
        man.parts.append(FileEntry(rel, sha256_file(ds.dir / rel), t.num_rows, (ds.dir / rel).stat().st_size))
    man.bio_types = ["dna"]
    man.save(ds.paths.manifest)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--part-rows", type=int, default=100_000)
    ap.add_argument("--parts", type=int, default=1000)
    ap.add_argument("--workdir", type=Path, default=None)
    a = ap.parse_args()
    work = Path(a.workdir or tempfile.mkdtemp(prefix="usr-sync-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    sshd_dir = Path(tempfile.mkdtemp(prefix="usrbs-"))
    port, pid = start_sshd(sshd_dir)
    control = Path(tempfile.mkdtemp(prefix="ubc", dir="/tmp"))
    os.environ["USR_SSH_CONTROL_DIR"] = str(control)
    os.environ["USR_REMOTES_PATH"] = str(work / "remotes.yaml")
    local, remote = work / "local", work / "remote"
    local.mkdir(exist_ok=True)
    remote.mkdir(exist_ok=True)
    (work / "remotes.yaml").write_text(yaml.safe_dump({"remotes": {"bench": {
        "host": "127.0.0.1", "port": port, "user": getpass.getuser(), "identity_file": str(sshd_dir / "user_ed25519"),
        "known_hosts": str(sshd_dir / "known_hosts"), "base_dir": str(remote)}}}))
    prof = get_profile("bench")
    opts = engine.SyncOptions()
    out: dict = {"bench": "usr_sync", "rows": a.rows, "parts_noop": a.parts}
    try:
        # -- 1. incremental pull after +1% rows on a 1M-row dataset ----------------------------
        log(f"building {a.rows} rows on the 'remote' ...")
        t0 = time.monotonic()
        big = Dataset.create(remote, "bench/big", source="bench")
        for i in range(0, a.rows, a.part_rows):
            n = min(a.part_rows, a.rows - i)
            big.append(make_records(random_seqs(n, 60, i), source="bench"))
        log(f"  built in {time.monotonic() - t0:.1f}s; bootstrap pull ...")
        t0 = time.monotonic()
        boot = engine.pull(local, "bench/big", prof, opts)
        out["bootstrap_pull_s"] = round(time.monotonic() - t0, 2)
        out["bootstrap_bytes"] = boot.new_file_bytes
        add = max(1, a.rows // 100)
        big.append(make_records(random_seqs(add, 60, 99_999_999), source="bench"))
        new_file = big.manifest().parts[-1]
        t0 = time.monotonic()
        inc = engine.pull(local, "bench/big", prof, opts)
        out["incremental_pull_s"] = round(time.monotonic() - t0, 3)
        moved = inc.wire_bytes + inc.inventory_bytes
        out.update({"new_rows": add, "new_file_bytes": new_file.bytes, "rsync_wire_bytes": inc.wire_bytes,
                    "remote_call_bytes": inc.inventory_bytes, "transfer_ratio": round(moved / new_file.bytes, 3),
                    "rsync_ratio": round(inc.wire_bytes / new_file.bytes, 3), "incremental_files": inc.files_transferred})
        log(f"  +1% pull: {moved} bytes moved for {new_file.bytes} new bytes (ratio {out['transfer_ratio']})")

        # -- 2. no-op diff on 1,000 parts -------------------------------------------------------
        log(f"building {a.parts} parts locally and pushing ...")
        build_many_parts(local, "bench/many", a.parts, 10)
        t0 = time.monotonic()
        engine.push(local, "bench/many", prof, opts)
        out["push_1000_parts_s"] = round(time.monotonic() - t0, 2)
        # cold: no ControlMaster yet (close the one the push left)
        for sock in control.glob("*"):
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"], capture_output=True)
        before = auths(sshd_dir)
        cli = [sys.executable, "-c", "from dnadesign.usr.cli import main; main()", "--root", str(local), "diff", "bench/many", "bench"]
        t0 = time.monotonic()
        r = subprocess.run(cli, capture_output=True, text=True)
        out["noop_diff_cli_cold_s"] = round(time.monotonic() - t0, 3)
        out["noop_diff_exit"] = r.returncode
        out["noop_diff_ssh_auths"] = auths(sshd_dir) - before
        t0 = time.monotonic()
        d, sess = engine.diff(local, "bench/many", prof, opts)
        out["noop_diff_warm_s"] = round(time.monotonic() - t0, 3)
        out["noop_diff_status"] = d.status
        out["noop_diff_remote_calls"] = sess.conn.calls
        t0 = time.monotonic()
        r = subprocess.run(cli, capture_output=True, text=True)
        out["noop_diff_cli_warm_s"] = round(time.monotonic() - t0, 3)
        out["ok"] = bool(out["transfer_ratio"] < 2 and out["noop_diff_warm_s"] < 1 and out["noop_diff_exit"] == 0
                         and out["noop_diff_ssh_auths"] <= 2)
    finally:
        for sock in control.glob("*"):
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"], capture_output=True)
        os.kill(pid, 15)
        shutil.rmtree(sshd_dir, ignore_errors=True)
        shutil.rmtree(control, ignore_errors=True)
        if a.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
