"""Regulator groups: at least ``min_required`` distinct members present.

Config: ``generation.plans[].regulator_constraints.groups``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..types import InfeasibleProblemError, Problem, RegulatorGroup, Site, Solution
from .base import Constraint, library_counts


@dataclass(frozen=True)
class Group(Constraint):
    """One ``RegulatorGroup``."""

    group: RegulatorGroup
    key = "groups"
    shift_invariant = True

    def precheck(self, problem: Problem, placeable: Sequence[Site], required: Mapping[str, int]) -> None:
        g = self.group
        have = {s.regulator for s in placeable}
        present = [m for m in dict.fromkeys(g.members) if m in have]
        if g.min_required > len(present):
            raise InfeasibleProblemError(
                f"group {g.name!r} requires {g.min_required} regulator(s) but only {len(present)} of its members "
                f"({', '.join(g.members) or 'none'}) have placeable sites in the library"
            )

    def encode(self, pm: Any) -> None:
        lits = [pm.presence(reg) for reg in dict.fromkeys(self.group.members)]
        if self.group.min_required > 0:
            pm.model.add(sum(lits) >= self.group.min_required)

    def check(self, problem: Problem, solution: Solution) -> list[str]:
        g = self.group
        regs = library_counts(solution)
        have = sum(1 for r in set(g.members) if regs.get(r, 0) > 0)
        return [f"group {g.name}: {have} member(s) present < {g.min_required}"] if have < g.min_required else []
