"""The positional CP-SAT model: every base of the sequence is a decision.

Variables:
- ``base[i][c]``: one-hot base at position ``i`` (exactly one of A/C/G/T).
- one Boolean per (site, strand, start) placement; it forces the bases it covers.
- one Boolean per allowed start of each fixed promoter element.

Overlaps are allowed wherever bases agree, since they are just shared base literals. Gaps are
positions no placement covers; the solver still picks their bases, so GC bounds and forbidden
k-mers hold over the whole sequence. Every rule is a module of ``constraints/`` that refuses
placements and adds its own encoding. The objective counts placed library sites (or sums their
regulator weights), scaled, plus a small side-bias tie-break.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ortools.sat.python import cp_model

from .constraints import PlacementVar, bias_table, constraints_of
from .constraints.base import pruning, site_values
from .constraints.side_bias import BIAS_STEPS
from .cores import core_margins
from .dna import BASES, oriented_sequences
from .types import Placement, Problem

__all__ = ["BIAS_STEPS", "PlacementVar", "PositionalModel"]


# What exists only once the CP-SAT model is built (``PositionalModel._build``).
BUILT = frozenset({"model", "base", "used", "n_sites_expr", "used_by_regulator", "value_expr", "present", "_false",
                   "left_packing", "covered", "left_packing_on", "objective_expr"})


class PositionalModel:
    """The placements of one ``Problem`` and, once a solve needs it, its CP-SAT model.

    The placements (which site may start where, on which strand; the promoter elements), the
    site values and the tie-break are listed at once: screening a layout needs only them. The
    CP-SAT model is built on first use of one of its parts (``BUILT``: ``pm.model``,
    ``pm.n_sites_expr``, ...), so a solve whose first solution is proven without CP-SAT
    (``first_layouts.py``) never pays for it (~40 ms per 10-site library at L=100). Changes
    made before that (no-goods, the objective cleared, left packing released) are kept in order
    and applied by the build, so the model is the one an eager build would have made.
    The model is built once; enumeration adds no-goods to it between solves.
    """

    model: cp_model.CpModel
    base: list[list[cp_model.IntVar]]
    used: list[cp_model.IntVar]
    n_sites_expr: Any
    used_by_regulator: dict[str, list]
    value_expr: Any
    present: dict[str, cp_model.IntVar]  # regulator presence literals (see ``presence``)
    _false: cp_model.IntVar | None
    left_packing: cp_model.IntVar
    covered: list
    left_packing_on: int | None
    objective_expr: Any

    def __init__(self, problem: Problem, *, core_packing: bool = True, lazy: bool = False):
        self._built = False
        self._building = False
        self._pending: list[Callable[[], object]] = []  # changes made before the build, in order
        self._core_packing = core_packing
        self.problem = problem
        self.constraints = constraints_of(problem)
        L = problem.length

        # Library placements (those a rule refuses are never created).
        self.placements: list[PlacementVar] = []
        self.by_site: list[list[PlacementVar]] = [[] for _ in problem.sites]
        self.bias_scale, bias = bias_table(problem)
        self.bias_of = bias  # integer tie-break of one placement (see constraints.side_bias)
        by_seq, by_start = pruning(self.constraints)
        for si, site in enumerate(problem.sites):
            n = len(site.sequence)
            if n > L:
                continue
            starts = [t for t in range(L - n + 1) if all(c.allows_start(problem, site, t) for c in by_start)]
            for strand, seq in oriented_sequences(site.sequence, problem.strands):
                if not all(c.allows(problem, site, seq) for c in by_seq):
                    continue  # can never appear in a valid sequence
                for start in starts:
                    pv = PlacementVar(si, site.id, site.regulator, strand, start, seq)
                    self.placements.append(pv)
                    self.by_site[si].append(pv)
        self.site_weights = site_values(problem, self.constraints)
        self._fixed = [c.fixed_elements(problem) for c in self.constraints]
        self.promoter_placements: list[PlacementVar] = [pv for pvs in self._fixed for pv in pvs]
        if not lazy:
            self._build()

    @property
    def built(self) -> bool:
        """True once the CP-SAT model exists."""
        return self._built

    def build(self) -> None:
        """Build the CP-SAT model now, when it is not built yet (a caller that times it)."""
        if not self._built and not self._building:
            self._build()

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not set yet: a part of the CP-SAT model builds it.
        if name in BUILT and not self.__dict__.get("_built", True) and not self.__dict__.get("_building", True):
            self._build()
            return getattr(self, name)
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def _build(self) -> None:
        """Build the CP-SAT model over the listed placements, then apply the pending changes."""
        self._building = True
        problem, L = self.problem, self.problem.length
        self.model = m = cp_model.CpModel()
        self.base = [[m.new_bool_var(f"b{i}{c}") for c in BASES] for i in range(L)]
        for row in self.base:
            m.add_exactly_one(row)
        for pv in self.placements:
            pv.literal = lit = m.new_bool_var(f"x{pv.site_index}{pv.strand}{pv.start}")
            m.add_bool_and([self.base[pv.start + j][BASES.index(ch)] for j, ch in enumerate(pv.sequence)]).only_enforce_if(lit)
        if self._core_packing:
            self._add_core_packing()
        self.used = []
        for si, pvs in enumerate(self.by_site):
            u = m.new_bool_var(f"u{si}")
            m.add(sum(p.literal for p in pvs) == u)
            self.used.append(u)
        self.n_sites_expr = sum(self.used)
        self.used_by_regulator = {}
        for si, site in enumerate(problem.sites):
            self.used_by_regulator.setdefault(site.regulator, []).append(self.used[si])
        weighted = any(w != 1 for w in self.site_weights)
        # Site value: the site count, or the sum of the regulator weights of the placed sites.
        self.value_expr = sum(w * u for w, u in zip(self.site_weights, self.used, strict=True)) if weighted else self.n_sites_expr

        self.present = {}
        self._false = None
        for c in self.constraints:
            c.encode(self)

        self._add_left_packing()

        # Objective: scale * site value (weight) + side-bias tie-break.
        terms = [self.bias_scale * self.site_weights[p.site_index] * p.literal for p in self.placements]
        terms += [w * p.literal for p in self.placements if (w := self.bias_of(p))]
        self.objective_expr = sum(terms)
        m.maximize(self.objective_expr)
        self._built, self._building = True, False
        for change in self._pending:
            change()
        self._pending.clear()

    def _apply(self, change: Callable[[], object]) -> None:
        """Apply a change to the model now, or at its build when it does not exist yet."""
        if self._built:
            change()
        else:
            self._pending.append(change)

    def fixed_elements_of(self, rule) -> list[PlacementVar]:
        """The fixed placements ``rule`` (one of ``self.constraints``) added (its ``fixed_elements``)."""
        for c, pvs in zip(self.constraints, self._fixed, strict=True):
            if c is rule:
                return pvs
        raise KeyError(rule)

    def placement_value(self, p: PlacementVar) -> int:
        """Integer objective contribution of one chosen placement (0 for promoter elements)."""
        return 0 if p.fixed else self.bias_scale * self.site_weights[p.site_index] + self.bias_of(p)

    def presence(self, regulator: str) -> cp_model.IntVar:
        """A literal that is true only when some site of ``regulator`` is placed (made on first use)."""
        if regulator not in self.present:
            lit = self.model.new_bool_var(f"present_{regulator}")
            used = self.used_by_regulator.get(regulator)
            if used:
                self.model.add_bool_or(used).only_enforce_if(lit)
            else:
                self.model.add(lit == 0)
            self.present[regulator] = lit
        return self.present[regulator]

    @property
    def false(self) -> cp_model.IntVar:
        """A literal fixed to false (for rules that need an empty clause)."""
        if self._false is None:
            self._false = self.model.new_bool_var("false")
            self.model.add(self._false == 0)
        return self._false

    @property
    def shift_invariant(self) -> bool:
        """True when closing gaps can never break a constraint or change the objective."""
        return all(c.shift_invariant for c in self.constraints)

    def _add_left_packing(self) -> None:
        """Symmetry breaking for shift-invariant problems: covered positions form a prefix.

        Any solution can be turned into one with the same sites by sliding blocks left over the
        gaps, so requiring ``covered[i+1] => covered[i]`` keeps the optimum and removes the huge
        family of shifted copies, which is what makes optimality proofs slow. It is switched on
        by ``left_packing`` (a literal fixed per solve): enumeration turns it off again.
        """
        m = self.model
        L = self.problem.length
        self.left_packing = m.new_bool_var("left_packing")
        self.covered: list = []
        self.left_packing_on: int | None = None
        if not self.shift_invariant or not self.placements:
            m.add(self.left_packing == 0)
            return
        cover: list[list] = [[] for _ in range(L)]
        for p in self.placements:
            for i in range(p.start, p.start + len(p.sequence)):
                cover[i].append(p.literal)
        self.covered = [m.new_bool_var(f"cov{i}") for i in range(L)]
        for i in range(L):
            if cover[i]:
                m.add_bool_or(cover[i]).only_enforce_if(self.covered[i])
            else:
                m.add(self.covered[i] == 0)
        for p in self.placements:
            m.add_implication(p.literal, self.covered[p.start + len(p.sequence) - 1])
        for i in range(L - 1):
            m.add_implication(self.covered[i + 1], self.covered[i]).only_enforce_if(self.left_packing)
        self.left_packing_on = m.add(self.left_packing == 1).index

    def release_left_packing(self) -> None:
        """Allow gaps anywhere again (used after the first, optimising solve)."""
        self._apply(self._release_left_packing)

    def _release_left_packing(self) -> None:
        if self.left_packing_on is not None:
            self.model.proto.constraints[self.left_packing_on].clear_linear()
            self.model.add(self.left_packing == 0)
            self.left_packing_on = None

    def clear_objective(self) -> None:
        """Drop the objective (enumeration after the first, optimising solve)."""
        self._apply(lambda: self.model.clear_objective())

    def _add_core_packing(self) -> None:
        """One at-most-one per position over placements whose core covers it (see cores.py)."""
        keys = sorted({(p.site_index, p.sequence) for p in self.placements})
        margins = dict(zip(keys, core_margins(keys), strict=True))
        cover: list[list] = [[] for _ in range(self.problem.length)]
        for p in self.placements:
            mg = margins[(p.site_index, p.sequence)]
            if mg is None:
                continue
            lo, hi = p.start + mg[0], p.start + len(p.sequence) - mg[1]
            for i in range(lo, hi):
                cover[i].append(p.literal)
        for lits in cover:
            if len(lits) > 1:
                self.model.add_at_most_one(lits)

    # --- decoding -------------------------------------------------------------------------

    def decode(self, value) -> tuple[str, tuple[Placement, ...], list[PlacementVar]]:
        """Sequence, placements and chosen placement variables of a solver assignment."""
        seq = "".join(BASES[next(c for c in range(4) if value(self.base[i][c]))] for i in range(self.problem.length))
        chosen = [p for p in self.promoter_placements + self.placements if value(p.literal)]
        chosen.sort(key=lambda p: (p.start, p.fixed is False, p.site_id))
        placements = tuple(Placement(p.site_id, p.regulator, p.start, p.strand, p.sequence, p.fixed) for p in chosen)
        return seq, placements, chosen

    def objective_to_float(self, value: float) -> float:
        """Convert the integer objective into site value + tie-break fraction."""
        return value / self.bias_scale

    # --- hints -------------------------------------------------------------------------------

    def set_hint(self, sequence: str, items) -> None:
        """Replace the hint by a complete assignment built from a layout.

        ``items`` are ``(site index or -1, strand, start, + sequence, fixed id)`` tuples. Items
        the model does not have (pruned placements) are simply hinted absent.
        """
        m = self.model
        m.clear_hints()
        lib = {(si, start, sq) for si, _st, start, sq, _f in items if si >= 0}
        fixed = {(f, start) for si, _st, start, _sq, f in items if si < 0}
        for i, ch in enumerate(sequence):
            code = BASES.index(ch)
            for c in range(4):
                m.add_hint(self.base[i][c], c == code)
        used = [False] * len(self.used)
        for p in self.placements:
            on = (p.site_index, p.start, p.sequence) in lib and not used[p.site_index]
            if on:
                used[p.site_index] = True
            m.add_hint(p.literal, on)
        for p in self.promoter_placements:
            m.add_hint(p.literal, (p.site_id, p.start) in fixed)
        for si, u in enumerate(self.used):
            m.add_hint(u, used[si])
        if self.covered:
            cov = [False] * len(sequence)
            for p in self.placements:
                if (p.site_index, p.start, p.sequence) in lib:
                    for i in range(p.start, p.start + len(p.sequence)):
                        cov[i] = True
            for i, lit in enumerate(self.covered):
                m.add_hint(lit, cov[i])
        m.add_hint(self.left_packing, self.left_packing_on is not None)
        regs = {self.problem.sites[si].regulator for si, on in enumerate(used) if on}
        for reg, lit in self.present.items():
            m.add_hint(lit, reg in regs)

    @staticmethod
    def layout_items(chosen: list[PlacementVar]):
        """Layout items of chosen placement variables (see ``set_hint``)."""
        return tuple(
            (p.site_index, p.strand, p.start, p.sequence, p.site_id if p.fixed else "") for p in chosen
        )

    # --- enumeration helpers -------------------------------------------------------------------

    def forbid_placements(self, chosen: list[PlacementVar]) -> None:
        """No-good: not this exact set of library placements (supersets excluded too)."""
        library = [p for p in chosen if not p.fixed]
        if library:
            self._apply(lambda: self.model.add_bool_or([p.literal.Not() for p in library]))

    def forbid_sequence(self, seq: str) -> None:
        """No-good: never this exact sequence again."""
        self._apply(lambda: self.model.add_bool_or([self.base[i][BASES.index(ch)].Not() for i, ch in enumerate(seq)]))

    def forbid_site_set(self, site_indices: list[int]) -> None:
        """No-good: not all of these sites together again."""
        if site_indices:
            sites = list(site_indices)
            self._apply(lambda: self.model.add_bool_or([self.used[i].Not() for i in sites]))
