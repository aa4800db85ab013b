"""IUPAC nucleotide codes: patterns such as ``GCNNNNNNNGC`` as per-position base sets."""

from __future__ import annotations

import re
from functools import lru_cache

CODES: dict[str, str] = {
    "A": "A", "C": "C", "G": "G", "T": "T",
    "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT", "M": "AC",
    "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT",
}
_COMPLEMENT = str.maketrans("ACGTRYSWKMBDHVN", "TGCAYRSWMKVHDBN")


def is_pattern(text: str) -> bool:
    """True for a non-empty upper-case IUPAC string that is not all ``N``."""
    return bool(text) and all(ch in CODES for ch in text) and set(text) != {"N"}


def revcomp_pattern(pattern: str) -> str:
    """Reverse complement of an IUPAC pattern (``R`` <-> ``Y``, ``N`` stays ``N``...)."""
    return pattern.translate(_COMPLEMENT)[::-1]


def base_sets(pattern: str) -> list[str]:
    """Allowed bases at each position of ``pattern``."""
    return [CODES[ch] for ch in pattern]


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile("(?=" + "".join(f"[{CODES[ch]}]" for ch in pattern) + ")")


def matches(text: str, pattern: str) -> list[int]:
    """Start offsets of every (possibly overlapping) match of ``pattern`` in the ACGT ``text``."""
    return [m.start() for m in _regex(pattern).finditer(text)]


def both_strands(patterns: tuple[str, ...]) -> list[str]:
    """The patterns and their reverse complements, unique, sorted."""
    return sorted(set(patterns) | {revcomp_pattern(p) for p in patterns})
