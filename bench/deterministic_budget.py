"""Deterministic budgets (``deterministic=True``) against wall-clock budgets, side by side.

``deterministic=True`` runs every budget on counted work (``solver/budget.py``: ``WorkClock``),
charged in seconds an idle machine would take (``EXPANSION_S``, ``PLACEMENT_S``, ``DTIME_PER_S``
and the capped phases' nominal shares). This benchmark checks that mapping: the same instances
(RegulonDB libraries drawn as in the tests, ``../shared/data/regulondb_tfbs.csv``) are solved
with the default wall clock and deterministically, one after the other in the same run, and it
prints one JSON line: per instance the CPU seconds and site counts of both, and the mean ratio
of CPU seconds (deterministic / wall; about 1 means the counts match the wall limit's work).

    uv run python bench/deterministic_budget.py [--out bench/results/deterministic_budget.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from child_runs import commit_label, write_line  # bench/ is on sys.path when run as a script
from solver_vs_dense_arrays import DATA as TFBS
from solver_vs_dense_arrays import draw_library, load_rows

from dnadesign.densegen.solver import Problem, PromoterConstraint, Site, SolverOptions, solve

SIGMA70 = PromoterConstraint("sigma70", "TTGACA", "TATAAT", 16, 18)


def regulondb(n: int, seed: int) -> tuple[Site, ...]:
    """``n`` distinct RegulonDB sites of 6-30 bp, seeded shuffle (the peer benchmark's draw)."""
    return tuple(draw_library(load_rows(TFBS), n, seed))


def instances():
    """(name, problem, options, n_solutions)."""
    out = []
    for seed in (100, 101, 102):
        lib = regulondb(100, seed)
        out.append((f"lib100-s{seed}-optimal", Problem(lib, 120), SolverOptions(time_limit_s=1.0, seed=3), 5))
        out.append((f"lib100-s{seed}-diverse-sigma70", Problem(lib, 120, promoters=(SIGMA70,)),
                    SolverOptions(time_limit_s=1.0, seed=3, mode="diverse"), 4))
    lib = regulondb(250, 250)
    out.append(("lib250-optimal-t3", Problem(lib, 150), SolverOptions(time_limit_s=3.0, seed=3), 3))
    out.append(("lib1000-pooled-t3", Problem(regulondb(1000, 1000), 200), SolverOptions(time_limit_s=3.0, seed=3), 1))
    return out


def measure(problem: Problem, options: SolverOptions, n: int) -> dict:
    t, w = time.process_time(), time.monotonic()
    sols = list(solve(problem, options, n))
    return {"cpu_s": round(time.process_time() - t, 3), "wall_s": round(time.monotonic() - w, 3),
            "n": len(sols), "first_sites": sols[0].n_sites if sols else None,
            "mean_sites": round(statistics.mean(s.n_sites for s in sols), 2) if sols else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="also write the JSON line to this file")
    args = ap.parse_args()
    load_before = [round(x, 2) for x in os.getloadavg()]
    rows = []
    for name, problem, options, n in instances():
        import dataclasses

        wall = measure(problem, dataclasses.replace(options, deterministic=False), n)
        det = measure(problem, dataclasses.replace(options, deterministic=True), n)
        rows.append({"instance": name, "time_limit_s": options.time_limit_s, "n_solutions": n, "wall": wall,
                     "deterministic": det, "cpu_ratio": round(det["cpu_s"] / max(wall["cpu_s"], 1e-9), 2)})
    out = {"bench": "deterministic_budget", "commit": commit_label("src"), "workers": 1,
           "load_before": load_before,
           "mean_cpu_ratio": round(statistics.mean(r["cpu_ratio"] for r in rows), 2),
           "first_sites_wall_minus_det": sum(r["wall"]["first_sites"] - r["deterministic"]["first_sites"] for r in rows),
           "rows": rows}
    write_line(out, args.out)


if __name__ == "__main__":
    main()
