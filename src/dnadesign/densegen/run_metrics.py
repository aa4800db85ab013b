"""`dense run --metrics-dir DIR`: Prometheus textfile metrics of a run, rewritten every few seconds.

Fed from what the run already keeps: the run state the pipeline saves at every checkpoint
(`outputs/meta/run_state.json`, read only when this process wrote it) while the run goes, and the
final `RunResult` at the end. One file per dataset (plus the array task, for array jobs):
`dense_<dataset>.prom`, or `dense_<dataset>_task<N>.prom`. Counters carry only `dataset`,
`scheduler`, `task` (array tasks) and `plan` labels; the job id is on `dense_run_info` alone.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from ..core.console import warn
from ..core.metrics import MetricSet, PeriodicTextfile, check_metrics_dir, textfile_name
from ..core.scheduler import detect_scheduler
from .state import MetaDir, RunState

STATUSES = ("running", "completed", "interrupted", "incomplete", "failed")
DEFAULT_INTERVAL_S = 15.0


def _dataset_of(cfg: Any) -> str:
    target = cfg.usr_target()
    return target[1] if target else str(cfg.run_id)


class RunMetrics:
    """Context manager around one `dense run`; does nothing when `directory` is None.

        with RunMetrics(metrics_dir, cfg) as metrics:
            result = metrics.track(run(cfg, options))
    """

    def __init__(self, directory: Path | None, cfg: Any, *, interval_s: float | None = None):
        self.directory = directory
        self.cfg = cfg
        self.interval_s = float(interval_s or os.environ.get("DNADESIGN_METRICS_INTERVAL_S") or DEFAULT_INTERVAL_S)
        self.sched = detect_scheduler()
        self.dataset = _dataset_of(cfg)
        self.meta = MetaDir(Path(cfg.outputs_dir) / "meta")
        self.started = time.time()
        self.t0 = time.monotonic()
        self.result: Any = None
        self.failed = False
        self.writer: PeriodicTextfile | None = None
        if directory is not None:
            check_metrics_dir(directory)
            key = self.dataset + (f"_task{self.sched.task_id}" if self.sched.task_id else "")
            self.writer = PeriodicTextfile(Path(directory) / textfile_name("dense", key), self.collect,
                                           interval_s=self.interval_s, warn=warn)

    @property
    def path(self) -> Path | None:
        return self.writer.path if self.writer else None

    def __enter__(self) -> RunMetrics:
        if self.writer is not None:
            self.writer.start()
        return self

    def track(self, result: Any) -> Any:
        """Record the run's final result (returned unchanged)."""
        self.result = result
        return result

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is not None:
            self.failed = True
        if self.writer is not None:
            self.writer.stop(final=True)

    # -- the figures ------------------------------------------------------------------------------
    def _live_state(self) -> RunState | None:
        if self.result is not None:
            return self.result.state
        for meta in (self.meta, *self.meta.task_dirs()):  # an array task keeps its state under tasks/
            state = meta.load_state()
            if state is not None and state.pid == os.getpid():
                return state
        return None

    def collect(self) -> MetricSet:
        """The current figures of this run."""
        common: dict[str, str] = {"dataset": self.dataset, "scheduler": self.sched.scheduler}
        if self.sched.task_id:
            common["task"] = str(self.sched.task_id)
        m = MetricSet(common)
        state = self._live_state()
        status = self.result.status if self.result is not None else ("failed" if self.failed else "running")
        finished = self.result is not None or self.failed
        m.gauge("dense_run_info", "Identity of the latest run writing this file (value 1).", 1,
                run_id=str(getattr(self.cfg, "run_id", "")), job_id=self.sched.job_id or "", task_id=self.sched.task_id or "",
                host=socket.gethostname())
        m.gauge("dense_run_up", "1 while the run is going, 0 once it has ended.", 0 if finished else 1)
        for s in STATUSES:
            m.gauge("dense_run_status", "1 for the run's current status.", 1 if s == status else 0, status=s)
        m.gauge("dense_run_start_timestamp_seconds", "When the run started (Unix time).", self.started)
        m.gauge("dense_run_duration_seconds", "Seconds since the run started (final at the end).", round(time.monotonic() - self.t0, 3))
        if self.result is not None:
            m.gauge("dense_run_last_exit_code", "Exit code of the last finished run.", self.result.exit_code)
            if self.result.status == "completed":
                m.gauge("dense_run_last_success_timestamp_seconds", "When a run last completed (Unix time).", time.time())
        elif self.failed:
            m.gauge("dense_run_last_exit_code", "Exit code of the last finished run.", 1)
        if state is not None:
            m.gauge("dense_run_workers", "CP-SAT workers of this run.", state.workers)
            m.gauge("dense_run_session", "Session number of this run (1 = first, then one per resume).", state.session)
            for p in state.plans.values():
                m.gauge("dense_plan_sequences_committed", "Sequences committed for the plan (all sessions).", p.generated, plan=p.name)
                m.gauge("dense_plan_sequences_quota", "The plan's quota.", p.quota, plan=p.name)
                m.counter("dense_sequences_accepted_total", "Sequences accepted by this session.", p.accepted_session, plan=p.name)
                m.counter("dense_libraries_total", "Libraries sampled by this session.", p.libraries, plan=p.name)
                m.counter("dense_solves_total", "Solver calls of this session.", p.solves, plan=p.name)
                m.counter("dense_solve_seconds_total", "Seconds spent in the solver by this session.", round(p.solve_time_s, 3), plan=p.name)
                for reason, n in (("duplicate", p.duplicates), ("rejected", p.rejected)):
                    m.counter("dense_solutions_discarded_total", "Solutions not kept, by reason.", n, plan=p.name, reason=reason)
                for reason, n in (("infeasible", p.infeasible), ("no_solution", p.no_solution)):
                    m.counter("dense_libraries_failed_total", "Libraries that gave nothing, by reason.", n, plan=p.name, reason=reason)
        m.gauge("dense_metrics_written_timestamp_seconds", "When this file was written (Unix time).", time.time())
        return m


def metered(run: Callable[..., Any], directory: Path | None, cfg: Any) -> Callable[..., Any]:
    """`run` itself when `directory` is None; else `run` wrapped in `RunMetrics` (metrics while it goes and at the end)."""
    if directory is None:
        return run
    metrics = RunMetrics(directory, cfg)  # checks the directory now, before any work

    def run_with_metrics(*args: Any, **kwargs: Any) -> Any:
        with metrics:
            return metrics.track(run(*args, **kwargs))

    return run_with_metrics
