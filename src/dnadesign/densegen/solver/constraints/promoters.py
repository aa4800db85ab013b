"""Fixed promoter elements (e.g. sigma70 -35/-10): one upstream and one downstream element per
promoter, on the + strand, with a spacer range and optional start windows.

Config: ``generation.plans[].fixed_elements.promoter_constraints`` and ``fixed_element_matrix``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..dna import BASES, is_dna
from ..types import PROMOTER_REGULATOR, InfeasibleProblemError, Problem, PromoterConstraint, Site, Solution
from .base import Constraint, PlacementVar


def _window(pos: tuple[int, int] | None, length: int, elem_len: int) -> tuple[int, int]:
    lo, hi = 0, length - elem_len
    if pos is not None:
        lo, hi = max(lo, pos[0]), min(hi, pos[1])
    return lo, hi


def start_pairs(prom: PromoterConstraint, length: int) -> list[tuple[int, int]]:
    """All (upstream start, downstream start) pairs allowed by length, windows and spacer."""
    ulo, uhi = _window(prom.upstream_pos, length, len(prom.upstream))
    dlo, dhi = _window(prom.downstream_pos, length, len(prom.downstream))
    pairs = []
    for u in range(ulo, uhi + 1):
        for gap in range(prom.spacer_min, prom.spacer_max + 1):
            d = u + len(prom.upstream) + gap
            if dlo <= d <= dhi:
                pairs.append((u, d))
    return pairs


@dataclass(frozen=True)
class Promoter(Constraint):
    """One fixed upstream/downstream pair (``problem.promoters[index]``)."""

    index: int
    prom: PromoterConstraint
    key = "promoter_constraints"

    def precheck(self, problem: Problem, placeable: Sequence[Site], required: Mapping[str, int]) -> None:
        prom, L = self.prom, problem.length
        for part in (prom.upstream, prom.downstream):
            if not is_dna(part):
                raise InfeasibleProblemError(f"promoter {prom.name!r} element {part!r} is not upper-case ACGT")
        if prom.spacer_min > prom.spacer_max:
            raise InfeasibleProblemError(f"promoter {prom.name!r}: spacer_min {prom.spacer_min} > spacer_max {prom.spacer_max}")
        if prom.spacer_min < 0:
            raise InfeasibleProblemError(f"promoter {prom.name!r}: spacer_min must be >= 0")
        need = prom.min_span
        if need > L:
            raise InfeasibleProblemError(
                f"promoter {prom.name!r} needs at least {need} bp but the sequence is {L} bp",
                hint="lengthen the sequence or shorten the spacer",
            )
        if not start_pairs(prom, L):
            raise InfeasibleProblemError(
                f"promoter {prom.name!r} cannot be placed: its position windows and spacer range are incompatible with length {L}"
            )

    def fixed_elements(self, problem: Problem) -> list[PlacementVar]:
        """Every allowed start of the upstream element, then of the downstream one."""
        prom = self.prom
        pairs = start_pairs(prom, problem.length)
        return [
            PlacementVar(-1, f"{prom.name}:{role}", PROMOTER_REGULATOR, "+", start, seq, fixed=True)
            for role, seq, starts in (("upstream", prom.upstream, sorted({u for u, _ in pairs})),
                                      ("downstream", prom.downstream, sorted({d for _, d in pairs})))
            for start in starts
        ]

    def encode(self, pm: Any) -> None:
        m, pi, prom = pm.model, self.index, self.prom
        pairs = start_pairs(prom, pm.problem.length)
        ups: dict[int, Any] = {}
        downs: dict[int, Any] = {}
        for pv in pm.fixed_elements_of(self):
            upstream = pv.site_id.endswith(":upstream")
            pv.literal = m.new_bool_var(f"p{pi}{'u' if upstream else 'd'}{pv.start}")
            m.add_bool_and([pm.base[pv.start + j][BASES.index(ch)] for j, ch in enumerate(pv.sequence)]).only_enforce_if(pv.literal)
            (ups if upstream else downs)[pv.start] = pv
        m.add_exactly_one(p.literal for p in ups.values())
        m.add_exactly_one(p.literal for p in downs.values())
        for down_start, pv in downs.items():
            m.add_bool_or([ups[us].literal for us, ds in pairs if ds == down_start]).only_enforce_if(pv.literal)
        for up_start, pv in ups.items():
            m.add_bool_or([downs[ds].literal for us, ds in pairs if us == up_start]).only_enforce_if(pv.literal)

    def check(self, problem: Problem, solution: Solution) -> list[str]:
        prom = self.prom
        ups = [p for p in solution.placements if p.fixed and p.site_id == f"{prom.name}:upstream"]
        downs = [p for p in solution.placements if p.fixed and p.site_id == f"{prom.name}:downstream"]
        if len(ups) != 1 or len(downs) != 1:
            return [f"promoter {prom.name}: expected one upstream and one downstream placement"]
        errors = []
        u, d = ups[0], downs[0]
        if u.sequence != prom.upstream or d.sequence != prom.downstream or u.strand != "+" or d.strand != "+":
            errors.append(f"promoter {prom.name}: element sequence or strand is wrong")
        gap = d.offset - (u.offset + len(prom.upstream))
        if not prom.spacer_min <= gap <= prom.spacer_max:
            errors.append(f"promoter {prom.name}: spacer {gap} outside [{prom.spacer_min}, {prom.spacer_max}]")
        for name, p, win in (("upstream", u, prom.upstream_pos), ("downstream", d, prom.downstream_pos)):
            if win is not None and not win[0] <= p.offset <= win[1]:
                errors.append(f"promoter {prom.name}: {name} at {p.offset} outside window {win}")
        return errors
