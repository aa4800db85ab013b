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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


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
    if base_dir is not None:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.baseline, "src"], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", base_dir.name], input=archive, check=True)

    def run(cmd: list[str], src: str | None) -> dict:
        env = dict(os.environ, PYTHONPATH=src) if src else None
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        lines = proc.stdout.strip().splitlines()
        return json.loads(lines[-1]) if lines else {"error": proc.stderr.strip().splitlines()[-1:]}

    rows = []
    for source in args.sources.split(","):
        for length in (int(x) for x in args.lengths.split(",")):
            for seed in (int(x) for x in args.seeds.split(",")):
                cmd = [sys.executable, __file__, "--child", "--source", source, "--n", str(args.n),
                       "--length", str(length), "--seed", str(seed)]
                row = {"name": f"{source}-n{args.n}-L{length}-seed{seed}"}
                if base_dir is not None:
                    row["baseline"] = run([*cmd, "--shares", args.baseline_shares], str(Path(base_dir.name) / "src"))
                row.update(run([*cmd, "--shares", args.shares], None))
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "src/dnadesign/densegen/solver"], capture_output=True, text=True).stdout.strip()
    out = {"bench": "bound_cpu", "commit": commit + ("-dirty" if dirty else ""), "clock": "cpu", "shares": args.shares,
           "baseline": args.baseline, "baseline_shares": args.baseline_shares, "load_before": load_before,
           "load_after": [round(x, 2) for x in os.getloadavg()], "instances": rows}
    line = json.dumps(out)
    print(line)
    if args.out:
        Path(args.out).write_text(line + "\n")


if __name__ == "__main__":
    main()
