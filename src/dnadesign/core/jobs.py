"""Job lifecycle events written by the tool itself (users cannot install scheduler prologs).

`job_started` when a batch job begins, `job_finished` with a classified state when it ends.
A job killed with SIGKILL writes no `job_finished`; a reconciler can later mark it `job_lost`.
Exit codes follow the scheduler rules: 128+signum from a handler, and never 99 or 100 (SGE
requeues or errors the job on those).
"""

from __future__ import annotations

import signal as _signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .events import Actor, append_event, job_block, make_event

CANCEL_SIGNALS = {int(_signal.SIGTERM), int(_signal.SIGKILL), int(_signal.SIGINT), int(_signal.SIGUSR2)}
TERMINAL_STATES = ("completed", "failed", "cancelled", "lost")


def classify(exit_code: int | None, signal: int | None) -> str:
    """completed / failed / cancelled from an exit code and the signal that ended the job, if any."""
    if signal is not None:
        return "cancelled" if signal in CANCEL_SIGNALS else "failed"
    return "completed" if not exit_code else "failed"


def safe_exit_code(code: int) -> int:
    """Map exit codes SGE treats specially (99 requeue, 100 error state) to 1."""
    return 1 if code in (99, 100) else code


def emit_job_event(log_path: str | Path, dataset_id: str, actor: Actor, action: str, *,
                   env: Mapping[str, str] | None = None, metrics: Mapping[str, Any] | None = None,
                   **job_fields: Any) -> dict[str, Any] | None:
    """Append `job_started` / `job_finished` / `job_lost` when running under a scheduler; else do nothing."""
    job = job_block(env, **job_fields)
    if job is None:
        return None
    event = make_event(action, dataset_id, actor, metrics=metrics, job=job)
    append_event(log_path, event)
    return event


def job_started(log_path: str | Path, dataset_id: str, actor: Actor, env: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    return emit_job_event(log_path, dataset_id, actor, "job_started", env=env, state="running")


def job_finished(log_path: str | Path, dataset_id: str, actor: Actor, *, exit_code: int, signal: int | None = None,
                 env: Mapping[str, str] | None = None, metrics: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    return emit_job_event(log_path, dataset_id, actor, "job_finished", env=env, metrics=metrics,
                          state=classify(exit_code, signal), exit_code=exit_code, signal=signal)
