"""Benchmark `dense run` on the packaged sites demo; prints ONE JSON line of figures.

Figures:
- time_to_first_s: process start -> first accepted sequence (includes imports, pools, first solve)
- seq_per_s: accepted sequences / session wall time (after startup)
- sites_per_100bp: mean library sites per 100 bp over the accepted sequences
- peak_rss_mb: peak resident memory of the `dense run` process
- kill_rows_lost / kill_duplicates: SIGKILL mid-run, then resume: rows accepted but not committed
  at the kill (must be <= checkpoint_every) and duplicate ids after the resume (must be 0)

Usage: uv run python bench/dense_run.py [--workspace workspaces/demo_sites] [--skip-kill] [--workers N] [--parallel-libraries K]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def dense_bin() -> str:
    p = Path(sys.executable).parent / "dense"
    return str(p) if p.exists() else "dense"


def env() -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SGE_")) and k not in ("JOB_ID", "NSLOTS")}
    return e


def diagnostics(ws: Path) -> list[dict]:
    p = ws / "outputs" / "meta" / "events.jsonl"
    out = []
    if p.exists():
        for line in p.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def ts(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def committed_ids(ws: Path) -> tuple[list[str], list[str]]:
    sys.path.insert(0, str(REPO / "src"))
    from dnadesign.densegen.config import load_config
    from dnadesign.densegen.outputs import RunOutputs

    cfg = load_config(ws / "config.yaml")
    outs = RunOutputs(cfg, None, create=False)
    usr, parquet = outs.usr, outs.parquet
    u = usr.frame(["id"])["id"].to_list() if usr is not None and usr.exists() else []
    p = parquet.frame(["id"])["id"].to_list() if parquet is not None else []
    return u, p


def full_run(src: Path, tmp: Path, extra: list[str]) -> dict:
    ws = tmp / "full"
    shutil.copytree(src, ws, ignore=shutil.ignore_patterns("outputs"))
    t0 = time.time()
    proc = subprocess.Popen([dense_bin(), "run", "--no-plot", "--progress", "off", "-c", str(ws / "config.yaml"), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env())
    _, err = proc.communicate()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise SystemExit(f"dense run failed ({proc.returncode}): {err[-2000:]}")
    ev = diagnostics(ws)
    acc = [e for e in ev if e["event"] == "accepted"]
    start = next(e for e in ev if e["event"] == "session_started")
    end = next(e for e in reversed(ev) if e["event"] == "session_finished")
    session_s = ts(end["ts"]) - ts(start["ts"])
    sites = [100.0 * e["n_sites"] / e["length"] for e in acc]
    return {
        "accepted": len(acc),
        "time_to_first_s": round(ts(acc[0]["ts"]) - t0, 3) if acc else None,
        "seq_per_s": round(len(acc) / session_s, 4) if session_s > 0 else None,
        "sites_per_100bp": round(sum(sites) / len(sites), 3) if sites else None,
        "peak_rss_mb": round(usage.ru_maxrss / 1024.0, 1),
        "wall_s": round(wall, 2),
        "workers": start.get("workers"),
    }


def kill_resume(src: Path, tmp: Path, extra: list[str], kill_after: int) -> dict:
    ws = tmp / "kill"
    shutil.copytree(src, ws, ignore=shutil.ignore_patterns("outputs"))
    cfg = str(ws / "config.yaml")
    proc = subprocess.Popen([dense_bin(), "run", "--no-plot", "--progress", "off", "-c", cfg, *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if sum(1 for e in diagnostics(ws) if e["event"] == "accepted") >= kill_after:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    accepted = sum(1 for e in diagnostics(ws) if e["event"] == "accepted")
    u, p = committed_ids(ws)
    lost = accepted - len(u if u else p)
    checkpoint_every = next((e.get("checkpoint_every") for e in diagnostics(ws) if e["event"] == "session_started"), None)
    r = subprocess.run([dense_bin(), "run", "--no-plot", "--progress", "off", "-c", cfg, *extra],
                       capture_output=True, text=True, env=env())
    u2, p2 = committed_ids(ws)
    return {
        "kill_after_accepted": accepted,
        "kill_rows_committed": len(u if u else p),
        "kill_rows_lost": lost,
        "kill_duplicates": (len(u2) - len(set(u2))) + (len(p2) - len(set(p2))),
        "kill_sinks_in_sync": sorted(u2) == sorted(p2) if u2 and p2 else None,
        "resume_exit": r.returncode,
        "resume_rows": len(u2 or p2),
        "checkpoint_every": checkpoint_every,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", default=str(REPO / "workspaces" / "demo_sites"))
    ap.add_argument("--skip-kill", action="store_true")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--parallel-libraries", type=int, default=None, help="pass --parallel-libraries K to dense run")
    ap.add_argument("--kill-after", type=int, default=3, help="accepted sequences before the SIGKILL")
    a = ap.parse_args()
    src = Path(a.workspace).resolve()
    extra = ["--workers", str(a.workers)] if a.workers else []
    if a.parallel_libraries:
        extra += ["--parallel-libraries", str(a.parallel_libraries)]
    with tempfile.TemporaryDirectory(prefix="dense-bench-") as d:
        tmp = Path(d)
        figures = {"bench": "dense_run", "workspace": src.name, "parallel_libraries": a.parallel_libraries or 1,
                   **full_run(src, tmp, extra)}
        if not a.skip_kill:
            figures.update(kill_resume(src, tmp, extra, a.kill_after))
    print(json.dumps(figures, separators=(",", ":")))


if __name__ == "__main__":
    main()
