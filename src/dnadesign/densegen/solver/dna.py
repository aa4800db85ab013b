"""Small DNA helpers shared by the model, the checker and the precheck."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .types import Problem

BASES = "ACGT"
_COMPLEMENT = str.maketrans("ACGT", "TGCA")


def revcomp(seq: str) -> str:
    """Reverse complement of an upper-case ACGT string."""
    return seq.translate(_COMPLEMENT)[::-1]


def is_dna(seq: str) -> bool:
    """True when ``seq`` is a non-empty string over ``ACGT``."""
    return bool(seq) and all(ch in BASES for ch in seq)


def occurrences(text: str, pattern: str) -> list[int]:
    """Start offsets of every (possibly overlapping) occurrence of ``pattern`` in ``text``."""
    out = []
    start = text.find(pattern)
    while start != -1:
        out.append(start)
        start = text.find(pattern, start + 1)
    return out


def oriented_sequences(seq: str, strands: str) -> list[tuple[str, str]]:
    """(strand, sequence as read on +) for each orientation a site may take.

    A reverse-complement palindrome gets only ``+``: its ``-`` placement is the same DNA.
    """
    out = [("+", seq)]
    if strands == "double":
        rc = revcomp(seq)
        if rc != seq:
            out.append(("-", rc))
    return out


def placeable_orientations(problem: Problem) -> list[tuple[int, str, str]]:
    """(site index, strand, sequence as read on +) for every orientation of a library site that
    can be placed at all: not longer than the sequence and holding no forbidden k-mer (either
    strand of it). The items the relaxation, the pool's ranking and the local search share."""
    forbidden = set(problem.forbid_kmers) | {revcomp(k) for k in problem.forbid_kmers}
    return [(si, strand, seq)
            for si, site in enumerate(problem.sites) if len(site.sequence) <= problem.length
            for strand, seq in oriented_sequences(site.sequence, problem.strands)
            if not any(f in seq for f in forbidden)]
