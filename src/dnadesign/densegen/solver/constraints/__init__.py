"""Constraints as modules: one module per rule, each owning its config shape (``parse``), its
CP-SAT encoding, its independent check and its precheck reasons (see ``base.Constraint``).

``constraints_of(problem)`` lists a problem's constraints in encoding order: the ones given by
the ``Problem`` fields (promoters, forbidden k-mers, GC, regulator minimums, groups, the total)
first, then ``problem.rules`` in order. ``RULES`` maps each config key of the newer rules to the
function that parses it into ``Problem.rules`` entries. Adding a rule is one module plus one entry
here (and its config key in ``densegen/config.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..types import Problem
from .base import Constraint, PlacementVar
from .counts import MinTotalSites, RegulatorCount, parse_counts
from .enzymes import parse_enzymes
from .forbidden import ForbiddenPatterns, forbidden_rule, parse_patterns
from .gc import GcContent, parse_windows
from .groups import Group
from .homopolymer import MaxHomopolymer, parse_max_homopolymer
from .pins import Pin, parse_pins
from .promoters import Promoter, start_pairs
from .side_bias import SideBiases, bias_table
from .spacing import Spacing, parse_spacing
from .weights import RegulatorWeights, parse_weights


def _max_counts(raw: Any, where: str) -> list[Constraint]:
    return [RegulatorCount(reg, 0, n) for reg, n in parse_counts(raw, where).items()]


def _patterns(raw: Any, where: str) -> list[Constraint]:
    rule = forbidden_rule(patterns=tuple(parse_patterns(raw, where)))
    return [rule] if rule else []


def _enzymes(raw: Any, where: str) -> list[Constraint]:
    rule = forbidden_rule(enzymes=tuple(parse_enzymes(raw, where)))
    return [rule] if rule else []


def _homopolymer(raw: Any, where: str) -> list[Constraint]:
    n = parse_max_homopolymer(raw, where)
    return [MaxHomopolymer(n)] if n is not None else []


def _weights(raw: Any, where: str) -> list[Constraint]:
    w = parse_weights(raw, where)
    return [w] if w is not None else []


RULES: dict[str, Callable[[Any, str], list[Constraint]]] = {
    # generation.sequence_constraints.<key>
    "forbid_patterns": _patterns,
    "forbid_enzymes": _enzymes,
    "gc_windows": lambda raw, where: list(parse_windows(raw, where)),
    "max_homopolymer": _homopolymer,
    # generation.plans[].regulator_constraints.<key>
    "max_count_by_regulator": _max_counts,
    "pins": lambda raw, where: list(parse_pins(raw, where)),
    "spacing": lambda raw, where: list(parse_spacing(raw, where)),
    "weights": _weights,
}
"""Config key -> parser of its value into ``Problem.rules`` entries (ValueError naming the key)."""


def constraints_of(problem: Problem) -> list[Constraint]:
    """Every constraint of ``problem``, in encoding order (see the module docstring)."""
    out: list[Constraint] = [Promoter(i, p) for i, p in enumerate(problem.promoters)]
    kmers = forbidden_rule(kmers=problem.forbid_kmers)
    if kmers is not None:
        out.append(kmers)
    if problem.gc_min is not None or problem.gc_max is not None:
        out.append(GcContent(problem.gc_min, problem.gc_max))
    out += [RegulatorCount(reg, need) for reg, need in problem.min_count_by_regulator.items()]
    out += [Group(g) for g in problem.groups]
    if problem.min_total_sites > 0:
        out.append(MinTotalSites(problem.min_total_sites))
    if problem.side_biases:
        out.append(SideBiases(problem.side_biases))
    out += list(problem.rules)
    return out


__all__ = [
    "RULES",
    "Constraint",
    "ForbiddenPatterns",
    "GcContent",
    "Group",
    "MaxHomopolymer",
    "MinTotalSites",
    "Pin",
    "PlacementVar",
    "Promoter",
    "RegulatorCount",
    "RegulatorWeights",
    "SideBiases",
    "Spacing",
    "bias_table",
    "constraints_of",
    "forbidden_rule",
    "start_pairs",
]
