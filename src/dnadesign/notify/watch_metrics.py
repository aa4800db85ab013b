"""`notify usr-events watch --metrics-dir DIR`: Prometheus textfile metrics of a watcher.

Fed from the watcher's own counters (`WatchSummary`, shared through `WatchConfig.summary`), the
event log's size (for the lag behind it) and the spool directory (pending and dead-lettered
payloads). One file per watched log: `notify_<dataset>.prom`. Labels are `events` (the dataset
id, or the log's file name) and, on the delivery counter, `outcome`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import TracebackType

from ..core.metrics import MetricSet, PeriodicTextfile, check_metrics_dir, textfile_name
from .watch import WatchConfig, WatchSummary

DEFAULT_INTERVAL_S = 15.0


def events_label(events: Path) -> str:
    """`namespace/name` for a USR `<root>/<ns>/<name>/.events.log`, else the file's name."""
    events = Path(events)
    if events.name == ".events.log" and events.parent.parent.name:
        return f"{events.parent.parent.name}/{events.parent.name}"
    return events.name


def _count(directory: Path, dead: bool) -> int | None:
    base = directory / "dead" if dead else directory
    try:
        with os.scandir(base) as it:
            return sum(1 for e in it if e.is_file() and e.name.endswith(".json"))
    except OSError:
        return None


class WatchMetrics:
    """Context manager around one watch; does nothing when `directory` is None."""

    def __init__(self, directory: Path | None, cfg: WatchConfig, *, interval_s: float | None = None):
        self.cfg = cfg
        self.label = events_label(cfg.events)
        self.started = time.time()
        self.running = True
        self.writer: PeriodicTextfile | None = None
        if directory is None:
            return
        check_metrics_dir(directory)
        if cfg.summary is None:
            cfg.summary = WatchSummary()
        interval = float(interval_s or os.environ.get("DNADESIGN_METRICS_INTERVAL_S") or DEFAULT_INTERVAL_S)
        self.writer = PeriodicTextfile(Path(directory) / textfile_name("notify", self.label), self.collect,
                                       interval_s=interval, warn=cfg.warn)

    @property
    def path(self) -> Path | None:
        return self.writer.path if self.writer else None

    def __enter__(self) -> WatchMetrics:
        if self.writer is not None:
            self.writer.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.running = False
        if self.writer is not None:
            self.writer.stop(final=True)

    def collect(self) -> MetricSet:
        """The watcher's current figures."""
        s = self.cfg.summary or WatchSummary()
        m = MetricSet({"events": self.label})
        m.gauge("notify_watch_up", "1 while the watcher runs, 0 once it has stopped.", 1 if self.running else 0)
        m.gauge("notify_watch_start_timestamp_seconds", "When the watcher started (Unix time).", self.started)
        m.counter("notify_lines_read_total", "Event-log lines read.", s.lines)
        for outcome, n in (("delivered", s.delivered), ("spooled", s.spooled), ("dead_lettered", s.dead_lettered),
                           ("printed", s.printed)):
            m.counter("notify_messages_total", "Messages by outcome (printed = dry run).", n, outcome=outcome)
        m.counter("notify_events_throttled_total", "Events folded into a later message (progress throttle, roll-ups).", s.suppressed)
        m.counter("notify_events_filtered_total", "Events outside the tool/action filters.", s.filtered)
        m.counter("notify_malformed_lines_total", "Lines that are not valid events.", s.malformed)
        m.gauge("notify_cursor_offset_bytes", "Byte offset the watcher has read up to.", s.offset)
        try:
            size = self.cfg.events.stat().st_size
        except OSError:
            size = None
        if size is not None:
            m.gauge("notify_events_log_bytes", "Size of the watched event log.", size)
            m.gauge("notify_lag_bytes", "Bytes of the log not read yet.", max(0, size - s.offset))
        if self.cfg.spool is not None:
            spool_dir = Path(self.cfg.spool.path)
            m.gauge("notify_spool_pending", "Payloads waiting in the spool for `notify spool drain`.", _count(spool_dir, dead=False))
            m.gauge("notify_spool_dead", "Payloads in the spool's dead-letter folder.", _count(spool_dir, dead=True))
        m.gauge("notify_metrics_written_timestamp_seconds", "When this file was written (Unix time).", time.time())
        return m
