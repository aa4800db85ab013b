"""Detect the batch scheduler (Slurm, SGE) a process runs under and the CPUs it was given."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class SchedulerInfo:
    scheduler: str  # "slurm" | "sge" | "none"
    job_id: str | None
    task_id: str | None
    raw_job_id: str | None
    cpus: int
    array: tuple[int, int, int] | None = None  # (first, last, step) for array jobs

    @property
    def array_count(self) -> int | None:
        """Number of tasks in the array (from first, last, step); None outside an array job."""
        if self.array is None:
            return None
        first, last, step = self.array
        return max(1, (last - first) // max(1, step) + 1)

    @property
    def run_key(self) -> str | None:
        """`slurm:<array_job>_<task>` or `sge:<job>.<task>`; None outside a scheduler."""
        if self.scheduler == "slurm":
            return f"slurm:{self.job_id}" + (f"_{self.task_id}" if self.task_id else "")
        if self.scheduler == "sge":
            return f"sge:{self.job_id}" + (f".{self.task_id}" if self.task_id else "")
        return None


def _v(env: Mapping[str, str], key: str) -> str | None:
    value = env.get(key)
    return None if value in (None, "", "undefined") else value


def _int(value: str | None, default: int) -> int:
    try:
        return max(1, int(str(value).split("(")[0].split(",")[0]))
    except (TypeError, ValueError):
        return default


def _array(env: Mapping[str, str], first: str, last: str, step: str) -> tuple[int, int, int] | None:
    try:
        return int(_v(env, first)), int(_v(env, last)), int(_v(env, step) or 1)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def machine_cpus() -> int:
    """CPUs this process may run on (its affinity mask), not the machine's core count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def detect_scheduler(env: Mapping[str, str] | None = None) -> SchedulerInfo:
    """Read the job environment. SGE's literal `undefined` counts as missing; `JOB_ID` alone is too generic."""
    env = os.environ if env is None else env
    if _v(env, "SLURM_JOB_ID"):
        cpus = _int(_v(env, "SLURM_CPUS_PER_TASK") or _v(env, "SLURM_CPUS_ON_NODE"), 1)
        return SchedulerInfo("slurm", _v(env, "SLURM_ARRAY_JOB_ID") or env["SLURM_JOB_ID"],
                             _v(env, "SLURM_ARRAY_TASK_ID"), env["SLURM_JOB_ID"], cpus,
                             _array(env, "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX", "SLURM_ARRAY_TASK_STEP"))
    if _v(env, "JOB_ID") and ("SGE_TASK_ID" in env or _v(env, "SGE_ROOT")):
        return SchedulerInfo("sge", env["JOB_ID"], _v(env, "SGE_TASK_ID"), env["JOB_ID"], _int(_v(env, "NSLOTS"), 1),
                             _array(env, "SGE_TASK_FIRST", "SGE_TASK_LAST", "SGE_TASK_STEPSIZE"))
    return SchedulerInfo("none", None, None, None, machine_cpus())


def allocated_cpus(requested: int | None = None, env: Mapping[str, str] | None = None) -> int:
    """Worker count: an explicit request, else the scheduler's allocation, else the machine's CPUs."""
    if requested:
        return max(1, int(requested))
    return detect_scheduler(env).cpus


def under_scheduler(env: Mapping[str, str] | None = None) -> bool:
    """True inside a Slurm or SGE job."""
    return detect_scheduler(env).scheduler != "none"
