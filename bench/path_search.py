"""Benchmark: the local search over the full library alone (``solver/path_search.py``, issue 13).

For each library (``solver_scale.py``'s draws: RegulonDB and PWM-sampled, ``--seeds`` draws each,
``--sizes`` sites, L in ``--lengths``), one child process per instance and code runs
``path_search.layouts`` (checked layouts of the full problem, no promoter) for each of
``--budgets`` CPU seconds (a fresh search each, the library tables included) and reports the
sites of its best checked layout, plus the perturbation rounds per CPU second of a 300-round
search. ``--baseline COMMIT`` runs the same child on that commit's ``src`` right before, under the
same load (the row's ``baseline``). Figures are warm-cache: each child first runs a 2-round search
(compiles or loads the kernels) outside the timings.

    uv run python bench/path_search.py [--seeds 0,1,2] [--sizes 1000] [--lengths 120,200]
        [--sources regulondb,pwm] [--budgets 1,3,5] [--baseline COMMIT] [--out bench/results/path_search.json]

Human table on stderr, one JSON line of figures on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from child_runs import commit_label, run_child  # bench/ is on sys.path when run as a script
from cli_startup import checkout

sys.path.insert(0, str(Path(__file__).resolve().parent))


def child(args) -> None:
    import random

    from solver_scale import pwm_library, regulondb_library

    from dnadesign.densegen.solver import Problem, Site, check_solution
    from dnadesign.densegen.solver import path_search as ps
    from dnadesign.densegen.solver.bound import site_values

    lib = (regulondb_library if args.source == "regulondb" else pwm_library)(args.n, args.seed * 1000 + args.n)
    problem = Problem(tuple(Site(i, s, r) for i, s, r in lib), args.length)
    values = site_values(problem)
    plib = ps.library(problem, values)
    ps.search(plib, args.length, [], random.Random(0), lambda: False, rounds=2)  # warm: kernels compiled / loaded
    t0 = time.process_time()
    ps.search(plib, args.length, [], random.Random(args.seed), lambda: False, rounds=300)
    rate = 300 / (time.process_time() - t0)
    out: dict = {"rounds_per_cpu_s": round(rate, 1)}
    for budget in (float(b) for b in args.budgets.split(",")):
        end = time.process_time() + budget
        found = ps.layouts(problem, values, [], lambda end=end: time.process_time() > end, seed=args.seed)
        best = found[0] if found else None
        ok = best is not None and check_solution(problem, ps.layout_solution_valued(problem, best, values)) == []
        out[f"sites_{budget:g}s"] = len(best.library_sites) if best is not None else None
        out[f"checked_{budget:g}s"] = ok
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--sizes", default="1000")
    ap.add_argument("--lengths", default="120,200")
    ap.add_argument("--sources", default="regulondb,pwm")
    ap.add_argument("--budgets", default="1,3,5")
    ap.add_argument("--baseline", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--source", default="regulondb", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=1000, help=argparse.SUPPRESS)
    ap.add_argument("--length", type=int, default=200, help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    load_before = [round(x, 2) for x in os.getloadavg()]
    base_dir = tempfile.TemporaryDirectory() if args.baseline else None
    base_src = checkout(args.baseline, Path(base_dir.name)) if base_dir is not None else None

    rows = []
    for source in args.sources.split(","):
        for n in (int(x) for x in args.sizes.split(",")):
            for length in (int(x) for x in args.lengths.split(",")):
                for seed in (int(x) for x in args.seeds.split(",")):
                    cmd = [sys.executable, __file__, "--child", "--source", source, "--n", str(n), "--length", str(length),
                           "--seed", str(seed), "--budgets", args.budgets]
                    base = run_child(cmd, base_src) if base_dir is not None else None
                    row = {"name": f"{source}-n{n}-L{length}-seed{seed}", **run_child(cmd, None)}
                    if base is not None:
                        row["baseline"] = base
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr)
    budgets = [f"sites_{float(b):g}s" for b in args.budgets.split(",")]
    totals = {k: sum(r.get(k) or 0 for r in rows) for k in budgets}
    if base_dir is not None:
        totals.update({f"baseline_{k}": sum(r["baseline"].get(k) or 0 for r in rows) for k in budgets})
    result = {"bench": "path_search", "commit": commit_label("src/dnadesign/densegen/solver"), "baseline": args.baseline,
              "load_before": load_before, "clock": "cpu", "totals": totals, "rows": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}))


if __name__ == "__main__":
    main()
