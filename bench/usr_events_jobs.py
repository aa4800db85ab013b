"""Benchmark `usr events jobs` on a large event log; prints ONE JSON line of figures.

The log mimics a busy cluster dataset: array jobs whose tasks each write job_started, many
densegen_health / append events (all carrying a `job` block) and job_finished. Figures are CPU
seconds and peak RSS of the real CLI (a child process), for the full log and a 10x smaller one
(memory must stay flat), side by side with a plain full-parse fold of the same log (every line
through json.loads), which is what the pre-filter saves.

    uv run python bench/usr_events_jobs.py [--lines 1000000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dnadesign.core.events import Actor, iter_event_records, make_event
from dnadesign.core.job_view import JobViewBuilder, build_job_view
from dnadesign.usr.store import Dataset


def make_log(path: Path, lines: int, tasks_per_array: int = 100, lines_per_task: int = 50) -> int:
    """Write about `lines` events; returns the number of tasks."""
    actor = Actor.current("densegen", run_id="bench")
    base = make_event("densegen_health", "bench/jobs", actor, args={"status": "running"}, metrics={"generated": 1, "quota": 100}, job={})
    written = tasks = 0
    job_id = 1000
    with open(path, "ab") as fh:
        while written < lines:
            job_id += 1
            for task in range(1, tasks_per_array + 1):
                if written >= lines:
                    break
                tasks += 1
                job = {"scheduler": "slurm", "job_id": str(job_id), "task_id": str(task), "state": None, "exit_code": None,
                       "signal": None, "array": {"first": 1, "last": tasks_per_array, "step": 1}}
                out = []
                for i in range(lines_per_task):
                    if i == 0:
                        ev = dict(base, action="job_started", job=dict(job, state="running"))
                    elif i == lines_per_task - 1:
                        code = 0 if task % 10 else 1
                        ev = dict(base, action="job_finished", job=dict(job, state="completed" if code == 0 else "failed", exit_code=code))
                    elif i % 5 == 0:
                        ev = dict(base, action="append", metrics={"rows_added": 4}, job=job)
                    else:
                        ev = dict(base, job=job)
                    ev["event_id"] = f"{written + i:032x}"
                    out.append(json.dumps(ev, separators=(",", ":")))
                fh.write(("\n".join(out) + "\n").encode())
                written += lines_per_task
    return tasks


def run_cli(root: Path, dataset: str) -> dict:
    """The real CLI in a child process: wall, CPU seconds, peak RSS, and its task count."""
    cmd = [str(Path(sys.executable).parent / "usr"), "--root", str(root), "events", "jobs", dataset, "--json"]
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as devnull, tempfile.TemporaryFile() as outf:
        p = subprocess.Popen(cmd, stdout=outf, stderr=devnull)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"usr events jobs failed ({status})")
        outf.seek(0)
        doc = json.load(outf)
    return {"wall_s": round(wall, 3), "cpu_s": round(ru.ru_utime + ru.ru_stime, 3), "peak_rss_mb": round(ru.ru_maxrss / 1024, 1),
            "tasks": len(doc["tasks"])}


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def full_parse_cpu(log: Path) -> float:
    """CPU seconds of the same fold without the byte pre-filter (every line parsed), in-process."""
    t0 = _cpu()
    b = JobViewBuilder()
    for rec in iter_event_records(log):
        if rec.event is not None:
            b.feed(rec.event)
    b.result()
    return round(_cpu() - t0, 3)


def prefiltered_cpu(log: Path) -> float:
    """CPU seconds of `build_job_view` (what the CLI runs), in-process: no start-up, no JSON output."""
    t0 = _cpu()
    build_job_view(log)
    return round(_cpu() - t0, 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="100,000 lines (CI mode)")
    args = ap.parse_args()
    lines = 100_000 if args.quick else args.lines
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        big, small = Dataset.create(root, "bench/big"), Dataset.create(root, "bench/small")
        tasks = make_log(big.events_path, lines)
        make_log(small.events_path, max(1000, lines // 10))
        r_big = run_cli(root, "bench/big")
        r_small = run_cli(root, "bench/small")
        if r_big["tasks"] != tasks:
            raise SystemExit(f"expected {tasks} tasks, the CLI listed {r_big['tasks']}")
        full_cpu = full_parse_cpu(big.events_path)
        fold_cpu = prefiltered_cpu(big.events_path)
        figures = {
            "bench": "usr_events_jobs",
            "lines": lines,
            "log_mb": round(big.events_path.stat().st_size / 1e6, 1),
            "tasks": tasks,
            "cli_wall_s": r_big["wall_s"],
            "cli_cpu_s": r_big["cpu_s"],
            "cli_lines_per_cpu_s": round(lines / max(r_big["cpu_s"], 1e-9)),
            "cli_peak_rss_mb": r_big["peak_rss_mb"],
            "cli_peak_rss_mb_tenth_log": r_small["peak_rss_mb"],
            "fold_cpu_s": fold_cpu,
            "fold_lines_per_cpu_s": round(lines / max(fold_cpu, 1e-9)),
            "full_parse_fold_cpu_s": full_cpu,
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "note": "cli_* include interpreter start-up and JSON output; fold_cpu_s is build_job_view in-process; full_parse_fold_cpu_s the same fold without the byte pre-filter",
        }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
