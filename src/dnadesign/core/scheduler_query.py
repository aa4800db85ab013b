"""Ask the scheduler, from inside a job, why the job is being ended.

A job stopped by its time limit and a job cancelled by the user both receive SIGTERM under Slurm,
so the job itself cannot tell them apart from the signal. The controller knows: while the job is
being torn down, `squeue` shows it COMPLETING with reason `TimeLimit` (seen on Slurm 22.05), and
`Reason=None` after an `scancel`. The answer is recorded on `job_finished` as
`scheduler_state` / `scheduler_reason`, and `core.job_view` shows such a task as `timeout`.

Fail-open: any problem (no client, slow controller, odd output) gives an empty answer, quickly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping

QUERY_TIMEOUT_S = 5.0


def slurm_end_reason(env: Mapping[str, str] | None = None, *, timeout: float = QUERY_TIMEOUT_S) -> dict[str, str]:
    """`{"scheduler_state": ..., "scheduler_reason": ...}` for the Slurm job this process runs in, or `{}`."""
    env = os.environ if env is None else env
    raw_id = env.get("SLURM_JOB_ID")
    squeue = shutil.which("squeue")
    if not raw_id or not squeue:
        return {}
    try:
        res = subprocess.run([squeue, "-h", "-j", raw_id, "-o", "%T|%r"], capture_output=True, text=True,
                             timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return {}
    line = res.stdout.strip().splitlines()[0] if res.returncode == 0 and res.stdout.strip() else ""
    if "|" not in line:
        return {}
    state, reason = (part.strip() for part in line.split("|", 1))
    out = {"scheduler_state": state} if state else {}
    if reason and reason not in ("None", "(null)"):
        out["scheduler_reason"] = reason
    return out


def end_reason(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The scheduler's state and reason for the ending job, for the schedulers that can say (Slurm), else `{}`."""
    env = os.environ if env is None else env
    if env.get("SLURM_JOB_ID"):
        return slurm_end_reason(env)
    return {}
