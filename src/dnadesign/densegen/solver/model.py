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

    def __init__(self, problem: Problem):
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
            ups = {}
            downs = {}
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
            for d, pv in downs.items():
                m.add_bool_or([ups[u].literal for u, dd in pairs if dd == d]).only_enforce_if(pv.literal)
            for u, pv in ups.items():
                m.add_bool_or([downs[d].literal for uu, d in pairs if uu == u]).only_enforce_if(pv.literal)

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

        # Objective: scale * sites + side-bias tie-break.
        terms = [self.bias_scale * p.literal for p in self.placements]
        terms += [w * p.literal for p in self.placements if (w := bias(p))]
        self.objective_expr = sum(terms)
        m.maximize(self.objective_expr)

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
            return int(round(total * BIAS_STEPS))

        per_site = BIAS_STEPS * len(steps)
        return per_site * max(1, len(problem.sites)) + 1, bias

    # --- decoding -------------------------------------------------------------------------

    def decode(self, value) -> tuple[str, tuple[Placement, ...], int]:
        """Sequence, placements and integer objective of the solver's current assignment."""
        seq = "".join(BASES[next(c for c in range(4) if value(self.base[i][c]))] for i in range(self.problem.length))
        chosen = [p for p in self.promoter_placements + self.placements if value(p.literal)]
        chosen.sort(key=lambda p: (p.start, p.fixed is False, p.site_id))
        placements = tuple(Placement(p.site_id, p.regulator, p.start, p.strand, p.sequence, p.fixed) for p in chosen)
        return seq, placements, chosen

    def objective_to_float(self, value: float) -> float:
        """Convert the integer objective into sites + tie-break fraction."""
        return value / self.bias_scale

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
