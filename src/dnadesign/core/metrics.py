"""Prometheus textfile-collector metrics: build metric families, render the text format, write atomically.

node_exporter's textfile collector (`--collector.textfile.directory DIR`) reads every `*.prom`
file in a directory on each scrape. A tool writes one file there, for example
`dense_densegen__demo.prom`, replacing it whole (temp file + fsync + rename through
`core.atomic`), so a scrape never sees half a file; the temp file's name does not end in `.prom`.

Cardinality is kept low by rule: counters may not carry per-job labels (`job_id`, `task_id`,
`run_id`, `pid`, `host`); those belong on one info-style gauge (`..._info{...} 1`). No third-party
library is needed at run time; tests parse the output with `prometheus_client`'s parser.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import atomic_write_text
from .errors import InputError

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
PER_JOB_LABELS = frozenset({"job_id", "task_id", "run_id", "pid", "host"})
KINDS = ("gauge", "counter")


@dataclass
class Family:
    """One metric family: name, type, help text and its samples (label set -> value)."""

    name: str
    kind: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class MetricSet:
    """An ordered set of metric families with labels common to every sample (e.g. `dataset`)."""

    def __init__(self, common_labels: Mapping[str, str] | None = None):
        self.common = {k: str(v) for k, v in (common_labels or {}).items() if v not in (None, "")}
        for key in self.common:
            self._check_label(key)
        self.families: dict[str, Family] = {}

    @staticmethod
    def _check_label(name: str) -> None:
        if not LABEL_NAME.match(name) or name.startswith("__"):
            raise ValueError(f"invalid Prometheus label name {name!r}")

    def add(self, kind: str, name: str, help: str, value: float | None, labels: Mapping[str, object] | None = None) -> None:
        """Add one sample; `value=None` adds nothing (a figure not known yet is absent, not zero)."""
        if kind not in KINDS:
            raise ValueError(f"metric kind must be one of {KINDS}, not {kind!r}")
        if not METRIC_NAME.match(name):
            raise ValueError(f"invalid Prometheus metric name {name!r}")
        if kind == "counter" and not name.endswith("_total"):
            raise ValueError(f"counter {name!r} must end in _total")
        given = {k: str(v) for k, v in (labels or {}).items() if v is not None}
        for key in given:
            self._check_label(key)
        if kind == "counter" and PER_JOB_LABELS & (set(given) | set(self.common)):
            bad = sorted(PER_JOB_LABELS & (set(given) | set(self.common)))
            raise ValueError(f"counter {name!r} may not carry per-job labels {bad} (high cardinality); use an info gauge")
        fam = self.families.get(name)
        if fam is None:
            fam = self.families[name] = Family(name, kind, help)
        elif fam.kind != kind:
            raise ValueError(f"metric {name!r} is already a {fam.kind}")
        if value is None:
            return
        fam.samples.append(({**self.common, **given}, float(value)))

    def gauge(self, name: str, help: str, value: float | None, **labels: object) -> None:
        """Add a gauge sample."""
        self.add("gauge", name, help, value, labels)

    def counter(self, name: str, help: str, value: float | None, **labels: object) -> None:
        """Add a counter sample (the name ends in `_total`; no per-job labels)."""
        self.add("counter", name, help, value, labels)

    def render(self) -> str:
        """The Prometheus text exposition format (0.0.4) of every family that has samples."""
        lines: list[str] = []
        for fam in self.families.values():
            if not fam.samples:
                continue
            lines.append(f"# HELP {fam.name} {_escape_help(fam.help)}")
            lines.append(f"# TYPE {fam.name} {fam.kind}")
            for labels, value in fam.samples:
                body = ",".join(f'{k}="{_escape_label(v)}"' for k, v in sorted(labels.items()))
                lines.append(f"{fam.name}{{{body}}} {_number(value)}" if body else f"{fam.name} {_number(value)}")
        return "\n".join(lines) + "\n" if lines else ""


def textfile_name(tool: str, key: str) -> str:
    """`<tool>_<key>.prom` with every character outside `[A-Za-z0-9_.-]` replaced (`/` becomes `__`)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", key.replace("/", "__")).strip(".") or "default"
    return f"{tool}_{safe}.prom"


def write_textfile(path: str | Path, metrics: MetricSet) -> Path:
    """Atomically replace `path` (a `*.prom` file) with the rendered metrics."""
    path = Path(path)
    if path.suffix != ".prom":
        raise ValueError(f"{path}: textfile-collector files must end in .prom")
    atomic_write_text(path, metrics.render(), mode=0o644)
    return path


def check_metrics_dir(directory: str | Path) -> Path:
    """Create the metrics directory if needed and check it is writable (an InputError for `--metrics-dir` if not)."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".dnadesign-metrics-probe.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"--metrics-dir {directory} is not a writable directory ({exc.strerror or exc})",
                         hint="pass a directory you can write, e.g. node_exporter's textfile directory") from None
    return directory


class PeriodicTextfile:
    """Rewrite one textfile every `interval_s` seconds from `collect()`, in a daemon thread, and once more at stop.

    Metrics never take a job down: a failing collect or write is reported once through `warn`
    and retried at the next tick.
    """

    def __init__(self, path: str | Path, collect: Callable[[], MetricSet], *, interval_s: float = 15.0,
                 warn: Callable[[str], None] | None = None):
        self.path = Path(path)
        self.collect = collect
        self.interval_s = max(0.05, float(interval_s))
        self.warn = warn
        self.writes = 0
        self._warned = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def write_now(self) -> bool:
        """Collect and write once; True on success."""
        with self._lock:
            try:
                write_textfile(self.path, self.collect())
            except Exception as exc:  # noqa: BLE001 - metrics are optional: report once, keep the job running
                if not self._warned and self.warn is not None:
                    self.warn(f"metrics not written to {self.path}: {exc}")
                self._warned = True
                return False
            self.writes += 1
            return True

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.write_now()

    def start(self) -> PeriodicTextfile:
        """Write once now, then every interval in the background."""
        self.write_now()
        self._thread = threading.Thread(target=self._loop, name=f"metrics:{self.path.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, final: bool = True) -> None:
        """Stop the thread; with `final`, write the last figures."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, self.interval_s))
        if final:
            self.write_now()
