"""Job lifecycle events written by the tool itself (users cannot install scheduler prologs).

`job_started` when a batch job begins, `job_finished` with a classified state when it ends.
A job killed with SIGKILL writes no `job_finished`; a reconciler can later mark it `job_lost`.
Exit codes follow the scheduler rules: 128+signum from a handler, and never 99 or 100 (SGE
requeues or errors the job on those).
"""

from __future__ import annotations

import shutil
import signal as _signal
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .events import Actor, append_event, job_block, make_event, read_events
from .scheduler_query import end_reason

CANCEL_SIGNALS = {int(_signal.SIGTERM), int(_signal.SIGKILL), int(_signal.SIGINT), int(_signal.SIGUSR2)}
TERMINAL_STATES = ("completed", "failed", "cancelled", "lost")


def classify(exit_code: int | None, signal: int | None) -> str:
    """completed / failed / cancelled from an exit code and the signal that ended the job, if any."""
    if signal is not None:
        return "cancelled" if signal in CANCEL_SIGNALS else "failed"
    return "completed" if not exit_code else "failed"


def safe_exit_code(code: int) -> int:
    """Map exit codes SGE treats specially (99 requeue, 100 error state) to 1."""
    return 1 if code in (99, 100) else code


def emit_job_event(log_path: str | Path, dataset_id: str, actor: Actor, action: str, *,
                   env: Mapping[str, str] | None = None, metrics: Mapping[str, Any] | None = None,
                   args: Mapping[str, Any] | None = None, **job_fields: Any) -> dict[str, Any] | None:
    """Append `job_started` / `job_finished` / `job_lost` when running under a scheduler; else do nothing."""
    job = job_block(env, **job_fields)
    if job is None:
        return None
    event = make_event(action, dataset_id, actor, args=args, metrics=metrics, job=job)
    append_event(log_path, event)
    return event


def job_started(log_path: str | Path, dataset_id: str, actor: Actor, env: Mapping[str, str] | None = None, *,
                args: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """`job_started` (state `running`) for this scheduler job task; None outside a scheduler."""
    return emit_job_event(log_path, dataset_id, actor, "job_started", env=env, args=args, state="running")


def job_finished(log_path: str | Path, dataset_id: str, actor: Actor, *, exit_code: int, signal: int | None = None,
                 env: Mapping[str, str] | None = None, metrics: Mapping[str, Any] | None = None,
                 reason: str | None = None) -> dict[str, Any] | None:
    """`job_finished` with the state classified from the exit code and signal, and why (`args.reason`).

    A signal may be the scheduler's time limit rather than a cancel: what the scheduler says is recorded.
    None outside a scheduler.
    """
    told = end_reason(env) if signal is not None else {}
    args = {"reason": reason} if reason else None
    return emit_job_event(log_path, dataset_id, actor, "job_finished", env=env, metrics=metrics, args=args,
                          state=classify(exit_code, signal), exit_code=exit_code, signal=signal, **told)


def job_key(job: Mapping[str, Any]) -> tuple[str, str, str]:
    """Dedupe key of a job task: (scheduler, job_id, task_id)."""
    return (str(job.get("scheduler")), str(job.get("job_id")), str(job.get("task_id") or ""))


def scheduler_still_knows(job: Mapping[str, Any]) -> bool | None:
    """Ask the scheduler whether a job task is still pending or running.

    True / False, or None when the scheduler's client is not available here (cannot decide).
    """
    sched, job_id, task = job_key(job)
    if sched == "slurm":
        if not shutil.which("squeue"):
            return None
        target = f"{job_id}_{task}" if task else job_id
        res = subprocess.run(["squeue", "-h", "-j", target, "-o", "%T"], capture_output=True, text=True, timeout=30)
        return res.returncode == 0 and bool(res.stdout.strip())
    if sched == "sge":
        if not shutil.which("qstat"):
            return None
        res = subprocess.run(["qstat", "-j", job_id], capture_output=True, text=True, timeout=30)
        if res.returncode != 0:
            return False
        if task:  # qstat -j lists the tasks still pending or running
            return any(line.split(":", 1)[0].strip() in ("job-array tasks", "usage") and task in line for line in res.stdout.splitlines()) or f" {task}" in res.stdout
        return True
    return None


def find_unfinished(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """`job_started` events with no later `job_finished` / `job_lost` for the same job task."""
    started: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for event in events:
        job = event.get("job")
        if not isinstance(job, Mapping):
            continue
        key = job_key(job)
        if event.get("action") == "job_started":
            started[key] = event
        elif event.get("action") in ("job_finished", "job_lost"):
            started.pop(key, None)
    return list(started.values())


def reconcile(log_path: str | Path, dataset_id: str, actor: Actor, *, alive=scheduler_still_knows) -> dict[str, list]:
    """Append `job_lost` for started jobs that never finished and that the scheduler no longer knows.

    Returns {"lost": [job blocks marked lost], "running": [...], "unknown": [... no scheduler client here]}.
    """
    result: dict[str, list] = {"lost": [], "running": [], "unknown": []}
    for event in find_unfinished(read_events(log_path)):
        job = dict(event["job"])
        state = alive(job)
        if state is None:
            result["unknown"].append(job)
        elif state:
            result["running"].append(job)
        else:
            job.update(state="lost", exit_code=None, signal=None)
            append_event(log_path, make_event("job_lost", dataset_id, actor, job=job,
                                              metrics={"started_ts": event.get("ts"), "started_run_id": event.get("actor", {}).get("run_id")}))
            result["lost"].append(job)
    return result
