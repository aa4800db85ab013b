"""How many sites: per regulator (minimum and maximum) and in total.

Config: ``generation.plans[].regulator_constraints.min_count_by_regulator``,
``max_count_by_regulator`` and ``min_total_sites``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..types import InfeasibleProblemError, Problem, Site, Solution
from .base import Constraint, library_counts, need_int


@dataclass(frozen=True)
class RegulatorCount(Constraint):
    """Between ``min`` and ``max`` (None: no cap) placed sites of ``regulator``."""

    regulator: str
    min: int = 0
    max: int | None = None
    key = "min_count_by_regulator"
    shift_invariant = True

    def precheck(self, problem: Problem, placeable: Sequence[Site], required: Mapping[str, int]) -> None:
        need = max(self.min, required.get(self.regulator, 0))
        if self.max is not None and self.max < need:
            raise InfeasibleProblemError(
                f"max_count_by_regulator allows {self.max} site(s) of {self.regulator!r} but "
                f"min_count_by_regulator or pins ask {need}", hint="raise the maximum or lower the minimum")
        have = sum(1 for s in placeable if s.regulator == self.regulator)
        if self.min > have:
            raise InfeasibleProblemError(
                f"min_count_by_regulator asks {self.min} site(s) of {self.regulator!r} but the library has {have} placeable",
                hint="add sites for that regulator or lower the minimum",
            )

    def config_key(self) -> str:
        return "max_count_by_regulator" if self.max is not None else self.key

    def required(self) -> dict[str, int]:
        return {self.regulator: self.min} if self.min > 0 else {}

    def layout_aware(self) -> bool:
        return self.max is not None

    def repair(self, problem: Problem, draft: Any, rng: Any) -> None:
        """Drop the sites of ``regulator`` beyond ``max`` (the rightmost ones)."""
        if self.max is None:
            return
        mine = sorted((t for t in draft.library if problem.sites[t[0]].regulator == self.regulator), key=lambda t: t[2])
        for t in mine[self.max :]:
            draft.remove(t)

    def encode(self, pm: Any) -> None:
        used = pm.used_by_regulator.get(self.regulator, [])
        if self.min > 0:
            pm.model.add(sum(used) >= self.min)
        if self.max is not None and len(used) > self.max:
            pm.model.add(sum(used) <= self.max)

    def check(self, problem: Problem, solution: Solution) -> list[str]:
        n = library_counts(solution).get(self.regulator, 0)
        errors = []
        if n < self.min:
            errors.append(f"regulator {self.regulator}: {n} site(s) < {self.min}")
        if self.max is not None and n > self.max:
            errors.append(f"regulator {self.regulator}: {n} site(s) > max_count_by_regulator {self.max}")
        return errors


@dataclass(frozen=True)
class MinTotalSites(Constraint):
    """At least ``min`` library sites in all."""

    min: int
    key = "min_total_sites"
    shift_invariant = True

    def precheck(self, problem: Problem, placeable: Sequence[Site], required: Mapping[str, int]) -> None:
        if self.min > len(placeable):
            raise InfeasibleProblemError(f"min_total_sites is {self.min} but only {len(placeable)} site(s) can be placed")

    def encode(self, pm: Any) -> None:
        if self.min > 0:
            pm.model.add(pm.n_sites_expr >= self.min)

    def check(self, problem: Problem, solution: Solution) -> list[str]:
        n = solution.n_sites
        return [f"{n} site(s) < min_total_sites {self.min}"] if n < self.min else []


def parse_counts(raw: Any, where: str) -> dict[str, int]:
    """``{regulator: count}`` with counts >= 0; ValueError with one line naming ``where``."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a mapping of regulator name to a count, got {raw!r}")
    return {str(reg): need_int(n, f"{where}[{reg}]", low=0) for reg, n in raw.items()}
