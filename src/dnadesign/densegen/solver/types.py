"""Plain data types of the DenseGen solver: the problem, the options and the solutions.

Everything here is a frozen dataclass so problems can be hashed, cached and shared between
threads. Sequences are upper-case DNA over ``ACGT``; offsets are 0-based on the + strand.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dnadesign.core.errors import DnadesignError, InputError

if TYPE_CHECKING:
    from .constraints.base import Constraint

PROMOTER_REGULATOR = "promoter"
"""Regulator label carried by the placements of fixed promoter elements."""


@dataclass(frozen=True)
class Site:
    """A library binding site: a short DNA motif with its regulator label."""

    id: str
    sequence: str
    regulator: str


@dataclass(frozen=True)
class PromoterConstraint:
    """A fixed upstream/downstream pair (e.g. sigma70 -35/-10) with a spacer range.

    ``spacer_min``/``spacer_max`` count the free bases between the end of ``upstream`` and the
    start of ``downstream``. ``upstream_pos``/``downstream_pos`` are optional inclusive windows
    for the start offset of each element. Both elements sit on the + strand.
    """

    name: str
    upstream: str
    downstream: str
    spacer_min: int
    spacer_max: int
    upstream_pos: tuple[int, int] | None = None
    downstream_pos: tuple[int, int] | None = None

    @property
    def min_span(self) -> int:
        """Fewest bases the pair occupies (upstream + minimal spacer + downstream)."""
        return len(self.upstream) + self.spacer_min + len(self.downstream)


@dataclass(frozen=True)
class RegulatorGroup:
    """At least ``min_required`` distinct regulators among ``members`` must be present."""

    name: str
    members: tuple[str, ...]
    min_required: int


@dataclass(frozen=True)
class SideBias:
    """Soft preference: listed regulators or site ids near the 5' (left) or 3' (right) end."""

    left: tuple[str, ...] = ()
    right: tuple[str, ...] = ()
    weight: float = 1.0


@dataclass(frozen=True)
class Problem:
    """Everything the solver needs to design sequences of exactly ``length`` bases."""

    sites: tuple[Site, ...]
    length: int
    strands: str = "double"
    promoters: tuple[PromoterConstraint, ...] = ()
    groups: tuple[RegulatorGroup, ...] = ()
    min_count_by_regulator: Mapping[str, int] = field(default_factory=dict)
    min_total_sites: int = 0
    forbid_kmers: tuple[str, ...] = ()
    gc_min: float | None = None
    gc_max: float | None = None
    side_biases: tuple[SideBias, ...] = ()
    rules: tuple[Constraint, ...] = ()  # further rules from ``constraints`` (patterns, pins, weights...)

    @property
    def weighted(self) -> bool:
        """True when a weights rule makes some site worth more than 1 in the objective."""
        return any(getattr(r, "key", "") == "weights" for r in self.rules)

    def __hash__(self) -> int:  # Mapping field is not hashable; hash its items instead
        return hash(
            (
                self.sites,
                self.length,
                self.strands,
                self.promoters,
                self.groups,
                tuple(sorted(self.min_count_by_regulator.items())),
                self.min_total_sites,
                self.forbid_kmers,
                self.gc_min,
                self.gc_max,
                self.side_biases,
                self.rules,
            )
        )


@dataclass(frozen=True)
class SolverOptions:
    """How to search.

    ``time_limit_s`` bounds each CP-SAT solve; ``run_time_limit_s`` bounds the whole
    enumeration (checked between solves and used to shorten the last solve). ``mode`` is
    ``"optimal"`` (best-first; distinct placements) or ``"diverse"`` (a new site set per
    solution, densest level first, spread across sites and regulators within a level). ``deterministic=True`` measures every limit in
    counted work instead of a clock (``budget.WorkClock``), so that runs that hit a limit give the same
    solutions whatever the load (with ``workers=1``).
    ``stall_time_s`` ends the first (optimising) solve early when the incumbent has not improved
    for that long (wall clock; the bound and ``optimal`` flag stay honest).
    ``min_objective_fraction`` stops enumeration below that fraction of the first solution's sites.
    ``cancel`` (an event the caller may set from another thread) ends the enumeration: the CP-SAT
    search in progress is stopped and the iterator ends without another solution.
    ``clock`` is how ``time_limit_s`` and ``run_time_limit_s`` are measured: ``"wall"`` seconds, or
    ``"cpu"`` seconds of this process (for oversubscribed nodes: the same budget of computation
    whatever the load). ``time_limit_s`` covers everything up to the first solution (model build,
    beam, bound and CP-SAT); when it runs out, the best checked layout so far is returned with
    ``optimal=False``.
    """

    time_limit_s: float = 10.0
    seed: int = 0
    workers: int = 1
    mode: str = "optimal"
    run_time_limit_s: float | None = None
    deterministic: bool = False
    min_objective_fraction: float = 0.0
    stall_time_s: float | None = None
    clock: str = "wall"
    cancel: threading.Event | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Placement:
    """One site (or fixed promoter element) placed in a solution.

    ``offset`` is 0-based on the + strand; ``sequence`` is how the site reads on the + strand
    (the reverse complement of the site for strand ``"-"``). Promoter elements use
    ``site_id = "<promoter name>:upstream"`` / ``":downstream"`` and regulator ``"promoter"``.
    """

    site_id: str
    regulator: str
    offset: int
    strand: str
    sequence: str
    fixed: bool = False  # True for promoter elements

    @property
    def end(self) -> int:
        """Exclusive end offset on the + strand."""
        return self.offset + len(self.sequence)


@dataclass(frozen=True)
class Solution:
    """A designed sequence with its placements and the solve that produced it.

    ``objective`` is the value of the library sites (their number, or the sum of their regulator
    weights under a weights rule) plus the side-bias tie-break (in [0, 1));
    ``bound`` is the solver's proven upper bound on that objective for this solve.
    """

    sequence: str
    placements: tuple[Placement, ...]
    objective: float
    optimal: bool
    solve_time_s: float
    bound: float | None = None
    index: int = 0

    @property
    def library_placements(self) -> tuple[Placement, ...]:
        """Placements of library sites (promoter elements excluded)."""
        return tuple(p for p in self.placements if not p.fixed)

    @property
    def n_sites(self) -> int:
        """Number of library sites placed (promoter elements excluded)."""
        return len(self.library_placements)

    @property
    def regulators(self) -> tuple[str, ...]:
        """Sorted distinct regulators of the placed library sites."""
        return tuple(sorted({p.regulator for p in self.library_placements}))

    @property
    def site_ids(self) -> frozenset[str]:
        """Ids of the placed library sites."""
        return frozenset(p.site_id for p in self.library_placements)


class InfeasibleProblemError(InputError):
    """The problem has no solution; the message says why."""


class NoSolutionFoundError(DnadesignError):
    """The time budget ran out before the solver found any solution (feasibility unknown)."""
