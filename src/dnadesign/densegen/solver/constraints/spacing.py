"""Spacing between two regulators' sites: every placed site of ``a`` and every placed site of
``b`` (two different placements) are ``min_gap`` to ``max_gap`` bases apart.

The gap of two sites is ``max(starts) - min(ends)``: the free bases between them, negative when
they overlap. The rule does not ask for the sites to be present (combine it with
``min_count_by_regulator`` or ``pins`` for that).

Config: ``generation.plans[].regulator_constraints.spacing``: ``[{a, b, min_gap, max_gap}]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..types import InfeasibleProblemError, Problem, Site, Solution
from .base import Constraint, each_mapping, need_int, need_name


def gap(s1: int, e1: int, s2: int, e2: int) -> int:
    """Free bases between two intervals (negative: overlap length)."""
    return max(s1, s2) - min(e1, e2)


@dataclass(frozen=True)
class Spacing(Constraint):
    """Sites of ``a`` and ``b`` lie between ``min_gap`` and ``max_gap`` bases apart (None: open)."""

    a: str
    b: str
    min_gap: int | None = None
    max_gap: int | None = None
    key = "spacing"

    def _ok(self, g: int) -> bool:
        return (self.min_gap is None or g >= self.min_gap) and (self.max_gap is None or g <= self.max_gap)

    def _what(self) -> str:
        lo = "-inf" if self.min_gap is None else self.min_gap
        hi = "inf" if self.max_gap is None else self.max_gap
        return f"spacing {self.a}-{self.b} [{lo}, {hi}]"

    def precheck(self, problem: Problem, placeable: Sequence[Site], required: Mapping[str, int]) -> None:
        if self.min_gap is not None and self.max_gap is not None and self.min_gap > self.max_gap:
            raise InfeasibleProblemError(f"{self._what()}: min_gap {self.min_gap} is above max_gap {self.max_gap}")
        need = required
        both = need.get(self.a, 0) >= 1 and need.get(self.b, 0) >= (2 if self.a == self.b else 1)
        if not both or self.min_gap is None:
            return
        la = [len(s.sequence) for s in placeable if s.regulator == self.a]
        lb = [len(s.sequence) for s in placeable if s.regulator == self.b]
        if la and lb and min(la) + min(lb) + self.min_gap > problem.length:
            raise InfeasibleProblemError(
                f"{self._what()}: both regulators are required but their shortest sites ({min(la)} and {min(lb)} bp) "
                f"{self.min_gap} bases apart need {min(la) + min(lb) + self.min_gap} bp, above the sequence length "
                f"{problem.length}", hint="lower min_gap or lengthen the sequence")

    def encode(self, pm: Any) -> None:
        m = pm.model

        def intervals(reg: str) -> dict[tuple[int, int], list]:
            out: dict[tuple[int, int], list] = {}
            for p in pm.placements:
                if p.regulator == reg:
                    out.setdefault((p.start, p.start + len(p.sequence)), []).append(p.literal)
            return out

        ia, ib = intervals(self.a), intervals(self.b)
        lit: dict[tuple[str, tuple[int, int]], Any] = {}

        def any_of(tag: str, key: tuple[int, int], lits: list) -> Any:
            if (tag, key) not in lit:
                v = m.new_bool_var(f"sp{tag}{key[0]}_{key[1]}")
                for x in lits:
                    m.add_implication(x, v)
                lit[(tag, key)] = v
            return lit[(tag, key)]

        for ka, la in ia.items():
            for kb, lb in ib.items():
                if self._ok(gap(ka[0], ka[1], kb[0], kb[1])):
                    continue
                if self.a == self.b and ka == kb:
                    m.add_at_most_one(la)  # two different placements on the same interval
                    continue
                if self.a == self.b and ka > kb:
                    continue  # the pair was handled the other way round
                m.add_bool_or([any_of("a", ka, la).Not(), any_of("b" if self.a != self.b else "a", kb, lb).Not()])

    def repair(self, problem: Problem, draft: Any, rng: Any) -> None:
        """Drop the later site of each pair of ``a`` and ``b`` sites outside the allowed gap."""
        while True:
            lib = sorted(draft.library, key=lambda t: t[2])
            bad = None
            for i, x in enumerate(lib):
                for j, y in enumerate(lib):
                    if i == j or (self.a == self.b and j < i):
                        continue
                    if problem.sites[x[0]].regulator != self.a or problem.sites[y[0]].regulator != self.b:
                        continue
                    if not self._ok(gap(x[2], x[2] + len(x[3]), y[2], y[2] + len(y[3]))):
                        bad = max(x, y, key=lambda t: t[2])
                        break
                if bad is not None:
                    break
            if bad is None:
                return
            draft.remove(bad)

    def check(self, problem: Problem, solution: Solution) -> list[str]:
        lib = solution.library_placements
        errors = []
        for i, x in enumerate(lib):
            for j, y in enumerate(lib):
                if i == j or x.regulator != self.a or y.regulator != self.b or (self.a == self.b and j < i):
                    continue
                g = gap(x.offset, x.end, y.offset, y.end)
                if not self._ok(g):
                    errors.append(f"{self._what()}: {x.site_id}@{x.offset} and {y.site_id}@{y.offset} are {g} bases apart")
        return errors


def parse_spacing(raw: Any, where: str) -> list[Spacing]:
    """``spacing``: ``[{a, b, min_gap, max_gap}]``; ValueError with one line naming ``where``."""
    out = []
    for at, d in each_mapping(raw, where, {"a", "b", "min_gap", "max_gap"}, {"a", "b"}):
        a, b = need_name(d["a"], f"{at}.a"), need_name(d["b"], f"{at}.b")
        lo = None if d.get("min_gap") is None else need_int(d["min_gap"], f"{at}.min_gap")
        hi = None if d.get("max_gap") is None else need_int(d["max_gap"], f"{at}.max_gap")
        if lo is None and hi is None:
            raise ValueError(f"{at}: give min_gap, max_gap or both")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"{at}: min_gap {lo} is above max_gap {hi}")
        out.append(Spacing(a, b, lo, hi))
    return out
