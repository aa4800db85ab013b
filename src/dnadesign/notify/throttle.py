"""Throttle DenseGen progress messages: percent steps, a minimum gap, and a heartbeat.

Lifecycle statuses (started, resumed, completed, failed) always pass. The state is a plain dict
stored in the cursor file and changed only when the caller commits a decision (after the message
was delivered or spooled), so a failed send or a restart never loses or repeats a decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_RUNS = 256


@dataclass(frozen=True)
class Decision:
    """Whether to send, and the state entry to store under `key` once the message is safely handed off."""

    send: bool
    key: str
    entry: dict[str, Any] | None


class ProgressThrottle:
    """Decide which `running` progress events become messages."""

    def __init__(self, step_pct: int = 10, min_seconds: float = 60.0, heartbeat_seconds: float = 1800.0):
        self.step_pct = step_pct
        self.min_seconds = min_seconds
        self.heartbeat_seconds = heartbeat_seconds

    def decide(self, state: dict[str, Any], run_key: str, status: str, percent: float | None, now: float) -> Decision:
        """Apply the policy to one progress event of run `run_key` at time `now` (event time, epoch seconds)."""
        prev = state.get(run_key)
        bucket = int(percent // self.step_pct) if percent is not None else None
        if status != "running":
            return Decision(True, run_key, {"t": now, "b": bucket if bucket is not None else (prev or {}).get("b")})
        if prev is None:
            return Decision(True, run_key, {"t": now, "b": bucket})
        gap = now - float(prev.get("t", 0))
        if gap >= self.heartbeat_seconds:
            return Decision(True, run_key, {"t": now, "b": bucket if bucket is not None else prev.get("b")})
        last_b = prev.get("b")
        stepped = bucket is not None and (last_b is None or bucket > last_b)
        if stepped and gap >= self.min_seconds:
            return Decision(True, run_key, {"t": now, "b": bucket})
        return Decision(False, run_key, None)


def commit(state: dict[str, Any], decision: Decision) -> None:
    """Record a sent decision, keeping at most MAX_RUNS runs (oldest dropped)."""
    if decision.entry is None:
        return
    state.pop(decision.key, None)
    state[decision.key] = decision.entry
    while len(state) > MAX_RUNS:
        state.pop(next(iter(state)))
