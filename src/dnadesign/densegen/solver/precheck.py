"""Fast input validation: reject malformed or obviously infeasible problems before modelling."""

from __future__ import annotations

import math
from collections import Counter

from .dna import is_dna, oriented_sequences, revcomp
from .types import InfeasibleProblemError, Problem


def _window(pos: tuple[int, int] | None, length: int, elem_len: int) -> tuple[int, int]:
    lo, hi = 0, length - elem_len
    if pos is not None:
        lo, hi = max(lo, pos[0]), min(hi, pos[1])
    return lo, hi


def promoter_start_pairs(problem: Problem, index: int) -> list[tuple[int, int]]:
    """All (upstream start, downstream start) pairs allowed by length, windows and spacer."""
    prom = problem.promoters[index]
    L = problem.length
    ulo, uhi = _window(prom.upstream_pos, L, len(prom.upstream))
    dlo, dhi = _window(prom.downstream_pos, L, len(prom.downstream))
    pairs = []
    for u in range(ulo, uhi + 1):
        for gap in range(prom.spacer_min, prom.spacer_max + 1):
            d = u + len(prom.upstream) + gap
            if dlo <= d <= dhi:
                pairs.append((u, d))
    return pairs


def precheck(problem: Problem) -> None:
    """Raise ``InfeasibleProblemError`` for malformed or obviously infeasible inputs.

    Checks DNA alphabets, unique site ids, strands, GC bounds, that each promoter fits with its
    windows and spacer, that every group and regulator minimum can be met by sites that fit in
    the sequence and contain no forbidden k-mer, and ``min_total_sites``. Passing the precheck
    does not prove feasibility; the solve itself reports any remaining infeasibility.
    """
    L = problem.length
    if L <= 0:
        raise InfeasibleProblemError(f"sequence length must be positive, got {L}")
    if problem.strands not in ("single", "double"):
        raise InfeasibleProblemError(f"strands must be 'single' or 'double', got {problem.strands!r}")
    ids = Counter(s.id for s in problem.sites)
    dup = sorted(i for i, n in ids.items() if n > 1)
    if dup:
        raise InfeasibleProblemError(f"duplicate site ids: {', '.join(dup[:5])}", hint="give every site a unique id")
    for s in problem.sites:
        if not is_dna(s.sequence):
            raise InfeasibleProblemError(f"site {s.id!r} has a sequence that is not upper-case ACGT: {s.sequence!r}")
    for k in problem.forbid_kmers:
        if not is_dna(k):
            raise InfeasibleProblemError(f"forbidden k-mer {k!r} is not upper-case ACGT")
    if problem.gc_min is not None and problem.gc_max is not None and problem.gc_min > problem.gc_max:
        raise InfeasibleProblemError(f"gc_min {problem.gc_min} is above gc_max {problem.gc_max}")
    for bound in (problem.gc_min, problem.gc_max):
        if bound is not None and not 0.0 <= bound <= 1.0:
            raise InfeasibleProblemError(f"GC bounds must lie in [0, 1], got {bound}")
    if (problem.gc_min is not None and problem.gc_max is not None
            and math.ceil(problem.gc_min * L - 1e-9) > math.floor(problem.gc_max * L + 1e-9)):
        raise InfeasibleProblemError(f"no GC count of a {L}-base sequence lies in [{problem.gc_min}, {problem.gc_max}]")

    for i, prom in enumerate(problem.promoters):
        for part in (prom.upstream, prom.downstream):
            if not is_dna(part):
                raise InfeasibleProblemError(f"promoter {prom.name!r} element {part!r} is not upper-case ACGT")
        if prom.spacer_min > prom.spacer_max:
            raise InfeasibleProblemError(f"promoter {prom.name!r}: spacer_min {prom.spacer_min} > spacer_max {prom.spacer_max}")
        if prom.spacer_min < 0:
            raise InfeasibleProblemError(f"promoter {prom.name!r}: spacer_min must be >= 0")
        need = len(prom.upstream) + prom.spacer_min + len(prom.downstream)
        if need > L:
            raise InfeasibleProblemError(
                f"promoter {prom.name!r} needs at least {need} bp but the sequence is {L} bp",
                hint="lengthen the sequence or shorten the spacer",
            )
        if not promoter_start_pairs(problem, i):
            raise InfeasibleProblemError(
                f"promoter {prom.name!r} cannot be placed: its position windows and spacer range are incompatible with length {L}"
            )

    forbidden = set(problem.forbid_kmers) | {revcomp(k) for k in problem.forbid_kmers}

    def usable(seq: str) -> bool:
        if len(seq) > L:
            return False
        return not any(f in o for _, o in oriented_sequences(seq, "double") for f in forbidden)

    placeable = [s for s in problem.sites if usable(s.sequence)]
    by_reg = Counter(s.regulator for s in placeable)
    for reg, need in problem.min_count_by_regulator.items():
        if need > by_reg.get(reg, 0):
            raise InfeasibleProblemError(
                f"min_count_by_regulator asks {need} site(s) of {reg!r} but the library has {by_reg.get(reg, 0)} placeable",
                hint="add sites for that regulator or lower the minimum",
            )
    for g in problem.groups:
        present = [m for m in dict.fromkeys(g.members) if by_reg.get(m, 0) > 0]
        if g.min_required > len(present):
            raise InfeasibleProblemError(
                f"group {g.name!r} requires {g.min_required} regulator(s) but only {len(present)} of its members "
                f"({', '.join(g.members) or 'none'}) have placeable sites in the library"
            )
    if problem.min_total_sites > len(placeable):
        raise InfeasibleProblemError(
            f"min_total_sites is {problem.min_total_sites} but only {len(placeable)} site(s) can be placed"
        )
