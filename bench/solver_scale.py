"""Benchmark: the first solution on large libraries (issue 13, scale).

Libraries of 100, 200, 500 and 1000 sites at L = 120 and 200, from two sources: real E. coli
binding sites (RegulonDB, ``../shared/data/regulondb_tfbs.csv``, distinct sequences of 6-30 bp,
the same seeded draw as ``solver_vs_dense_arrays.py``) and PWM-sampled pools (the RegulonDB PSSM
matrices, ``regulondb_pssm_v4.0.txt``, sites drawn from each matrix in turn, seeded). Each
instance runs in its own child process (so peak RSS is its own): one worker, ``clock="cpu"``,
``time_limit_s`` 10. Measured: CPU seconds from the call to the first solution (the OR-Tools
import is done before), peak RSS of the child, library sites of the first solution, its
reported bound, and the checker's verdict. ``--weighted`` adds a weights rule (issue 14): the
library's regulators, sorted, weigh 1, 2, 3, 1, 2, 3, ...; sites and bound are then reported
in weighted value (``value``, ``gap`` in value units), next to the site count. ``--promoter``
adds the sigma70 promoter users design with (-35 ``TTGACA``, -10 ``TATAAT``, spacer 16-18, both
on +; ``--upstream-pos LO,HI`` adds a window for the -35's start); instance names end in
``-sigma70``.

    uv run python bench/solver_scale.py [--sizes 100,1000] [--lengths 200] [--sources regulondb,pwm]
        [--weighted] [--promoter [--upstream-pos 20,60]] [--seed 1] [--baseline COMMIT]
        [--out bench/results/solver_scale.json]

``--baseline COMMIT`` runs every instance a second time, right before the current code, on that
commit's ``src`` (``git archive`` into a temporary directory, first on ``PYTHONPATH``): the row's
``baseline`` holds its figures, measured under the same load.

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

from child_runs import commit_label, peak_rss_mb, run_child, write_line  # bench/ is on sys.path when run as a script
from cli_startup import checkout

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def pwm_library(n: int, seed: int) -> list[tuple[str, str, str]]:
    """``n`` distinct sites sampled from the RegulonDB PSSMs in turn: (id, sequence, regulator)."""
    import numpy as np

    from dnadesign.core.motifs import read_motifs
    from dnadesign.densegen.inputs.pwm import sample_sites

    motifs = [m for m in read_motifs(DATA / "regulondb_pssm_v4.0.txt", "regulondb") if 6 <= m.width <= 30]
    rng = np.random.default_rng(seed)
    per = max(1, -(-n // len(motifs)) + 2)
    pools = [
        [s.sequence for s in sample_sites(m, n_sites=per, strategy="stochastic", candidates=200, min_score_norm=0.6, rng=rng)]
        for m in motifs
    ]
    out: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for round_ in range(per):
        for m, pool in zip(motifs, pools, strict=True):
            if round_ < len(pool) and pool[round_] not in seen and len(out) < n:
                seen.add(pool[round_])
                out.append((f"{m.name}_{round_}", pool[round_], m.name))
    return out


def regulondb_library(n: int, seed: int) -> list[tuple[str, str, str]]:
    from solver_vs_dense_arrays import draw_library, load_rows

    return [(s.id, s.sequence, s.regulator) for s in draw_library(load_rows(DATA / "regulondb_tfbs.csv"), n, seed=seed)]


def child(args) -> None:
    """Run one instance in this process; print one JSON line."""
    import dnadesign.densegen.solver.enumerate  # noqa: F401  (OR-Tools import outside the figure)
    from dnadesign.core.errors import DnadesignError
    from dnadesign.densegen.solver import Problem, Site, SolverOptions, check_solution, solve

    lib = (regulondb_library if args.source == "regulondb" else pwm_library)(args.n, args.seed * 1000 + args.n)
    rules: tuple = ()
    if args.weighted:
        from dnadesign.densegen.solver.constraints.weights import RegulatorWeights

        regs = sorted({r for _i, _s, r in lib})
        rules = (RegulatorWeights(tuple((r, 1 + k % 3) for k, r in enumerate(regs) if k % 3)),)
    promoters: tuple = ()
    if args.promoter:
        from dnadesign.densegen.solver import PromoterConstraint

        window = tuple(int(x) for x in args.upstream_pos.split(",")) if args.upstream_pos else None
        promoters = (PromoterConstraint("sigma70", "TTGACA", "TATAAT", 16, 18, upstream_pos=window),)
    problem = Problem(tuple(Site(i, s, r) for i, s, r in lib), args.length, rules=rules, promoters=promoters)
    options = SolverOptions(time_limit_s=args.time_limit, seed=args.seed, workers=1, clock="cpu")
    t0 = time.process_time()
    try:
        sol = next(solve(problem, options, 1))
    except (DnadesignError, StopIteration) as exc:  # report, keep benchmarking
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return
    cpu = time.process_time() - t0
    print(json.dumps({
        "sites_in_library": len(lib),
        "cpu_to_first_s": round(cpu, 3),
        "peak_rss_mb": peak_rss_mb(),
        "sites": sol.n_sites,
        "bound": sol.bound,
        "value": int(sol.objective + 1e-9),
        "gap": None if sol.bound is None else int(sol.bound + 1e-9) - int(sol.objective + 1e-9),
        "optimal": sol.optimal,
        "checked": check_solution(problem, sol) == [],
    }))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,200,500,1000")
    ap.add_argument("--lengths", default="120,200")
    ap.add_argument("--sources", default="regulondb,pwm")
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weighted", action="store_true", help="per-regulator weights 1-3 (issue 14)")
    ap.add_argument("--promoter", action="store_true", help="with the sigma70 promoter (TTGACA / TATAAT, spacer 16-18)")
    ap.add_argument("--upstream-pos", default=None, help="with --promoter: window LO,HI of the -35 element's start")
    ap.add_argument("--baseline", default=None, help="also run each instance on this commit's src, side by side")
    ap.add_argument("--out", default=None)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--source", default="regulondb", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=100, help=argparse.SUPPRESS)
    ap.add_argument("--length", type=int, default=120, help=argparse.SUPPRESS)
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
                cmd = [sys.executable, __file__, "--child", "--source", source, "--n", str(n), "--length", str(length),
                       "--time-limit", str(args.time_limit), "--seed", str(args.seed)] + (["--weighted"] if args.weighted else [])
                if args.promoter:
                    cmd += ["--promoter"] + (["--upstream-pos", args.upstream_pos] if args.upstream_pos else [])
                base = run_child(cmd, base_src) if base_src is not None else None
                suffix = ("-weighted" if args.weighted else "") + ("-sigma70" if args.promoter else "")
                row = {"name": f"{source}-n{n}-L{length}{suffix}", **run_child(cmd)}
                if base is not None:
                    row["baseline"] = base
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    out = {"bench": "solver_scale", "commit": commit_label("src/dnadesign/densegen/solver"), "time_limit_s": args.time_limit,
           "clock": "cpu", "workers": 1, "weighted": args.weighted,
           "promoter": "sigma70 TTGACA/TATAAT spacer 16-18" + (f" upstream_pos {args.upstream_pos}" if args.upstream_pos else "") if args.promoter else None,
           "seed": args.seed, "load_before": load_before,
           "load_after": [round(x, 2) for x in os.getloadavg()], "baseline": args.baseline, "instances": rows}
    write_line(out, args.out)


if __name__ == "__main__":
    main()
