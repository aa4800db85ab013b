"""`dense run`: fill every plan's quota with verified, deduplicated designs, resumably.

One session of a run:
1. take the workspace run lock (one writer per workspace);
2. open the sinks and count what is *committed* there for this run id, per plan (the resume
   source of truth; `run_state.json` is only a description of the last checkpoint);
3. loop over plans (in order, or round-robin one library per plan per pass): sample a library,
   build the plan's problem, enumerate solutions with CP-SAT; each solution is deduplicated by
   id and checked by `solver.check_solution` before it is accepted;
4. every `checkpoint_every` accepted rows (or `checkpoint_interval_s`), commit the batch to every
   sink and rewrite the run state: a SIGKILL loses at most that batch, and a resume never writes
   duplicates because ids already committed are skipped;
5. on SIGTERM/SIGINT (or the run's time budget) flush, record the state, and stop.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import ConflictError, DnadesignError, InputError
from ..core.events import Actor
from ..core.ids import record_id
from ..core.locks import FileLock
from ..core.scheduler import allocated_cpus, detect_scheduler
from ..core.timeutil import utc_now, utc_now_iso
from .progress import RunProgress
from .signals import SignalGuard, StopFlag
from .sinks import Accepted, ParquetSink, UsrSink, build_table
from .sinks.records import PLAN_COL, RUN_COL
from .state import MetaDir, PlanState, RunState
from .telemetry import Diagnostics, Health


class QuotaUnreachableError(DnadesignError):
    """A plan stopped making progress: its quota cannot be met with these inputs and constraints."""


class RunIncompleteError(DnadesignError):
    """The run stopped (time budget) before every quota was met; a resume continues it."""


class FlushFailedError(DnadesignError):
    """A sink could not commit a batch; what was committed earlier stays valid."""


# -- config access (tolerant of the exact field names in DenseConfig) ------------------------------

def opt(model: Any, dotted: str, default: Any = None) -> Any:
    """`model.a.b.c` or `default` when any part is missing or None."""
    cur = model
    for part in dotted.split("."):
        if cur is None:
            return default
        cur = cur.get(part) if isinstance(cur, dict) else getattr(cur, part, None)
    return default if cur is None else cur


def first_opt(model: Any, names: list[str], default: Any = None) -> Any:
    for n in names:
        v = opt(model, n)
        if v is not None:
            return v
    return default


def derive_seed(base: int, label: str) -> int:
    """A stable 31-bit seed for `label` (so sampling and solving are reproducible per session)."""
    return int.from_bytes(hashlib.sha256(f"{base}:{label}".encode()).digest()[:4], "big") & 0x7FFFFFFF


@dataclass
class RunOptions:
    fresh: bool = False
    resume: bool | None = None  # None: resume when outputs exist
    extend_quota: int = 0
    workers: int | None = None
    progress: str | None = None
    max_seconds: float | None = None
    on_note: Callable[[str], None] | None = None
    # Given by a caller that already routes signals (the CLI does, before any library starts threads).
    stop: StopFlag | None = None
    # Libraries solved at once (threads); each gets workers // parallel_libraries CP-SAT workers.
    parallel_libraries: int = 1


@dataclass
class RunResult:
    state: RunState
    status: str  # completed | interrupted | incomplete | failed
    exit_code: int
    message: str
    sinks: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0


# -- sinks -------------------------------------------------------------------------------------------

def open_sinks(cfg, actor: Actor | None, *, create: bool = True) -> tuple[UsrSink | None, ParquetSink | None]:
    usr = None
    target = cfg.usr_target()
    if target is not None:
        root, dataset_id = target
        usr = UsrSink(root, dataset_id, actor or Actor.current("densegen", run_id=cfg.run_id), create=create)
    pq_path = cfg.parquet_target()
    parquet = None
    if pq_path is not None:
        dedupe = bool(first_opt(cfg.model, ["output.parquet.deduplicate"], True))
        parquet = ParquetSink(pq_path, deduplicate=dedupe)
    return usr, parquet


def committed_counts(frame) -> dict[str, int]:
    """Rows per plan in a committed frame (already filtered to the run)."""
    if frame.height == 0:
        return {}
    counts = frame.group_by(PLAN_COL).len()
    return {r[0]: int(r[1]) for r in counts.iter_rows()}


def run_frame(sink, run_id: str, columns: list[str] | None = None):
    import polars as pl

    frame = sink.frame(columns)
    if frame.height == 0 or RUN_COL not in frame.columns:
        return frame.head(0)
    return frame.filter(pl.col(RUN_COL) == run_id)


def align_sinks(usr: UsrSink | None, parquet: ParquetSink | None, run_id: str) -> dict[str, int]:
    """Copy rows of this run that one sink committed and the other did not (a crash between the two).

    Only ids are read from both sides; full rows are read for the (few) missing ids only.
    """
    if usr is None or parquet is None:
        return {}
    import polars as pl

    key = ["id", RUN_COL]
    u_ids = set(run_frame(usr, run_id, key)["id"].to_list())
    p_ids = set(run_frame(parquet, run_id, key)["id"].to_list())
    moved = {"to_parquet": 0, "to_usr": 0}
    if u_ids - p_ids:
        rows = usr.frame(ids=sorted(u_ids - p_ids)).filter(pl.col(RUN_COL) == run_id)
        moved["to_parquet"] = parquet.write(rows.to_arrow())
    if p_ids - u_ids:
        rows = parquet.frame(ids=sorted(p_ids - u_ids)).filter(pl.col(RUN_COL) == run_id)
        moved["to_usr"] = usr.write(rows.to_arrow(), event_args={"reason": "align with parquet sink"})
    return moved


# -- config fingerprint for resume -------------------------------------------------------------------

QUOTA_KEYS = ("quota", "sequences")


def strip_quotas(obj: Any) -> Any:
    """The config without plan quotas (quota-only edits are always fine on resume)."""
    if isinstance(obj, dict):
        return {k: strip_quotas(v) for k, v in obj.items() if k not in QUOTA_KEYS}
    if isinstance(obj, list):
        return [strip_quotas(v) for v in obj]
    return obj


def changed_keys(old: Any, new: Any, prefix: str = "", depth: int = 3) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict) and depth > 0:
        out = []
        for k in sorted(set(old) | set(new)):
            out += changed_keys(old.get(k), new.get(k), f"{prefix}{k}.", depth - 1)
        return out
    return [] if old == new else [prefix.rstrip(".") or "<root>"]


def model_dump(cfg) -> dict:
    m = cfg.model
    if hasattr(m, "model_dump"):
        return m.model_dump(mode="json")
    return dict(m)


# -- plans ---------------------------------------------------------------------------------------------

def plan_quota(plan) -> int:
    for name in ("quota", "sequences"):
        v = getattr(plan, name, None)
        if v is not None:
            return int(v)
    raise InputError(f"plan {getattr(plan, 'name', '?')} has no quota")


def with_quota(plan, quota: int):
    import dataclasses

    if dataclasses.is_dataclass(plan):
        return dataclasses.replace(plan, quota=quota)
    if hasattr(plan, "model_copy"):
        return plan.model_copy(update={"quota": quota})
    plan.quota = quota
    return plan


def spread_quota(quotas: dict[str, int], n: int, weights: dict[str, int] | None = None) -> dict[str, int]:
    """Add `n` across plans in proportion to `weights` (default the quotas), largest remainder first."""
    if n <= 0 or not quotas:
        return dict(quotas)
    w = {k: max(1, (weights or quotas).get(k, 1)) for k in quotas}
    total = sum(w.values())
    exact = {k: n * w[k] / total for k in quotas}
    add = {k: int(exact[k]) for k in quotas}
    left = n - sum(add.values())
    for k in sorted(quotas, key=lambda k: (-(exact[k] - add[k]), list(quotas).index(k)))[:left]:
        add[k] += 1
    return {k: quotas[k] + add[k] for k in quotas}


def extend_plan_quotas(plans: list, n: int, generated: dict[str, int] | None = None) -> list:
    """Use the plans module's `extend_quotas` when it exists; else spread by largest remainder."""
    if n <= 0:
        return plans
    try:
        from .plans import extend_quotas  # part A

        out = extend_quotas(plans, n, generated=generated or {})
        if isinstance(out, dict):
            return [with_quota(p, int(out[p.name])) for p in plans]
        if out is not None:
            return list(out)
    except ImportError:
        pass
    new = spread_quota({p.name: plan_quota(p) for p in plans}, n)
    return [with_quota(p, new[p.name]) for p in plans]


# -- solving off the main thread ------------------------------------------------------------------

@dataclass
class LibraryTask:
    """One sampled library being solved."""

    plan: Any
    sampler: Any
    index: int
    library: tuple
    lhash: str
    problem: Any
    t0: float
    accepted: int = 0
    cancel: Any = None


def solve_in_thread(make_iter: Callable[[], Any], stop: StopFlag, poll_s: float = 0.1):
    """Iterate `make_iter()` in a worker thread, one item per request (no solving ahead).

    The caller sees the items in order. When `stop` is set while a solve is in flight, iteration
    ends at once and the in-flight solve is left to finish in its daemon thread (the process is
    about to flush and exit), so a SIGTERM is answered in well under a second instead of after
    the solver's time limit. Exceptions from the iterator are re-raised in the caller.
    """
    import queue
    import threading

    results: queue.Queue = queue.Queue()
    wanted = threading.Semaphore(0)
    abandoned = threading.Event()

    def worker() -> None:
        try:
            it = iter(make_iter())
            while True:
                wanted.acquire()
                if abandoned.is_set():
                    return
                try:
                    item = next(it)
                except StopIteration:
                    results.put(("done", None))
                    return
                results.put(("item", item))
        except BaseException as exc:  # handed to the caller
            results.put(("error", exc))

    t = threading.Thread(target=worker, name="dense-solve", daemon=True)
    t.start()
    try:
        while True:
            wanted.release()
            while True:
                try:
                    kind, value = results.get(timeout=poll_s)
                    break
                except queue.Empty:
                    if stop.requested:
                        return
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        abandoned.set()
        wanted.release()  # wake an idle worker so it can exit


# -- the run -------------------------------------------------------------------------------------------

class Runner:
    """One session of `dense run` for a loaded config."""

    def __init__(self, cfg, options: RunOptions):
        self.cfg = cfg
        self.o = options
        self.meta = MetaDir(Path(cfg.outputs_dir) / "meta")
        self.stop = options.stop or StopFlag()
        self.model = cfg.model
        m = self.model
        self.seed = int(first_opt(m, ["runtime.seed", "runtime.random_seed"], 0))
        self.round_robin = bool(opt(m, "runtime.round_robin", False))
        self.checkpoint_every = max(1, int(opt(m, "runtime.checkpoint_every", 16)))
        self.checkpoint_interval_s = float(opt(m, "runtime.checkpoint_interval_s", 30.0))
        self.max_stalled = int(opt(m, "runtime.max_stalled_libraries", 25))
        self.max_failed = opt(m, "runtime.max_failed_solutions", None)
        self.health_interval = float(first_opt(m, ["runtime.health_interval_s", "output.usr.health_interval_s"], 60.0))
        self.max_seconds = options.max_seconds or opt(m, "runtime.max_seconds", None)
        self.solutions_per_library = max(1, int(opt(m, "solver.solutions_per_library", 4)))
        cfg_workers = opt(m, "solver.workers", None)
        if isinstance(cfg_workers, str):
            cfg_workers = None if cfg_workers in ("auto", "") else int(cfg_workers)
        self.workers = allocated_cpus(options.workers or cfg_workers or None)
        self.pending: list[Accepted] = []
        self.seen: set[str] = set()
        self._last_flush = time.monotonic()

    def note(self, msg: str) -> None:
        if self.o.on_note:
            self.o.on_note(msg)

    # -- preparation --------------------------------------------------------------------------------
    def _has_outputs(self, usr, parquet) -> bool:
        if self.meta.state_path.exists() or self.meta.manifest_path.exists():
            return True
        if parquet is not None and parquet.exists():
            return True
        if usr is not None and usr.exists() and run_frame(usr, self.cfg.run_id, ["id", RUN_COL]).height:
            return True
        return False

    def _wipe(self, usr, parquet) -> None:
        outputs = Path(self.cfg.outputs_dir).resolve()
        if usr is not None and usr.exists():
            ds_dir = Path(usr.location()).resolve()
            if outputs in ds_dir.parents:
                shutil.rmtree(ds_dir, ignore_errors=True)
            elif run_frame(usr, self.cfg.run_id, ["id", RUN_COL]).height:
                raise ConflictError(
                    f"--fresh cannot clear USR dataset {usr.dataset_id} at {usr.location()}: it lies outside the workspace "
                    f"and already holds rows of run {self.cfg.run_id}",
                    hint="change run.id in the config to start a new run in that dataset, or resume without --fresh",
                )
        if parquet is not None:
            parquet.wipe()
        for name in ("run_state.json", "run_manifest.json", "effective_config.json", "events.jsonl"):
            (self.meta.path / name).unlink(missing_ok=True)
        shutil.rmtree(Path(self.cfg.outputs_dir) / "plots", ignore_errors=True)

    def _quotas(self, plans: list, resuming: bool, generated: dict[str, int]) -> list:
        """Config quotas, raised to the previous effective quotas on resume, then --extend-quota."""
        if resuming:
            eff = self.meta.load_effective() or {}
            prev = eff.get("quotas", {})
            plans = [with_quota(p, max(plan_quota(p), int(prev.get(p.name, 0)))) for p in plans]
        return extend_plan_quotas(plans, int(self.o.extend_quota or 0), generated)

    def _check_config_drift(self, resuming: bool) -> list[str]:
        if not resuming:
            return []
        eff = self.meta.load_effective()
        if not eff or "config" not in eff:
            return []
        diff = changed_keys(strip_quotas(eff["config"]), strip_quotas(model_dump(self.cfg)))
        diff = [d for d in diff if not d.startswith(("logging", "plots", "runtime", "solver.time_limit", "solver.workers"))]
        if any(d.startswith("generation.sequence_length") for d in diff):
            raise ConflictError(
                f"generation.sequence_length changed since the outputs in {self.cfg.outputs_dir} were written",
                hint="restore the old length, or start over with `dense run --fresh` (or a new workspace)",
            )
        return diff

    # -- main ---------------------------------------------------------------------------------------
    def run(self) -> RunResult:
        self.meta.path.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.meta.lock_path, timeout=0, what="workspace run lock")
        try:
            lock.acquire()
        except DnadesignError as exc:
            exc.hint = "only one `dense run` may write a workspace at a time; wait for it to finish or stop it"
            raise
        try:
            if self.o.stop is not None:  # the caller routes signals to our flag
                return self._run_locked()
            with SignalGuard(self.stop):
                return self._run_locked()
        finally:
            lock.release()

    def _run_locked(self) -> RunResult:
        from . import library as lib_mod
        from . import plans as plans_mod
        cfg = self.cfg
        t0 = time.monotonic()
        run_id = cfg.run_id
        sched = detect_scheduler()
        actor = Actor.current("densegen", run_id=run_id, correlation_id=sched.run_key)
        if self.o.fresh and self.o.resume:
            raise InputError("--fresh and --resume cannot be used together", hint="pick one")
        usr, parquet = open_sinks(cfg, actor, create=False)  # look before creating anything
        if usr is None and parquet is None:
            raise InputError("the config has no output target", hint="set output.targets to include usr and/or parquet")
        has_outputs = self._has_outputs(usr, parquet)
        if self.o.resume and not has_outputs:
            raise InputError(f"there is no run to resume in {cfg.outputs_dir}", hint="run `dense run` without --resume to start one")
        # Validate before touching any output (raises ConfigError on inputs or settings that cannot work).
        pools = lib_mod.build_pools(cfg, seed=self.seed)
        for w in lib_mod.preflight(cfg, plans=plans_mod.resolve_plans(cfg), pools=pools) or []:
            self.note(f"warning: {w}")
        resuming = has_outputs and not self.o.fresh
        drift = self._check_config_drift(resuming)
        if self.o.fresh and has_outputs:
            self._wipe(usr, parquet)
        usr, parquet = open_sinks(cfg, actor)
        sinks = [s for s in (usr, parquet) if s is not None]
        self._sinks = (usr, parquet)

        # What is committed (source of truth), after repairing a crash between the two sinks.
        if parquet is not None:
            parquet.clean_orphans()
        moved = align_sinks(usr, parquet, run_id)
        primary = usr or parquet
        committed = committed_counts(run_frame(primary, run_id, ["id", PLAN_COL, RUN_COL]))
        self.seen = set(usr.all_ids()) if usr is not None else set()
        if parquet is not None:
            self.seen |= parquet.ids()

        plans = list(plans_mod.resolve_plans(cfg))
        plans = self._quotas(plans, resuming, committed)
        prev_state = self.meta.load_state()
        prev_manifest = self.meta.load_manifest() or {}
        session = int(max(len(prev_manifest.get("sessions", [])), prev_state.session if prev_state else 0)) + 1
        import os
        import socket

        state = RunState(run_id=run_id, config_path=str(cfg.path), config_sha256=cfg.sha256, session=session,
                         workers=self.workers, host=socket.gethostname(), pid=os.getpid())
        for p in plans:
            state.plans[p.name] = PlanState(p.name, plan_quota(p), generated=committed.get(p.name, 0))
        self.state = state
        self.meta.save_effective({
            "run_id": run_id, "config_path": str(cfg.path), "config_sha256": cfg.sha256, "session": session,
            "saved_at": utc_now_iso(), "quotas": {p.name: plan_quota(p) for p in plans}, "workers": self.workers,
            "seed": self.seed, "extend_quota": int(self.o.extend_quota or 0), "config": model_dump(cfg),
            "plans": [p.describe() if hasattr(p, "describe") else {"name": p.name, "quota": plan_quota(p)} for p in plans],
        })
        self.meta.save_state(state)

        diag = Diagnostics(self.meta.events_path, run_id, session)
        self.diag = diag
        health = Health(usr, self.health_interval)
        self.health = health
        diag.emit("session_started", resumed=resuming, fresh=bool(self.o.fresh), workers=self.workers,
                  checkpoint_every=self.checkpoint_every, round_robin=self.round_robin,
                  quotas={p.name: plan_quota(p) for p in plans}, committed=committed, extend_quota=int(self.o.extend_quota or 0),
                  scheduler=sched.scheduler, job_id=sched.job_id, task_id=sched.task_id, config_changed=drift, aligned=moved)
        plan_text = ", ".join(f"{p.name} {p.generated}/{p.quota}" for p in state.plans.values())
        verb = "resuming" if resuming else "starting"
        self.note(f"dense: {verb} run {run_id} session {session} with {self.workers} CP-SAT worker(s): {plan_text}")
        if drift:
            self.note(f"warning: config changed since the last session ({', '.join(drift[:6])}); resuming with the new settings")
        if usr is not None:
            from ..core.jobs import job_started

            try:
                job_started(usr.events_path, usr.dataset_id, actor)
            except Exception:
                pass
        health.emit("resumed" if resuming else "started", self._metrics(None), run_id=run_id,
                    workers=self.workers, extend_quota=int(self.o.extend_quota or 0))

        deadline = None if not self.max_seconds else time.monotonic() + float(self.max_seconds)
        self.deadline = deadline
        time_limit = float(first_opt(self.model, ["solver.time_limit_s"], 10.0))
        run_limit = opt(self.model, "solver.run_time_limit_s", None)
        mode = str(first_opt(self.model, ["solver.strategy", "solver.mode"], "optimal"))
        sampling_cfg = opt(self.model, "generation.sampling", None)

        status, exit_code, message = "failed", 1, ""
        error: BaseException | None = None
        try:
            samplers = {p.name: lib_mod.LibrarySampler(p, pools, sampling_cfg, derive_seed(self.seed, f"library:{p.name}:{session}"))
                        for p in plans}
            specs = {p.name: p for p in plans}
            stalls = {p.name: 0 for p in plans}
            with RunProgress(self.o.progress or opt(self.model, "logging.progress", "auto"), state,
                             float(opt(self.model, "logging.summary_interval_s", 30.0))) as progress:
                self.progress = progress
                k = max(1, int(self.o.parallel_libraries or 1))

                def make_options(name: str, index: int, workers: int):
                    remaining = None if deadline is None else max(0.5, deadline - time.monotonic())
                    limit = min(x for x in (run_limit, remaining) if x is not None) if (run_limit or remaining) else None
                    return self._solver_options(
                        time_limit_s=min(time_limit, remaining) if remaining else time_limit,
                        seed=derive_seed(self.seed, f"solve:{name}:{session}:{index}"),
                        workers=workers, mode=mode, run_time_limit_s=limit)

                if k > 1:
                    per = max(1, self.workers // k)
                    self._loop_parallel(specs, samplers, stalls, k, lambda name, index: make_options(name, index, per))
                while k == 1 and not self.stop.requested:
                    active = [n for n, ps in state.plans.items() if not ps.done]
                    if not active:
                        break
                    batch = active if self.round_robin else active[:1]
                    for name in batch:
                        if self._deadline_passed():
                            break
                        if state.plans[name].done:
                            continue
                        options = make_options(name, state.plans[name].libraries, self.workers)
                        got = self._one_library(specs[name], samplers[name], options)
                        self._after_library(name, got, stalls)
                        self._maybe_checkpoint()
                        progress.update()
                self._flush()
            if self.stop.requested and self.stop.signum is not None:
                status, exit_code = "interrupted", self.stop.exit_code or 1
                message = f"stopped by {self.stop.reason}; {state.generated}/{state.quota} sequences are saved, `dense run` resumes"
            elif self.stop.requested:
                status, exit_code = "incomplete", 1
                message = f"stopped: {self.stop.reason}; {state.generated}/{state.quota} sequences are saved, `dense run` resumes"
            else:
                status, exit_code = "completed", 0
                message = f"run {run_id} complete: {state.generated}/{state.quota} sequences"
                if not any(p.accepted_session for p in state.plans.values()):
                    message += " (every quota was already met: no new sequences; add more with --extend-quota N)"
        except BaseException as exc:  # record the failure, keep what is committed, re-raise
            error = exc
            if not isinstance(exc, FlushFailedError):
                try:
                    self._flush()
                except BaseException:
                    pass
            status, exit_code = "failed", 1
            message = str(exc)
        finally:
            state.status = status
            state.reason = message if status != "completed" else None
            elapsed = time.monotonic() - t0
            try:
                for s in sinks:
                    try:
                        s.finalize()
                    except Exception:
                        pass
                if sinks and self.cfg.model.postprocess.fasta:
                    try:
                        write_fasta(sinks[0], self.cfg.resolve(self.cfg.model.postprocess.fasta))
                    except Exception as exc:  # an export problem must not turn a good run into a failure
                        diag.emit("postprocess_failed", reason=str(exc)[:300])
                self.meta.save_state(state)
                self._write_manifest(state, prev_manifest, status, exit_code, elapsed, sinks)
                diag.emit("session_finished", status=status, exit_code=exit_code, reason=message,
                          generated=state.generated, quota=state.quota, elapsed_s=round(elapsed, 3),
                          signal=self.stop.signum)
                hstatus = "completed" if status == "completed" else "failed"
                health.emit(hstatus, self._metrics(None), run_id=run_id, outcome=status,
                            **({"reason": message[:300]} if status != "completed" else {}),
                            **({"signal": self.stop.signum} if self.stop.signum else {}))
                if usr is not None:
                    from ..core.jobs import job_finished

                    try:
                        job_finished(usr.events_path, usr.dataset_id, actor, exit_code=exit_code, signal=self.stop.signum,
                                     metrics={"generated": state.generated, "quota": state.quota})
                    except Exception:
                        pass
            finally:
                diag.close()
        if error is not None:
            raise error
        return RunResult(state, status, exit_code, message, [s.location() for s in sinks], elapsed)

    def _deadline_passed(self) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.stop.request(f"runtime budget of {self.max_seconds:g} s reached")
        return self.stop.requested

    def _after_library(self, name: str, got: int, stalls: dict) -> None:
        """Stall and failure accounting after a library; raises when a quota looks unreachable."""
        state = self.state
        if got:
            stalls[name] = 0
        else:
            stalls[name] += 1
            state.plans[name].stalled_libraries += 1
            if stalls[name] >= self.max_stalled:
                ps = state.plans[name]
                self.diag.emit("quota_unreachable", plan=name, generated=ps.generated, quota=ps.quota,
                               stalled_libraries=stalls[name])
                raise QuotaUnreachableError(
                    f"plan {name} made no progress in {stalls[name]} consecutive libraries "
                    f"({ps.generated}/{ps.quota} sequences; {ps.duplicates} duplicates, {ps.infeasible} infeasible, "
                    f"{ps.no_solution} timed out), so its quota looks unreachable",
                    hint="lower the plan's quota, widen its inputs or relax its constraints "
                         "(or raise runtime.max_stalled_libraries); the sequences written so far are kept",
                )
        if self.max_failed:
            failed = sum(p.duplicates + p.rejected + p.infeasible + p.no_solution for p in state.plans.values())
            if failed >= int(self.max_failed):
                self.diag.emit("max_failed_solutions", failed=failed, limit=int(self.max_failed))
                raise QuotaUnreachableError(
                    f"this session reached runtime.max_failed_solutions={int(self.max_failed)} "
                    f"({state.generated}/{state.quota} sequences written)",
                    hint="raise runtime.max_failed_solutions, relax the plan constraints or widen the inputs; "
                         "`dense run` resumes from what is saved")

    def _solver_options(self, **kw):
        """The config's solver options (strands, determinism, ...) with this library's seed and limits."""
        import dataclasses

        from .solver import SolverOptions

        base = self.cfg.solver_options(seed=kw["seed"], workers=kw["workers"]) if hasattr(self.cfg, "solver_options") else SolverOptions()
        return dataclasses.replace(base, **{k: v for k, v in kw.items() if k in SolverOptions.__dataclass_fields__})

    # -- one library ------------------------------------------------------------------------------------
    def _start_library(self, plan, sampler) -> LibraryTask:
        """Sample the next library of `plan` and build its problem (main thread: samplers are not thread-safe)."""
        from .library import library_hash

        ps = self.state.plans[plan.name]
        library = tuple(sampler.next())
        task = LibraryTask(plan=plan, sampler=sampler, index=ps.libraries, library=library, lhash=library_hash(library),
                           problem=plan.build_problem(library), t0=time.monotonic())
        ps.libraries += 1
        self.diag.emit("library", plan=plan.name, index=task.index, hash=task.lhash, size=len(library),
                       regulators=sorted({s.regulator for s in library}))
        return task

    def _consider(self, task: LibraryTask, sol) -> bool:
        """Deduplicate, verify and accept one solution; True when it was accepted."""
        from .solver import check_solution

        plan = task.plan
        ps = self.state.plans[plan.name]
        ps.solves += 1
        ps.solve_time_s += sol.solve_time_s
        if ps.done:  # a parallel library finished the plan first
            return False
        rid = record_id("dna", sol.sequence)
        if rid in self.seen:
            ps.duplicates += 1
            self.diag.emit("duplicate", plan=plan.name, id=rid, library=task.index)
            return False
        problems = check_solution(task.problem, sol)
        if problems:
            ps.rejected += 1
            self.diag.emit("rejected", plan=plan.name, library=task.index, problems=list(problems)[:5])
            return False
        self.seen.add(rid)
        if hasattr(task.sampler, "observe"):
            task.sampler.observe([p.site_id for p in sol.placements if not getattr(p, "fixed", False)])
        self.pending.append(Accepted(
            plan=plan.name, sequence=sol.sequence, placements=tuple(sol.placements), objective=sol.objective,
            bound=sol.bound, optimal=bool(sol.optimal), solve_time_s=float(sol.solve_time_s), library_hash=task.lhash,
            library_index=task.index, library_size=len(task.library), accepted_at=utc_now(), session=self.state.session))
        ps.generated += 1
        ps.accepted_session += 1
        task.accepted += 1
        self.diag.emit("accepted", plan=plan.name, id=rid, library=task.index, n_sites=sol.n_sites,
                       length=len(sol.sequence), optimal=bool(sol.optimal), solve_time_s=round(sol.solve_time_s, 4))
        self._maybe_checkpoint()
        self.progress.update()
        return True

    def _finish_library(self, task: LibraryTask, outcome: str) -> None:
        ps = self.state.plans[task.plan.name]
        if outcome.startswith("infeasible"):
            ps.infeasible += 1
        elif outcome.startswith("no solution"):
            ps.no_solution += 1
        self.diag.emit("library_done", plan=task.plan.name, index=task.index, accepted=task.accepted, outcome=outcome,
                       elapsed_s=round(time.monotonic() - task.t0, 4))

    def _one_library(self, plan, sampler, options) -> int:
        """Sample a library, solve it, accept what passes; returns the number accepted."""
        from .solver import InfeasibleProblemError, NoSolutionFoundError, solve

        ps = self.state.plans[plan.name]
        task = self._start_library(plan, sampler)
        want = min(self.solutions_per_library, ps.quota - ps.generated)
        outcome = "ok"
        try:
            for sol in solve_in_thread(lambda: solve(task.problem, options, n_solutions=want), self.stop):
                self._consider(task, sol)
                if ps.done or self.stop.requested:
                    break
        except InfeasibleProblemError as exc:
            outcome = f"infeasible: {exc.message}"
        except NoSolutionFoundError as exc:
            outcome = f"no solution: {exc.message}"
        self._finish_library(task, outcome)
        return task.accepted

    def _loop_parallel(self, plans_by_name: dict, samplers: dict, stalls: dict, k: int, make_options) -> None:
        """Solve up to `k` libraries at once (threads; CP-SAT releases the GIL), one writer (this thread).

        Each library gets `workers // k` CP-SAT workers. Solutions are deduplicated, verified and
        accepted here in arrival order; when a plan is done its in-flight libraries are cancelled
        (their remaining solutions are dropped).
        """
        import queue
        import threading

        from .solver import InfeasibleProblemError, NoSolutionFoundError, solve

        events: queue.Queue = queue.Queue()
        inflight: dict[int, LibraryTask] = {}
        next_id = 0
        turn = 0

        def worker(tid: int, problem, options, want: int, cancel: threading.Event) -> None:
            try:
                for sol in solve(problem, options, n_solutions=want):
                    events.put(("sol", tid, sol))
                    if cancel.is_set():
                        break
                events.put(("done", tid, "ok"))
            except InfeasibleProblemError as exc:
                events.put(("done", tid, f"infeasible: {exc.message}"))
            except NoSolutionFoundError as exc:
                events.put(("done", tid, f"no solution: {exc.message}"))
            except BaseException as exc:  # handed to the writer thread
                events.put(("error", tid, exc))

        state = self.state
        while not self.stop.requested:
            active = [n for n, ps in state.plans.items() if not ps.done]
            if not active and not inflight:
                break
            while active and len(inflight) < k and not self.stop.requested:
                if self._deadline_passed():
                    break
                if self.round_robin:
                    name = active[turn % len(active)]
                    turn += 1
                else:
                    name = active[0]
                ps = state.plans[name]
                want = min(self.solutions_per_library, max(1, ps.quota - ps.generated))
                task = self._start_library(plans_by_name[name], samplers[name])
                task.cancel = threading.Event()
                tid, next_id = next_id, next_id + 1
                inflight[tid] = task
                threading.Thread(target=worker, args=(tid, task.problem, make_options(name, task.index), want, task.cancel),
                                 name=f"dense-solve-{tid}", daemon=True).start()
            if not inflight:
                break
            try:
                kind, tid, value = events.get(timeout=0.1)
            except queue.Empty:
                continue
            task = inflight.get(tid)
            if task is None:
                continue
            if kind == "sol":
                if not task.cancel.is_set():
                    self._consider(task, value)
                    if state.plans[task.plan.name].done:
                        for t in inflight.values():
                            if t.plan.name == task.plan.name:
                                t.cancel.set()
                continue
            if kind == "error":
                raise value
            inflight.pop(tid)
            self._finish_library(task, value)
            self._after_library(task.plan.name, task.accepted, stalls)
            self._maybe_checkpoint()
            self.progress.update()
        for t in inflight.values():  # stopping: abandon what is still solving
            t.cancel.set()

    # -- checkpoints ------------------------------------------------------------------------------------
    def _maybe_checkpoint(self) -> None:
        if self.pending and (len(self.pending) >= self.checkpoint_every
                             or time.monotonic() - self._last_flush >= self.checkpoint_interval_s):
            self._flush()
        else:
            self.health.maybe_running(self._metrics(None))

    def _flush(self) -> None:
        """Commit pending rows to every sink (USR first), then record the state."""
        self._last_flush = time.monotonic()
        if not self.pending:
            return
        rows = list(self.pending)
        table = build_table(rows, run_id=self.cfg.run_id, **self._schema())
        usr, parquet = self._sinks_cache()
        for sink in (usr, parquet):
            if sink is None:
                continue
            try:
                sink.write(table, event_args={"run_id": self.cfg.run_id, "plans": sorted({r.plan for r in rows})})
            except Exception as exc:
                self.diag.emit("flush_failed", sink=sink.name, rows=len(rows), error=str(exc)[:500])
                self.health.flush_failed(f"{sink.name}: {exc}", self._metrics(None) | {"rows": len(rows)})
                raise FlushFailedError(f"could not write {len(rows)} sequence(s) to the {sink.name} output ({exc})",
                                       hint="check disk space and permissions, then `dense run` to resume") from exc
        self.pending.clear()
        self.diag.emit("checkpoint", rows=len(rows), generated=self.state.generated, quota=self.state.quota)
        self.diag.sync()
        self.meta.save_state(self.state)
        self.health.maybe_running(self._metrics(rows[-1].plan))

    def _sinks_cache(self):
        return self._sinks

    def _schema(self) -> dict:
        return {"bio_type": str(opt(self.model, "output.schema.bio_type", "dna")),
                "alphabet": str(opt(self.model, "output.schema.alphabet", "dna_4"))}

    def _metrics(self, plan: str | None) -> dict[str, Any]:
        st = self.state
        if plan is None:
            plan = next((p.name for p in st.plans.values() if not p.done), next(iter(st.plans), None))
        return {"generated": st.generated, "quota": st.quota, "percent": st.percent, "plan": plan,
                "plans": {p.name: {"generated": p.generated, "quota": p.quota} for p in st.plans.values()},
                "session": st.session, "workers": st.workers}

    def _write_manifest(self, state: RunState, prev: dict, status: str, exit_code: int, elapsed: float, sinks) -> None:
        import platform

        try:
            from importlib.metadata import version

            ortools_version = version("ortools")
        except Exception:
            ortools_version = None
        sessions = list(prev.get("sessions", []))
        sessions.append({"session": state.session, "started_at": state.started_at, "finished_at": utc_now_iso(),
                         "status": status, "exit_code": exit_code, "elapsed_s": round(elapsed, 3),
                         "accepted": sum(p.accepted_session for p in state.plans.values()),
                         "extend_quota": int(self.o.extend_quota or 0), "workers": state.workers,
                         "signal": self.stop.signum, "reason": state.reason, "host": state.host, "pid": state.pid})
        self.meta.save_manifest({
            "run_id": state.run_id, "status": status, "config_path": state.config_path,
            "config_sha256": state.config_sha256, "updated_at": utc_now_iso(), "generated": state.generated,
            "quota": state.quota, "percent": state.percent,
            "plans": [state.as_dict()["plans"][i] for i in range(len(state.plans))],
            "outputs": {s.name: s.location() for s in sinks}, "sessions": sessions,
            "versions": {"ortools": ortools_version, "python": platform.python_version()},
        })


def run(cfg, options: RunOptions | None = None) -> RunResult:
    """Run (or resume) the workspace's DenseGen run; see the module docstring."""
    return Runner(cfg, options or RunOptions()).run()


def write_fasta(sink, path: Path) -> int:
    """`postprocess.fasta`: the run's committed sequences as FASTA, written atomically; returns the count."""
    from ..core.atomic import atomic_write_text

    cols = ["id", "sequence", "densegen__plan", "densegen__n_sites"]
    frame = sink.frame(columns=cols)
    lines = []
    for rid, seq, plan, n in frame.iter_rows():
        lines.append(f">{rid} plan={plan} sites={n}\n{seq}\n")
    atomic_write_text(path, "".join(lines))
    return frame.height
