"""`dense inspect run`: a run's progress from what is committed in its outputs (read-only, no lock).

Per plan: quota and committed rows (every writer's). In array mode also per task: its state, the
rows it committed, its sessions and its last event, so a 16-task array reads at a glance.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import polars as pl

from ..core.errors import InputError
from ..core.events import tail_events
from ..usr.layout import DatasetPaths, resolve_root
from .config import LoadedConfig
from .coverage_report import unplaced_regulators
from .plans import resolve_plans
from .run_scan import scan_run
from .sinks.records import PLAN_COL
from .state import MetaDir, RunState
from .telemetry import last_diagnostic

JOB_EVENTS_SCANNED = 5000  # the tail of .events.log searched for job events of the array's tasks


def usr_events_path(cfg: LoadedConfig) -> Path:
    """`<usr_root>/<dataset>/.events.log` of the run's USR output (it may not exist yet)."""
    target = cfg.usr_target()
    if target is None:
        raise InputError(f"{cfg.path} has no usr output target, so the run writes no USR .events.log",
                         hint="add usr to output.targets (notify watches the USR event log)")
    root, dataset_id = target
    return DatasetPaths(resolve_root(root), dataset_id).events_log


def _alive(state: RunState) -> bool | None:
    """Whether the process that wrote `state` still runs (None when it ran on another host)."""
    if state.host != socket.gethostname() or not state.pid:
        return None
    try:
        os.kill(state.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _task_state(state: RunState | None, job_event: dict | None) -> str:
    if state is None:
        return "not started"
    if job_event is not None and job_event.get("action") == "job_lost":
        return "lost"
    if state.status == "running":
        alive = _alive(state)
        if alive is False:
            return "killed (no finish recorded)"
        return "running" if alive else "running (or killed on its host)"
    return state.status


def task_rows(meta: MetaDir, cfg: LoadedConfig) -> list[dict[str, Any]]:
    """One row per array task: label, task id, state, rows committed, sessions, last event, host, pid."""
    tasks = meta.task_dirs()
    if not tasks:
        return []
    job_events: dict[str, dict] = {}
    if cfg.usr_target() is not None:
        for e in tail_events(usr_events_path(cfg), JOB_EVENTS_SCANNED):
            job = e.get("job")
            if e.get("action") in ("job_started", "job_finished", "job_lost") and isinstance(job, dict) and job.get("task_id"):
                job_events[str(job["task_id"])] = e
    rows = []
    for t in tasks:
        state = t.load_state()
        manifest = t.load_manifest() or {}
        task_id = str((state.task or {}).get("task")) if state and state.task else t.path.name.split("-")[1].lstrip("0")
        job = job_events.get(task_id)
        last = (state.last_event if state else None) or last_diagnostic(t.events_path)
        rows.append({
            "label": t.path.name, "task": task_id, "state": _task_state(state, job),
            "rows": state.committed_total if state else 0, "sessions": len(manifest.get("sessions", [])),
            "last_event": ({"event": last.get("event"), "ts": last.get("ts")} if last else None),
            "job": ({"action": job.get("action"), "state": (job.get("job") or {}).get("state"), "ts": job.get("ts"),
                     "job_id": (job.get("job") or {}).get("job_id")} if job else None),
            "host": state.host if state else None, "pid": state.pid if state else None,
            "reason": state.reason if state else None,
        })
    return rows


STAT_COLUMNS = [PLAN_COL, "densegen__n_sites", "densegen__sites_per_100bp", "densegen__gc", "densegen__regulators"]
MEANS = {"sites": "densegen__n_sites", "s100": "densegen__sites_per_100bp", "gc": "densegen__gc"}


class PlanTotals:
    """Per plan: rows `n` and the means `sites`, `s100`, `gc`; and the regulators its rows place.

    A `run_scan.Fold` over five columns (memory bounded by a batch): `plan_stats` runs it alone,
    `dense report` beside its other folds in one pass.
    """

    columns = STAT_COLUMNS

    def __init__(self) -> None:
        self._sums: dict[str, dict[str, float]] = {}
        self.placed: dict[str, set[str]] = {}

    def add(self, batch: pl.DataFrame) -> None:
        if batch.height == 0:
            return
        aggs = [pl.len().alias("n")]
        for key, col in MEANS.items():
            if col in batch.columns:
                aggs += [pl.col(col).sum().alias(key), pl.col(col).count().alias(f"{key}_n")]
        if "densegen__regulators" in batch.columns:
            aggs.append(pl.col("densegen__regulators").explode().drop_nulls().unique().alias("regs"))
        for r in batch.group_by(PLAN_COL).agg(aggs).iter_rows(named=True):
            acc = self._sums.setdefault(r[PLAN_COL], {})
            for k, v in r.items():
                if k not in (PLAN_COL, "regs") and v is not None:
                    acc[k] = acc.get(k, 0) + v
            self.placed.setdefault(r[PLAN_COL], set()).update(r.get("regs") or [])

    @property
    def stats(self) -> dict[str, dict[str, Any]]:
        return {plan: {"n": int(a.get("n", 0)), **{k: (a[k] / a[f"{k}_n"] if a.get(f"{k}_n") else None) for k in MEANS}}
                for plan, a in self._sums.items()}


def plan_stats(cfg: LoadedConfig) -> tuple[dict[str, dict[str, Any]], dict[str, set[str]]]:
    """`PlanTotals` of the run's rows: (per-plan stats, regulators placed per plan)."""
    totals = PlanTotals()
    scan_run(cfg, [totals])
    return totals.stats, totals.placed


def inspect_run(cfg: LoadedConfig, totals: PlanTotals | None = None) -> dict[str, Any]:
    """Status, per-plan counts and quality figures, outputs, the last session and the array tasks of a run.

    `totals`: the run's `PlanTotals` when the caller has already folded the rows (else one pass here).
    """
    meta = MetaDir(Path(cfg.outputs_dir) / "meta")
    manifest = meta.load_manifest() or {}
    state = meta.load_state()
    eff = meta.load_effective() or {}
    stats, placed = (totals.stats, totals.placed) if totals is not None else plan_stats(cfg)
    prev = eff.get("quotas", {})
    plans = [p.with_quota(max(p.quota, int(prev.get(p.name, 0)))) for p in resolve_plans(cfg)]
    rows: list[dict[str, Any]] = []
    for p in plans:
        s = stats.get(p.name, {})
        g = int(s.get("n", 0))
        rows.append({"name": p.name, "generated": g, "quota": p.quota,
                     "percent": 100.0 if p.quota <= 0 else round(100.0 * min(g, p.quota) / p.quota, 1),
                     "mean_sites": s.get("sites"), "mean_sites_per_100bp": s.get("s100"), "mean_gc": s.get("gc")})
    for name, s in stats.items():  # rows of plans no longer in the config
        if name not in {p.name for p in plans}:
            rows.append({"name": name, "generated": int(s["n"]), "quota": 0, "percent": 100.0, "mean_sites": s["sites"],
                         "mean_sites_per_100bp": s["s100"], "mean_gc": s["gc"], "removed_from_config": True})
    in_quota = sum(min(int(r["generated"]), int(r["quota"])) for r in rows if r["quota"])
    quota = sum(int(r["quota"]) for r in rows)
    tasks = task_rows(meta, cfg)
    status = manifest.get("status") or (state.status if state else "not started")
    if state is not None and manifest.get("sessions") and state.session > manifest["sessions"][-1]["session"]:
        status = f"{state.status} (session {state.session} did not finish: killed or still running)"
    elif state is not None and not manifest and state.status == "running":
        status = "running or killed (no session has finished)"
    if tasks:
        done = sum(1 for t in tasks if t["state"] == "completed")
        running = sum(1 for t in tasks if t["state"].startswith("running"))
        complete = quota > 0 and in_quota >= quota
        status = ("completed" if complete and not running else "running" if running else "incomplete") + \
            f" (array: {len(tasks)} task(s), {running} running, {done} completed)"
    outputs = {}
    target = cfg.usr_target()
    if target is not None:
        outputs["usr"] = str(DatasetPaths(resolve_root(target[0]), target[1]).dir)
    pq_target = cfg.parquet_target()
    if pq_target is not None:
        outputs["parquet"] = str(pq_target)
    return {
        "run_id": cfg.run_id,
        "config": str(cfg.path),
        "status": status,
        "generated": sum(int(r["generated"]) for r in rows),
        "quota": quota,
        "percent": 100.0 if quota <= 0 else round(100.0 * in_quota / quota, 1),
        "over_quota": {r["name"]: int(r["generated"]) - int(r["quota"]) for r in rows
                       if r["quota"] and int(r["generated"]) > int(r["quota"])},
        "plans": rows,
        "sessions": len(manifest.get("sessions", [])) + sum(int(t["sessions"]) for t in tasks),
        "last_session": (manifest.get("sessions") or [None])[-1],
        "tasks": tasks,
        "outputs": outputs,
        "usr_events_path": str(usr_events_path(cfg)) if target is not None else None,
        "diagnostics": str(meta.events_path),
        "state": state.as_dict() if state else None,
        "unplaced_regulators": unplaced_regulators(cfg, placed, {p: int(s["n"]) for p, s in stats.items()}),
    }
