"""Helpers for the `dense run` tests: small, fast workspaces derived from the packaged demo.

The packaged `workspaces/demo_sites` (real RegulonDB sites, a plain and a sigma70 plan) is copied
into a temp dir and its config tightened (shorter sequences, short solver limits) so a run takes
seconds. Tests then drive the real `dense` console script or the pipeline API.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DEMO_SITES = REPO / "workspaces" / "demo_sites"
BIN = Path(sys.executable).parent

FAST = {
    "generation": {"sequence_length": 50},
    "solver": {"strategy": "optimal", "time_limit_s": 3, "run_time_limit_s": 8, "solutions_per_library": 3, "workers": 1},
    "runtime": {"checkpoint_every": 2, "health_interval_s": 0.5, "max_seconds": 120, "max_stalled_libraries": 6},
    "logging": {"progress": "lines", "summary_interval_s": 2},
}


def deep_update(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_update(out[k], v)
        else:
            out[k] = v
    return out


def make_workspace(dest: Path, *, quotas: dict[str, int] | None = None, overrides: dict | None = None,
                   fast: bool = True) -> Path:
    """Copy the demo sites workspace to `dest` and return its config path."""
    shutil.copytree(DEMO_SITES, dest, ignore=shutil.ignore_patterns("outputs"))
    cfg_path = dest / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    if fast:
        cfg = deep_update(cfg, FAST)
        # the 100 bp demo's promoter window is too far right for 50 bp
        for plan in cfg["generation"]["plans"]:
            rc = plan.setdefault("regulator_constraints", {})
            rc["min_total_sites"] = min(rc.get("min_total_sites", 0), 2)
            for pc in plan.get("fixed_elements", {}).get("promoter_constraints", []):
                pc["upstream_pos"] = [5, 20]
    if quotas:
        for plan in cfg["generation"]["plans"]:
            if plan["name"] in quotas:
                plan["sequences"] = quotas[plan["name"]]
    if overrides:
        cfg = deep_update(cfg, overrides)
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return cfg_path


def dense_bin() -> str:
    p = BIN / "dense"
    return str(p) if p.exists() else (shutil.which("dense") or "dense")


def clean_env(**extra: str) -> dict:
    """The environment without scheduler variables (tests must not think they run under SGE/Slurm)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "SGE_")) and k not in ("JOB_ID", "NSLOTS", "DENSEGEN_CONFIG")}
    env.update(extra)
    return env


def dense(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run the real `dense` console script."""
    return subprocess.run([dense_bin(), *args], capture_output=True, text=True, cwd=cwd, env=env or clean_env(),
                          timeout=timeout)


def dense_popen(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([dense_bin(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                            env=env or clean_env())


def diagnostics(ws: Path) -> list[dict]:
    path = ws / "outputs" / "meta" / "events.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def usr_events(ws: Path, dataset: str = "densegen/demo_sites") -> list[dict]:
    path = ws / "outputs" / "usr_datasets" / dataset / ".events.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(pred, timeout: float = 60.0, poll: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(poll)
    return False


def parquet_rows(ws: Path):
    """Committed rows in the Parquet sink (via its parts manifest), as a polars frame."""
    from dnadesign.densegen.sinks import ParquetSink

    return ParquetSink(ws / "outputs" / "tables" / "records.parquet").frame()


def usr_rows(ws: Path, dataset: str = "densegen/demo_sites"):
    from dnadesign.usr.store import Dataset

    ds = Dataset(ws / "outputs" / "usr_datasets", dataset)
    return ds.scan().collect()
