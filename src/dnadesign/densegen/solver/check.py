"""Independent solution checker: re-verifies a solution from the problem alone.

It shares no code with the model beyond the DNA helpers, so a modelling bug shows up here.
"""

from __future__ import annotations

import math
from collections import Counter

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
    regs: Counter[str] = Counter()
    fixed = []
    for p in solution.placements:
        if seq[p.offset : p.offset + len(p.sequence)] != p.sequence or p.offset < 0 or p.offset + len(p.sequence) > L:
            errors.append(f"placement {p.site_id}@{p.offset} does not match the sequence")
        if p.fixed:
            fixed.append(p)
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
        regs[site.regulator] += 1
    for sid, n in used.items():
        if n > 1:
            errors.append(f"site {sid} used {n} times")

    # Promoters: exactly one upstream and one downstream element each, spacer and windows hold.
    for prom in problem.promoters:
        ups = [p for p in fixed if p.site_id == f"{prom.name}:upstream"]
        downs = [p for p in fixed if p.site_id == f"{prom.name}:downstream"]
        if len(ups) != 1 or len(downs) != 1:
            errors.append(f"promoter {prom.name}: expected one upstream and one downstream placement")
            continue
        u, d = ups[0], downs[0]
        if u.sequence != prom.upstream or d.sequence != prom.downstream or u.strand != "+" or d.strand != "+":
            errors.append(f"promoter {prom.name}: element sequence or strand is wrong")
        gap = d.offset - (u.offset + len(prom.upstream))
        if not prom.spacer_min <= gap <= prom.spacer_max:
            errors.append(f"promoter {prom.name}: spacer {gap} outside [{prom.spacer_min}, {prom.spacer_max}]")
        for name, p, win in (("upstream", u, prom.upstream_pos), ("downstream", d, prom.downstream_pos)):
            if win is not None and not win[0] <= p.offset <= win[1]:
                errors.append(f"promoter {prom.name}: {name} at {p.offset} outside window {win}")

    # Forbidden k-mers on both strands, except occurrences lying exactly inside a fixed element.
    allowed: set[tuple[str, int]] = set()
    patterns = set(problem.forbid_kmers) | {revcomp(k) for k in problem.forbid_kmers}
    for p in fixed:
        for f in patterns:
            for t in range(len(p.sequence) - len(f) + 1):
                if p.sequence[t : t + len(f)] == f:
                    allowed.add((f, p.offset + t))
    for f in sorted(patterns):
        for i in range(len(seq) - len(f) + 1):
            if seq[i : i + len(f)] == f and (f, i) not in allowed:
                errors.append(f"forbidden k-mer {f} at {i}")

    if seq:
        gc = sum(ch in "GC" for ch in seq)
        if problem.gc_min is not None and gc < math.ceil(problem.gc_min * L - 1e-9):
            errors.append(f"GC {gc}/{L} below {problem.gc_min}")
        if problem.gc_max is not None and gc > math.floor(problem.gc_max * L + 1e-9):
            errors.append(f"GC {gc}/{L} above {problem.gc_max}")

    for reg, need in problem.min_count_by_regulator.items():
        if regs.get(reg, 0) < need:
            errors.append(f"regulator {reg}: {regs.get(reg, 0)} site(s) < {need}")
    for g in problem.groups:
        have = sum(1 for r in set(g.members) if regs.get(r, 0) > 0)
        if have < g.min_required:
            errors.append(f"group {g.name}: {have} member(s) present < {g.min_required}")
    if sum(used.values()) < problem.min_total_sites:
        errors.append(f"{sum(used.values())} site(s) < min_total_sites {problem.min_total_sites}")
    if int(solution.objective + 1e-9) != sum(used.values()):
        errors.append(f"objective {solution.objective} does not match {sum(used.values())} placed site(s)")
    return errors
