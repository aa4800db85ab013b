"""Per-regulator objective weights: a placed site of regulator ``r`` is worth ``weight[r]``
(default 1) instead of 1, so long or important sites can win over many short ones.

Config: ``generation.plans[].regulator_constraints.weights``: ``{regulator: positive integer}``.
The side-bias tie-break still stays below one unit of value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..types import InfeasibleProblemError, Problem, Site
from .base import Constraint, need_int

MAX_WEIGHT = 1000


@dataclass(frozen=True)
class RegulatorWeights(Constraint):
    """``weights``: (regulator, weight) pairs, sorted."""

    weights: tuple[tuple[str, int], ...]
    key = "weights"
    shift_invariant = True

    def site_weight(self, site: Site) -> int:
        return dict(self.weights).get(site.regulator, 1)

    def precheck(self, problem: Problem, placeable: Sequence[Site], required: Mapping[str, int]) -> None:
        for reg, w in self.weights:
            if not 1 <= w <= MAX_WEIGHT:
                raise InfeasibleProblemError(f"weights[{reg}] must be an integer from 1 to {MAX_WEIGHT}, got {w}")


def parse_weights(raw: Any, where: str) -> RegulatorWeights | None:
    """``weights``: ``{regulator: integer 1..1000}``; ValueError with one line naming ``where``."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a mapping of regulator name to an integer weight, got {raw!r}")
    out = []
    for reg, w in raw.items():
        n = need_int(w, f"{where}[{reg}]", low=1)
        if n > MAX_WEIGHT:
            raise ValueError(f"{where}[{reg}] must be at most {MAX_WEIGHT}, got {n}")
        out.append((str(reg), n))
    return RegulatorWeights(tuple(sorted(out))) if out else None
