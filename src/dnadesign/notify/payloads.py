"""Turn an event into a provider-neutral `Message` (status, title, text, fields, idempotency key)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.secrets import scrub_urls

STATUSES = ("started", "running", "success", "failure", "info")
HEALTH_TO_STATUS = {"started": "started", "resumed": "started", "running": "running",
                    "completed": "success", "failed": "failure"}


@dataclass(frozen=True)
class Message:
    """One notification; `key` is the idempotency key (the event id) sent with every attempt."""

    key: str
    status: str
    title: str
    text: str
    tool: str | None = None
    run_id: str | None = None
    dataset: str | None = None
    action: str | None = None
    ts: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    terminal: bool = False


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def event_key(event: Mapping[str, Any], offset: int) -> str:
    """The event id, or a stable hash for legacy events without one."""
    eid = event.get("event_id")
    if isinstance(eid, str) and eid:
        return eid
    return hashlib.sha256(f"{offset}:{event.get('ts')}:{event.get('action')}".encode()).hexdigest()[:32]


def health_status(event: Mapping[str, Any]) -> str | None:
    """DenseGen health status from `args.status` or `metrics.status`."""
    s = _d(event.get("args")).get("status") or _d(event.get("metrics")).get("status")
    return s if isinstance(s, str) else None


def progress(event: Mapping[str, Any]) -> tuple[Any, Any, float | None]:
    """(generated, quota, percent) from metrics; percent is derived when absent."""
    m = _d(event.get("metrics"))
    gen, quota, pct = m.get("generated"), m.get("quota"), m.get("percent")
    try:
        pct = float(pct) if pct is not None else (100.0 * float(gen) / float(quota) if gen is not None and quota else None)
    except (TypeError, ValueError, ZeroDivisionError):
        pct = None
    return gen, quota, pct


def _base(event: Mapping[str, Any], key: str, **kw: Any) -> Message:
    actor = _d(event.get("actor"))
    kw.setdefault("fields", {})
    return Message(key=key, tool=actor.get("tool"), run_id=actor.get("run_id"), dataset=_d(event.get("dataset")).get("id"),
                   action=event.get("action"), ts=event.get("ts"), **kw)


def _clean(text: str) -> str:
    return scrub_urls(text) if "://" in text else text


def health_message(event: Mapping[str, Any], key: str) -> Message:
    status = health_status(event) or "running"
    gen, quota, pct = progress(event)
    ds = _d(event.get("dataset")).get("id", "?")
    prog = f"{gen}/{quota}" if gen is not None and quota is not None else (str(gen) if gen is not None else "")
    if pct is not None:
        prog += f" ({pct:.0f}%)" if prog else f"{pct:.0f}%"
    detail = _d(event.get("args")).get("error") or _d(event.get("metrics")).get("error")
    text = f"DenseGen {status} on {ds}" + (f": {prog}" if prog else "")
    if detail:
        text += f"\n{str(detail)[:500]}"
    fields = {k: v for k, v in (("generated", gen), ("quota", quota), ("percent", round(pct, 2) if pct is not None else None)) if v is not None}
    return _base(event, key, status=HEALTH_TO_STATUS.get(status, "info"), title=f"DenseGen {status}: {ds}",
                 text=_clean(text), fields=fields, terminal=status in ("completed", "failed"))


def flush_failed_message(event: Mapping[str, Any], key: str) -> Message:
    ds = _d(event.get("dataset")).get("id", "?")
    detail = _d(event.get("args")).get("error") or _d(event.get("metrics")).get("error") or "see the run log"
    return _base(event, key, status="failure", title=f"DenseGen flush failed: {ds}",
                 text=_clean(f"DenseGen could not flush rows to {ds}: {str(detail)[:500]}"))


def job_label(job: Mapping[str, Any]) -> str:
    task = job.get("task_id")
    return f"{job.get('scheduler')} job {job.get('job_id')}" + (f" task {task}" if task not in (None, "") else "")


def job_message(event: Mapping[str, Any], key: str, state: str) -> Message:
    job = _d(event.get("job"))
    extra = []
    if job.get("exit_code") is not None:
        extra.append(f"exit code {job['exit_code']}")
    if job.get("signal") is not None:
        extra.append(f"signal {job['signal']}")
    label = job_label(job)
    text = f"{label} {state}" + (f" ({', '.join(extra)})" if extra else "")
    return _base(event, key, status="failure" if state != "completed" else "success", title=f"Job {state}: {label}",
                 text=_clean(text), fields={"state": state, **{k: job.get(k) for k in ("exit_code", "signal") if job.get(k) is not None}},
                 terminal=True)


def rollup_message(event: Mapping[str, Any], summary: Mapping[str, Any]) -> Message:
    counts = summary.get("counts", {})
    ok = set(counts) <= {"completed"}
    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    label = f"{summary.get('scheduler')} array job {summary.get('job_id')}"
    text = f"{label}: all {summary.get('tasks')} tasks finished ({parts})"
    if summary.get("not_completed"):
        text += "\nnot completed: tasks " + ", ".join(summary["not_completed"])
    key = hashlib.sha256(f"rollup:{summary.get('scheduler')}:{summary.get('job_id')}".encode()).hexdigest()[:32]
    return _base(event, key, status="success" if ok else "failure", title=f"Array job {'completed' if ok else 'finished with failures'}: {summary.get('job_id')}",
                 text=_clean(text), fields={"tasks": summary.get("tasks"), **{f"n_{k}": v for k, v in counts.items()}}, terminal=True)


def generic_message(event: Mapping[str, Any], key: str) -> Message:
    ds = _d(event.get("dataset")).get("id", "?")
    action = event.get("action")
    rows = _d(event.get("fingerprint")).get("rows")
    text = f"{action} on {ds}" + (f" ({rows} rows)" if rows is not None else "")
    return _base(event, key, status="info", title=f"{action}: {ds}", text=_clean(text),
                 fields={"rows": rows} if rows is not None else {})
