"""The watch loop: read events after the cursor, turn the selected ones into messages, hand each
message off (deliver, spool, or print in a dry run), then advance the cursor.

`run_watch` is a library function (tests call it in-process; the CLI is a thin wrapper). Delivery
is at-least-once: the cursor is written atomically right after each hand-off, so a watcher killed
with SIGKILL re-sends at most the one message that was in flight.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..core.errors import DeliveryError, InputError
from ..core.locks import FileLock
from ..core.secrets import scrub_urls
from . import rollup, throttle
from .cursor import CursorState, file_id_path, load_cursor, save_cursor
from .delivery import Sender
from .filters import EventFilter
from .payloads import (
    Message,
    event_key,
    flush_failed_message,
    generic_message,
    health_message,
    health_status,
    job_message,
    progress,
    rollup_message,
)
from .providers import format_message
from .spool import Spool
from .tail import Line, LogReader

BREAKER_SECONDS = 30.0
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode  # built once, not per line


def _stderr(msg: str) -> None:
    sys.stderr.write(f"notify: {msg}\n")
    sys.stderr.flush()


def _stdout(line: str) -> None:
    sys.stdout.write(line + "\n")


@dataclass
class WatchConfig:
    """Everything one watch run needs. `sender` is None only for a dry run."""

    events: Path
    cursor: Path
    provider: str
    filter: EventFilter = field(default_factory=EventFilter)
    throttle: throttle.ProgressThrottle = field(default_factory=throttle.ProgressThrottle)
    sender: Sender | None = None
    spool: Spool | None = None
    dry_run: bool = False
    advance_on_dry_run: bool = False
    follow: bool = False
    poll_interval: float = 0.25
    idle_timeout: float | None = None
    stop_on_terminal: bool = False
    start: str | None = None  # "start" | "end": where a new (or reset) cursor begins
    stop: threading.Event | None = None
    emit: Callable[[str], None] = _stdout
    warn: Callable[[str], None] = _stderr
    status_every: float | None = None
    save_interval: float = 1.0
    payload_shape: str = "native"
    # Called once the watcher holds its cursor lock and knows where it starts: a readiness signal.
    on_ready: Callable[[str], None] | None = None
    summary: WatchSummary | None = None  # pass one to read the counters while the watch runs (metrics)


@dataclass
class WatchSummary:
    """Counters for one run; `stopped` says why the loop ended (eof, idle, terminal, stopped)."""

    delivered: int = 0
    spooled: int = 0
    dead_lettered: int = 0
    printed: int = 0
    suppressed: int = 0
    filtered: int = 0
    malformed: int = 0
    lines: int = 0
    offset: int = 0
    stopped: str = "eof"

    def to_json(self) -> dict[str, Any]:
        """The counters as a dict."""
        return asdict(self)


def _epoch(ts: Any) -> float:
    if isinstance(ts, str):
        try:
            return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return time.time()


def find_by_identity(directory: Path, fid) -> Path | None:
    """The file in `directory` with the cursor's device, inode and first line (a rotated log), if any."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return None
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False) and entry.inode() == fid.ino:
                cand = file_id_path(entry.path)
                if cand is not None and cand.same_file(fid):
                    return Path(entry.path)
        except OSError:
            continue
    return None


def _aligned_end(path: Path) -> int:
    """Offset just after the last newline (so --from-end never starts inside a torn line)."""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        pos = size
        while pos > 0:
            step = min(65536, pos)
            fh.seek(pos - step)
            data = fh.read(step)
            nl = data.rfind(b"\n")
            if nl >= 0:
                return pos - step + nl + 1
            pos -= step
        return 0


class _Watcher:
    def __init__(self, cfg: WatchConfig):
        self.cfg = cfg
        self.s = cfg.summary if cfg.summary is not None else WatchSummary()
        self.persist = not cfg.dry_run or cfg.advance_on_dry_run
        self.state: CursorState = CursorState(events=str(cfg.events))
        self.reader: LogReader | None = None
        self.dirty = False
        self.last_save = 0.0
        self.last_fail = -1e9
        self.malformed_warned = 0
        self.done = False
        self.reject = cfg.filter.rejects_raw if cfg.filter.actions else None

    # -- state ---------------------------------------------------------------------------------
    def save(self, force: bool = False) -> None:
        if not self.persist or not (self.dirty or force):
            return
        if self.reader is not None:
            self.reader.refresh_head()
            self.state.file = self.reader.file_id
        save_cursor(self.cfg.cursor, self.state)
        self.dirty = False
        self.last_save = time.monotonic()

    def advance(self, line: Line) -> None:
        self.state.offset = line.end
        self.s.offset = line.end
        self.dirty = True

    def sleep(self) -> None:
        if self.cfg.stop is not None:
            self.cfg.stop.wait(self.cfg.poll_interval)
        else:
            time.sleep(self.cfg.poll_interval)

    def stopping(self) -> bool:
        return self.cfg.stop is not None and self.cfg.stop.is_set()

    # -- opening and reconciling ---------------------------------------------------------------
    def initial_offset(self) -> None:
        cfg = self.cfg
        saved = None if cfg.start else load_cursor(cfg.cursor)
        self.dirty = saved is None  # a new cursor is written even if nothing is read
        if saved is not None:
            self.state = saved
            self.state.events = str(cfg.events)
        elif cfg.start == "end" and cfg.events.exists():
            self.state.offset = _aligned_end(cfg.events)
        elif cfg.start is None:
            cfg.warn(f"no cursor at {cfg.cursor}; reading {cfg.events} from the start (use --from-end to skip history)")

    def open_reader(self) -> bool:
        cfg = self.cfg
        try:
            reader = LogReader(cfg.events, 0)
        except FileNotFoundError:
            return False
        offset = self.state.offset
        if self.state.file is not None and not self.state.file.same_file(reader.file_id):
            old = find_by_identity(cfg.events.parent, self.state.file)
            reader.close()
            if old is not None and old.stat().st_size >= offset:
                cfg.warn(f"{cfg.events} was rotated since the cursor was written; finishing {old.name} first, then the new file")
                self.reader = LogReader(old, offset)
                self.s.offset = offset
                return True
            cfg.warn(f"{cfg.events} was replaced or rotated since the cursor was written; reading the new file from the start")
            offset = 0
            self.state.file = None
            reader = LogReader(cfg.events, 0)
        elif reader.size() < offset:
            cfg.warn(f"{cfg.events} is shorter ({reader.size()} bytes) than the cursor offset ({offset}); it was truncated, reading from the start")
            offset = 0
        reader.close()
        self.reader = LogReader(cfg.events, offset)
        self.state.offset = offset
        self.s.offset = offset
        self.state.file = self.reader.file_id
        return True

    def switch_file(self, why: str) -> None:
        assert self.reader is not None
        self.reader.close()
        self.reader = None
        self.cfg.warn(f"{self.cfg.events} was {why}; reading it from the start")
        self.state.file = None
        self.state.offset = 0
        self.dirty = True

    # -- handling ------------------------------------------------------------------------------
    def message_for(self, ev: dict[str, Any], line: Line) -> tuple[Message | None, Callable[[], None] | None]:
        action = ev.get("action")
        key = event_key(ev, line.offset)
        if action == "densegen_health":
            status = health_status(ev) or "running"
            _, _, pct = progress(ev)
            actor = ev.get("actor")
            dataset = ev.get("dataset")
            run_id = actor.get("run_id") if isinstance(actor, dict) else None
            run_key = f"{run_id}|{dataset.get('id') if isinstance(dataset, dict) else ''}"
            decision = self.cfg.throttle.decide(self.state.throttle, run_key, status, pct, _epoch(ev.get("ts")))
            if not decision.send:
                return None, None
            return health_message(ev, key), lambda: throttle.commit(self.state.throttle, decision)
        if action == "densegen_flush_failed":
            return flush_failed_message(ev, key), None
        if action in ("job_started", "job_finished", "job_lost"):
            outcome = rollup.evaluate(self.state.rollup, ev)

            def commit() -> None:
                rollup.commit(self.state.rollup, outcome)

            if outcome.kind == "alert":
                return job_message(ev, key, rollup.job_state(ev) or "failed"), commit
            if outcome.kind == "rollup":
                return rollup_message(ev, outcome.summary or {}), commit
            if outcome.kind == "pending":
                return None, commit
            return None, None
        return generic_message(ev, key), None

    def handle(self, line: Line) -> None:
        cfg = self.cfg
        self.s.lines += 1
        if line.filtered:
            self.s.filtered += 1
            self.advance(line)
            return
        if line.event is None:
            self.s.malformed += 1
            if self.malformed_warned < 20 or self.s.malformed % 1000 == 0:
                cfg.warn(f"skipping line in {cfg.events}: {scrub_urls(line.error or 'malformed')}")
                self.malformed_warned += 1
            self.advance(line)
            return
        ev = line.event
        if not cfg.filter.matches(ev):
            self.s.filtered += 1
            self.advance(line)
            return
        msg, commit = self.message_for(ev, line)
        if msg is None:
            if commit is not None:
                commit()
            else:
                self.s.suppressed += 1
            self.advance(line)
            return
        payload = format_message(cfg.provider, msg, cfg.payload_shape)
        if cfg.dry_run:
            cfg.emit(_encode({"key": msg.key, "provider": cfg.provider, "status": msg.status,
                              "offset": line.offset, "payload": payload}))
            self.s.printed += 1
        elif not self.hand_off(msg, payload, line):
            return  # stopped before sending: the cursor stays before this event
        if commit is not None:
            commit()
        self.advance(line)
        if not cfg.dry_run:
            self.save()
        if cfg.stop_on_terminal and msg.terminal:
            self.s.stopped = "terminal"
            self.done = True

    def hand_off(self, msg: Message, payload: dict[str, Any], line: Line) -> bool:
        """Deliver, spool or dead-letter one message; False when a stop came before anything was posted."""
        cfg = self.cfg
        assert cfg.sender is not None
        breaker_open = time.monotonic() - self.last_fail < BREAKER_SECONDS
        result = cfg.sender.deliver(payload, msg.key, max_attempts=1 if breaker_open else None)
        if result.ok:
            self.s.delivered += 1
            self.last_fail = -1e9
            return True
        if result.attempts == 0 and self.stopping():
            self.s.stopped = "stopped"
            self.done = True
            return False
        if not result.permanent:
            self.last_fail = time.monotonic()
        where = f"event {msg.short_id} (byte {line.offset})"
        if cfg.spool is None:
            self.save()
            raise DeliveryError(f"delivery of {where} failed after {result.attempts} attempt(s): {result.reason}; no spool is configured",
                                hint="the cursor stays before this event so the next run retries it; configure --spool-dir to keep going")
        if result.permanent:
            cfg.spool.put(msg.key, cfg.provider, payload, reason=result.reason, attempts=result.attempts, dead=True,
                          events=str(cfg.events), offset=line.offset)
            self.s.dead_lettered += 1
            cfg.warn(f"{where} rejected ({result.reason}); moved to {cfg.spool.dead}")
        else:
            cfg.spool.put(msg.key, cfg.provider, payload, reason=result.reason, attempts=result.attempts,
                          events=str(cfg.events), offset=line.offset)
            self.s.spooled += 1
            cfg.warn(f"{where} not delivered ({result.reason}); spooled for `uv run notify spool drain`")
        return True

    # -- loop ----------------------------------------------------------------------------------
    def run(self) -> WatchSummary:
        cfg = self.cfg
        self.initial_offset()
        self.s.offset = self.state.offset
        if cfg.on_ready is not None:
            cfg.on_ready(f"watching {cfg.events} from byte {self.state.offset} (cursor {cfg.cursor})")
        last_activity = time.monotonic()
        last_status = time.monotonic()
        try:
            while not self.done:
                if self.reader is None and not self.open_reader():
                    if not cfg.follow:
                        cfg.warn(f"events file {cfg.events} does not exist yet")
                        self.s.stopped = "missing"
                        break
                else:
                    assert self.reader is not None
                    try:
                        batch = self.reader.read_batch(reject=self.reject)
                    except OSError as exc:  # e.g. a stale NFS file handle: reopen by path and re-check identity
                        self.reader.close()
                        self.reader = None
                        if not cfg.follow:
                            raise InputError(f"reading {cfg.events} failed: {exc.strerror or exc}",
                                             hint="run again; the cursor is saved") from None
                        cfg.warn(f"reading {cfg.events} failed ({exc.strerror or exc}); reopening")
                        batch = []
                        self.sleep()
                        continue
                    if batch:
                        for line in batch:
                            self.handle(line)
                            if self.done or self.stopping():
                                break
                        last_activity = time.monotonic()
                        if self.dirty and time.monotonic() - self.last_save >= cfg.save_interval:
                            self.save()
                        if self.stopping():
                            self.s.stopped = "stopped"
                            break
                        continue
                    if self.reader.path != cfg.events:  # finished a file rotated away while we were down
                        self.switch_file("rotated")
                        continue
                    self.save()
                    if not cfg.follow:
                        self.s.stopped = "eof"
                        break
                    st = self.reader.status()
                    if st == "stale":
                        cfg.warn(f"lost the handle on {cfg.events}; reopening")
                        self.reader.close()
                        self.reader = None
                        self.sleep()
                        continue
                    if st in ("rotated", "truncated"):
                        if st == "rotated":
                            try:
                                late = self.reader.read_batch(reject=self.reject)
                            except OSError:
                                late = []
                            if late:  # lines written to the old file just before it was moved
                                for line in late:
                                    self.handle(line)
                                continue
                        self.switch_file("rotated (a new file is at its path)" if st == "rotated" else "truncated or rewritten")
                        self.save(force=True)
                        continue
                if self.stopping():
                    self.s.stopped = "stopped"
                    break
                now = time.monotonic()
                if cfg.idle_timeout is not None and now - last_activity >= cfg.idle_timeout:
                    self.s.stopped = "idle"
                    break
                if cfg.status_every and now - last_status >= cfg.status_every:
                    last_status = now
                    cfg.warn(f"watching {cfg.events}: offset {self.s.offset}, delivered {self.s.delivered}, "
                             f"spooled {self.s.spooled}, dead {self.s.dead_lettered}")
                self.sleep()
        finally:
            try:
                self.save()
            finally:
                if self.reader is not None:
                    self.reader.close()
        return self.s


def run_watch(cfg: WatchConfig) -> WatchSummary:
    """Run one watch (until EOF, idle timeout, terminal status or `cfg.stop`) and return its counters.

    A live watcher holds `<cursor>.lock` so two watchers never share a cursor. Raises DeliveryError
    when a message can be neither delivered nor spooled (the cursor stays before that event).
    """
    if cfg.dry_run and not cfg.advance_on_dry_run:
        return _Watcher(cfg).run()
    lock = FileLock(cfg.cursor.with_name(cfg.cursor.name + ".lock"), timeout=0, what="watcher cursor lock")
    with lock:
        return _Watcher(cfg).run()
