"""Turn an event into a provider-neutral `Message`: what happened (and why), where (host, job or array
task, dataset) and what to do next, plus the idempotency key.

Messages show a short id (8 hex digits) only; the full event id travels as the idempotency key.
"""

from __future__ import annotations

import hashlib
import signal as signal_mod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..core.secrets import scrub_urls

STATUSES = ("started", "running", "success", "failure", "info")
HEALTH_TO_STATUS = {"started": "started", "resumed": "started", "running": "running",
                    "completed": "success", "failed": "failure"}
SHORT_ID = 8
RESUMES = "`uv run dense run` with the same config resumes from the saved sequences"


@dataclass(frozen=True)
class Message:
    """One notification; `key` is the idempotency key (the event id) sent with every attempt."""

    key: str
    status: str
    title: str
    text: str  # what happened, and why when it went wrong
    tool: str | None = None
    run_id: str | None = None
    dataset: str | None = None
    action: str | None = None
    ts: str | None = None
    host: str | None = None
    job: str | None = None  # e.g. "slurm job 41 task 3"
    next_step: str | None = None  # what to do about it
    fields: dict[str, Any] = field(default_factory=dict)
    terminal: bool = False
    event_meta: dict[str, Any] = field(default_factory=dict)  # event_version, fingerprint (incumbent payload shape)

    @property
    def short_id(self) -> str:
        """The first 8 characters of the key: enough to find the event, short enough to read."""
        return self.key[:SHORT_ID]

    def where(self) -> str:
        """`on host X · slurm job 41 task 3 · dataset densegen/demo` (the parts that are known)."""
        bits = [f"on {self.host}" if self.host else None, self.job, f"dataset {self.dataset}" if self.dataset else None]
        return " · ".join(b for b in bits if b)

    def footer(self) -> str:
        """The context line: tool, run, where, short id (never the 32-hex event id)."""
        bits = [self.tool, f"run {self.run_id}" if self.run_id else None, f"on {self.host}" if self.host else None,
                self.job, f"id {self.short_id}"]
        return " · ".join(b for b in bits if b)


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


def signal_name(value: Any) -> str | None:
    """`15` -> `signal 15 (SIGTERM)`; None when absent."""
    if value in (None, "", 0):
        return None
    try:
        return f"signal {int(value)} ({signal_mod.Signals(int(value)).name})"
    except (TypeError, ValueError):
        return f"signal {value}"


def job_label(job: Mapping[str, Any]) -> str | None:
    """`slurm job 41 task 3`, or None outside a scheduler job."""
    if not job or not job.get("job_id"):
        return None
    task = job.get("task_id")
    return f"{job.get('scheduler') or 'batch'} job {job.get('job_id')}" + (f" task {task}" if task not in (None, "") else "")


def _clean(text: str) -> str:
    return scrub_urls(text) if "://" in text else text


def _base(event: Mapping[str, Any], key: str, **kw: Any) -> Message:
    actor = _d(event.get("actor"))
    kw.setdefault("fields", {})
    kw["text"] = _clean(kw["text"])
    if kw.get("next_step"):
        kw["next_step"] = _clean(kw["next_step"])
    meta = {"event_version": event.get("event_version"), "fingerprint": _d(event.get("fingerprint"))}
    return Message(key=key, tool=actor.get("tool"), run_id=actor.get("run_id"), dataset=_d(event.get("dataset")).get("id"),
                   action=event.get("action"), ts=event.get("ts"), host=actor.get("host") or None,
                   job=job_label(_d(event.get("job"))), event_meta=meta, **kw)


def _progress_text(gen: Any, quota: Any, pct: float | None) -> str:
    prog = f"{gen}/{quota} sequences" if gen is not None and quota is not None else (f"{gen} sequences" if gen is not None else "")
    if pct is not None:
        prog += f" ({pct:.0f}%)" if prog else f"{pct:.0f}%"
    return prog


def health_message(event: Mapping[str, Any], key: str) -> Message:
    """DenseGen lifecycle and progress. A failed or stopped run says why and that `dense run` resumes."""
    status = health_status(event) or "running"
    args, metrics = _d(event.get("args")), _d(event.get("metrics"))
    gen, quota, pct = progress(event)
    ds = _d(event.get("dataset")).get("id", "?")
    prog = _progress_text(gen, quota, pct)
    fields = {k: v for k, v in (("generated", gen), ("quota", quota), ("percent", round(pct, 2) if pct is not None else None)) if v is not None}
    next_step = None
    if status == "failed":
        outcome = str(args.get("outcome") or "failed")
        why = args.get("reason") or args.get("error") or metrics.get("error")
        sig = signal_name(args.get("signal"))
        stopped = outcome in ("interrupted", "incomplete") or sig is not None
        verb = "stopped" if stopped else "failed"
        text = f"DenseGen {verb} on {ds}" + (f" at {prog}" if prog else "") + "."
        if why:
            text += f"\nWhy: {str(why)[:500]}"
        elif sig:
            text += f"\nWhy: stopped by {sig}"
        else:
            text += "\nWhy: no reason was recorded; see the job's output log"
        if sig and why and "signal" not in str(why).lower() and "SIG" not in str(why):
            text += f" ({sig})"
        saved = f"the {gen} saved sequences" if isinstance(gen, int) and gen > 0 else "the saved sequences"
        if stopped:
            next_step = f"run `uv run dense run` again with the same config: it resumes from {saved}"
            if outcome == "incomplete":
                next_step += " (or raise the run's time budget)"
        else:
            next_step = f"fix the cause above, then run `uv run dense run` again with the same config: it resumes from {saved}"
        fields["outcome"] = outcome
        title = f"DenseGen {verb}: {ds}"
    else:
        verb = {"started": "started", "resumed": "resumed", "running": "running", "completed": "completed"}.get(status, status)
        text = f"DenseGen {verb} on {ds}" + (f": {prog}" if prog else "") + "."
        if status == "completed":
            next_step = f"look at the sequences: `uv run usr head {ds}`"
        title = f"DenseGen {verb}: {ds}"
    return _base(event, key, status=HEALTH_TO_STATUS.get(status, "info"), title=title, text=text, next_step=next_step,
                 fields=fields, terminal=status in ("completed", "failed"))


def flush_failed_message(event: Mapping[str, Any], key: str) -> Message:
    """DenseGen could not write rows to the dataset."""
    ds = _d(event.get("dataset")).get("id", "?")
    detail = _d(event.get("args")).get("error") or _d(event.get("metrics")).get("error") or "no detail recorded; see the run log"
    return _base(event, key, status="failure", title=f"DenseGen could not save rows: {ds}",
                 text=f"DenseGen could not write rows to {ds}.\nWhy: {str(detail)[:500]}",
                 next_step="check free space and permissions of the USR root; rows already committed are safe and " + RESUMES)


def _log_hint(job: Mapping[str, Any]) -> str:
    sched, jid, task = job.get("scheduler"), job.get("job_id"), job.get("task_id")
    if sched == "slurm":
        return f"`sacct -j {jid}` and the job's output file" + (f" (task {task})" if task not in (None, "") else "")
    if sched == "sge":
        return f"`qacct -j {jid}` and the job's .o file" + (f" (task {task})" if task not in (None, "") else "")
    return "the job's output log"


def job_message(event: Mapping[str, Any], key: str, state: str) -> Message:
    """One job that failed, was cancelled or was lost."""
    job = _d(event.get("job"))
    label = job_label(job) or "job"
    tool = _d(event.get("actor")).get("tool")
    if state == "lost":
        text = (f"{label} is lost: the scheduler no longer knows it and it never reported an end "
                "(a node failure, or the memory or time limit, usually).")
    else:
        extra = [f"exit code {job['exit_code']}" if job.get("exit_code") is not None else None, signal_name(job.get("signal"))]
        detail = ", ".join(e for e in extra if e)
        text = f"{label} {state}" + (f" ({detail})" if detail else "") + "."
    next_step = f"check {_log_hint(job)}, then resubmit" + (f"; {RESUMES}" if tool == "densegen" else "")
    return _base(event, key, status="failure" if state != "completed" else "success", title=f"Job {state}: {label}",
                 text=text, next_step=next_step,
                 fields={"state": state, **{k: job.get(k) for k in ("exit_code", "signal") if job.get(k) is not None}},
                 terminal=True)


def rollup_message(event: Mapping[str, Any], summary: Mapping[str, Any]) -> Message:
    """One message for a whole array job once every task has finished."""
    counts = summary.get("counts", {})
    ok = set(counts) <= {"completed"}
    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    sched, jid = summary.get("scheduler"), summary.get("job_id")
    label = f"{sched} array job {jid}"
    text = f"{label}: all {summary.get('tasks')} tasks finished ({parts})."
    next_step = None
    bad = list(summary.get("not_completed") or [])
    if bad:
        text += "\nNot completed: tasks " + ", ".join(bad)
        listed = ",".join(bad)
        how = f"`sbatch --array={listed} <script>`" if sched == "slurm" else f"`qsub -t <n> <script>` for each of tasks {listed}"
        next_step = f"check {_log_hint({'scheduler': sched, 'job_id': jid})}, then resubmit those tasks ({how})"
        if _d(event.get("actor")).get("tool") == "densegen":
            next_step += f"; {RESUMES}"
    key = hashlib.sha256(f"rollup:{sched}:{jid}".encode()).hexdigest()[:32]
    msg = _base(event, key, status="success" if ok else "failure",
                title=f"Array job {'completed' if ok else 'finished with failures'}: {jid}", text=text, next_step=next_step,
                fields={"tasks": summary.get("tasks"), **{f"n_{k}": v for k, v in counts.items()}}, terminal=True)
    # the roll-up speaks for the whole array, not for the task whose event completed it
    return replace(msg, job=label, run_id=None)


def generic_message(event: Mapping[str, Any], key: str) -> Message:
    """Any other selected event (e.g. materialize)."""
    ds = _d(event.get("dataset")).get("id", "?")
    action = event.get("action")
    rows = _d(event.get("fingerprint")).get("rows")
    text = f"{action} on {ds}" + (f" ({rows} rows)" if rows is not None else "") + "."
    return _base(event, key, status="info", title=f"{action}: {ds}", text=text,
                 fields={"rows": rows} if rows is not None else {})
