"""Job lifecycle alerts: single jobs alert when they fail, are cancelled or are lost; an array job's
tasks roll up into one message once every task has finished.

State (per array job, in the cursor file) changes only when the caller commits after a hand-off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ALERT_STATES = ("failed", "cancelled", "lost")
MAX_ARRAYS = 256


@dataclass(frozen=True)
class JobOutcome:
    """What a job event means: `alert` (one job), `rollup` (array complete), `pending` (array task recorded) or `ignore`."""

    kind: str
    key: str | None = None
    entry: dict[str, Any] | None = None  # new state for `key` (None deletes it)
    summary: dict[str, Any] | None = None


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _task(job: Mapping[str, Any]) -> str | None:
    t = job.get("task_id")
    return None if t in (None, "") else str(t)


def job_state(event: Mapping[str, Any]) -> str | None:
    """completed / failed / cancelled / lost for a finished job event, else None."""
    job = _d(event.get("job"))
    if event.get("action") == "job_lost":
        return "lost"
    if event.get("action") == "job_finished":
        return str(job.get("state") or "failed")
    return None


def expected_tasks(array: Mapping[str, Any]) -> list[str] | None:
    """The task ids `first..last` by `step` of an array job, or None when the bounds are unusable."""
    try:
        first, last, step = int(array["first"]), int(array["last"]), int(array.get("step") or 1)
    except (KeyError, TypeError, ValueError):
        return None
    if step <= 0 or last < first or (last - first) // step > 100_000:
        return None
    return [str(i) for i in range(first, last + 1, step)]


def evaluate(state: Mapping[str, Any], event: Mapping[str, Any]) -> JobOutcome:
    """Classify a job lifecycle event against the stored roll-up state."""
    st = job_state(event)
    if st is None:
        return JobOutcome("ignore")
    job = _d(event.get("job"))
    array = job.get("array") if isinstance(job.get("array"), dict) else None
    task = _task(job)
    tasks = expected_tasks(array) if array else None
    if not tasks or task is None:
        return JobOutcome("alert") if st in ALERT_STATES else JobOutcome("ignore")
    key = f"{job.get('scheduler')}:{job.get('job_id')}"
    prev = state.get(key) or {"tasks": {}, "expected": len(tasks)}
    done = dict(prev.get("tasks") or {})
    done[task] = st
    entry = {"tasks": done, "expected": len(tasks)}
    if all(t in done for t in tasks):
        counts: dict[str, int] = {}
        for s in done.values():
            counts[s] = counts.get(s, 0) + 1
        bad = sorted((t for t, s in done.items() if s != "completed"), key=lambda x: int(x) if x.isdigit() else 0)
        summary = {"scheduler": job.get("scheduler"), "job_id": job.get("job_id"), "tasks": len(tasks),
                   "counts": counts, "not_completed": bad[:50]}
        return JobOutcome("rollup", key, None, summary)
    return JobOutcome("pending", key, entry)


def commit(state: dict[str, Any], outcome: JobOutcome) -> None:
    """Apply an outcome's state change."""
    if outcome.key is None:
        return
    state.pop(outcome.key, None)
    if outcome.entry is not None:
        state[outcome.key] = outcome.entry
        while len(state) > MAX_ARRAYS:
            state.pop(next(iter(state)))
