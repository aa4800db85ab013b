"""The contract every constraint module fulfils, and the helpers they share.

A constraint is a frozen dataclass (hashable, so problems stay hashable) that owns four things:

- ``allows`` / ``allows_start``: may a site be placed reading this sequence / at this start?
  Placements it refuses are never created in the model, and the precheck counts only sites with
  at least one allowed placement.
- ``precheck``: raise ``InfeasibleProblemError`` with a one-line reason when it can never hold.
- ``encode``: add its CP-SAT constraints to a ``PositionalModel`` (see ``model.py``).
- ``check``: the independent checker; returns one message per violation of a finished solution.

Each module also owns its config shape: a ``parse(raw, where)`` function that validates the YAML
value and raises ``ValueError`` with one line naming the config key ``where``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..types import Problem, Site, Solution

if TYPE_CHECKING:  # the model imports OR-Tools; constraints only use it when encoding
    import random

    from ..drafts import Draft
    from ..model import PositionalModel


@dataclass(eq=False)
class PlacementVar:
    """A candidate placement of the model and its CP-SAT literal.

    The placement exists before the CP-SAT model does (``model.PositionalModel`` lists them
    first and builds the model only when a solve needs it): ``literal`` is None until then and
    set once, by the build. One object per placement, compared by identity."""

    site_index: int  # -1 for promoter elements
    site_id: str
    regulator: str
    strand: str
    start: int
    sequence: str  # as read on the + strand
    literal: Any = None  # cp_model.IntVar, once the model is built
    fixed: bool = False


class Constraint:
    """Base of every constraint; subclasses are frozen dataclasses."""

    key: ClassVar[str] = ""  # the config key this constraint comes from (used in messages)
    shift_invariant: ClassVar[bool] = False  # True when sliding placed blocks over gaps keeps it
    prunes: ClassVar[bool] = False  # True when ``allows``/``allows_start`` refuse placements (precheck runs first)

    def allows(self, problem: Problem, site: Site, seq: str) -> bool:
        """May ``site`` be placed reading ``seq`` on the + strand (anywhere)?"""
        return True

    def allows_start(self, problem: Problem, site: Site, start: int) -> bool:
        """May ``site`` be placed starting at offset ``start``?"""
        return True

    def fixed_elements(self, problem: Problem) -> list[PlacementVar]:
        """The fixed placements this rule adds to the model (promoter elements), without
        literals; ``encode`` gives each its literal (``pm.fixed_elements_of(self)``)."""
        return []

    def validate(self, problem: Problem) -> None:
        """Raise ``InfeasibleProblemError`` for a malformed rule (run before ``allows`` is used)."""

    def precheck(self, problem: Problem, placeable: Sequence[Site], required: Mapping[str, int]) -> None:
        """Raise ``InfeasibleProblemError`` when this can never hold.

        ``placeable``: sites with an allowed placement; ``required``: fewest sites per regulator
        that all rules together ask for (``required_counts``).
        """

    def encode(self, pm: PositionalModel) -> None:
        """Add this constraint to the CP-SAT model."""

    def check(self, problem: Problem, solution: Solution) -> list[str]:
        """Every violation of this constraint in ``solution`` (``[]`` when it holds)."""
        return []

    def config_key(self) -> str:
        """The config key this rule comes from (for summaries such as `dense inspect plan`)."""
        return self.key

    def required(self) -> dict[str, int]:
        """Fewest sites this rule asks of each regulator (``{}`` when it asks none)."""
        return {}

    def site_weight(self, site: Site) -> int:
        """Objective weight of one placed site (1 unless a weights rule says otherwise)."""
        return 1

    # What the start-layout builders ask of a rule (``drafts.make_valid``): both are cheap and
    # local; the independent checker still judges the finished layout.

    def repair(self, problem: Problem, draft: Draft, rng: random.Random) -> None:
        """Edit the placements of ``draft`` (``draft.remove`` / ``draft.place``) so this rule can
        hold; the free bases are chosen afterwards."""

    def bases_ok(self, problem: Problem, draft: Draft, i: int) -> bool:
        """With ``draft.bases[i]`` just set (other bases may still be ``None``: free), can every
        window through ``i`` still satisfy this rule?"""
        return True

    def overrides(self, hook: str) -> bool:
        """True when this rule's class defines its own ``hook`` (the base's default does nothing)."""
        return getattr(type(self), hook) is not getattr(Constraint, hook)

    def layout_aware(self) -> bool:
        """True when this rule repairs start layouts or judges their free bases."""
        return self.overrides("repair") or self.overrides("bases_ok")


def pruning(rules: Sequence[Constraint]) -> tuple[list[Constraint], list[Constraint]]:
    """The rules that override ``allows`` and those that override ``allows_start`` (the others allow all)."""
    return [r for r in rules if r.overrides("allows")], [r for r in rules if r.overrides("allows_start")]


def site_value(rules: Sequence[Constraint], site: Site) -> int:
    """Objective value of one library site under ``rules``: the product of their ``site_weight``
    (1 unless a weights rule gives its regulator's weight)."""
    return math.prod(r.site_weight(site) for r in rules)


def site_values(problem: Problem, rules: Sequence[Constraint]) -> list[int]:
    """``site_value`` of every library site of ``problem``, in library order."""
    weighing = [r for r in rules if r.overrides("site_weight")]
    return [site_value(weighing, site) for site in problem.sites]


def required_counts(rules: Sequence[Constraint]) -> dict[str, int]:
    """Fewest sites of each regulator that all ``rules`` together ask for."""
    out: dict[str, int] = {}
    for r in rules:
        for reg, n in r.required().items():
            out[reg] = max(out.get(reg, 0), n)
    return out


def library_counts(solution: Solution) -> dict[str, int]:
    """Placed library sites per regulator."""
    out: dict[str, int] = {}
    for p in solution.library_placements:
        out[p.regulator] = out.get(p.regulator, 0) + 1
    return out


def need_mapping(raw: Any, where: str, keys: set[str], required: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    """``raw`` as a dict with only ``keys`` (and every ``required`` one); ValueError otherwise."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a mapping with keys {', '.join(sorted(keys))}, got {raw!r}")
    extra = sorted(set(raw) - keys)
    if extra:
        raise ValueError(f"{where}: unknown key {extra[0]!r} (allowed: {', '.join(sorted(keys))})")
    missing = sorted(required - set(raw))
    if missing:
        raise ValueError(f"{where}: missing key {missing[0]!r}")
    return raw


def need_list(raw: Any, where: str, shape: str) -> list[Any]:
    """``raw`` as a list; ValueError ``<where> must be a list of <shape>`` otherwise."""
    if not isinstance(raw, list):
        raise ValueError(f"{where} must be a list of {shape}, got {raw!r}")
    return raw


def each_mapping(raw: Any, where: str, keys: set[str], required: set[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(``where[k]``, item) for each mapping of the list ``raw`` (checked as ``need_mapping`` does)."""
    shape = "{" + ", ".join(sorted(keys)) + "} mappings"
    for k, item in enumerate(need_list(raw, where, shape)):
        at = f"{where}[{k}]"
        yield at, need_mapping(item, at, keys, required)


def need_int(value: Any, where: str, *, low: int | None = None) -> int:
    """``value`` as an int (bools refused), at least ``low``; ValueError naming ``where`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where} must be an integer, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{where} must be >= {low}, got {value}")
    return value


def need_fraction(value: Any, where: str) -> float | None:
    """``value`` as a float in [0, 1] (or None); ValueError naming ``where`` otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{where} must be a number in [0, 1], got {value!r}")
    return float(value)


def need_name(value: Any, where: str) -> str:
    """``value`` as a non-empty string; ValueError naming ``where`` otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where} must be a regulator name, got {value!r}")
    return value.strip()
