"""DenseGen diagnostics (`outputs/meta/events.jsonl`) and USR health events.

Two streams with different readers:
- `outputs/meta/events.jsonl` (in array mode, one per task under `outputs/meta/tasks/`): one JSON
  object per line for DenseGen's own diagnostics (library built, solve outcome, rejection,
  acceptance, checkpoint, session start/end). For `dense inspect run`, plots and benchmarks;
  notify never reads it.
- USR `<dataset>/.events.log`: `densegen_health` (`args.status` in started, resumed, running,
  completed, failed; progress in `metrics`: generated, quota, percent, plan) and
  `densegen_flush_failed`. This is what `notify` watches.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ..core.errors import DnadesignError
from ..core.timeutil import utc_now_iso

# What a telemetry write may fail with; it is reported nowhere else and never stops a run.
TELEMETRY_ERRORS = (OSError, ValueError, DnadesignError)


class Diagnostics:
    """Append-only JSONL writer; lines are flushed to the OS at once, fsync'd at checkpoints."""

    def __init__(self, path: Path, run_id: str, session: int, *, task: str | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.run_id = run_id
        self.session = session
        self.task = task
        self.last: dict[str, str] | None = None
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the session
        # A previous writer killed mid-line leaves a fragment; start on a fresh line.
        if self._fh.tell() > 0:
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    self._fh.write("\n")

    def emit(self, event: str, **fields: Any) -> None:
        """Write one diagnostics line (`event`, `ts`, `run_id`, `session`, [`task`], fields)."""
        ts = utc_now_iso()
        line = {"event": event, "ts": ts, "run_id": self.run_id, "session": self.session,
                **({"task": self.task} if self.task else {}), **fields}
        self._fh.write(json.dumps(line, default=str, separators=(",", ":")) + "\n")
        self._fh.flush()
        self.last = {"event": event, "ts": ts}

    def sync(self) -> None:
        """fsync what was written so far."""
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except (OSError, ValueError):
            return

    def close(self) -> None:
        try:
            self.sync()
            self._fh.close()
        except (OSError, ValueError):
            return


def read_diagnostics(path: Path) -> list[dict[str, Any]]:
    """All well-formed lines of an events.jsonl (a torn line is skipped)."""
    out: list[dict[str, Any]] = []
    if not Path(path).exists():
        return out
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
    return out


def last_diagnostic(path: Path, window: int = 64 * 1024) -> dict[str, Any] | None:
    """The last well-formed line of an events.jsonl, reading only its end."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - window))
            data = fh.read()
    except OSError:
        return None
    for raw in reversed(data.split(b"\n")):
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


class Health:
    """`densegen_health` / `densegen_flush_failed` events on the USR dataset (rate-limited `running`)."""

    def __init__(self, sink, interval_s: float):
        self.sink = sink  # UsrSink or None (no USR target: health goes nowhere but events.jsonl)
        self.interval_s = float(interval_s)
        self._last = 0.0

    def emit(self, status: str, metrics: dict[str, Any], **args: Any) -> None:
        """Append a `densegen_health` event; a failure to write it is ignored (telemetry never stops a run)."""
        if self.sink is None:
            return
        self._last = time.monotonic()
        try:
            self.sink.log("densegen_health", args={"status": status, **args}, metrics=metrics)
        except TELEMETRY_ERRORS:
            return

    def maybe_running(self, metrics: dict[str, Any]) -> bool:
        """A `running` health event when `interval_s` passed since the last one."""
        if self.sink is None or time.monotonic() - self._last < self.interval_s:
            return False
        self.emit("running", metrics)
        return True

    def flush_failed(self, error: str, metrics: dict[str, Any]) -> None:
        """`densegen_flush_failed` with the (shortened) error."""
        if self.sink is None:
            return
        try:
            self.sink.log("densegen_flush_failed", args={"error": error[:500]}, metrics=metrics)
        except TELEMETRY_ERRORS:
            return
