"""A maximum homopolymer run: no base repeated more than ``max_run`` times in a row.

Config: ``generation.sequence_constraints.max_homopolymer``. Fixed promoter elements are not
exempt: an element with a longer run makes the problem infeasible (the precheck says so).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..dna import BASES
from ..types import InfeasibleProblemError, Problem, Site, Solution
from .base import Constraint, need_int


def longest_run(seq: str) -> tuple[int, int]:
    """(length, start) of the first longest single-base run of ``seq``."""
    best, at, run = 0, 0, 0
    for i, ch in enumerate(seq):
        run = run + 1 if i and seq[i - 1] == ch else 1
        if run > best:
            best, at = run, i - run + 1
    return best, at


@dataclass(frozen=True)
class MaxHomopolymer(Constraint):
    """No run of the same base longer than ``max_run``."""

    max_run: int
    key = "max_homopolymer"
    prunes = True

    def allows(self, problem: Problem, site: Site, seq: str) -> bool:
        return longest_run(seq)[0] <= self.max_run

    def precheck(self, problem: Problem, placeable: Sequence[Site], required: Mapping[str, int]) -> None:
        if self.max_run < 1:
            raise InfeasibleProblemError(f"max_homopolymer must be >= 1, got {self.max_run}")
        for prom in problem.promoters:
            for part in (prom.upstream, prom.downstream):
                run, at = longest_run(part)
                if run > self.max_run:
                    raise InfeasibleProblemError(
                        f"max_homopolymer {self.max_run}: promoter {prom.name!r} element {part} has a run of "
                        f"{run} {part[at]} at {at}", hint=f"raise max_homopolymer to at least {run}")

    def bases_ok(self, problem: Problem, draft: Any, i: int) -> bool:
        """The run of known equal bases through ``i`` is at most ``max_run`` long."""
        b = draft.bases
        ch = b[i]
        if ch is None:
            return True
        lo, hi = i, i
        while lo > 0 and b[lo - 1] == ch:
            lo -= 1
        while hi + 1 < len(b) and b[hi + 1] == ch:
            hi += 1
        return hi - lo + 1 <= self.max_run

    def encode(self, pm: Any) -> None:
        n = self.max_run + 1
        for i in range(pm.problem.length - n + 1):
            for c in range(len(BASES)):
                pm.model.add_bool_or([pm.base[i + j][c].Not() for j in range(n)])

    def check(self, problem: Problem, solution: Solution) -> list[str]:
        seq, errors, i = solution.sequence, [], 0
        while i < len(seq):
            j = i
            while j < len(seq) and seq[j] == seq[i]:
                j += 1
            if j - i > self.max_run:
                errors.append(f"homopolymer {seq[i]}x{j - i} at {i} above max_homopolymer {self.max_run}")
            i = j
        return errors


def parse_max_homopolymer(raw: Any, where: str) -> int | None:
    """``max_homopolymer``: an integer >= 1 or null; ValueError naming ``where``."""
    return None if raw is None else need_int(raw, where, low=1)
