"""Forbidden sequences on both strands: literal k-mers, IUPAC patterns and restriction sites.

One module for all three (config keys ``forbid_kmers``, ``forbid_patterns``, ``forbid_enzymes``
under ``generation.sequence_constraints``): a k-mer is a pattern without ambiguity codes and an
enzyme is its recognition site from Biopython's ``Bio.Restriction`` data. A match lying entirely
inside a fixed promoter element, at that element's position, is exempt (promoters are given).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..dna import BASES
from ..types import InfeasibleProblemError, Problem, Site, Solution
from .base import Constraint, need_list
from .iupac import base_sets, both_strands, is_pattern, matches, revcomp_pattern


@dataclass(frozen=True)
class ForbiddenPatterns(Constraint):
    """No match of any ``patterns`` (IUPAC; reverse complements included) anywhere in the sequence.

    ``labels`` names each pattern in messages (an enzyme name, or the pattern itself).
    """

    patterns: tuple[str, ...]
    labels: tuple[str, ...] = ()
    key = "forbid_patterns"
    prunes = True

    def config_key(self) -> str:
        return "forbid_patterns" if tuple(self.labels or self.patterns) == self.patterns else "forbid_enzymes"

    @property
    def oriented(self) -> list[str]:
        """Every pattern and its reverse complement."""
        return both_strands(self.patterns)

    def describe(self, pattern: str) -> str:
        """How messages name a (possibly reverse-complemented) pattern: k-mer, pattern or enzyme site."""
        for p, lab in zip(self.patterns, self.labels or self.patterns, strict=False):
            if pattern in (p, revcomp_pattern(p)):
                if lab != p:
                    return f"forbidden site of {lab} ({pattern})"
                return f"forbidden k-mer {pattern}" if set(p) <= set(BASES) else f"forbidden pattern {p} ({pattern})"
        return f"forbidden pattern {pattern}"

    def allows(self, problem: Problem, site: Site, seq: str) -> bool:
        return not any(matches(seq, f) for f in self.oriented)

    def validate(self, problem: Problem) -> None:
        for p in self.patterns:
            if not is_pattern(p):
                raise InfeasibleProblemError(
                    f"forbidden pattern {p!r} is not upper-case DNA with IUPAC codes (ACGTRYSWKMBDHVN, not all N)"
                )

    def encode(self, pm: Any) -> None:
        m = pm.model
        L = pm.problem.length
        for f in self.oriented:
            sets = base_sets(f)
            exempt: dict[int, list] = {}
            for pv in pm.promoter_placements:
                for t in matches(pv.sequence, f):
                    exempt.setdefault(pv.start + t, []).append(pv.literal)
            for i in range(L - len(f) + 1):
                clause = []
                for j, allowed in enumerate(sets):
                    if len(allowed) == 1:  # "not this base" (the same literal as before IUPAC)
                        clause.append(pm.base[i + j][BASES.index(allowed)].Not())
                    elif len(allowed) < 4:  # "one of the other bases"
                        clause += [pm.base[i + j][c] for c, ch in enumerate(BASES) if ch not in allowed]
                m.add_bool_or(clause + exempt.get(i, []))

    def bases_ok(self, problem: Problem, draft: Any, i: int) -> bool:
        """No match through ``i`` among known bases (matches inside a fixed promoter element are exempt)."""
        b, L = draft.bases, problem.length
        fixed = None
        for f in self.oriented:
            k = len(f)
            for s in range(max(0, i - k + 1), min(i, L - k) + 1):
                window = b[s : s + k]
                if None in window or not matches("".join(window), f):
                    continue
                fixed = draft.fixed_spans() if fixed is None else fixed
                if not any(lo <= s and s + k <= hi for lo, hi in fixed):
                    return False
        return True

    def check(self, problem: Problem, solution: Solution) -> list[str]:
        errors = []
        fixed = [p for p in solution.placements if p.fixed]
        for f in self.oriented:
            allowed = {p.offset + t for p in fixed for t in matches(p.sequence, f)}
            errors += [f"{self.describe(f)} at {i}" for i in matches(solution.sequence, f) if i not in allowed]
        return errors


def parse_patterns(raw: Any, where: str) -> list[str]:
    """``forbid_patterns``: a list of IUPAC strings (upper-cased); ValueError naming ``where``."""
    out = []
    for k, item in enumerate(need_list(raw, where, "IUPAC patterns such as GCNNNNNNNGC")):
        p = str(item).strip().upper() if isinstance(item, str) else ""
        if not is_pattern(p):
            raise ValueError(f"{where}[{k}]: {item!r} is not a DNA pattern (use A C G T and the IUPAC codes "
                             f"R Y S W K M B D H V N, not only N)")
        out.append(p)
    return list(dict.fromkeys(out))


def forbidden_rule(kmers: tuple[str, ...] = (), patterns: tuple[str, ...] = (),
                   enzymes: tuple[tuple[str, str], ...] = ()) -> ForbiddenPatterns | None:
    """One ``ForbiddenPatterns`` for literal k-mers, IUPAC patterns and (name, site) enzymes."""
    pats: list[str] = []
    labels: list[str] = []
    for p in (*kmers, *patterns):
        if p not in pats:
            pats.append(p)
            labels.append(p)
    for name, site in enzymes:
        pats.append(site)
        labels.append(name)
    return ForbiddenPatterns(tuple(pats), tuple(labels)) if pats else None
