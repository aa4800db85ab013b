"""Ending a session: decide its outcome, save what is accepted, and record it everywhere.

Whatever ended the session - every quota met, a stop signal, the time budget, an error - the
rows already accepted are committed (unless committing is what failed), the sinks are finished
(Parquet export, FASTA), `run_state.json` and `run_manifest.json` say how it ended, DenseGen's
diagnostics get `session_finished`, the dataset gets a `densegen_health` event and, inside a
scheduler job, `job_finished` with the state, exit code, signal and reason.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pyarrow as pa

from ..core.atomic import atomic_write_text
from ..core.errors import DnadesignError
from ..core.timeutil import utc_now_iso
from .acceptance import Acceptor, FlushFailedError
from .outputs import RunOutputs
from .session import Session
from .signals import StopFlag
from .state import RunState


@dataclass(frozen=True)
class Outcome:
    """How a session ended: status (completed | interrupted | incomplete | failed), exit code, message."""

    status: str
    exit_code: int
    message: str


def decide_outcome(stop: StopFlag, state: RunState, error: BaseException | None) -> Outcome:
    """The outcome of a session from its stop flag, its counters and the error that ended it (if any)."""
    if error is not None:
        return Outcome("failed", 1, error.message if isinstance(error, DnadesignError) else str(error))
    saved = f"{state.generated}/{state.quota} sequences are saved, `dense run` resumes"
    if stop.requested and stop.signum is not None:
        return Outcome("interrupted", stop.exit_code or 1, f"stopped by {stop.reason}; {saved}")
    if stop.requested:
        return Outcome("incomplete", 1, f"stopped: {stop.reason}; {saved}")
    message = f"run {state.run_id} complete: {state.generated}/{state.quota} sequences"
    if not any(p.accepted_session for p in state.plans.values()):
        if state.task:
            message += " (no work left: every quota was already met by the other tasks)"
        else:
            message += " (every quota was already met: no new sequences; add more with --extend-quota N)"
    return Outcome("completed", 0, message)


def write_fasta(outputs: RunOutputs, path: Path) -> int:
    """`postprocess.fasta`: the run's committed sequences as FASTA, written atomically; returns the count.

    Written under the primary sink's lock, so with several writers the last file names every row.
    """
    with outputs.lock():
        frame = outputs.run_frame(["id", "sequence", "densegen__plan", "densegen__n_sites"])
        lines = [f">{rid} plan={plan} sites={n}\n{seq}\n" for rid, seq, plan, n in frame.iter_rows()]
        atomic_write_text(path, "".join(lines))
    return frame.height


def _versions() -> dict[str, str | None]:
    try:
        ortools: str | None = version("ortools")
    except PackageNotFoundError:
        ortools = None
    return {"ortools": ortools, "python": platform.python_version()}


def save_manifest(s: Session, outcome: Outcome, elapsed: float) -> None:
    """Append this session to `run_manifest.json` (of the workspace, or of the array task)."""
    state = s.state
    sessions = list(s.prev_manifest.get("sessions", []))
    sessions.append({"session": state.session, "started_at": state.started_at, "finished_at": utc_now_iso(),
                     "status": outcome.status, "exit_code": outcome.exit_code, "elapsed_s": round(elapsed, 3),
                     "accepted": sum(p.accepted_session for p in state.plans.values()),
                     "committed": sum(p.committed_session for p in state.plans.values()),
                     "over_quota": sum(p.over_quota for p in state.plans.values()),
                     "extend_quota": s.settings.extend_quota, "workers": state.workers, "signal": s.stop.signum,
                     "reason": state.reason, "host": state.host, "pid": state.pid, "task": state.task})
    s.meta.save_manifest({
        "run_id": state.run_id, "status": outcome.status, "config_path": state.config_path,
        "config_sha256": state.config_sha256, "updated_at": utc_now_iso(), "generated": state.generated,
        "quota": state.quota, "percent": state.percent, "committed_total": state.committed_total,
        "plans": state.as_dict()["plans"], "outputs": {x.name: x.location() for x in s.outputs.sinks},
        "sessions": sessions, "versions": _versions(), **({"task": state.task} if state.task else {}),
    })


def finish_session(s: Session, acceptor: Acceptor, error: BaseException | None) -> Outcome:
    """Commit what is pending, decide the outcome and record it (see the module docstring)."""
    if error is None or not isinstance(error, FlushFailedError):
        try:
            acceptor.flush()
        except FlushFailedError as flush_error:
            error = error or flush_error
    outcome = decide_outcome(s.stop, s.state, error)
    state, diag = s.state, s.diag
    state.status = outcome.status
    state.reason = outcome.message if outcome.status != "completed" else None
    elapsed = time.monotonic() - s.t0
    # Exports rewrite every committed row: an array task does it only once the quotas are met (the
    # tasks still producing will do it when they end); the parts themselves are always current.
    export = s.settings.shard is None or all(p.done for p in state.plans.values())
    try:
        for name, exc in (s.outputs.finalize() if export else []):
            diag.emit("finalize_failed", sink=name, reason=str(exc)[:300])
        if s.settings.fasta is not None and export:
            try:
                write_fasta(s.outputs, s.settings.fasta)
            except (OSError, DnadesignError, pa.ArrowException) as exc:  # an export problem must not fail a good run
                diag.emit("postprocess_failed", reason=str(exc)[:300])
        acceptor.write_tables()
        acceptor.save_state()
        save_manifest(s, outcome, elapsed)
        diag.emit("session_finished", status=outcome.status, exit_code=outcome.exit_code, reason=outcome.message,
                  generated=state.generated, quota=state.quota, elapsed_s=round(elapsed, 3), signal=s.stop.signum,
                  committed=sum(p.committed_session for p in state.plans.values()),
                  over_quota=sum(p.over_quota for p in state.plans.values()))
        hstatus = "completed" if outcome.status == "completed" else "failed"
        s.health.emit(hstatus, state.metrics(), run_id=state.run_id, outcome=outcome.status,
                      **({"reason": outcome.message[:300]} if outcome.status != "completed" else {}),
                      **({"signal": s.stop.signum} if s.stop.signum else {}))
        if s.trace is not None:
            reason = outcome.message if outcome.status != "completed" or "no work left" in outcome.message else None
            s.trace.finish(outcome.exit_code, signal=s.stop.signum, reason=reason,
                           metrics={"generated": state.generated, "quota": state.quota,
                                    "committed": sum(p.committed_session for p in state.plans.values())})
    finally:
        diag.close()
    return outcome
