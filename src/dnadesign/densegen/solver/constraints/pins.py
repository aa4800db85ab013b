"""A regulator pinned at a position or window: at least one of its sites is placed, and every
placed site of it starts inside ``[start_min, start_max]`` (0-based offsets on the + strand).

Config: ``generation.plans[].regulator_constraints.pins``: ``[{regulator, at}]`` or
``[{regulator, window: [lo, hi]}]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..dna import oriented_sequences
from ..types import InfeasibleProblemError, Problem, Site, Solution
from .base import Constraint, each_mapping, need_int, need_name

PIN_CANDIDATES = 8  # shortest sites of the pinned regulator a layout repair tries


@dataclass(frozen=True)
class Pin(Constraint):
    """Sites of ``regulator`` start in ``[start_min, start_max]``; at least one is placed."""

    regulator: str
    start_min: int
    start_max: int
    key = "pins"
    prunes = True

    def _where(self) -> str:
        if self.start_min == self.start_max:
            return f"pin {self.regulator!r} at {self.start_min}"
        return f"pin {self.regulator!r} in [{self.start_min}, {self.start_max}]"

    def allows_start(self, problem: Problem, site: Site, start: int) -> bool:
        return site.regulator != self.regulator or self.start_min <= start <= self.start_max

    def precheck(self, problem: Problem, placeable: Sequence[Site], required: Mapping[str, int]) -> None:
        if self.start_min < 0 or self.start_min > self.start_max:
            raise InfeasibleProblemError(f"{self._where()}: the window must satisfy 0 <= start_min <= start_max")
        if not any(s.regulator == self.regulator for s in placeable):
            lens = sorted({len(s.sequence) for s in problem.sites if s.regulator == self.regulator})
            why = (f"its sites ({', '.join(map(str, lens))} bp) cannot start there in a {problem.length}-bp sequence "
                   f"(or break another rule there)" if lens else "the library has no site of it")
            raise InfeasibleProblemError(f"{self._where()}: {why}",
                                         hint="move the window, lengthen the sequence or add sites of that regulator")

    def required(self) -> dict[str, int]:
        return {self.regulator: 1}

    def encode(self, pm: Any) -> None:
        pm.model.add_bool_or(pm.used_by_regulator.get(self.regulator, []) or [pm.false])

    def repair(self, problem: Problem, draft: Any, rng: Any) -> None:
        """Drop sites of ``regulator`` outside the window; if none is left, place one of its
        shortest sites in the window where it displaces the fewest placements."""
        for t in [t for t in draft.library if problem.sites[t[0]].regulator == self.regulator]:
            if not self.start_min <= t[2] <= self.start_max:
                draft.remove(t)
        if any(problem.sites[t[0]].regulator == self.regulator for t in draft.library):
            return
        used = {t[0] for t in draft.library}
        mine = sorted((si for si, s in enumerate(problem.sites) if s.regulator == self.regulator and si not in used),
                      key=lambda si: (len(problem.sites[si].sequence), si))
        best: tuple | None = None
        for si in mine[:PIN_CANDIDATES]:
            for strand, seq in oriented_sequences(problem.sites[si].sequence, problem.strands):
                if not draft.allowed(si, seq, None):
                    continue
                for start in range(self.start_min, min(self.start_max, problem.length - len(seq)) + 1):
                    if not draft.fixed_agree(seq, start) or not draft.allowed(si, seq, start):
                        continue
                    clash = draft.clashes(seq, start)
                    key = (len(clash), len(seq), rng.random())
                    if best is None or key < best[0]:
                        best = (key, si, strand, start, seq, clash)
                    if not clash:
                        break
                if best is not None and not best[5]:
                    break
            if best is not None and not best[5]:
                break
        if best is None:
            return
        _key, si, strand, start, seq, clash = best
        for t in clash:
            draft.remove(t)
        draft.place(si, strand, start, seq)

    def check(self, problem: Problem, solution: Solution) -> list[str]:
        mine = [p for p in solution.library_placements if p.regulator == self.regulator]
        errors = [f"{self._where()}: site {p.site_id} starts at {p.offset}" for p in mine
                  if not self.start_min <= p.offset <= self.start_max]
        if not mine:
            errors.append(f"{self._where()}: no site of {self.regulator!r} placed")
        return errors


def parse_pins(raw: Any, where: str) -> list[Pin]:
    """``pins``: ``[{regulator, at}]`` or ``[{regulator, window: [lo, hi]}]``; ValueError naming ``where``."""
    out = []
    for at, d in each_mapping(raw, where, {"regulator", "at", "window"}, {"regulator"}):
        reg = need_name(d["regulator"], f"{at}.regulator")
        if ("at" in d) == ("window" in d):
            raise ValueError(f"{at}: give exactly one of `at` (a start offset) or `window` ([lo, hi] start offsets)")
        if "at" in d:
            lo = hi = need_int(d["at"], f"{at}.at", low=0)
        else:
            w = d["window"]
            if not isinstance(w, list | tuple) or len(w) != 2:
                raise ValueError(f"{at}.window must be [lo, hi] start offsets, got {w!r}")
            lo, hi = need_int(w[0], f"{at}.window[0]", low=0), need_int(w[1], f"{at}.window[1]", low=0)
            if lo > hi:
                raise ValueError(f"{at}.window must be [lo, hi] with lo <= hi, got {list(w)}")
        out.append(Pin(reg, lo, hi))
    return out
