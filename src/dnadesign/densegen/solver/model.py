"""The positional CP-SAT model: every base of the sequence is a decision.

Variables:
- ``base[i][c]``: one-hot base at position ``i`` (exactly one of A/C/G/T).
- one Boolean per (site, strand, start) placement; it forces the bases it covers.
- one Boolean per allowed start of each fixed promoter element.

Overlaps are allowed wherever bases agree, since they are just shared base literals. Gaps are
positions no placement covers; the solver still picks their bases, so GC bounds and forbidden
k-mers hold over the whole sequence. The objective counts placed library sites, scaled, plus a
small side-bias tie-break.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ortools.sat.python import cp_model

from .cores import core_margins
from .dna import BASES, occurrences, oriented_sequences, revcomp
from .precheck import promoter_start_pairs
from .types import PROMOTER_REGULATOR, Placement, Problem

BIAS_STEPS = 8  # resolution of the side-bias tie-break per placement


@dataclass(frozen=True)
class PlacementVar:
    """A candidate placement and its literal."""

    site_index: int  # -1 for promoter elements
    site_id: str
    regulator: str
    strand: str
    start: int
    sequence: str  # as read on the + strand
    literal: cp_model.IntVar
    fixed: bool = False


class PositionalModel:
    """Builds and holds the CP-SAT model for one ``Problem``.

    The model is built once; enumeration adds no-goods to it between solves.
    """

    def __init__(self, problem: Problem, *, core_packing: bool = True):
        self.problem = problem
        self.model = cp_model.CpModel()
        L = problem.length
        m = self.model
        self.base = [[m.new_bool_var(f"b{i}{c}") for c in BASES] for i in range(L)]
        for row in self.base:
            m.add_exactly_one(row)

        forbidden = sorted(set(problem.forbid_kmers) | {revcomp(k) for k in problem.forbid_kmers})
        self.forbidden = forbidden

        # Library placements.
        self.placements: list[PlacementVar] = []
        self.by_site: list[list[PlacementVar]] = [[] for _ in problem.sites]
        self.bias_scale, bias = self._bias_table()
        self.bias_of = bias  # integer tie-break of one placement (see _bias_table)
        for si, site in enumerate(problem.sites):
            n = len(site.sequence)
            if n > L:
                continue
            for strand, seq in oriented_sequences(site.sequence, problem.strands):
                if any(f in seq for f in forbidden):
                    continue  # can never appear in a valid sequence
                for start in range(L - n + 1):
                    lit = m.new_bool_var(f"x{si}{strand}{start}")
                    m.add_bool_and([self.base[start + j][BASES.index(ch)] for j, ch in enumerate(seq)]).only_enforce_if(lit)
                    pv = PlacementVar(si, site.id, site.regulator, strand, start, seq, lit)
                    self.placements.append(pv)
                    self.by_site[si].append(pv)
        if core_packing:
            self._add_core_packing()
        self.used = []
        for si, pvs in enumerate(self.by_site):
            u = m.new_bool_var(f"u{si}")
            m.add(sum(p.literal for p in pvs) == u)
            self.used.append(u)
        self.n_sites_expr = sum(self.used)

        # Fixed promoter elements.
        self.element_lits: list[tuple[PlacementVar, PlacementVar]] = []
        self.promoter_placements: list[PlacementVar] = []
        for pi, prom in enumerate(problem.promoters):
            pairs = promoter_start_pairs(problem, pi)
            ups: dict[int, PlacementVar] = {}
            downs: dict[int, PlacementVar] = {}
            for role, seq, starts, store in (
                ("upstream", prom.upstream, sorted({u for u, _ in pairs}), ups),
                ("downstream", prom.downstream, sorted({d for _, d in pairs}), downs),
            ):
                for start in starts:
                    lit = m.new_bool_var(f"p{pi}{role[0]}{start}")
                    m.add_bool_and([self.base[start + j][BASES.index(ch)] for j, ch in enumerate(seq)]).only_enforce_if(lit)
                    pv = PlacementVar(-1, f"{prom.name}:{role}", PROMOTER_REGULATOR, "+", start, seq, lit, fixed=True)
                    store[start] = pv
                    self.promoter_placements.append(pv)
            m.add_exactly_one(p.literal for p in ups.values())
            m.add_exactly_one(p.literal for p in downs.values())
            for down_start, pv in downs.items():
                m.add_bool_or([ups[us].literal for us, ds in pairs if ds == down_start]).only_enforce_if(pv.literal)
            for up_start, pv in ups.items():
                m.add_bool_or([downs[ds].literal for us, ds in pairs if us == up_start]).only_enforce_if(pv.literal)

        # Forbidden k-mers on both strands, anywhere; a promoter element's own occurrences are exempt.
        for f in forbidden:
            k = len(f)
            exempt: dict[int, list] = {}
            for pv in self.promoter_placements:
                for t in occurrences(pv.sequence, f):
                    exempt.setdefault(pv.start + t, []).append(pv.literal)
            for i in range(L - k + 1):
                clause = [self.base[i + j][BASES.index(ch)].Not() for j, ch in enumerate(f)]
                m.add_bool_or(clause + exempt.get(i, []))

        # GC bounds over the whole sequence.
        if problem.gc_min is not None or problem.gc_max is not None:
            gc = sum(row[1] + row[2] for row in self.base)
            if problem.gc_min is not None:
                m.add(gc >= math.ceil(problem.gc_min * L - 1e-9))
            if problem.gc_max is not None:
                m.add(gc <= math.floor(problem.gc_max * L + 1e-9))

        # Regulator requirements.
        by_reg: dict[str, list] = {}
        for si, site in enumerate(problem.sites):
            by_reg.setdefault(site.regulator, []).append(self.used[si])
        for reg, need in problem.min_count_by_regulator.items():
            if need > 0:
                m.add(sum(by_reg.get(reg, [])) >= need)
        self.present: dict[str, cp_model.IntVar] = {}
        for g in problem.groups:
            lits = []
            for reg in dict.fromkeys(g.members):
                if reg not in self.present:
                    lit = m.new_bool_var(f"present_{reg}")
                    m.add_bool_or(by_reg.get(reg, [])).only_enforce_if(lit) if by_reg.get(reg) else m.add(lit == 0)
                    self.present[reg] = lit
                lits.append(self.present[reg])
            if g.min_required > 0:
                m.add(sum(lits) >= g.min_required)
        if problem.min_total_sites > 0:
            m.add(self.n_sites_expr >= problem.min_total_sites)

        self._add_left_packing()

        # Objective: scale * sites + side-bias tie-break.
        terms = [self.bias_scale * p.literal for p in self.placements]
        terms += [w * p.literal for p in self.placements if (w := bias(p))]
        self.objective_expr = sum(terms)
        m.maximize(self.objective_expr)

    @property
    def shift_invariant(self) -> bool:
        """True when closing gaps can never break a constraint or change the objective."""
        p = self.problem
        return not (p.promoters or p.forbid_kmers or p.side_biases or p.gc_min is not None or p.gc_max is not None)

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
        if self.left_packing_on is not None:
            self.model.proto.constraints[self.left_packing_on].clear_linear()
            self.model.add(self.left_packing == 0)
            self.left_packing_on = None

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

    def _bias_table(self):
        """Integer tie-break per placement and the scale that keeps it below one site."""
        problem = self.problem
        L = problem.length
        steps: list[tuple[set, set, float]] = []
        for sb in problem.side_biases:
            steps.append((set(sb.left), set(sb.right), sb.weight))
        if not steps:
            return 1, lambda p: 0
        max_w = max(w for _, _, w in steps)

        def bias(p: PlacementVar) -> int:
            span = max(1, L - len(p.sequence))
            total = 0.0
            for left, right, w in steps:
                rel = w / max_w
                if p.site_id in left or p.regulator in left:
                    total += rel * (1 - p.start / span)
                if p.site_id in right or p.regulator in right:
                    total += rel * (p.start / span)
            return round(total * BIAS_STEPS)

        per_site = BIAS_STEPS * len(steps)
        return per_site * max(1, len(problem.sites)) + 1, bias

    # --- decoding -------------------------------------------------------------------------

    def decode(self, value) -> tuple[str, tuple[Placement, ...], list[PlacementVar]]:
        """Sequence, placements and chosen placement variables of a solver assignment."""
        seq = "".join(BASES[next(c for c in range(4) if value(self.base[i][c]))] for i in range(self.problem.length))
        chosen = [p for p in self.promoter_placements + self.placements if value(p.literal)]
        chosen.sort(key=lambda p: (p.start, p.fixed is False, p.site_id))
        placements = tuple(Placement(p.site_id, p.regulator, p.start, p.strand, p.sequence, p.fixed) for p in chosen)
        return seq, placements, chosen

    def objective_to_float(self, value: float) -> float:
        """Convert the integer objective into sites + tie-break fraction."""
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
        lits = [p.literal.Not() for p in chosen if not p.fixed]
        if lits:
            self.model.add_bool_or(lits)

    def forbid_sequence(self, seq: str) -> None:
        """No-good: never this exact sequence again."""
        self.model.add_bool_or([self.base[i][BASES.index(ch)].Not() for i, ch in enumerate(seq)])

    def forbid_site_set(self, site_indices: list[int]) -> None:
        """No-good: not all of these sites together again."""
        if site_indices:
            self.model.add_bool_or([self.used[i].Not() for i in site_indices])
