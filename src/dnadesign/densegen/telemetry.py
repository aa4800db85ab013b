"""DenseGen diagnostics (`outputs/meta/events.jsonl`) and USR health events.

Two streams with different readers:
- `outputs/meta/events.jsonl`: one JSON object per line for DenseGen's own diagnostics (library
  built, solve outcome, rejection, acceptance, checkpoint, session start/end). For `dense inspect
  run`, plots and benchmarks; notify never reads it.
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

from ..core.timeutil import utc_now_iso


class Diagnostics:
    """Append-only JSONL writer; lines are flushed to the OS at once, fsync'd at checkpoints."""

    def __init__(self, path: Path, run_id: str, session: int):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.run_id = run_id
        self.session = session
        self._fh = open(self.path, "a", encoding="utf-8")
        # A previous writer killed mid-line leaves a fragment; start on a fresh line.
        if self._fh.tell() > 0:
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    self._fh.write("\n")

    def emit(self, event: str, **fields: Any) -> None:
        line = {"event": event, "ts": utc_now_iso(), "run_id": self.run_id, "session": self.session, **fields}
        self._fh.write(json.dumps(line, default=str, separators=(",", ":")) + "\n")
        self._fh.flush()

    def sync(self) -> None:
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        try:
            self.sync()
            self._fh.close()
        except (OSError, ValueError):
            pass


def read_diagnostics(path: Path) -> list[dict[str, Any]]:
    """All well-formed lines of an events.jsonl (a torn line is skipped)."""
    out = []
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


class Health:
    """`densegen_health` / `densegen_flush_failed` events on the USR dataset (rate-limited `running`)."""

    def __init__(self, sink, interval_s: float):
        self.sink = sink  # UsrSink or None (no USR target: health goes nowhere but events.jsonl)
        self.interval_s = float(interval_s)
        self._last = 0.0

    def emit(self, status: str, metrics: dict[str, Any], **args: Any) -> None:
        if self.sink is None:
            return
        self._last = time.monotonic()
        try:
            self.sink.log("densegen_health", args={"status": status, **args}, metrics=metrics)
        except Exception:  # telemetry must never take down a run
            pass

    def maybe_running(self, metrics: dict[str, Any]) -> bool:
        if self.sink is None or time.monotonic() - self._last < self.interval_s:
            return False
        self.emit("running", metrics)
        return True

    def flush_failed(self, error: str, metrics: dict[str, Any]) -> None:
        if self.sink is None:
            return
        try:
            self.sink.log("densegen_flush_failed", args={"error": error[:500]}, metrics=metrics)
        except Exception:
            pass


def now_iso() -> str:
    return utc_now_iso()
