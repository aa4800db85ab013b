"""Fast input validation: reject malformed or obviously infeasible problems before modelling.

The general checks live here; each rule's own reasons live in its module (``constraints/``).
"""

from __future__ import annotations

from collections import Counter

from .constraints import constraints_of
from .constraints.base import pruning, required_counts
from .constraints.promoters import start_pairs
from .dna import is_dna, oriented_sequences
from .types import InfeasibleProblemError, Problem, Site


def promoter_start_pairs(problem: Problem, index: int) -> list[tuple[int, int]]:
    """All (upstream start, downstream start) pairs allowed by length, windows and spacer."""
    return start_pairs(problem.promoters[index], problem.length)


def placeable_sites(problem: Problem, rules=None, *, starts: bool = True) -> list[Site]:
    """Sites with at least one placement that fits and that no rule refuses (``starts=False``:
    judge the site's sequence only, ignoring rules on where it starts, such as pins)."""
    by_seq, by_start = pruning(constraints_of(problem) if rules is None else rules)
    by_start = by_start if starts else []
    L = problem.length
    out = []
    for s in problem.sites:
        n = len(s.sequence)
        if n > L:
            continue
        if by_start and not any(all(r.allows_start(problem, s, t) for r in by_start) for t in range(L - n + 1)):
            continue
        if any(all(r.allows(problem, s, o) for r in by_seq) for _, o in oriented_sequences(s.sequence, problem.strands)):
            out.append(s)
    return out


def precheck(problem: Problem) -> None:
    """Raise ``InfeasibleProblemError`` for malformed or obviously infeasible inputs.

    Checks the length, strands, DNA alphabets and unique site ids here, then every rule's own
    reasons (``constraints/``): GC bounds, that each promoter fits with its windows and spacer,
    that every group and regulator minimum can be met by sites that fit in the sequence and that
    no rule refuses, ``min_total_sites``, pins, spacing, homopolymer runs... Passing the precheck
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
    rules = constraints_of(problem)
    for rule in rules:
        rule.validate(problem)
    placeable = placeable_sites(problem, rules)
    required = required_counts(rules)
    for rule in sorted(rules, key=lambda r: not r.prunes):  # a rule that removes placements explains itself first
        rule.precheck(problem, placeable, required)
