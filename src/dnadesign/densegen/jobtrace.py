"""Every scheduler task of `dense run` leaves a trace: `job_started` and `job_finished` on its dataset.

Inside a Slurm or SGE job (outside one this does nothing) the run's USR `.events.log` receives
`job_started` when the session is set up and `job_finished` (state, exit code, signal and
`args.reason`) when it ends. A task that cannot start - the workspace is locked, the config is
invalid, every quota is already met, or it was cancelled during start-up - writes both at once,
so notify alerts and an array roll-up still counts the task. Writing a trace never fails a run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.errors import DnadesignError
from ..core.events import Actor
from ..core.ids import validate_dataset_id
from ..core.jobs import job_finished, job_started
from ..core.scheduler import detect_scheduler
from ..usr.layout import DatasetPaths, resolve_root
from ..usr.store import Dataset
from .config import LoadedConfig, default_config_path, read_yaml

TRACE_ERRORS = (OSError, ValueError, DnadesignError)


class JobTrace:
    """`job_started` / `job_finished` of this process on one dataset (each written at most once)."""

    def __init__(self, root: Path, dataset_id: str, actor: Actor, *, create: bool):
        self.root = Path(root)
        self.dataset_id = dataset_id
        self.actor = actor
        self.create = create  # create the dataset when it does not exist yet (the config is known to be valid)
        self.started = False
        self.finished = False

    @classmethod
    def for_config(cls, cfg: LoadedConfig, actor: Actor) -> JobTrace | None:
        """The trace of a run of `cfg` (None when the config has no USR output)."""
        target = cfg.usr_target()
        if target is None:
            return None
        return cls(target[0], target[1], actor, create=True)

    def _log(self) -> Path | None:
        if detect_scheduler().scheduler == "none":
            return None
        paths = DatasetPaths(resolve_root(self.root), self.dataset_id)
        if not paths.manifest.exists():
            if not self.create:
                return None
            Dataset.create(self.root, self.dataset_id, exist_ok=True, actor=self.actor, source="densegen",
                           notes=f"written by dense run {self.actor.run_id}")
        return paths.events_log

    def start(self, args: Mapping[str, Any] | None = None) -> None:
        """Write `job_started` once (inside a scheduler job only)."""
        if self.started:
            return
        self.started = True
        try:
            log = self._log()
            if log is not None:
                job_started(log, self.dataset_id, self.actor, args=args)
        except TRACE_ERRORS:
            return

    def finish(self, exit_code: int, *, signal: int | None = None, reason: str | None = None,
               metrics: Mapping[str, Any] | None = None) -> None:
        """Write `job_finished` once (and `job_started` first if it was not written yet)."""
        if self.finished:
            return
        self.start()
        self.finished = True
        try:
            log = self._log()
            if log is not None:
                job_finished(log, self.dataset_id, self.actor, exit_code=exit_code, signal=signal,
                             reason=(reason or "")[:500] or None, metrics=metrics)
        except TRACE_ERRORS:
            return


def _raw_target(config: Path | None) -> tuple[Path, str] | None:
    """(USR root, dataset id) read leniently from a config that failed validation, when it names them."""
    path = Path(config).expanduser() if config is not None else default_config_path()
    try:
        raw, _ = read_yaml(path.resolve())
    except DnadesignError:
        return None
    if not isinstance(raw, dict):
        return None

    def section(d: Any, key: str) -> dict:
        v = d.get(key) if isinstance(d, dict) else None
        return v if isinstance(v, dict) else {}

    out, run = section(raw, "output"), section(raw, "run")
    usr = section(out, "usr")
    targets = out.get("targets", ["parquet"])
    if not isinstance(targets, list) or "usr" not in targets:
        return None
    run_root = path.resolve().parent / str(run.get("root") or ".")
    dataset = usr.get("dataset") or (f"densegen/{run.get('id')}" if run.get("id") else None)
    if not isinstance(dataset, str):
        return None
    try:
        validate_dataset_id(dataset)
    except DnadesignError:
        return None
    root = usr.get("root")
    base = (path.resolve().parent / str(root)).resolve() if root else (run_root / "outputs" / "usr_datasets").resolve()
    return base, dataset


def trace_failed_start(config: Path | None, cfg: LoadedConfig | None, error: BaseException, exit_code: int, *,
                       signal: int | None = None, actor: Actor | None = None) -> None:
    """`job_started` + `job_finished` for a task that stopped before its run began (scheduler jobs only).

    With a valid config the dataset is created if needed; with an invalid one the events are
    written only when the dataset the config names already exists.
    """
    if detect_scheduler().scheduler == "none":
        return
    run_id = cfg.run_id if cfg is not None else None
    actor = actor or Actor.current("densegen", run_id=run_id, correlation_id=detect_scheduler().run_key)
    if cfg is not None:
        trace = JobTrace.for_config(cfg, actor)
    else:
        target = _raw_target(config)
        trace = JobTrace(target[0], target[1], actor, create=False) if target else None
    if trace is None:
        return
    reason = error.render() if isinstance(error, DnadesignError) else str(error)
    trace.finish(exit_code, signal=signal, reason=reason)


__all__ = ["JobTrace", "trace_failed_start"]
