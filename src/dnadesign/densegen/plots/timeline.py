"""Run time of a run: the active intervals of its sessions (every array task's), idle gaps cut out.

A session is active from its `session_started` diagnostics line to its last line. Intervals that
overlap (array tasks run at once) are merged; the gaps between merged intervals (a resume the next
day) are removed, so `run time` counts only time something was running.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime


def _ts(value) -> float | None:
    if isinstance(value, int | float):  # epoch seconds
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


@dataclass
class Timeline:
    """Maps wall-clock seconds to seconds of run time (idle gaps between intervals removed)."""

    starts: list[float]  # merged intervals, sorted
    ends: list[float]
    offsets: list[float]  # run time at each interval's start

    @classmethod
    def from_intervals(cls, intervals: list[tuple[float, float]]) -> Timeline:
        merged: list[list[float]] = []
        for s, e in sorted(intervals):
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        offsets, clock = [], 0.0
        for s, e in merged:
            offsets.append(clock)
            clock += e - s
        return cls([m[0] for m in merged], [m[1] for m in merged], offsets)

    def run_time(self, wall: float) -> float:
        """Seconds of run time at wall-clock `wall` (clamped into the nearest earlier interval)."""
        if not self.starts:
            return 0.0
        i = max(0, bisect.bisect_right(self.starts, wall) - 1)
        return self.offsets[i] + min(max(wall - self.starts[i], 0.0), self.ends[i] - self.starts[i])

    @property
    def breaks(self) -> list[float]:
        """Run times where an idle gap was cut out (a later session resumed)."""
        return self.offsets[1:]


def session_intervals(events: list[dict], accepted: list[float]) -> list[tuple[float, float]]:
    """(start, end) wall-clock seconds of each session of each task; accepted times stretch them."""
    spans: dict[tuple, list[float]] = {}
    for e in events:
        t = _ts(e.get("ts"))
        if t is None:
            continue
        key = (e.get("_task"), e.get("session"))
        span = spans.setdefault(key, [t, t])
        if e.get("event") == "session_started":
            span[0] = t
        span[0], span[1] = min(span[0], t), max(span[1], t)
    out = [(s, e) for s, e in spans.values()]
    if accepted:
        first, last = min(accepted), max(accepted)
        if not out:
            out = [(first, last)]
        elif not any(s <= first <= e for s, e in out):
            out.append((first, first))
        if not any(s <= last <= e for s, e in out):
            out.append((last, last))
    return out


def run_timeline(events: list[dict], accepted_at: list) -> tuple[Timeline, list[float]]:
    """The run's timeline and the run time of each accepted row (in the given order)."""
    walls = [t for t in (_ts(x) for x in accepted_at) if t is not None]
    tl = Timeline.from_intervals(session_intervals(events, walls))
    return tl, [tl.run_time(w) for w in walls]
