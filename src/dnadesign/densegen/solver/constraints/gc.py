"""GC content bounds: over the whole sequence, or in every sliding window of a given length.

Config: ``generation.sequence_constraints.gc`` (``{min, max}``, whole sequence) and
``generation.sequence_constraints.gc_windows`` (``[{window, min, max}]``). A bound ``b`` on a
window of ``w`` bases allows GC counts from ``ceil(min*w)`` to ``floor(max*w)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..types import InfeasibleProblemError, Problem, Site, Solution
from .base import Constraint, each_mapping, need_fraction, need_int


@dataclass(frozen=True)
class GcContent(Constraint):
    """GC fraction within [``min``, ``max``] over every window of ``window`` bases (None: the whole sequence)."""

    min: float | None = None
    max: float | None = None
    window: int | None = None
    key = "gc"

    def config_key(self) -> str:
        return "gc" if self.window is None else "gc_windows"

    def _size(self, problem: Problem) -> int:
        return self.window if self.window is not None else problem.length

    def counts(self, size: int) -> tuple[int, int]:
        """Allowed GC counts (low, high) in a window of ``size`` bases."""
        lo = math.ceil(self.min * size - 1e-9) if self.min is not None else 0
        hi = math.floor(self.max * size + 1e-9) if self.max is not None else size
        return lo, hi

    def precheck(self, problem: Problem, placeable: Sequence[Site], required: Mapping[str, int]) -> None:
        for bound in (self.min, self.max):
            if bound is not None and not 0.0 <= bound <= 1.0:
                raise InfeasibleProblemError(f"GC bounds must lie in [0, 1], got {bound}")
        if self.min is not None and self.max is not None and self.min > self.max:
            what = "gc_min" if self.window is None else f"gc_windows (window {self.window}): min"
            raise InfeasibleProblemError(f"{what} {self.min} is above {'gc_max' if self.window is None else 'max'} {self.max}")
        size = self._size(problem)
        if self.window is not None and not 1 <= self.window <= problem.length:
            raise InfeasibleProblemError(
                f"gc_windows: window {self.window} must be between 1 and the sequence length {problem.length}"
            )
        lo, hi = self.counts(size)
        if lo > hi:
            if self.window is None:
                raise InfeasibleProblemError(f"no GC count of a {size}-base sequence lies in [{self.min}, {self.max}]")
            raise InfeasibleProblemError(
                f"gc_windows: no GC count of a {size}-base window lies in [{self.min}, {self.max}]",
                hint="widen the bounds or lengthen the window",
            )
        for prom in problem.promoters:  # a fixed element longer than the window settles its GC
            for part in (prom.upstream, prom.downstream):
                if self.window is not None and len(part) >= self.window:
                    gcs = [sum(ch in "GC" for ch in part[i : i + self.window]) for i in range(len(part) - self.window + 1)]
                    if min(gcs) < lo or max(gcs) > hi:
                        raise InfeasibleProblemError(
                            f"gc_windows: promoter {prom.name!r} element {part} has a {self.window}-base window with GC "
                            f"outside [{self.min}, {self.max}]", hint="widen the bounds or shorten the window")

    def encode(self, pm: Any) -> None:
        if self.min is None and self.max is None:
            return
        size = self._size(pm.problem)
        lo, hi = self.counts(size)
        gc = [row[1] + row[2] for row in pm.base]
        for i in range(pm.problem.length - size + 1):
            total = sum(gc[i : i + size])
            if self.min is not None:
                pm.model.add(total >= lo)
            if self.max is not None:
                pm.model.add(total <= hi)

    def layout_aware(self) -> bool:
        return self.min is not None or self.max is not None

    def bases_ok(self, problem: Problem, draft: Any, i: int) -> bool:
        """Every window through ``i`` can still reach its bounds (known GC, free bases)."""
        if self.min is None and self.max is None:
            return True
        size, L = self._size(problem), problem.length
        first, last = max(0, i - size + 1), min(i, L - size)
        if first > last:
            return True
        lo, hi = self.counts(size)
        gc, free = [0], [0]
        for b in draft.bases[first : last + size]:
            gc.append(gc[-1] + (b == "G" or b == "C"))
            free.append(free[-1] + (b is None))
        for s in range(last - first + 1):
            g = gc[s + size] - gc[s]
            if g > hi or g + free[s + size] - free[s] < lo:
                return False
        return True

    def check(self, problem: Problem, solution: Solution) -> list[str]:
        seq = solution.sequence
        if not seq or (self.min is None and self.max is None):
            return []
        size = self._size(problem)
        lo, hi = self.counts(size)
        errors = []
        for i in range(len(seq) - size + 1):
            gc = sum(ch in "GC" for ch in seq[i : i + size])
            at = "GC " if self.window is None else f"GC window {self.window} at {i}: "
            if self.min is not None and gc < lo:
                errors.append(f"{at}{gc}/{size} below {self.min}")
            if self.max is not None and gc > hi:
                errors.append(f"{at}{gc}/{size} above {self.max}")
        return errors


def parse_windows(raw: Any, where: str) -> list[GcContent]:
    """``gc_windows``: ``[{window, min, max}]`` -> rules; ValueError with one line naming ``where``."""
    out = []
    for at, d in each_mapping(raw, where, {"window", "min", "max"}, {"window"}):
        w = need_int(d["window"], f"{at}.window", low=1)
        lo, hi = need_fraction(d.get("min"), f"{at}.min"), need_fraction(d.get("max"), f"{at}.max")
        if lo is None and hi is None:
            raise ValueError(f"{at}: give min, max or both")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"{at}: min {lo} is above max {hi}")
        out.append(GcContent(lo, hi, w))
    return out
