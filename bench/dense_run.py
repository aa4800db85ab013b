"""Benchmark `dense run` on the packaged sites demo; prints ONE JSON line of figures.

Throughput, side by side (the default): the same workspace config is run by this checkout and by
a baseline commit (`--baseline`, default 7022284, the landed code before issue 13), each in its
own process, alternating `--repeats` times. The baseline is checked out with `git worktree add`
into a temporary directory outside the repository and removed afterwards. Per commit:
- gen_cpu_s: process CPU seconds (all threads, CP-SAT's included) from the `session_started`
  diagnostics event to `session_finished` (the generation: sampling, solving, checking,
  acceptance, commits, telemetry; start-up and plots excluded, plots are off)
- accepted_per_cpu_s: accepted sequences / gen_cpu_s (the headline figure; `speedup` is the ratio)
- sites_per_100bp: mean binding sites per 100 bp over the stored records (filler never counted)
- wall_s, libraries, accepted

Crash safety (`--kill`): SIGKILL mid-run, then resume: rows accepted but not committed at the kill
(must be <= checkpoint_every) and duplicate ids after the resume (must be 0).

Usage: uv run python bench/dense_run.py [--workspace workspaces/demo_sites] [--baseline REV] [--quota N]
       [--repeats R] [--workers N] [--parallel-libraries K] [--configs same|each] [--kill]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE = "7022284"

# Runs `dense` from the given source tree, recording process CPU at the session's start and end.
DRIVER = r'''
import json, resource, sys, time
src, out = sys.argv[1], sys.argv[2]
sys.path.insert(0, src)
from dnadesign.densegen import telemetry
marks = {}
_emit = telemetry.Diagnostics.emit
def emit(self, event, **fields):
    if event in ("session_started", "session_finished"):
        r = resource.getrusage(resource.RUSAGE_SELF)
        marks[event] = {"cpu": r.ru_utime + r.ru_stime, "wall": time.monotonic()}
    return _emit(self, event, **fields)
telemetry.Diagnostics.emit = emit
from dnadesign.densegen.cli import main
sys.argv = ["dense", *sys.argv[3:]]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
finally:
    with open(out, "w") as fh:
        json.dump({"marks": marks, "exit": code, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}, fh)
sys.exit(code)
'''


def env() -> dict:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("SLURM_", "SGE_")) and k not in ("JOB_ID", "NSLOTS", "PYTHONPATH")}


def diagnostics(ws: Path) -> list[dict]:
    p = ws / "outputs" / "meta" / "events.jsonl"
    out = []
    if p.exists():
        for line in p.read_text().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out


def prepare(src: Path, dest: Path, quota: int | None) -> Path:
    """Copy the workspace (without outputs); with `quota`, every plan's `sequences` set to it."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("outputs"))
    cfg = dest / "config.yaml"
    if quota:
        cfg.write_text(re.sub(r"(?m)^(\s*)sequences:\s*\d+", rf"\g<1>sequences: {quota}", cfg.read_text()))
    return cfg


def stored_sites(ws: Path) -> list[float]:
    """Sites per 100 bp of every stored record (the Parquet export's densegen columns)."""
    import polars as pl

    parts = sorted((ws / "outputs" / "tables").glob("records.parquet"))
    if not parts:
        return []
    frame = pl.read_parquet(parts[0])
    n_col = next((c for c in ("densegen__n_sites", "n_sites") if c in frame.columns), None)
    if n_col is None:
        return []
    return [100.0 * n / length for n, length in zip(frame[n_col].to_list(), frame["length"].to_list(), strict=True)]


def one_run(src_tree: Path, ws_src: Path, tmp: Path, tag: str, quota: int | None, extra: list[str]) -> dict:
    ws = tmp / tag
    cfg = prepare(ws_src, ws, quota)
    driver = tmp / "driver.py"
    driver.write_text(DRIVER)
    out = tmp / f"{tag}.json"
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(driver), str(src_tree / "src"), str(out), "run", "--no-plot",
                           "--progress", "off", "-c", str(cfg), *extra],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env(), cwd=tmp)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{tag}: dense run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    res = json.loads(out.read_text())
    marks = res["marks"]
    gen_cpu = marks["session_finished"]["cpu"] - marks["session_started"]["cpu"]
    ev = diagnostics(ws)
    accepted = sum(1 for e in ev if e["event"] == "accepted")
    sites = stored_sites(ws)
    return {"accepted": accepted, "gen_cpu_s": round(gen_cpu, 3),
            "gen_wall_s": round(marks["session_finished"]["wall"] - marks["session_started"]["wall"], 3),
            "libraries": sum(1 for e in ev if e["event"] == "library"),
            "sites_per_100bp": round(sum(sites) / len(sites), 3) if sites else None,
            "wall_s": round(wall, 2), "peak_rss_mb": round(res["maxrss_kb"] / 1024.0, 1)}


def summarise(runs: list[dict]) -> dict:
    acc = sum(r["accepted"] for r in runs)
    cpu = sum(r["gen_cpu_s"] for r in runs)
    sites = [r["sites_per_100bp"] for r in runs if r["sites_per_100bp"] is not None]
    return {"accepted": acc, "gen_cpu_s": round(cpu, 3), "accepted_per_cpu_s": round(acc / cpu, 3) if cpu else None,
            "sites_per_100bp": round(sum(sites) / len(sites), 3) if sites else None,
            "libraries": sum(r["libraries"] for r in runs), "gen_wall_s": round(sum(r["gen_wall_s"] for r in runs), 2),
            "runs": runs}


def commit_of(rev: str, cwd: Path) -> str:
    return subprocess.run(["git", "rev-parse", rev], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def throughput(a: argparse.Namespace, ws_src: Path, tmp: Path, extra: list[str]) -> dict:
    base_tree = tmp / "baseline-tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(base_tree), a.baseline], cwd=REPO, check=True,
                   capture_output=True)
    try:
        new_runs, old_runs = [], []
        # `--configs each`: the baseline runs its own copy of the workspace (its config as shipped then)
        old_ws = base_tree / ws_src.relative_to(REPO) if a.configs == "each" and ws_src.is_relative_to(REPO) else ws_src
        for i in range(a.repeats):
            old_runs.append(one_run(base_tree, old_ws, tmp, f"old{i}", a.quota, extra))
            new_runs.append(one_run(REPO, ws_src, tmp, f"new{i}", a.quota, extra))
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=REPO, capture_output=True)
    old, new = summarise(old_runs), summarise(new_runs)
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=REPO, capture_output=True,
                                text=True).stdout.strip())
    return {"baseline": {"commit": commit_of(a.baseline, REPO), **old},
            "new": {"commit": commit_of("HEAD", REPO), "dirty_src": dirty, **new},
            "speedup": round(new["accepted_per_cpu_s"] / old["accepted_per_cpu_s"], 2)
            if new["accepted_per_cpu_s"] and old["accepted_per_cpu_s"] else None}


def kill_resume(ws_src: Path, tmp: Path, extra: list[str], kill_after: int) -> dict:
    sys.path.insert(0, str(REPO / "src"))
    from dnadesign.densegen.config import load_config
    from dnadesign.densegen.outputs import RunOutputs

    ws = tmp / "kill"
    cfg = prepare(ws_src, ws, None)
    dense = str(Path(sys.executable).parent / "dense")
    proc = subprocess.Popen([dense, "run", "--no-plot", "--progress", "off", "-c", str(cfg), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if sum(1 for e in diagnostics(ws) if e["event"] == "accepted") >= kill_after:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    def ids() -> tuple[list[str], list[str]]:
        outs = RunOutputs(load_config(cfg), None, create=False)
        u = outs.usr.frame(["id"])["id"].to_list() if outs.usr is not None and outs.usr.exists() else []
        p = outs.parquet.frame(["id"])["id"].to_list() if outs.parquet is not None else []
        return u, p

    accepted = sum(1 for e in diagnostics(ws) if e["event"] == "accepted")
    u, p = ids()
    r = subprocess.run([dense, "run", "--no-plot", "--progress", "off", "-c", str(cfg), *extra],
                       capture_output=True, text=True, env=env())
    u2, p2 = ids()
    return {"kill_after_accepted": accepted, "kill_rows_committed": len(u or p),
            "kill_rows_lost": accepted - len(u or p),
            "kill_duplicates": (len(u2) - len(set(u2))) + (len(p2) - len(set(p2))),
            "kill_sinks_in_sync": sorted(u2) == sorted(p2) if u2 and p2 else None,
            "resume_exit": r.returncode, "resume_rows": len(u2 or p2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--workspace", default=str(REPO / "workspaces" / "demo_sites"))
    ap.add_argument("--baseline", default=BASELINE, help="the commit to compare with (default %(default)s)")
    ap.add_argument("--quota", type=int, default=None, help="set every plan's `sequences` to N (default: the config's)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per commit, alternating (default %(default)s)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--parallel-libraries", type=int, default=None, help="pass --parallel-libraries K to both")
    ap.add_argument("--configs", choices=["same", "each"], default="same",
                    help="same: both commits run this checkout's workspace config; each: each its own")
    ap.add_argument("--kill", action="store_true", help="also measure a SIGKILL mid-run and the resume")
    ap.add_argument("--kill-after", type=int, default=3, help="accepted sequences before the SIGKILL")
    a = ap.parse_args()
    ws_src = Path(a.workspace).resolve()
    extra = ["--workers", str(a.workers)] if a.workers else []
    if a.parallel_libraries:
        extra += ["--parallel-libraries", str(a.parallel_libraries)]
    with tempfile.TemporaryDirectory(prefix="dense-bench-") as d:
        tmp = Path(d)
        figures = {"bench": "dense_run", "workspace": ws_src.name, "quota_per_plan": a.quota, "repeats": a.repeats,
                   "configs": a.configs, "parallel_libraries": a.parallel_libraries or 1, "cpus": os.cpu_count(),
                   "load_before": round(os.getloadavg()[0], 2), **throughput(a, ws_src, tmp, extra)}
        if a.kill:
            figures.update(kill_resume(ws_src, tmp, extra, a.kill_after))
    print(json.dumps(figures, separators=(",", ":")))


if __name__ == "__main__":
    main()
