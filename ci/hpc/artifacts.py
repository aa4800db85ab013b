"""`meta.json`, `hpc-results.json` and the shields.io endpoint badges of one CI run.

`hpc-results.json` keeps the seed's schema_version 1 keys, adapted from Julia to Python:
`hpc.julia_version` becomes `hpc.python_version` (with the OR-Tools and polars versions beside
it), and the benchmarks block drops `tutorials_log` (this project has no tutorials phase).
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dnadesign.core.scheduler import detect_scheduler

VERSION_PROBE = ("import importlib.metadata as m, json, platform\n"
                 "def v(n):\n"
                 "    try:\n"
                 "        return m.version(n)\n"
                 "    except m.PackageNotFoundError:\n"
                 "        return None\n"
                 "print(json.dumps({'python_version': platform.python_version(), 'ortools_version': v('ortools'),\n"
                 "                  'polars_version': v('polars'), 'dnadesign_version': v('dnadesign')}))\n")


def env_versions(python: Path) -> dict[str, Any]:
    """Python, OR-Tools, polars and dnadesign versions of the environment under test."""
    try:
        res = subprocess.run([str(python), "-c", VERSION_PROBE], capture_output=True, text=True, timeout=120,
                             stdin=subprocess.DEVNULL)
        return json.loads(res.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return {"python_version": None, "ortools_version": None, "polars_version": None, "dnadesign_version": None}


def where(env: Mapping[str, str]) -> dict[str, Any]:
    """Scheduler, job and task ids, node, partition or queue, cluster and CPUs of this run."""
    info = detect_scheduler(env)
    node = env.get("SLURMD_NODENAME") or socket.gethostname()
    partition = env.get("SLURM_JOB_PARTITION") or env.get("QUEUE") or None
    cluster = env.get("HPC_CLUSTER_NAME") or env.get("SLURM_CLUSTER_NAME") or env.get("SGE_CELL") or None
    return {"scheduler": info.scheduler, "job_id": info.job_id, "task_id": info.task_id, "node": node,
            "partition": partition, "cluster": cluster, "cpus": info.cpus}


def build_meta(*, commit: str | None, branch: str | None, dirty: bool, source: str | None, versions: Mapping[str, Any],
               env: Mapping[str, str], started_at: str, generated_at: str, wall_s: float, phases: Mapping[str, bool],
               pytest_args: str | None, argv: list[str]) -> dict[str, Any]:
    """Provenance of the run (`meta.json`)."""
    return {
        "schema_version": 1,
        "commit": commit,
        "commit_short": commit[:12] if commit else None,
        "branch": branch,
        "dirty": dirty,
        "source_repo": source,
        **where(env),
        **{k: versions.get(k) for k in ("python_version", "ortools_version", "polars_version", "dnadesign_version")},
        "platform": platform.platform(),
        "started_at": started_at,
        "generated_at": generated_at,
        "wall_time_seconds": round(wall_s, 3),
        "phases": dict(phases),
        "pytest_args": pytest_args,
        "driver_args": argv,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def build_results(meta: Mapping[str, Any], tests: Mapping[str, Any] | None, coverage: Mapping[str, Any] | None,
                  benches: Mapping[str, Any] | None) -> dict[str, Any]:
    """`hpc-results.json` (schema_version 1)."""
    return {
        "schema_version": 1,
        "commit": meta["commit"],
        "branch": meta["branch"],
        "generated_at": meta["generated_at"],
        "hpc": {k: meta.get(k) for k in ("cluster", "scheduler", "job_id", "node", "partition", "cpus",
                                         "python_version", "ortools_version", "polars_version")},
        "coverage": None if coverage is None else dict(coverage),
        "tests": {"status": tests["status"] if tests else "skipped",
                  "duration_seconds": tests.get("duration_seconds") if tests else None,
                  "log_file": tests.get("log_file") if tests else None,
                  "summary_file": "tests/summary.json" if tests else None},
        "benchmarks": {"status": benches["status"] if benches else "skipped",
                       "duration_seconds": benches.get("duration_seconds") if benches else None,
                       "benchmarks_log": benches.get("log_file") if benches else None,
                       "summary_file": "benchmarks/summary.json" if benches else None,
                       "worst_regression_pct": benches.get("worst_regression_pct") if benches else None},
    }


COLORS = {"passed": "brightgreen", "regressed": "orange", "failed": "red", "error": "red", "skipped": "lightgrey"}


def _stamp(meta: Mapping[str, Any]) -> str:
    return f"{(meta.get('commit') or 'unknown')[:7]} · {(meta.get('generated_at') or '')[:10]}"


def tests_badge(meta: Mapping[str, Any], tests: Mapping[str, Any] | None) -> dict[str, Any]:
    """shields.io endpoint JSON: status and counts, with the commit and date so a stale badge shows it."""
    status = tests["status"] if tests else "skipped"
    totals = (tests or {}).get("totals") or {}
    counts = ""
    if totals:
        counts = f" {totals.get('passed', 0)}/{totals.get('tests', 0)}"
        if totals.get("failed") or totals.get("errors"):
            counts += f", {totals.get('failed', 0) + totals.get('errors', 0)} failing"
    return {"schemaVersion": 1, "label": "HPC tests", "message": f"{status}{counts} · {_stamp(meta)}",
            "color": COLORS.get(status, "lightgrey")}


def benchmarks_badge(meta: Mapping[str, Any], benches: Mapping[str, Any] | None) -> dict[str, Any]:
    """shields.io endpoint JSON: status and the worst regression against the baseline, with commit and date."""
    status = benches["status"] if benches else "skipped"
    worst = (benches or {}).get("worst_regression_pct")
    detail = f" worst {worst:+.1f}%" if isinstance(worst, (int, float)) else ""
    return {"schemaVersion": 1, "label": "HPC bench", "message": f"{status}{detail} · {_stamp(meta)}",
            "color": COLORS.get(status, "lightgrey")}


def latest_meta(meta: Mapping[str, Any], results: Mapping[str, Any]) -> dict[str, Any]:
    """The small `latest-meta.json` of the results branch."""
    cov = results.get("coverage") or {}
    return {"schema_version": 1, **{k: meta.get(k) for k in ("commit", "branch", "generated_at", "cluster", "scheduler", "job_id", "node")},
            "tests_status": results["tests"]["status"], "benchmarks_status": results["benchmarks"]["status"],
            "coverage_percent": cov.get("coverage_percent")}
