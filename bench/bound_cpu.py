"""Benchmark: the proven bound of 1000-site libraries against CPU seconds (issue 13, no promoter).

The pool route's bound (``pool._pooled``): the full library's path relaxation (``bound.relax``)
for ``r`` CPU seconds, then reduced-cost fixing (``bound_fixing.tighten``) for ``f`` more, at
each ``r+f`` of ``--shares``, on the scale benchmark's draws (``solver_scale.py``: RegulonDB
and PWM libraries, ``--seeds``, L = 120 and 200). One child process per draw and code; the
compiled kernels are loaded before the clock starts and their load is reported apart
(``kernel_load_s``: numba's import and cache, once per process). ``--baseline COMMIT`` runs the
same draws on that commit's ``src`` in the same run (``--baseline-shares``), side by side.

    uv run python bench/bound_cpu.py [--shares 0.6+0.4,0.8+0.6] [--seeds 0,1,2] [--baseline COMMIT]
        [--out bench/results/bound_cpu.json]

Per draw and shares: [relaxation bound, bound after fixing, CPU seconds used]. Human lines on
stderr, one JSON line of figures on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from child_runs import commit_label, run_child, write_line  # bench/ is on sys.path when run as a script
from cli_startup import checkout


def child(args) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from solver_scale import pwm_library, regulondb_library

    from dnadesign.densegen.solver import Problem, Site
    from dnadesign.densegen.solver.bound import relax
    from dnadesign.densegen.solver.bound_fixing import tighten

    clock = time.process_time
    load = None
    try:
        from dnadesign.densegen.solver.hub_dp import load_kernels  # absent on code before the kernels
    except ImportError:
        pass
    else:
        t = clock()
        load_kernels()
        load = round(clock() - t, 3)
    lib = (regulondb_library if args.source == "regulondb" else pwm_library)(args.n, args.seed * 1000 + args.n)
    problem = Problem(tuple(Site(i, s, r) for i, s, r in lib), args.length)
    out: dict = {"kernel_load_s": load}
    for share in args.shares.split(","):
        r, f = (float(x) for x in share.split("+"))
        t0 = clock()
        full = relax(problem, time_budget_s=r, max_iterations=10_000, seed=args.seed, clock=clock, fill_best=0)
        bound = tighten(problem, full, clock=clock, deadline=clock() + f)
        out[share] = [full.bound, bound, round(clock() - t0, 3)]
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shares", default="0.6+0.4,0.8+0.6,1.2+0.8")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--sources", default="regulondb,pwm")
    ap.add_argument("--lengths", default="120,200")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--baseline", default=None)
    ap.add_argument("--baseline-shares", default="1.2+0.8")
    ap.add_argument("--out", default=None)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--source", default="regulondb", help=argparse.SUPPRESS)
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
        for length in (int(x) for x in args.lengths.split(",")):
            for seed in (int(x) for x in args.seeds.split(",")):
                cmd = [sys.executable, __file__, "--child", "--source", source, "--n", str(args.n),
                       "--length", str(length), "--seed", str(seed)]
                row = {"name": f"{source}-n{args.n}-L{length}-seed{seed}"}
                if base_dir is not None:
                    row["baseline"] = run_child([*cmd, "--shares", args.baseline_shares], base_src)
                row.update(run_child([*cmd, "--shares", args.shares], None))
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    out = {"bench": "bound_cpu", "commit": commit_label("src/dnadesign/densegen/solver"), "clock": "cpu", "shares": args.shares,
           "baseline": args.baseline, "baseline_shares": args.baseline_shares, "load_before": load_before,
           "load_after": [round(x, 2) for x in os.getloadavg()], "instances": rows}
    write_line(out, args.out)


if __name__ == "__main__":
    main()
