"""The job view of an event log: every scheduler job and array task, its state, and a roll-up per array.

Built from the lifecycle events of `core.jobs` (`job_started`, `job_finished`, `job_lost`) plus the
`append` events written inside a job (for the rows each task wrote). The log is streamed through
`core.events.iter_event_records` with a byte-level pre-filter, so only lifecycle and append lines
are parsed and memory grows with the number of tasks, never with the log.

States shown:

| state | from |
|---|---|
| running | `job_started` and nothing after it (yet) |
| completed / failed / cancelled | `job_finished` (exit code and signal classified by `core.jobs.classify`) |
| timeout | `job_finished` whose scheduler said the time limit was reached (`job.scheduler_reason`), or a `job_lost` whose recorded scheduler state is TIMEOUT |
| lost | `job_lost` (written by `usr events reconcile` for a task that never finished and left the queue) |
| unknown | a task seen only through its `append` events (a job that writes no lifecycle events) |

A terminal state is frozen, as in the incumbent observability service: a second `job_finished`
for the same task is ignored. Two exceptions: `lost` is an inference and gives way to a late
`job_finished`; and a new `job_started` after a terminal state is a new attempt (a requeued or
resubmitted task, which keeps its job id), counted in `attempts`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .events import iter_event_records
from .jobs import classify

VIEW_STATES = ("running", "completed", "failed", "cancelled", "timeout", "lost", "unknown")
TERMINAL_VIEW_STATES = ("completed", "failed", "cancelled", "timeout", "lost")
LIFECYCLE = ("job_started", "job_finished", "job_lost")
# The scheduler's own words for "the time limit ended this job" (Slurm reason / state, SGE qacct).
TIME_LIMIT_WORDS = ("timelimit", "time_limit", "timeout", "h_rt", "s_rt")
_RAW_STATES = {"TIMEOUT": "timeout", "CANCELLED": "cancelled", "COMPLETED": "completed", "FAILED": "failed",
               "OUT_OF_MEMORY": "failed", "NODE_FAIL": "failed", "BOOT_FAIL": "failed", "DEADLINE": "timeout",
               "PREEMPTED": "cancelled"}
_WANTED = (b"job_started", b"job_finished", b"job_lost", b'"append"')


def _wanted(raw: bytes) -> bool:
    """Cheap byte test: lifecycle or append lines that carry a `job` block (false positives are parsed and dropped)."""
    return b'"job"' in raw and any(word in raw for word in _WANTED)


def _epoch(ts: Any) -> float | None:
    if not isinstance(ts, str):
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _sort_key(text: str | None) -> tuple[int, int, str]:
    if text is None:
        return (0, 0, "")
    return (1, int(text), "") if text.isdigit() else (2, 0, text)


@dataclass
class TaskView:
    """One scheduler job, or one task of an array job."""

    scheduler: str
    job_id: str
    task_id: str | None
    state: str = "unknown"
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    runtime_s: float | None = None
    rows_written: int = 0
    host: str | None = None
    run_id: str | None = None
    tool: str | None = None
    attempts: int = 0
    last_event_at: str | None = None
    array: dict[str, int] | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.scheduler, self.job_id, self.task_id or "")

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_VIEW_STATES

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ArrayRollup:
    """The tasks of one array job together: how many are expected, seen, in each state, and the rows written."""

    scheduler: str
    job_id: str
    tasks_expected: int | None
    tasks_seen: int
    states: dict[str, int]
    not_seen: int | None
    problem_tasks: dict[str, list[str]]
    rows_written: int
    started_at: str | None
    finished_at: str | None
    span_s: float | None
    done: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JobView:
    """Every task seen in a log, the array roll-ups, and what was read."""

    tasks: list[TaskView]
    arrays: list[ArrayRollup]
    counts: dict[str, int]
    lines_parsed: int = 0
    malformed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"tasks": [t.as_dict() for t in self.tasks], "arrays": [a.as_dict() for a in self.arrays],
                "counts": self.counts, "lines_parsed": self.lines_parsed, "malformed": self.malformed}


def view_state(action: str, job: Mapping[str, Any]) -> str:
    """The view's state for one lifecycle event's `job` block."""
    if action == "job_started":
        return "running"
    raw = str(job.get("scheduler_state") or "").upper()
    said = " ".join(str(job.get(k) or "") for k in ("scheduler_reason", "reason")).lower().replace(" ", "")
    if any(word in said for word in TIME_LIMIT_WORDS) or raw in ("TIMEOUT", "DEADLINE"):
        return "timeout"
    if action == "job_lost":
        return _RAW_STATES.get(raw, "lost") if raw and raw != "COMPLETING" else "lost"
    state = job.get("state")
    if state in ("completed", "failed", "cancelled", "timeout"):
        return str(state)
    return classify(_int_or_none(job.get("exit_code")), _int_or_none(job.get("signal")))


@dataclass
class JobViewBuilder:
    """Fold events into task views, one event at a time (see `build_job_view` for a log file)."""

    tasks: dict[tuple[str, str, str], TaskView] = field(default_factory=dict)
    started_epoch: dict[tuple[str, str, str], float] = field(default_factory=dict)

    def _task(self, job: Mapping[str, Any]) -> TaskView:
        task_id = job.get("task_id")
        task = None if task_id in (None, "") else str(task_id)
        key = (str(job.get("scheduler")), str(job.get("job_id")), task or "")
        view = self.tasks.get(key)
        if view is None:
            view = self.tasks[key] = TaskView(scheduler=key[0], job_id=key[1], task_id=task)
        if view.array is None and isinstance(job.get("array"), Mapping):
            arr = job["array"]
            bounds = {k: _int_or_none(arr.get(k)) for k in ("first", "last", "step")}
            if bounds["first"] is not None and bounds["last"] is not None:
                view.array = {"first": bounds["first"], "last": bounds["last"], "step": bounds["step"] or 1}
        return view

    def feed(self, event: Mapping[str, Any]) -> None:
        """Apply one event (events without a `job` block, and other actions, are ignored)."""
        job = event.get("job")
        action = event.get("action")
        if not isinstance(job, Mapping) or not job.get("scheduler") or job.get("job_id") in (None, ""):
            return
        if action not in LIFECYCLE and action != "append":
            return
        view = self._task(job)
        ts = event.get("ts") if isinstance(event.get("ts"), str) else None
        view.last_event_at = ts or view.last_event_at
        actor = _map(event.get("actor"))
        if action == "append":
            view.rows_written += _int_or_none(_map(event.get("metrics")).get("rows_added")) or 0
            view.host = view.host or actor.get("host")
            return
        if action == "job_started":
            if view.state != "running":
                view.attempts += 1
            view.state = "running"
            view.exit_code = view.signal = None
            view.reason = view.finished_at = None
            view.runtime_s = None
            view.started_at = ts
            view.host = actor.get("host") or view.host
            view.run_id = actor.get("run_id") or view.run_id
            view.tool = actor.get("tool") or view.tool
            start = _epoch(ts)
            if start is not None:
                self.started_epoch[view.key] = start
            return
        if view.terminal and view.state != "lost":
            return  # terminal is frozen (a duplicate or late job_finished / job_lost)
        if view.state == "lost" and action == "job_lost":
            return
        if view.state == "unknown":
            view.attempts = max(view.attempts, 1)
        view.state = view_state(str(action), job)
        view.exit_code = _int_or_none(job.get("exit_code"))
        view.signal = _int_or_none(job.get("signal"))
        view.reason = job.get("reason") or job.get("scheduler_reason") or view.reason
        view.finished_at = ts
        start, end = self.started_epoch.get(view.key), _epoch(ts)
        if action == "job_finished" and start is not None and end is not None:
            view.runtime_s = round(max(0.0, end - start), 3)
        if action == "job_finished":
            view.host = actor.get("host") or view.host
            written = _int_or_none(_map(event.get("metrics")).get("rows_written"))
            if not view.rows_written and written:
                view.rows_written = written

    def result(self, now: float | None = None) -> JobView:
        """The view: tasks sorted by job and task id, array roll-ups, counts per state."""
        now = datetime.now().timestamp() if now is None else now
        tasks = sorted(self.tasks.values(), key=lambda t: (t.scheduler, _sort_key(t.job_id), _sort_key(t.task_id)))
        for t in tasks:
            start = self.started_epoch.get(t.key)
            if t.state == "running" and start is not None:
                t.runtime_s = round(max(0.0, now - start), 3)  # so far
        counts = {s: 0 for s in VIEW_STATES}
        for t in tasks:
            counts[t.state] = counts.get(t.state, 0) + 1
        return JobView(tasks, rollups(tasks), counts)


def _expected(array: Mapping[str, int] | None) -> int | None:
    if not array:
        return None
    step = max(1, int(array.get("step") or 1))
    return max(0, (int(array["last"]) - int(array["first"])) // step + 1)


def rollups(tasks: Iterable[TaskView]) -> list[ArrayRollup]:
    """One roll-up per array job (tasks that have a task id), in the order of `tasks`."""
    groups: dict[tuple[str, str], list[TaskView]] = {}
    for t in tasks:
        if t.task_id is not None:
            groups.setdefault((t.scheduler, t.job_id), []).append(t)
    out = []
    for (sched, job_id), members in groups.items():
        expected = next((_expected(t.array) for t in members if t.array), None)
        states: dict[str, int] = {}
        problems: dict[str, list[str]] = {}
        for t in members:
            states[t.state] = states.get(t.state, 0) + 1
            if t.state not in ("completed", "running"):
                problems.setdefault(t.state, []).append(str(t.task_id))
        starts = [t.started_at for t in members if t.started_at]
        ends = [t.finished_at for t in members if t.finished_at]
        all_terminal = all(t.terminal for t in members)
        done = all_terminal and (expected is None or len(members) >= expected)
        first, last = (min(starts) if starts else None), (max(ends) if ends and all_terminal else None)
        span = None
        if first and last and _epoch(first) is not None and _epoch(last) is not None:
            span = round(max(0.0, _epoch(last) - _epoch(first)), 3)  # type: ignore[operator]
        out.append(ArrayRollup(sched, job_id, expected, len(members), states,
                               None if expected is None else max(0, expected - len(members)), problems,
                               sum(t.rows_written for t in members), first, last, span, done))
    return out


def build_job_view(log_path: str | Path, *, now: float | None = None) -> JobView:
    """Stream a `.events.log` into a `JobView` (a missing log gives an empty view)."""
    builder = JobViewBuilder()
    parsed = malformed = 0
    path = Path(log_path)
    if path.exists():
        for rec in iter_event_records(path, keep=_wanted):
            parsed += 1
            if rec.event is None:
                malformed += 1
                continue
            builder.feed(rec.event)
    view = builder.result(now)
    view.lines_parsed, view.malformed = parsed, malformed
    return view


def format_runtime(seconds: float | None) -> str:
    """Seconds as `1h02m03s` / `2m03s` / `4.2s` for tables."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"
