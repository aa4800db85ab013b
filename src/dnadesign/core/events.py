"""The event line contract (`.events.log`) and its append-only writer and tolerant reader.

One JSON object per line. Writers append with O_APPEND under an flock on a sidecar lock file and
fsync; a line is never rewritten. Readers stop before a torn last line (no trailing newline) and
report malformed lines instead of crashing. This module is all that `notify` needs to read events.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .locks import FileLock
from .scheduler import detect_scheduler
from .secrets import redact
from .timeutil import utc_now_iso

EVENT_VERSION = 1
MAX_LINE_BYTES = 1 << 20
USR_ACTIONS = ("init", "append", "attach", "snapshot", "materialize", "delete", "restore", "pull", "push", "compact")
DENSEGEN_ACTIONS = ("densegen_health", "densegen_flush_failed")
JOB_ACTIONS = ("job_started", "job_finished", "job_lost")
HEALTH_STATUSES = ("started", "running", "completed", "failed", "resumed")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return str(os.getuid())


@dataclass(frozen=True)
class Actor:
    """Who wrote an event: tool, run and correlation ids, host, pid, user."""

    tool: str
    run_id: str
    correlation_id: str
    host: str
    pid: int
    user: str

    @classmethod
    def current(cls, tool: str, run_id: str | None = None, correlation_id: str | None = None) -> Actor:
        """The actor for this process. Ids come from arguments, then $DNADESIGN_RUN_ID / $DNADESIGN_CORRELATION_ID."""
        run_id = run_id or os.environ.get("DNADESIGN_RUN_ID") or f"{tool}-{uuid.uuid4().hex[:12]}"
        correlation_id = correlation_id or os.environ.get("DNADESIGN_CORRELATION_ID") or run_id
        return cls(tool, run_id, correlation_id, socket.gethostname(), os.getpid(), _user())

    def as_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "run_id": self.run_id,
            "correlation_id": self.correlation_id,
            "host": self.host,
            "pid": self.pid,
            "user": self.user,
        }


def job_block(env: Mapping[str, str] | None = None, **fields: Any) -> dict[str, Any] | None:
    """The `job{}` block for an event written inside a scheduler job, or None outside one."""
    info = detect_scheduler(env)
    if info.scheduler == "none":
        return None
    block: dict[str, Any] = {"scheduler": info.scheduler, "job_id": info.job_id, "task_id": info.task_id,
             "state": None, "exit_code": None, "signal": None}
    if info.array:
        block["array"] = {"first": info.array[0], "last": info.array[1], "step": info.array[2]}
    block.update(fields)
    return block


def make_event(
    action: str,
    dataset_id: str,
    actor: Actor,
    *,
    args: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    fingerprint: Mapping[str, Any] | None = None,
    job: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build one event line as a dict (args are redacted here, so callers cannot forget)."""
    event: dict[str, Any] = {
        "event_version": EVENT_VERSION,
        "event_id": uuid.uuid4().hex,
        "ts": utc_now_iso(),
        "action": action,
        "dataset": {"id": dataset_id},
        "actor": actor.as_dict(),
        "args": redact(dict(args or {})),
        "metrics": dict(metrics or {}),
        "fingerprint": dict(fingerprint or {}),
    }
    if job is None:
        job = job_block()
    if job is not None:
        event["job"] = dict(job)
    return event


def encode_event(event: Mapping[str, Any]) -> bytes:
    line = json.dumps(event, separators=(",", ":"), sort_keys=False, default=str).encode() + b"\n"
    if len(line) > MAX_LINE_BYTES:
        raise ValueError(f"event line is {len(line)} bytes; the limit is {MAX_LINE_BYTES}")
    return line


def lock_path_for(log_path: str | Path) -> Path:
    log_path = Path(log_path)
    return log_path.with_name(log_path.name.replace(".log", "") + ".lock") if log_path.name.endswith(".log") else log_path.with_name(log_path.name + ".lock")


def write_lines_locked(log_path: str | Path, payload: bytes) -> None:
    """Append whole newline-terminated lines with O_APPEND and fsync. The caller holds the log's lock.

    If the file does not end in a newline (a writer died mid-line), a newline is written first so
    the torn fragment becomes one malformed line rather than corrupting the next event.
    """
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        size = os.fstat(fd).st_size
        if size:
            with open(log_path, "rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    payload = b"\n" + payload
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def append_events(log_path: str | Path, events: list[Mapping[str, Any]], *, timeout: float | None = 120.0) -> None:
    """Append events as whole lines under the log's lock (see `write_lines_locked`)."""
    log_path = Path(log_path)
    payload = b"".join(encode_event(e) for e in events)
    with FileLock(lock_path_for(log_path), timeout=timeout, what="event log lock"):
        write_lines_locked(log_path, payload)


def append_event(log_path: str | Path, event: Mapping[str, Any], **kw: Any) -> None:
    """Append one event line (see `append_events`)."""
    append_events(log_path, [event], **kw)


@dataclass(frozen=True)
class EventRecord:
    """One complete line read from an event log: its byte span and the parsed event or the error."""

    offset: int
    end: int
    event: dict[str, Any] | None
    error: str | None = None


def iter_event_records(path: str | Path, start: int = 0, chunk_size: int = 1 << 20, *,
                       keep: Callable[[bytes], bool] | None = None) -> Iterator[EventRecord]:
    """Yield complete lines from byte offset `start`; a torn last line (no newline yet) is not yielded.

    Memory stays flat in the log's size: the file is read in chunks. `keep(raw_line)`, when given,
    is a cheap pre-filter: lines it rejects are skipped without being parsed.
    """
    with open(path, "rb") as fh:
        fh.seek(start)
        pos = start
        buf = b""
        while True:
            block = fh.read(chunk_size)
            if not block:
                return
            buf += block
            lines = buf.split(b"\n")
            buf = lines.pop()
            for raw in lines:
                end = pos + len(raw) + 1
                if raw.strip() and (keep is None or keep(raw)):
                    yield _parse(raw, pos, end)
                pos = end


def _parse(raw: bytes, offset: int, end: int) -> EventRecord:
    try:
        event = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return EventRecord(offset, end, None, f"malformed JSON at byte {offset}: {exc}")
    if not isinstance(event, dict) or "action" not in event:
        return EventRecord(offset, end, None, f"not an event object at byte {offset}")
    return EventRecord(offset, end, event)


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """All well-formed events of a log (convenience for small logs and tests)."""
    if not Path(path).exists():
        return []
    return [r.event for r in iter_event_records(path) if r.event is not None]


def tail_events(path: str | Path, n: int) -> list[dict[str, Any]]:
    """The last `n` well-formed events, reading only the end of the file."""
    path = Path(path)
    if not path.exists() or n <= 0:
        return []
    size = path.stat().st_size
    window = 64 * 1024
    while True:
        start = max(0, size - window)
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read(size - start)
        if start > 0:
            data = data.split(b"\n", 1)[1] if b"\n" in data else b""
        lines = [ln for ln in data.split(b"\n")[:-1] if ln.strip()]  # the last piece is "" or a torn line
        if len(lines) >= n or start == 0:
            out = []
            for ln in lines[-n:]:
                rec = _parse(ln, 0, 0)
                if rec.event is not None:
                    out.append(rec.event)
            return out[-n:]
        window *= 4
