"""Benchmark the Prometheus textfile writer (`core.metrics`): CPU per write of a `dense run`-sized file.

Prints ONE JSON line. The periodic writer rewrites the file every 15 s by default, so the
overhead on a run is (CPU per write) / 15 s. Usage: uv run python bench/textfile_metrics.py [--writes 2000]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from dnadesign.core.metrics import MetricSet, write_textfile


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def dense_like(plans: int) -> MetricSet:
    """About the families and samples `dense run --metrics-dir` writes, for `plans` plans."""
    m = MetricSet({"dataset": "densegen/bench", "scheduler": "slurm", "task": "3"})
    m.gauge("dense_run_info", "x", 1, run_id="r", job_id="123", task_id="3", host="node1")
    for s in ("running", "completed", "interrupted", "incomplete", "failed"):
        m.gauge("dense_run_status", "x", s == "running", status=s)
    for name in ("dense_run_up", "dense_run_start_timestamp_seconds", "dense_run_duration_seconds", "dense_run_workers"):
        m.gauge(name, "x", time.time())
    for p in range(plans):
        plan = f"plan_{p}"
        m.gauge("dense_plan_sequences_committed", "x", 10, plan=plan)
        m.gauge("dense_plan_sequences_quota", "x", 100, plan=plan)
        for c in ("dense_sequences_accepted_total", "dense_libraries_total", "dense_solves_total", "dense_solve_seconds_total"):
            m.counter(c, "x", 5, plan=plan)
        for reason in ("duplicate", "rejected"):
            m.counter("dense_solutions_discarded_total", "x", 1, plan=plan, reason=reason)
    return m


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--writes", type=int, default=2000)
    ap.add_argument("--plans", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "dense_bench.prom"
        t0 = _cpu()
        for _ in range(args.writes):
            write_textfile(path, dense_like(args.plans))
        per_write = (_cpu() - t0) / args.writes
        size = path.stat().st_size
    print(json.dumps({"bench": "textfile_metrics", "writes": args.writes, "plans": args.plans, "file_bytes": size,
                      "cpu_ms_per_write": round(per_write * 1000, 3),
                      "overhead_pct_at_15s_interval": round(100 * per_write / 15.0, 5),
                      "note": "each write renders the set, writes a temp file, fsyncs it, renames it and fsyncs the directory"}))


if __name__ == "__main__":
    main()
