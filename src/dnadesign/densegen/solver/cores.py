"""Redundant "core" packing constraints that give CP-SAT a strong upper bound.

Each oriented library site ``a`` gets a core: the site minus ``in_a`` bases on its left and
``out_a`` bases on its right. For any two placed sites where neither contains the other, the one
starting first (``a``) overlaps the other (``b``) by at most ``maxov(a, b)`` bases. Choosing
``out_a + in_b >= maxov(a, b)`` for all pairs makes the cores of placed sites pairwise disjoint,
so at most one placed core covers any position: one at-most-one constraint per position. Sites
that can sit strictly inside another site get an empty core (they are left out), which keeps the
constraint valid. The model stays exact; this only tightens its relaxation.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=200_000)
def max_overlap(a: str, b: str) -> int:
    """Largest o < min(|a|, |b|) with a's last o bases equal to b's first o bases (0 if none)."""
    for o in range(min(len(a), len(b)) - 1, 0, -1):
        if a.endswith(b[:o]):
            return o
    return 0


def core_margins(items: list[tuple[int, str]]) -> list[tuple[int, int] | None]:
    """(in, out) margins per oriented item ``(site index, sequence)``; None = contained, no core.

    The margins come from a small LP (see ``_lp_margins``).
    """
    n = len(items)
    contained = [False] * n
    for i, (si, s) in enumerate(items):
        for j, (sj, t) in enumerate(items):
            if si != sj and len(t) >= len(s) and s in t and (len(t) > len(s) or i != j):
                contained[i] = True
                break
    live = [i for i in range(n) if not contained[i]]
    ov: dict[tuple[int, int], int] = {}
    for i in live:
        si, a = items[i]
        for j in live:
            sj, b = items[j]
            if si == sj:
                continue
            o = max_overlap(a, b)
            if o:
                ov[(i, j)] = o

    ins, outs = _lp_margins(items, live, ov)
    # Repair any rounding slip so the disjointness condition holds exactly.
    for (i, j), o in ov.items():
        if outs[i] + ins[j] < o:
            outs[i] = o - ins[j]
    return [None if contained[i] else (ins[i], outs[i]) for i in range(n)]


def _lp_margins(items, live, ov) -> tuple[list[int], list[int]]:
    """Margins minimising the weighted bases lost, by an LP (GLOP).

    The constraint matrix (one ``out`` and one ``in`` variable per row) is that of a bipartite
    vertex cover, hence totally unimodular: the LP optimum is integral. Short sites weigh more
    because they decide the packing bound. Falls back to "all slack on the right".
    """
    n = len(items)
    ins, outs = [0] * n, [0] * n
    for (i, _j), o in ov.items():
        outs[i] = max(outs[i], o)
    if not ov:
        return ins, outs
    try:
        from ortools.linear_solver import pywraplp
    except ImportError:  # pragma: no cover
        return ins, outs
    lp = pywraplp.Solver.CreateSolver("GLOP")
    if lp is None:  # pragma: no cover
        return ins, outs
    vin = {i: lp.NumVar(0, len(items[i][1]), "") for i in live}
    vout = {i: lp.NumVar(0, len(items[i][1]), "") for i in live}
    for (i, j), o in ov.items():
        lp.Add(vout[i] + vin[j] >= o)
    lp.Minimize(sum((vin[i] + vout[i]) * (1.0 / len(items[i][1]) ** 2) for i in live))
    if lp.Solve() != pywraplp.Solver.OPTIMAL:  # pragma: no cover
        return ins, outs
    for i in live:
        ins[i] = round(vin[i].solution_value())
        outs[i] = round(vout[i].solution_value())
    return ins, outs
