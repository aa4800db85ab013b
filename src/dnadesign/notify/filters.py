"""Which events a watcher looks at: by actor tool and by action (job lifecycle alerts optionally exempt)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

JOB_ACTIONS = frozenset({"job_started", "job_finished", "job_lost"})


def split_csv(value: str | Iterable[str] | None) -> list[str]:
    """`"a, b,,c"` -> `["a", "b", "c"]`; lists pass through cleaned."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [s.strip() for s in items if s and s.strip()]


@dataclass(frozen=True)
class EventFilter:
    """Empty sets mean "everything". Job lifecycle events pass the action filter when `job_alerts` is on."""

    tools: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()
    job_alerts: bool = True

    @classmethod
    def build(cls, tools: Iterable[str] = (), actions: Iterable[str] = (), job_alerts: bool = True) -> EventFilter:
        return cls(frozenset(tools), frozenset(actions), job_alerts)

    def rejects_raw(self, raw: bytes) -> bool:
        """Cheap pre-check on an undecoded line: True only when its top-level action is surely not selected.

        Looks for a compact `"action":"..."` before any nested object opens; otherwise returns False
        and the caller parses the line normally (so malformed lines are still reported).
        """
        if not self.actions:
            return False
        i = raw.find(b'"action":"')
        if i < 0 or raw.find(b"{", 1, i) >= 0:
            return False
        j = raw.find(b'"', i + 10)
        if j < 0:
            return False
        action = raw[i + 10 : j]
        if b"\\" in action:
            return False
        return action not in self._raw_pass

    @property
    def _raw_pass(self) -> frozenset[bytes]:
        cached = self.__dict__.get("_raw_pass_cache")
        if cached is None:
            names = set(self.actions) | (set(JOB_ACTIONS) if self.job_alerts else set())
            cached = frozenset(n.encode() for n in names)
            object.__setattr__(self, "_raw_pass_cache", cached)
        return cached

    def matches(self, event: Mapping[str, Any]) -> bool:
        """True when the event's action and actor tool are selected."""
        action = event.get("action")
        if self.actions and action not in self.actions and not (self.job_alerts and action in JOB_ACTIONS):
            return False
        if self.tools:
            actor = event.get("actor")
            tool = actor.get("tool") if isinstance(actor, dict) else None
            if tool not in self.tools:
                return False
        return True
