"""Setting up one session of `dense run`: the workspace lock, validation, the outputs and the quotas.

1. Lock the workspace: one single-session run holds `outputs/meta/run.lock` exclusively; array
   tasks hold it shared (so a single run cannot write beside them) and each holds its own
   `outputs/meta/tasks/<label>/run.lock`.
2. Validate the inputs against the config (preflight) before touching any output.
3. Open the outputs (creating them), repair a crash between the two sinks, and count what every
   writer has committed for this run (the resume source of truth).
4. Work out the effective quotas (config, raised to those of earlier sessions, plus
   `--extend-quota`), the session number, the seed stream, the state and the diagnostics.

A stop requested during these steps raises `StopRequested` at the next checkpoint, before
anything is written.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import ConflictError, InputError, LockTimeoutError, UsageError
from ..core.events import Actor
from ..core.locks import FileLock
from ..core.scheduler import detect_scheduler
from ..core.timeutil import utc_now_iso
from .config import LoadedConfig
from .jobtrace import JobTrace
from .library import Pool, build_pools, preflight
from .outputs import RunOutputs
from .plans import PlanSpec, extend_quotas, resolve_plans
from .plots import check_plot_names
from .settings import RunOptions, RunSettings, SeedStream
from .signals import StopFlag
from .state import MetaDir, PlanState, RunState
from .tables import wipe_tables
from .telemetry import Diagnostics, Health

QUOTA_KEYS = ("quota", "sequences")
# Settings that may change between sessions without a warning (they do not change what is designed).
DRIFT_IGNORED = ("logging", "plots", "runtime", "solver.time_limit", "solver.workers")


# -- config drift ------------------------------------------------------------------------------

def strip_quotas(obj: Any) -> Any:
    """The config without plan quotas (quota-only edits are always fine on resume)."""
    if isinstance(obj, dict):
        return {k: strip_quotas(v) for k, v in obj.items() if k not in QUOTA_KEYS}
    if isinstance(obj, list):
        return [strip_quotas(v) for v in obj]
    return obj


_MISSING = object()


def changed_keys(old: Any, new: Any, prefix: str = "", depth: int = 3) -> list[str]:
    """Dotted keys whose values differ between two config dumps (compared `depth` levels deep).

    A key only one side has is a change unless its value there is None (an optional setting left
    unset); `config_drift` first fills the old dump's missing keys with their defaults.
    """
    if isinstance(old, dict) and isinstance(new, dict) and depth > 0:
        out = []
        for k in sorted(set(old) | set(new)):
            a, b = old.get(k, _MISSING), new.get(k, _MISSING)
            if (a is _MISSING and b is None) or (b is _MISSING and a is None):
                continue
            out += changed_keys(None if a is _MISSING else a, None if b is _MISSING else b, f"{prefix}{k}.", depth - 1)
        return out
    return [] if old == new else [prefix.rstrip(".") or "<root>"]


def with_defaults(saved: dict, cfg: LoadedConfig) -> dict:
    """An earlier session's saved config as the current schema reads it: keys added to the schema
    since then take their defaults (so a default nobody set is not drift). Returned as saved when
    the current schema no longer reads it (a key renamed or removed: that is drift)."""
    try:
        return type(cfg.model).model_validate(saved).model_dump(mode="json")
    except (ValueError, TypeError):  # pydantic's ValidationError is a ValueError
        return saved


def config_drift(previous: dict | None, cfg: LoadedConfig) -> list[str]:
    """Keys that changed since the last session (quotas and run-time settings left out).

    Raises ConflictError when `generation.sequence_length` changed: rows of two lengths cannot mix.
    """
    if not previous or "config" not in previous:
        return []
    old = with_defaults(previous["config"], cfg)
    diff = changed_keys(strip_quotas(old), strip_quotas(cfg.model.model_dump(mode="json")))
    diff = [d for d in diff if not d.startswith(DRIFT_IGNORED)]
    if any(d.startswith("generation.sequence_length") for d in diff):
        raise ConflictError(
            f"generation.sequence_length changed since the outputs in {cfg.outputs_dir} were written",
            hint="restore the old length, or start over with `dense run --fresh` (or a new workspace)",
        )
    return diff


def effective_plans(plans: list[PlanSpec], previous_quotas: dict[str, int], extend: int,
                    committed: dict[str, int]) -> list[PlanSpec]:
    """Config quotas raised to the quotas of earlier sessions, then `extend` more spread over the plans."""
    plans = [p.with_quota(max(p.quota, int(previous_quotas.get(p.name, 0)))) for p in plans]
    return extend_quotas(plans, extend, generated=committed)


# -- the workspace lock ---------------------------------------------------------------------------

@dataclass
class WorkspaceLock:
    """The locks a session holds and the state directory they give it."""

    meta: MetaDir  # the run's outputs/meta
    own: MetaDir  # this session's state directory: meta itself, or tasks/<label> in array mode
    label: str | None = None
    locks: list[FileLock] = field(default_factory=list)

    @classmethod
    def acquire(cls, meta: MetaDir, settings: RunSettings) -> WorkspaceLock:
        """Lock the workspace for a single session (exclusive) or an array task (shared + its own)."""
        meta.path.mkdir(parents=True, exist_ok=True)
        shard = settings.shard
        hint = ("one `dense run` may write a workspace at a time, or any number of array tasks together "
                "(`--shard K/N` or a scheduler array); wait for it to finish or stop it")
        run_lock = FileLock(meta.lock_path, timeout=0, what="workspace run lock", shared=shard is not None)
        try:
            run_lock.acquire()
        except LockTimeoutError as exc:
            if shard is not None:
                exc.message = f"{exc.message} (a single `dense run` is writing this workspace)"
            exc.hint = hint
            raise
        if shard is None:
            return cls(meta, meta, None, [run_lock])
        # Two processes may claim the same task id (an array submitted twice): the second gets its own slot.
        info = detect_scheduler()
        candidates = [shard.label, f"{shard.label}-{info.raw_job_id or os.getpid()}", f"{shard.label}-p{os.getpid()}"]
        for label in candidates:
            own = meta.task(label)
            task_lock = FileLock(own.lock_path, timeout=0, what="array task lock")
            try:
                task_lock.acquire()
            except LockTimeoutError:
                continue
            return cls(meta, own, label, [run_lock, task_lock])
        run_lock.release()
        raise LockTimeoutError(f"every state slot of array task {shard.task} in {meta.tasks_dir} is in use",
                               hint="another process runs as the same task; give this one another --shard")

    def release(self) -> None:
        for lock in reversed(self.locks):
            lock.release()
        self.locks.clear()


# -- the session ----------------------------------------------------------------------------------

@dataclass
class Session:
    """Everything a session's loop and finalisation need, set up by `open_session`."""

    cfg: LoadedConfig
    settings: RunSettings
    options: RunOptions
    stop: StopFlag
    actor: Actor
    lock: WorkspaceLock
    outputs: RunOutputs
    plans: list[PlanSpec]
    pools: dict[str, Pool]
    state: RunState
    seeds: SeedStream
    diag: Diagnostics
    health: Health
    trace: JobTrace | None
    prev_manifest: dict
    resuming: bool
    t0: float

    @property
    def meta(self) -> MetaDir:
        return self.lock.own

    def note(self, level: str, message: str) -> None:
        """A message for the user (the CLI filters by `logging.level`)."""
        if self.options.on_note:
            self.options.on_note(level, message)


def _check_flags(options: RunOptions, settings: RunSettings) -> None:
    if options.fresh and options.resume:
        raise UsageError("--fresh and --resume cannot be used together", hint="pick one")
    if settings.shard is not None and options.fresh:
        raise UsageError(f"--fresh cannot be used by an array task ({settings.shard.describe()}): each task would "
                         "discard the others' work", hint="start over once with a plain `dense run --fresh`, then submit the array")
    if settings.shard is not None and settings.extend_quota:
        raise UsageError(f"--extend-quota cannot be used by an array task ({settings.shard.describe()}): every task "
                         "would add N again", hint="raise the plans' `sequences` in the config instead (quota-only edits "
                         "are fine on resume), or extend once with a plain `dense run --extend-quota N`")


def _has_outputs(lock: WorkspaceLock, outputs: RunOutputs) -> bool:
    for m in (lock.meta, lock.own):
        if m.state_path.exists() or m.manifest_path.exists():
            return True
    return outputs.has_rows()


def _note(options: RunOptions, level: str, message: str) -> None:
    if options.on_note:
        options.on_note(level, message)


def open_session(cfg: LoadedConfig, settings: RunSettings, options: RunOptions, stop: StopFlag, actor: Actor,
                 lock: WorkspaceLock, trace: JobTrace | None) -> Session:
    """Validate, open the outputs, align them and count what is committed; see the module docstring."""
    t0 = time.monotonic()
    _check_flags(options, settings)
    meta = lock.meta
    look = RunOutputs(cfg, actor, create=False)  # look before creating anything
    if not look.sinks:
        raise InputError("the config has no output target", hint="set output.targets to include usr and/or parquet")
    has_outputs = _has_outputs(lock, look)
    if options.resume and not has_outputs:
        raise InputError(f"there is no run to resume in {cfg.outputs_dir}", hint="run `dense run` without --resume to start one")
    # Validate before touching any output (ConfigError on inputs or settings that cannot work).
    stop.check()
    plot_warnings = check_plot_names(cfg)  # an unknown plot name fails here, before any solve
    plans = resolve_plans(cfg)
    pools = build_pools(cfg, seed=settings.seed, checkpoint=stop.check)
    for w in [*preflight(cfg, plans=plans, pools=pools, checkpoint=stop.check), *plot_warnings]:
        _note(options, "WARNING", f"warning: {w}")
    resuming = has_outputs and not options.fresh
    previous = meta.load_effective() if resuming else None
    drift = config_drift(previous, cfg)
    stop.check()
    if options.fresh and has_outputs:
        look.wipe(cfg.outputs_dir)
        for name in ("run_state.json", "run_manifest.json", "effective_config.json", "events.jsonl"):
            (meta.path / name).unlink(missing_ok=True)
        for task in meta.task_dirs():
            for name in ("run_state.json", "run_manifest.json", "events.jsonl"):
                (task.path / name).unlink(missing_ok=True)
        shutil.rmtree(Path(cfg.outputs_dir) / "plots", ignore_errors=True)
        wipe_tables(Path(cfg.outputs_dir))

    outputs = look
    outputs.create()
    outputs.clean()
    moved = outputs.align()
    with outputs.lock():
        committed = outputs.plan_counts()
    plans = effective_plans(plans, (previous or {}).get("quotas", {}), settings.extend_quota, committed)

    own = lock.own
    prev_state = own.load_state()
    prev_manifest = own.load_manifest() or {}
    session = int(max(len(prev_manifest.get("sessions", [])), prev_state.session if prev_state else 0)) + 1
    shard = settings.shard
    state = RunState(run_id=cfg.run_id, config_path=str(cfg.path), config_sha256=cfg.sha256, session=session,
                     workers=settings.workers, host=socket.gethostname(), pid=os.getpid(),
                     task=({**shard.as_dict(), "label": lock.label} if shard else None),
                     committed_before=prev_state.committed_total if prev_state else 0)
    for p in plans:
        state.plans[p.name] = PlanState(p.name, p.quota, generated=committed.get(p.name, 0))
    quotas = {p.name: p.quota for p in plans}
    meta.save_effective({
        "run_id": cfg.run_id, "config_path": str(cfg.path), "config_sha256": cfg.sha256, "session": session,
        "saved_at": utc_now_iso(), "quotas": quotas, "workers": settings.workers, "seed": settings.seed,
        "extend_quota": settings.extend_quota, "config": cfg.model.model_dump(mode="json"),
        "plans": [p.describe() for p in plans], **({"task": lock.label} if shard else {}),
    })
    own.save_state(state)
    diag = Diagnostics(own.events_path, cfg.run_id, session, task=lock.label)
    health = Health(outputs.usr, settings.health_interval_s)
    sched = detect_scheduler()
    diag.emit("session_started", resumed=resuming, fresh=bool(options.fresh), workers=settings.workers,
              checkpoint_every=settings.checkpoint_every, round_robin=settings.round_robin, quotas=quotas,
              committed=committed, extend_quota=settings.extend_quota, scheduler=sched.scheduler, job_id=sched.job_id,
              task_id=sched.task_id, shard=(shard.as_dict() if shard else None), config_changed=drift, aligned=moved,
              startup_s=round(time.monotonic() - t0, 3))
    plan_text = ", ".join(f"{p.name} {p.generated}/{p.quota}" for p in state.plans.values())
    verb = "resuming" if resuming else "starting"
    where = f" as {shard.describe()}" if shard else ""
    _note(options, "INFO", f"dense: {verb} run {cfg.run_id} session {session}{where} with {settings.workers} CP-SAT "
                           f"worker(s): {plan_text}")
    if drift:
        _note(options, "WARNING", f"warning: config changed since the last session ({', '.join(drift[:6])}); "
                                  "resuming with the new settings")
    if trace is not None:
        trace.start(args={"run_id": cfg.run_id, **({"task": lock.label} if shard else {})})
    health.emit("resumed" if resuming else "started", state.metrics(), run_id=cfg.run_id, workers=settings.workers,
                extend_quota=settings.extend_quota, **({"task": lock.label} if shard else {}))
    seeds = SeedStream(settings.seed, session, lock.label)
    return Session(cfg=cfg, settings=settings, options=options, stop=stop, actor=actor, lock=lock, outputs=outputs,
                  plans=plans, pools=pools, state=state, seeds=seeds, diag=diag, health=health, trace=trace,
                  prev_manifest=prev_manifest, resuming=resuming, t0=t0)


__all__ = ["Session", "WorkspaceLock", "changed_keys", "config_drift", "effective_plans",
           "open_session", "strip_quotas"]
