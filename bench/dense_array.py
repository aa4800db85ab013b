"""Benchmark array mode: N tasks on ONE config vs one task, for the same quota; prints ONE JSON line.

Each configuration runs on a fresh copy of the packaged sites demo (tightened like the tests:
50 bp, short solver limits, 1 CP-SAT worker per task): one task alone, then N tasks started
together (`dense run --shard K/N`, what a Slurm/SGE array task does), alternating `--repeats`
times so a change in the machine's load hits both alike. Per run it records the wall time, the
CPU seconds of all `dense` processes, rows committed against the quota, ids unique, rows over
quota (must be 0) and rows dropped at commit because another task filled the plan first.

Figures:
- speedup_wall: median single-task wall time / median array wall time (target >= 1.7 for N = 2
  on 2 cores; other processes on the machine lower it, see load_before/load_after)
- cpu_s_per_row_single / cpu_s_per_row_array: CPU seconds per committed row (the cost of a row,
  independent of how busy the machine is)
- rows_over_quota: committed rows above the quota, over every run (target 0)

Usage: flock /tmp/dnadesign-bench.lock uv run python bench/dense_array.py [--tasks 2] [--quota 30] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
FAST = {
    "generation": {"sequence_length": 50},
    "solver": {"strategy": "optimal", "time_limit_s": 3, "run_time_limit_s": 8, "solutions_per_library": 3, "workers": 1},
    "runtime": {"checkpoint_every": 4, "health_interval_s": 5, "max_stalled_libraries": 12},
    "logging": {"progress": "off"},
}


def dense_bin() -> str:
    p = Path(sys.executable).parent / "dense"
    return str(p) if p.exists() else "dense"


def env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SGE_")) and k not in ("JOB_ID", "NSLOTS")}


def deep_update(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_update(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def workspace(dest: Path, quota: int) -> Path:
    """A fresh copy of the sites demo with `quota` sequences per plan."""
    shutil.copytree(REPO / "workspaces" / "demo_sites", dest, ignore=shutil.ignore_patterns("outputs"))
    path = dest / "config.yaml"
    cfg = deep_update(yaml.safe_load(path.read_text()), FAST)
    for plan in cfg["generation"]["plans"]:
        plan["sequences"] = quota
        rc = plan.setdefault("regulator_constraints", {})
        rc["min_total_sites"] = min(rc.get("min_total_sites", 0), 2)
        for pc in plan.get("fixed_elements", {}).get("promoter_constraints", []):
            pc["upstream_pos"] = [5, 20]
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def committed(ws: Path) -> tuple[int, int, dict[str, int]]:
    """(rows, unique ids, rows per plan) in the run's USR dataset."""
    from dnadesign.usr.store import Dataset

    df = Dataset(ws / "outputs" / "usr_datasets", "densegen/demo_sites").scan().collect()
    return df.height, df["id"].n_unique(), dict(df.group_by("densegen__plan").len().rows())


def dropped_over_quota(ws: Path) -> int:
    """Rows accepted but dropped at commit because the plan was full (from the sessions' manifests)."""
    total = 0
    for path in [ws / "outputs" / "meta" / "run_manifest.json", *(ws / "outputs" / "meta" / "tasks").glob("*/run_manifest.json")]:
        if path.exists():
            total += sum(int(s.get("over_quota") or 0) for s in json.loads(path.read_text()).get("sessions", []))
    return total


def run_once(tmp: Path, name: str, tasks: int, quota: int) -> dict:
    ws = tmp / name
    cfg = workspace(ws, quota)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    cmds = [[dense_bin(), "run", "--no-plot", "--workers", "1", "-c", str(cfg)]
            + (["--shard", f"{k}/{tasks}"] if tasks > 1 else []) for k in range(1, tasks + 1)]
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env()) for c in cmds]
    errors = [p.communicate()[1] for p in procs]
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    bad = [(p.returncode, e[-500:]) for p, e in zip(procs, errors, strict=True) if p.returncode != 0]
    if bad:
        raise SystemExit(f"dense run failed: {bad}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rows, unique, per_plan = committed(ws)
    quotas = {"plain": quota, "sigma70": quota}
    return {"tasks": tasks, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "rows": rows, "unique": unique,
            "over_quota": sum(max(0, per_plan.get(p, 0) - q) for p, q in quotas.items()),
            "under_quota": sum(max(0, q - per_plan.get(p, 0)) for p, q in quotas.items()),
            "dropped_at_commit": dropped_over_quota(ws)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=2, help="array tasks (slots) to compare with one task")
    ap.add_argument("--quota", type=int, default=30, help="sequences per plan (the demo has 2 plans)")
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    load_before = os.getloadavg()
    single, array = [], []
    with tempfile.TemporaryDirectory(prefix="dense-array-bench-") as d:
        tmp = Path(d)
        for r in range(a.repeats):
            single.append(run_once(tmp, f"single{r}", 1, a.quota))
            array.append(run_once(tmp, f"array{r}", a.tasks, a.quota))
    load_after = os.getloadavg()
    w1 = statistics.median(x["wall_s"] for x in single)
    wn = statistics.median(x["wall_s"] for x in array)
    runs = single + array
    print(json.dumps({
        "bench": "dense_array", "commit": commit or None, "tasks": a.tasks, "quota_total": 2 * a.quota, "repeats": a.repeats,
        "wall_single_s": w1, "wall_array_s": wn, "speedup_wall": round(w1 / wn, 2) if wn else None,
        "cpu_s_per_row_single": round(sum(x["cpu_s"] for x in single) / sum(x["rows"] for x in single), 3),
        "cpu_s_per_row_array": round(sum(x["cpu_s"] for x in array) / sum(x["rows"] for x in array), 3),
        "rows_over_quota": sum(x["over_quota"] for x in runs), "rows_under_quota": sum(x["under_quota"] for x in runs),
        "duplicate_ids": sum(x["rows"] - x["unique"] for x in runs),
        "dropped_at_commit_array": sum(x["dropped_at_commit"] for x in array),
        "cpus": os.cpu_count(), "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after], "runs": runs,
    }))


if __name__ == "__main__":
    main()
