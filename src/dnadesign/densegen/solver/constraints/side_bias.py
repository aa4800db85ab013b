"""Side biases: a soft preference for listed regulators or site ids near the 5' or 3' end.

Config: ``generation.plans[].fixed_elements.side_biases``. It only breaks ties: the whole bias of
a solution stays below one unit of site value (see ``bias_table``), so it never trades a site.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..types import Problem, SideBias
from .base import Constraint

BIAS_STEPS = 8  # resolution of the side-bias tie-break per placement


@dataclass(frozen=True)
class SideBiases(Constraint):
    """The problem's side biases (a tie-break in the objective; nothing to check)."""

    biases: tuple[SideBias, ...]
    key = "side_biases"


def bias_table(problem: Problem) -> tuple[int, Callable[[Any], int]]:
    """(scale, integer tie-break of one placement): the scale keeps the summed tie-break below one site."""
    L = problem.length
    steps = [(set(sb.left), set(sb.right), sb.weight) for sb in problem.side_biases]
    if not steps:
        return 1, lambda p: 0
    max_w = max(w for _, _, w in steps) or 1.0

    def bias(p: Any) -> int:
        span = max(1, L - len(p.sequence))
        total = 0.0
        for left, right, w in steps:
            rel = w / max_w
            if p.site_id in left or p.regulator in left:
                total += rel * (1 - p.start / span)
            if p.site_id in right or p.regulator in right:
                total += rel * (p.start / span)
        return round(total * BIAS_STEPS)

    per_site = BIAS_STEPS * len(steps)
    return per_site * max(1, len(problem.sites)) + 1, bias
