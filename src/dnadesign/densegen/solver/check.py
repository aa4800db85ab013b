"""Independent solution checker: re-verifies a solution from the problem alone.

It shares no code with the model beyond the DNA helpers and each rule's own ``check`` and weight (in
``constraints/``, written from the rule's definition, not from its encoding), so a modelling
bug shows up here.
"""

from __future__ import annotations

from collections import Counter

from .constraints import constraints_of
from .constraints.base import site_value
from .dna import revcomp
from .types import Problem, Solution


def check_solution(problem: Problem, solution: Solution) -> list[str]:
    """Return every constraint the solution breaks; ``[]`` means it is valid."""
    errors: list[str] = []
    seq = solution.sequence
    L = problem.length
    if len(seq) != L:
        errors.append(f"sequence length {len(seq)} != {L}")
    if any(ch not in "ACGT" for ch in seq):
        errors.append("sequence has characters outside ACGT")
    sites = {s.id: s for s in problem.sites}
    used: Counter[str] = Counter()
    for p in solution.placements:
        if seq[p.offset : p.offset + len(p.sequence)] != p.sequence or p.offset < 0 or p.offset + len(p.sequence) > L:
            errors.append(f"placement {p.site_id}@{p.offset} does not match the sequence")
        if p.fixed:
            continue
        site = sites.get(p.site_id)
        if site is None:
            errors.append(f"placement names unknown site {p.site_id!r}")
            continue
        if p.regulator != site.regulator:
            errors.append(f"placement {p.site_id} has regulator {p.regulator!r}, site says {site.regulator!r}")
        if p.strand == "+":
            expect = site.sequence
        elif p.strand == "-":
            expect = revcomp(site.sequence)
            if problem.strands != "double":
                errors.append(f"placement {p.site_id} on '-' strand in a single-strand problem")
        else:
            errors.append(f"placement {p.site_id} has strand {p.strand!r}")
            continue
        if p.sequence != expect:
            errors.append(f"placement {p.site_id} sequence does not match the site on strand {p.strand}")
        used[p.site_id] += 1
    for sid, n in used.items():
        if n > 1:
            errors.append(f"site {sid} used {n} times")

    rules = constraints_of(problem)
    for rule in rules:
        errors += rule.check(problem, solution)

    value = sum(site_value(rules, sites[sid]) * n for sid, n in used.items())
    if int(solution.objective + 1e-9) != value:
        errors.append(f"objective {solution.objective} does not match the value {value} of the placed site(s)")
    return errors
