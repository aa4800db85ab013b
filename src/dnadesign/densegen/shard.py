"""Array mode: which task of how many this `dense run` is.

N scheduler array tasks (or N processes started by any launcher with `--shard K/N`) given the
same config share one run: they fill each plan's quota together, exactly once, into the same
outputs. The shard decides only what differs between them: the task's own seed stream, its own
state directory under `outputs/meta/tasks/`, where in the plan list it starts, and how eagerly it
commits near the end. The quota itself is never split, so a task that dies, starts late or runs
slowly leaves its share to the others (or to a resubmission).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..core.errors import UsageError
from ..core.scheduler import detect_scheduler

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Task `task` of an array of `count` tasks (`index` is its 1-based position in the array)."""

    task: int
    count: int
    index: int
    source: str  # "slurm" | "sge" | "flag"

    @property
    def label(self) -> str:
        """Directory name of this task's state: `task-0003`."""
        return f"task-{self.task:04d}"

    def describe(self) -> str:
        return f"task {self.task} of {self.count} ({self.source})"

    def as_dict(self) -> dict:
        return {"task": self.task, "count": self.count, "index": self.index, "source": self.source}


def parse_shard(text: str) -> Shard:
    """`K/N` (1 <= K <= N) from the command line; a UsageError otherwise."""
    m = _SHARD.match(text or "")
    if not m:
        raise UsageError(f"--shard must look like K/N (task K of N, e.g. 3/16), not {text!r}")
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 1 <= k <= n:
        raise UsageError(f"--shard {text}: K must be between 1 and N (got task {k} of {n})")
    return Shard(task=k, count=n, index=k, source="flag")


def detect_shard(env: Mapping[str, str] | None = None) -> Shard | None:
    """The array task this process runs as (`SLURM_ARRAY_*` / `SGE_TASK_*`), or None outside an array."""
    env = os.environ if env is None else env
    info = detect_scheduler(env)
    if info.scheduler == "none" or info.task_id is None:
        return None
    try:
        task = int(info.task_id)
    except ValueError:
        return None
    count = None
    if info.scheduler == "slurm":
        raw = env.get("SLURM_ARRAY_TASK_COUNT")
        if raw and raw.isdigit():
            count = int(raw)
    if count is None:
        count = info.array_count or 1
    first, _, step = info.array or (task, task, 1)
    index = (task - first) // max(1, step) + 1 if task >= first else 1
    return Shard(task=task, count=max(1, count), index=max(1, min(index, max(1, count))), source=info.scheduler)


def resolve_shard(flag: str | None, env: Mapping[str, str] | None = None) -> Shard | None:
    """`--shard K/N` when given (`--shard none` turns array mode off), else the scheduler's array task."""
    if flag is not None:
        if flag.strip().lower() in ("none", "off"):
            return None
        return parse_shard(flag)
    return detect_shard(env)
