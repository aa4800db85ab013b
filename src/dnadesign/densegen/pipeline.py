"""`dense run`: fill every plan's quota with verified, deduplicated designs, resumably.

One session of a run, in four parts that each live in their own module:
1. `session`: lock the workspace (exclusive, or shared by array tasks), validate the inputs, open
   the outputs, repair a crash between the two sinks and count what every writer has committed
   for this run (the resume source of truth; `run_state.json` only describes the last checkpoint);
2. `library_loop`: sample a library per plan, solve it with CP-SAT (k libraries at once, serial
   when k = 1), hand each solution to
3. `acceptance`: deduplicate and independently check it, keep it pending, and commit pending rows
   every `checkpoint_every` rows (or `checkpoint_interval_s`) through `outputs.RunOutputs.commit`,
   which enforces the quota under the dataset lock, so concurrent writers never overshoot;
4. `finalise`: on completion, a stop signal, the time budget or an error, commit what is
   accepted and record the outcome (state, manifest, diagnostics, health, job events).

Array mode (`--shard K/N` or a Slurm/SGE array task): N sessions share the run and its quotas;
each keeps its own state under `outputs/meta/tasks/` and its own seed stream (see `shard.py`).
"""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import DnadesignError
from ..core.events import Actor
from ..core.scheduler import detect_scheduler
from .acceptance import Acceptor, FlushFailedError
from .config import LoadedConfig
from .finalise import finish_session, write_fasta
from .jobtrace import JobTrace
from .library import LibrarySampler
from .library_loop import LibraryLoop, QuotaUnreachableError
from .progress import RunProgress
from .session import Session, WorkspaceLock, changed_keys, open_session, strip_quotas
from .settings import RunOptions, RunSettings, derive_seed
from .signals import SignalGuard, StopFlag, StopRequested
from .state import MetaDir, RunState


@dataclass
class RunResult:
    """What a session did: its final state, status, exit code and message."""

    state: RunState
    status: str  # completed | interrupted | incomplete | failed
    exit_code: int
    message: str
    sinks: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0


def run_session(s: Session) -> RunResult:
    """The library loop of an opened session, then its finalisation (errors are recorded, then re-raised)."""
    acceptor = Acceptor(state=s.state, outputs=s.outputs, settings=s.settings, diag=s.diag, health=s.health, meta=s.meta)
    error: BaseException | None = None
    try:
        samplers = {p.name: LibrarySampler(p, s.pools, s.settings.sampling, s.seeds.library(p.name)) for p in s.plans}
        with RunProgress(s.settings.progress, s.state, s.settings.summary_interval_s) as progress:
            LibraryLoop(state=s.state, plans={p.name: p for p in s.plans}, samplers=samplers, acceptor=acceptor,
                        settings=s.settings, seeds=s.seeds, stop=s.stop, diag=s.diag, progress=progress,
                        base_options=lambda seed, workers: s.cfg.solver_options(seed=seed, workers=workers)).run()
    except BaseException as exc:  # noqa: BLE001 - recorded by finish_session, then re-raised
        error = exc
    outcome = finish_session(s, acceptor, error)
    if error is not None:
        raise error
    return RunResult(s.state, outcome.status, outcome.exit_code, outcome.message, s.outputs.locations(),
                     time.monotonic() - s.t0)


def _stopped_during_startup(cfg: LoadedConfig, stop: StopFlag, trace: JobTrace | None) -> RunResult:
    exit_code = stop.exit_code or 1
    message = f"stopped by {stop.reason} during start-up, before anything was written; `dense run` starts again"
    if trace is not None:
        trace.finish(exit_code, signal=stop.signum, reason=message)
    state = RunState(run_id=cfg.run_id, config_path=str(cfg.path), config_sha256=cfg.sha256, session=0,
                     status="interrupted", host=socket.gethostname(), reason=message)
    return RunResult(state, "interrupted", exit_code, message)


def run(cfg: LoadedConfig, options: RunOptions | None = None) -> RunResult:
    """Run (or resume) the workspace's DenseGen run; see the module docstring."""
    options = options or RunOptions()
    settings = RunSettings.derive(cfg, options)
    stop = options.stop or StopFlag()
    actor = Actor.current("densegen", run_id=cfg.run_id, correlation_id=detect_scheduler().run_key)
    trace = JobTrace.for_config(cfg, actor)
    # the CLI routes signals itself, before any library starts threads; library callers get a guard here
    guard = contextlib.nullcontext() if options.stop is not None else SignalGuard(stop)
    with guard:
        try:
            lock = WorkspaceLock.acquire(MetaDir(Path(cfg.outputs_dir) / "meta"), settings)
        except DnadesignError as exc:  # e.g. the workspace is locked: the task still leaves a trace
            if trace is not None:
                trace.finish(int(exc.exit_code), reason=exc.render())
            raise
        try:
            try:
                session = open_session(cfg, settings, options, stop, actor, lock, trace)
            except StopRequested:
                return _stopped_during_startup(cfg, stop, trace)
            except DnadesignError as exc:
                if trace is not None:
                    trace.finish(int(exc.exit_code), reason=exc.render())
                raise
            return run_session(session)
        finally:
            lock.release()


__all__ = ["FlushFailedError", "QuotaUnreachableError", "RunOptions", "RunResult", "changed_keys", "derive_seed", "run",
           "run_session", "strip_quotas", "write_fasta"]
