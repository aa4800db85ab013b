"""Benchmark `usr` sync against a real sshd + rsync on 127.0.0.1.

Figures (one JSON line on stdout, progress on stderr):
- `transfer`: incremental pull after appending 1% new rows to a 1M-row dataset: bytes moved (rsync wire
  bytes plus the remote-call output) vs the bytes of the new part files;
- `noop_parts`: a no-op `diff` on a dataset of 1,000 part files: seconds (cold: includes the SSH
  authentication; warm: over the ControlMaster a previous command left) and SSH authentications;
- `noop_events`: a no-op `usr diff`, `usr pull` and `usr push` with a 2-line and a 1M-line `.events.log` on both
  sides: CPU seconds and peak RSS of the client process (with its ssh children) and of everything the
  remote ran for it (measured by a ForceCommand wrapper in this benchmark's own sshd), after the
  per-remote checkpoint exists; also the first diff (no checkpoint yet). With `--baseline REV` the same
  commands also run with the code of git revision REV (exported with `git archive`), side by side.

Usage (root or any user that can run sshd):
  flock /tmp/dnadesign-bench.lock uv run python bench/usr_sync.py [--rows 1000000] [--parts 1000]
      [--events-lines 1000000] [--baseline REV] [--only noop_events]
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import resource
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

from dnadesign.core import events as ev
from dnadesign.core.ids import sha256_file
from dnadesign.usr.manifest import FileEntry
from dnadesign.usr.schema import make_records
from dnadesign.usr.store import Dataset
from dnadesign.usr.sync import engine
from dnadesign.usr.sync.remotes import get_profile
from dnadesign.usr.sync.ssh import Connection

REPO = Path(__file__).resolve().parents[1]

TIME = shutil.which("time") or "/usr/bin/time"  # GNU time: a tiny parent, so the child's peak RSS is its own


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def random_seqs(n: int, length: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    codes = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, size=(n, length))]
    blob = codes.tobytes().decode()
    return [blob[i * length:(i + 1) * length] for i in range(n)]


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("sshd did not start")


def start_sshd(d: Path, force_command: str | None = None) -> tuple[int, int]:
    for name in ("host_ed25519", "user_ed25519"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    shutil.copy(d / "user_ed25519.pub", d / "authorized_keys")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\nPidFile {d}/sshd.pid\n"
        f"AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nLogLevel VERBOSE\nMaxSessions 50\n"
        + (f"ForceCommand {force_command}\n" if force_command else ""))
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    subprocess.run([sshd, "-f", str(d / "sshd_config"), "-E", str(d / "sshd.log")], check=True)
    wait_port(port)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not ((d / "sshd.pid").exists() and (d / "sshd.pid").read_text().strip()):
        time.sleep(0.02)
    hostkey = " ".join((d / "host_ed25519.pub").read_text().split()[:2])
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {hostkey}\n")
    return port, int((d / "sshd.pid").read_text().strip())


def auths(d: Path) -> int:
    return (d / "sshd.log").read_text(errors="replace").count("Accepted publickey")


def profile_doc(sshd_dir: Path, port: int, base: Path) -> dict:
    return {"host": "127.0.0.1", "port": port, "user": getpass.getuser(), "identity_file": str(sshd_dir / "user_ed25519"),
            "known_hosts": str(sshd_dir / "known_hosts"), "base_dir": str(base)}


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


def build_event_log(root: Path, ds_id: str, lines: int) -> int:
    """A small dataset whose `.events.log` holds `lines` lines (DenseGen-like progress events); returns its bytes."""
    ds = Dataset.create(root, ds_id, source="bench")
    ds.append(make_records(random_seqs(100, 60, 7), source="bench"))
    actor = ev.Actor.current("densegen", run_id="bench-run")
    todo = max(0, lines - 2)
    batch = 50_000
    for start in range(0, todo, batch):
        n = min(batch, todo - start)
        events = [ev.make_event("densegen_health", ds_id, actor, args={"status": "running", "plan": "sigma70"},
                                metrics={"plan": "sigma70", "generated": start + i, "quota": todo, "percent": round(100 * (start + i) / todo, 2)},
                                fingerprint={"rows": 100, "manifest": "0" * 64}) for i in range(n)]
        ev.append_events(ds.events_path, events)
    return ds.events_path.stat().st_size


def usage_lines(path: Path) -> list[tuple[float, int]]:
    """(cpu seconds, peak RSS KB) per `time -f "%U %S %M"` record in a file."""
    out = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].isdigit():
            out.append((float(parts[0]) + float(parts[1]), int(parts[2])))
    return out


def run_measured(argv: list[str], env: dict, remote_log: Path) -> dict:
    """Run one CLI command; CPU s and peak RSS of the process (+ its ssh children) and of the remote side."""
    remote_log.write_text("")
    with tempfile.NamedTemporaryFile(suffix=".time") as usage:
        t0 = time.monotonic()
        r = subprocess.run([TIME, "-o", usage.name, "-f", "%U %S %M", *argv], env=env, capture_output=True, text=True)
        wall = time.monotonic() - t0
        (cpu, rss), = usage_lines(Path(usage.name))
    remote = usage_lines(remote_log)
    doc = {"exit": r.returncode, "wall_s": round(wall, 3), "client_cpu_s": round(cpu, 3), "client_peak_rss_mb": round(rss / 1024, 1),
           "remote_cpu_s": round(sum(c for c, _ in remote), 3), "remote_peak_rss_mb": round(max((m for _, m in remote), default=0) / 1024, 1),
           "remote_calls": len(remote)}
    if r.returncode not in (0, 3):
        doc["stderr"] = r.stderr.strip()[-300:]
    return doc


def noop_events(a: argparse.Namespace, work: Path, out: dict) -> None:
    """No-op diff/pull with a 2-line and an N-line event log, new code (and the baseline), both sides."""
    if not os.access(TIME, os.X_OK):
        raise SystemExit("GNU time is needed to measure both sides (apt-get install time)")
    sshd_dir = Path(tempfile.mkdtemp(prefix="usrbe-"))
    remote_log = sshd_dir / "remote-usage.txt"
    # every remote command (scripts and rsync servers) runs under GNU time, which appends its CPU and peak RSS
    port, pid = start_sshd(sshd_dir, force_command=f'{TIME} -a -o {remote_log} -f "%U %S %M" /bin/sh -c "$SSH_ORIGINAL_COMMAND"')
    local, remote = work / "ev-local", work / "ev-remote"
    local.mkdir(exist_ok=True)
    remote.mkdir(exist_ok=True)
    remotes = work / "ev-remotes.yaml"
    remotes.write_text(yaml.safe_dump({"remotes": {"bench": profile_doc(sshd_dir, port, remote)}}))
    env = {**os.environ, "USR_REMOTES_PATH": str(remotes), "USR_SSH_CONTROL_DIR": os.environ["USR_SSH_CONTROL_DIR"]}
    os.environ["USR_REMOTES_PATH"] = str(remotes)
    prof = get_profile("bench")
    sizes = {"small": 2, "large": a.events_lines}
    res: dict = {"lines": sizes, "log_bytes": {}}
    try:
        for label, n in sizes.items():
            ds_id = f"bench/ev{label}"
            log(f"building a dataset with a {n}-line event log ...")
            res["log_bytes"][label] = build_event_log(local, ds_id, n)
            shutil.copytree(local / ds_id, remote / ds_id)  # both sides hold the same log, as after a sync
        codes = {"new": str(REPO / "src")}
        if a.baseline:
            base_src = work / "baseline"
            base_src.mkdir(exist_ok=True)
            tar = subprocess.run(["git", "-C", str(REPO), "archive", a.baseline, "src"], check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(base_src)], input=tar, check=True)
            codes["baseline"] = str(base_src / "src")
            res["baseline_rev"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", a.baseline], check=True,
                                                 capture_output=True, text=True).stdout.strip()
        for code, src in codes.items():
            cenv = {**env, "PYTHONPATH": src}
            res[code] = {}
            for label in sizes:
                ds_id = f"bench/ev{label}"
                shutil.rmtree(local / ds_id / ".usr-sync", ignore_errors=True)  # no checkpoint before the first diff
                cli = [sys.executable, "-c", "from dnadesign.usr.cli import main; main()", "--root", str(local)]
                Connection(prof).ensure_master()  # authentication is not part of the figure
                row = {"first_diff": run_measured([*cli, "diff", ds_id, "bench"], cenv, remote_log)}
                for op in ("diff", "pull", "push"):
                    Connection(prof).ensure_master()
                    argv = [*cli, op, ds_id, "bench"] + (["-y"] if op != "diff" else [])
                    row[op] = run_measured(argv, cenv, remote_log)
                for op, r in row.items():
                    log(f"  {code:8s} {op:10s} {label:5s}: client {r['client_cpu_s']} s / {r['client_peak_rss_mb']} MB, "
                        f"remote {r['remote_cpu_s']} s / {r['remote_peak_rss_mb']} MB (exit {r['exit']})")
                res[code][label] = row
        for code in codes:
            r = res[code]
            res[f"{code}_large_over_small_client_cpu"] = {op: round(r["large"][op]["client_cpu_s"] / max(r["small"][op]["client_cpu_s"], 1e-3), 2)
                                                         for op in ("diff", "pull", "push")}
    finally:
        for sock in Path(os.environ["USR_SSH_CONTROL_DIR"]).glob("*"):
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"], capture_output=True)
        os.kill(pid, 15)
        shutil.rmtree(sshd_dir, ignore_errors=True)
    out["noop_events"] = res


def transfer_and_parts(a: argparse.Namespace, work: Path, out: dict) -> None:
    sshd_dir = Path(tempfile.mkdtemp(prefix="usrbs-"))
    port, pid = start_sshd(sshd_dir)
    local, remote = work / "local", work / "remote"
    local.mkdir(exist_ok=True)
    remote.mkdir(exist_ok=True)
    (work / "remotes.yaml").write_text(yaml.safe_dump({"remotes": {"bench": profile_doc(sshd_dir, port, remote)}}))
    os.environ["USR_REMOTES_PATH"] = str(work / "remotes.yaml")
    prof = get_profile("bench")
    opts = engine.SyncOptions()
    control = Path(os.environ["USR_SSH_CONTROL_DIR"])
    try:
        # -- incremental pull after +1% rows on a 1M-row dataset ----------------------------
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

        # -- no-op diff on 1,000 parts -------------------------------------------------------
        log(f"building {a.parts} parts locally and pushing ...")
        build_many_parts(local, "bench/many", a.parts, 10)
        t0 = time.monotonic()
        engine.push(local, "bench/many", prof, opts)
        out["push_1000_parts_s"] = round(time.monotonic() - t0, 2)
        for sock in control.glob("*"):  # cold: no ControlMaster yet (close the one the push left)
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
        out["noop_diff_remote_calls"] = sess.remote.remote_calls()[0]
        t0 = time.monotonic()
        r = subprocess.run(cli, capture_output=True, text=True)
        out["noop_diff_cli_warm_s"] = round(time.monotonic() - t0, 3)
    finally:
        for sock in control.glob("*"):
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"], capture_output=True)
        os.kill(pid, 15)
        shutil.rmtree(sshd_dir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--part-rows", type=int, default=100_000)
    ap.add_argument("--parts", type=int, default=1000)
    ap.add_argument("--events-lines", type=int, default=1_000_000)
    ap.add_argument("--baseline", default=None, help="git revision whose code also runs the no-op events figures")
    ap.add_argument("--only", choices=["transfer", "noop_events"], default=None)
    ap.add_argument("--workdir", type=Path, default=None)
    a = ap.parse_args()
    work = Path(a.workdir or tempfile.mkdtemp(prefix="usr-sync-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    control = Path(tempfile.mkdtemp(prefix="ubc", dir="/tmp"))
    os.environ["USR_SSH_CONTROL_DIR"] = str(control)
    out: dict = {"bench": "usr_sync", "rows": a.rows, "parts_noop": a.parts, "events_lines": a.events_lines}
    try:
        if a.only in (None, "transfer"):
            transfer_and_parts(a, work, out)
        if a.only in (None, "noop_events"):
            noop_events(a, work, out)
        ok = True
        if "transfer_ratio" in out:
            ok &= out["transfer_ratio"] < 2 and out["noop_diff_warm_s"] < 1 and out["noop_diff_exit"] == 0 and out["noop_diff_ssh_auths"] <= 2
        if "noop_events" in out:
            new = out["noop_events"]["new"]
            ok &= all(new[s][op]["exit"] == 0 for s in ("small", "large") for op in ("diff", "pull", "push"))
            ok &= all(v <= 1.5 for v in out["noop_events"]["new_large_over_small_client_cpu"].values())
        out["ok"] = bool(ok)
        out["bench_process_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    finally:
        shutil.rmtree(control, ignore_errors=True)
        if a.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
