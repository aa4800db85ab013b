"""Benchmark: the DenseGen CP-SAT engine against PyPI dense-arrays (CBC, ``solutions()``).

Seeded libraries of real E. coli binding sites (RegulonDB, ``../shared/data/regulondb_tfbs.csv``,
distinct sequences of 6-30 bp) of 10, 20, 50 and 100 sites, at L = 60 and 120, plain and with the
sigma70 promoter (-35 TTGACA, -10 TATAAT, spacer 16-18). Both engines run in the same process
tree with the same per-solve limit (10 s), the same number of requested solutions (20) and the
same run budget per instance (checked between solves). dense-arrays runs in its own Python 3.12
environment as a subprocess (``bench/_dense_arrays_runner.py``).

Counted: distinct *site sets* per second is the primary figure (what users value: a new
combination of binding sites, not a rearrangement of the same ones); distinct sequences per
second is secondary. sites = library sites per sequence (promoter elements excluded). Our
solutions are checked by ``check_solution``; dense-arrays outputs shorter than L are padded with
random bases to L and re-checked (only checked ones count; the padded ones are reported apart).
``--out PATH`` also writes the JSON line (with the commit measured) to PATH.

    uv run python bench/solver_vs_dense_arrays.py [--quick] [--sizes 10,20] [--lengths 60] [--variants plain]

Human table on stderr, one JSON line of figures on stdout.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from dnadesign.densegen.solver import Problem, PromoterConstraint, Site, SolverOptions, check_solution, solve

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "regulondb_tfbs.csv"
SIGMA70 = ("TTGACA", "TATAAT", 16, 18)


def default_dense_arrays_cmd() -> str:
    """uv command for a Python 3.12 env with dense-arrays; prefers a local 3.12 (e.g. pyenv)."""
    py = shutil.which("python3.12") or "3.12"
    pyenv = Path.home() / ".pyenv" / "versions"
    if pyenv.is_dir():
        found = sorted(pyenv.glob("3.12*/bin/python3.12"))
        if found:
            py = str(found[-1])
    return f"uv run --no-project --python {py} --with dense-arrays==0.3.0 python"


def load_rows(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="") as fh:
        return [(r["tf"], r["tfbs"].strip().upper()) for r in csv.DictReader(fh)]


def draw_library(rows, n: int, seed: int, min_len: int = 6, max_len: int = 30) -> list[Site]:
    """``n`` distinct site sequences drawn with a seeded shuffle (same seed -> same library)."""
    rng = random.Random(seed)
    order = list(range(len(rows)))
    rng.shuffle(order)
    seen, out = set(), []
    for i in order:
        tf, seq = rows[i]
        if seq in seen or not min_len <= len(seq) <= max_len or set(seq) - set("ACGT"):
            continue
        seen.add(seq)
        out.append(Site(f"r{i}", seq, tf))
        if len(out) == n:
            break
    return out


def instances(args):
    rows = load_rows(Path(args.data))
    for variant in args.variants:
        for n in args.sizes:
            for L in args.lengths:
                lib = draw_library(rows, n, seed=args.seed * 1000 + n)
                yield {"name": f"{variant}-n{n}-L{L}", "sites": lib, "length": L, "promoter": variant == "promoter"}


def run_ours(inst, args) -> dict:
    prom = (PromoterConstraint("sigma70", *SIGMA70),) if inst["promoter"] else ()
    problem = Problem(tuple(inst["sites"]), inst["length"], promoters=prom)
    opts = SolverOptions(
        time_limit_s=args.time_limit, seed=args.seed, workers=args.workers, mode=args.mode, run_time_limit_s=args.run_budget,
        stall_time_s=args.stall,
    )
    t0 = time.perf_counter()
    sols, stop, first_s = [], "requested_count_reached", None
    try:
        for s in solve(problem, opts, args.n_solutions):
            if first_s is None:
                first_s = time.perf_counter() - t0
            errs = check_solution(problem, s)
            if errs:
                raise AssertionError(f"{inst['name']}: invalid solution: {errs[:3]}")
            sols.append(s)
        if len(sols) < args.n_solutions:
            stop = "budget_or_exhausted"
    except Exception as exc:  # report, keep benchmarking
        if isinstance(exc, AssertionError):
            raise
        stop = f"{type(exc).__name__}: {exc}"
    wall = time.perf_counter() - t0
    return {
        "name": inst["name"],
        "engine": "cpsat",
        "wall_s": wall,
        "stop": stop,
        "bound": sols[0].bound if sols else None,
        "first_optimal": sols[0].optimal if sols else False,
        "first_s": first_s,
        "solutions": [
            {
                "sequence": s.sequence,
                "sites": s.n_sites,
                "site_set": sorted(s.site_ids),
                "optimal": s.optimal,
                "solve_s": s.solve_time_s,
            }
            for s in sols
        ],
    }


def run_theirs(insts, args) -> dict[str, dict]:
    payload = []
    for inst in insts:
        lib = [s.sequence for s in inst["sites"]]
        if inst["promoter"]:
            lib += [SIGMA70[0], SIGMA70[1]]
        payload.append(
            {
                "name": inst["name"],
                "library": lib,
                "length": inst["length"],
                "promoter": inst["promoter"],
                "time_limit_s": args.time_limit,
                "n_solutions": args.n_solutions,
                "run_budget_s": args.run_budget,
            }
        )
    cmd = [*args.dense_arrays_cmd.split(), str(Path(__file__).with_name("_dense_arrays_runner.py"))]
    out = subprocess.run(cmd, input=json.dumps(payload), capture_output=True, text=True, cwd="/tmp")
    if out.returncode != 0:
        raise SystemExit(f"dense-arrays runner failed ({out.returncode}): {out.stderr[-2000:]}")
    res = {}
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            res[r["name"]] = r
    return res


def summarise(r: dict | None) -> dict:
    if not r:
        return {"distinct": 0, "site_sets": 0, "rate": 0.0, "set_rate": 0.0, "mean_sites": None, "proven": 0.0, "wall_s": 0.0,
                "padded": 0, "failed_recheck": 0, "first_sites": None}
    seqs, sets, sites, proven = {}, set(), [], []
    padded = sum(1 for s in r["solutions"] if s.get("padded"))
    unchecked = sum(1 for s in r["solutions"] if s.get("checked") is False)
    for s in r["solutions"]:
        if s["sequence"] in seqs or s.get("checked") is False:
            continue
        seqs[s["sequence"]] = s
        sets.add(tuple(s["site_set"]))
        sites.append(s["sites"])
        proven.append(bool(s.get("optimal", r.get("proven", False))))
    n = len(seqs)
    return {
        "distinct": n,
        "site_sets": len(sets),
        "rate": n / r["wall_s"] if r["wall_s"] > 0 else 0.0,
        "set_rate": len(sets) / r["wall_s"] if r["wall_s"] > 0 else 0.0,
        "padded": padded,
        "failed_recheck": unchecked,
        "first_sites": r["solutions"][0]["sites"] if r["solutions"] else None,
        "mean_sites": sum(sites) / n if n else None,
        "max_sites": max(sites) if sites else None,
        "proven": sum(proven) / n if n else 0.0,
        "wall_s": r["wall_s"],
        "stop": r["stop"],
        "first_solve_s": r["solutions"][0].get("solve_s") if r["solutions"] else None,
        "first_s": r.get("first_s"),  # wall time from the call to the first solution (ours only)
    }


def compare_formulations(insts, args) -> int:
    """Time-to-first-optimum of both formulations on the plain instances (same limit, workers)."""
    from dnadesign.densegen.solver.circuit import solve_circuit

    rows = []
    for inst in insts:
        if inst["promoter"]:
            continue
        problem = Problem(tuple(inst["sites"]), inst["length"])
        opts = SolverOptions(time_limit_s=args.time_limit, seed=args.seed, workers=args.workers)
        t0 = time.perf_counter()
        first = next(solve(problem, opts, 1))
        pos = {
            "formulation": "positional",
            "objective": first.n_sites,
            "bound": first.bound,
            "optimal": first.optimal,
            "total_s": time.perf_counter() - t0,
        }
        t0 = time.perf_counter()
        circ = solve_circuit(problem, opts)
        circ["total_s"] = time.perf_counter() - t0
        rows.append({"instance": inst["name"], "positional": pos, "circuit": circ})
        print(
            f"{inst['name']:18} positional {pos['objective']}/{pos['bound']:.0f} {'opt' if pos['optimal'] else '   '} {pos['total_s']:6.2f}s | "
            f"circuit {circ['objective']}/{circ['bound']} {circ['status']:8} {circ['total_s']:6.2f}s ({circ['arcs']} arcs)",
            file=sys.stderr,
            flush=True,
        )
    print(json.dumps({"benchmark": "formulations", "instances": rows}))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10,20,50,100")
    ap.add_argument("--lengths", default="60,120")
    ap.add_argument("--variants", default="plain,promoter")
    ap.add_argument("--time-limit", type=float, default=10.0, help="per-solve limit, both engines")
    ap.add_argument("--n-solutions", type=int, default=20)
    ap.add_argument("--run-budget", type=float, default=60.0, help="per-instance budget, checked between solves")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--stall", type=float, default=None, help="our first solve stops after this long without improvement")
    ap.add_argument("--mode", default="optimal")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=None, help="also write the JSON line to this file (e.g. bench/results/x.json)")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--quick", action="store_true", help="sizes 10,20 at L=60, plain only, 5 solutions")
    ap.add_argument("--skip-theirs", action="store_true")
    ap.add_argument(
        "--reuse-theirs",
        default=None,
        help="take dense-arrays' per-instance results from an earlier results json instead of rerunning it",
    )
    ap.add_argument(
        "--compare-formulations",
        action="store_true",
        help="only time the first optimisation: positional model vs AddCircuit (plain instances)",
    )
    ap.add_argument(
        "--dense-arrays-cmd",
        default=os.environ.get("DENSE_ARRAYS_CMD") or default_dense_arrays_cmd(),
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.lengths, args.variants, args.n_solutions = "10,20", "60", "plain", 5
    args.sizes = [int(x) for x in str(args.sizes).split(",")]
    args.lengths = [int(x) for x in str(args.lengths).split(",")]
    args.variants = [v for v in str(args.variants).split(",")]
    insts = list(instances(args))
    commit = _commit()  # at the start: the code measured, not the tree at the end
    if args.compare_formulations:
        return compare_formulations(insts, args)

    t0 = time.perf_counter()
    reused: dict[str, dict] = {}
    if args.reuse_theirs:
        prev = json.loads(Path(args.reuse_theirs).read_text().strip().splitlines()[-1])
        reused = {r["instance"]: r["theirs"] for r in prev["instances"]}
        theirs = {}
    else:
        theirs = {} if args.skip_theirs else run_theirs(insts, args)
    t_theirs = time.perf_counter() - t0
    ours = {}
    for inst in insts:
        ours[inst["name"]] = run_ours(inst, args)
        print(f"  ours {inst['name']}: {summarise(ours[inst['name']])}", file=sys.stderr, flush=True)

    rows = []
    hdr = (f"{'instance':22} {'sets/s o':>8} {'theirs':>7} {'ratio':>6} {'sol/s o':>7} {'theirs':>7} {'sets o/t':>9} "
           f"{'sites o/t':>11} {'bound':>6} {'1st gap':>7} {'padded':>6}")
    print(hdr, file=sys.stderr)
    tot = {"ours_n": 0, "ours_wall": 0.0, "th_n": 0, "th_wall": 0.0, "ours_sets": 0, "th_sets": 0, "th_padded": 0}
    for inst in insts:
        o = summarise(ours[inst["name"]])
        t = reused[inst["name"]] if inst["name"] in reused else summarise(theirs.get(inst["name"]))
        bound = ours[inst["name"]]["bound"]
        ratio = (o["rate"] / t["rate"]) if t["rate"] > 0 else None
        set_ratio = (o["set_rate"] / t["set_rate"]) if t.get("set_rate") else None
        gap = (bound - o["max_sites"]) if (bound is not None and o["max_sites"] is not None) else None
        first_gap = (bound - o["first_sites"]) if (bound is not None and o.get("first_sites") is not None) else None
        rows.append(
            {
                "instance": inst["name"],
                "ours": o,
                "theirs": t,
                "rate_ratio": ratio,
                "set_rate_ratio": set_ratio,
                "bound": bound,
                "gap_to_bound": gap,
                "first_gap_to_bound": first_gap,
                "sites_ge_theirs": (t["mean_sites"] is None) or (o["mean_sites"] is not None and o["mean_sites"] >= t["mean_sites"] - 1e-9),
            }
        )
        tot["ours_n"] += o["distinct"]
        tot["ours_wall"] += o["wall_s"]
        tot["th_n"] += t["distinct"]
        tot["th_wall"] += t["wall_s"]
        tot["ours_sets"] += o["site_sets"]
        tot["th_sets"] += t["site_sets"]
        tot["th_padded"] += t.get("padded", 0)
        fmt = lambda v, f="{:.2f}": "-" if v is None else f.format(v)  # noqa: E731
        print(
            f"{inst['name']:22} {o['set_rate']:8.2f} {t.get('set_rate', 0.0):7.3f} {fmt(set_ratio, '{:.1f}'):>6} {o['rate']:7.2f} "
            f"{t['rate']:7.3f} {o['site_sets']:>4}/{t['site_sets']:<4} {fmt(o['mean_sites']):>5}/{fmt(t['mean_sites']):<5} "
            f"{fmt(bound, '{:.1f}'):>6} {fmt(first_gap, '{:.0f}'):>7} {t.get('padded', 0):>6}",
            file=sys.stderr,
        )
    ours_rate = tot["ours_n"] / tot["ours_wall"] if tot["ours_wall"] else 0.0
    th_rate = tot["th_n"] / tot["th_wall"] if tot["th_wall"] else 0.0
    ours_sets = tot["ours_sets"] / tot["ours_wall"] if tot["ours_wall"] else 0.0
    th_sets = tot["th_sets"] / tot["th_wall"] if tot["th_wall"] else 0.0
    overall = {
        "ours_site_sets_per_s": ours_sets,
        "theirs_site_sets_per_s": th_sets,
        "site_set_ratio": ours_sets / th_sets if th_sets else None,
        "ours_site_sets": tot["ours_sets"],
        "theirs_site_sets": tot["th_sets"],
        "theirs_padded": tot["th_padded"],
        "first_within_1_of_bound_at_n100_L120": all(
            r["first_gap_to_bound"] is not None and r["first_gap_to_bound"] <= 1 for r in rows if r["instance"].endswith("-n100-L120")
        ),
        "ours_solutions_per_s": ours_rate,
        "theirs_solutions_per_s": th_rate,
        "ratio": ours_rate / th_rate if th_rate else None,
        "ours_distinct": tot["ours_n"],
        "theirs_distinct": tot["th_n"],
        "ours_wall_s": tot["ours_wall"],
        "theirs_wall_s": tot["th_wall"],
        "sites_ge_theirs_on_every_instance": all(r["sites_ge_theirs"] for r in rows),
    }
    print(
        f"overall site sets: ours {ours_sets:.2f}/s ({tot['ours_sets']}), theirs {th_sets:.3f}/s ({tot['th_sets']}, "
        f"{tot['th_padded']} padded), ratio {overall['site_set_ratio'] if overall['site_set_ratio'] is None else round(overall['site_set_ratio'], 1)}",
        file=sys.stderr,
    )
    print(
        f"overall: ours {ours_rate:.2f} sol/s ({tot['ours_n']} in {tot['ours_wall']:.0f} s), theirs {th_rate:.3f} sol/s "
        f"({tot['th_n']} in {tot['th_wall']:.0f} s), ratio {overall['ratio'] if overall['ratio'] is None else round(overall['ratio'], 1)}",
        file=sys.stderr,
    )
    meta = {
        "time_limit_s": args.time_limit,
        "n_solutions": args.n_solutions,
        "run_budget_s": args.run_budget,
        "workers": args.workers,
        "stall_s": args.stall,
        "mode": args.mode,
        "seed": args.seed,
        "cpus": os.cpu_count(),
        "load_avg_at_end": os.getloadavg(),
        "dense_arrays_total_s": t_theirs,
        "theirs_reused_from": args.reuse_theirs,
        "commit": commit,
        "cpu_s": _cpu_seconds(),
    }
    line = json.dumps({"benchmark": "solver_vs_dense_arrays", "meta": meta, "overall": overall, "instances": rows})
    print(line)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(line + "\n")
    return 0


def _commit() -> str:
    """The commit measured (with ``-dirty`` when the tree has uncommitted changes)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True).stdout
        return head + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cpu_seconds() -> dict:
    """CPU seconds of this process and of its finished children (the dense-arrays runner)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"ours": me.ru_utime + me.ru_stime, "children": kids.ru_utime + kids.ru_stime}


if __name__ == "__main__":
    sys.exit(main())
