"""Experimental path/circuit formulation, kept only to benchmark against the positional model.

Nodes are oriented library sites plus a depot; ``AddCircuit`` picks a path of sites where each
next site starts after the previous one and overlaps it by at most their largest agreeing
overlap. Length: sum of (site length - overlap) along the path <= L. Objective: sites on the
path. This is dense-arrays' semantics (no gaps, overlaps only between consecutive sites), so its
optimum can be lower than the positional model's. It has no promoter, GC or k-mer support and is
not used by ``solve``; ``bench/solver_vs_dense_arrays.py --compare-formulations`` times it.
"""

from __future__ import annotations

import time

from ortools.sat.python import cp_model

from .cores import max_overlap
from .dna import oriented_sequences
from .types import Problem, SolverOptions


def solve_circuit(problem: Problem, options: SolverOptions) -> dict:
    """Optimise the plain problem with AddCircuit; returns objective, bound, status and time."""
    t0 = time.perf_counter()
    nodes = []  # (site index, sequence)
    for si, site in enumerate(problem.sites):
        if len(site.sequence) <= problem.length:
            for _strand, seq in oriented_sequences(site.sequence, problem.strands):
                nodes.append((si, seq))
    m = cp_model.CpModel()
    arcs = []
    visit = []
    length_terms = []
    for k, (_si, seq) in enumerate(nodes, start=1):
        v = m.new_bool_var(f"v{k}")
        visit.append(v)
        arcs.append((k, k, ~v))
        start = m.new_bool_var(f"s{k}")
        end = m.new_bool_var(f"e{k}")
        arcs.append((0, k, start))
        arcs.append((k, 0, end))
        length_terms.append(len(seq) * start)
    for a, (sa, qa) in enumerate(nodes, start=1):
        for b, (sb, qb) in enumerate(nodes, start=1):
            if sa == sb:
                continue
            lit = m.new_bool_var(f"a{a}_{b}")
            arcs.append((a, b, lit))
            length_terms.append((len(qb) - max_overlap(qa, qb)) * lit)
    empty = m.new_bool_var("empty")
    arcs.append((0, 0, empty))
    m.add_circuit(arcs)
    m.add(sum(length_terms) <= problem.length)
    by_site: dict[int, list] = {}
    for (si, _), v in zip(nodes, visit, strict=True):
        by_site.setdefault(si, []).append(v)
    for vs in by_site.values():
        m.add_at_most_one(vs)
    m.maximize(sum(visit))
    build = time.perf_counter() - t0
    s = cp_model.CpSolver()
    s.parameters.num_workers = max(1, options.workers)
    s.parameters.random_seed = options.seed
    s.parameters.max_time_in_seconds = options.time_limit_s
    st = s.solve(m)
    ok = st in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    return {
        "formulation": "circuit",
        "status": s.status_name(st),
        "objective": s.objective_value if ok else None,
        "bound": s.best_objective_bound if ok else None,
        "build_s": build,
        "solve_s": s.wall_time,
        "arcs": len(arcs),
    }
