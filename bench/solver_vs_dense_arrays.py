"""Benchmark: the DenseGen CP-SAT engine against PyPI dense-arrays (CBC, ``solutions()``).

Seeded libraries of real E. coli binding sites (RegulonDB, ``../shared/data/regulondb_tfbs.csv``,
distinct sequences of 6-30 bp) of 10, 20, 50 and 100 sites, at L = 60 and 120, plain and with the
sigma70 promoter (-35 TTGACA, -10 TATAAT, spacer 16-18). Both engines run in the same process
tree with the same per-solve limit (10 s), the same number of requested solutions (20) and the
same run budget per instance (checked between solves). dense-arrays is re-run beside ours in
every run (never reused from an earlier one), in its own Python 3.12 environment as a
subprocess (``bench/_dense_arrays_runner.py``), before ours, so both see the same machine.

Modes: ``--mode optimal`` compares ours with dense-arrays' ``solutions()``; ``--mode diverse``
with its ``solutions_diverse()`` (the peer's diverse mode: each solve optimal under a usage
bonus of at most half a site, so it never trades a site for spread).

The dense-arrays environment: ``uv run --no-project --python <3.12> --with dense-arrays==0.3.0``.
uv cannot download a managed 3.12 on a machine without access to its interpreter builds
(GitHub), so the script looks for a local one first: the newest ``~/.pyenv/versions/3.12*`` (how
it runs here), else ``python3.12`` on PATH, else uv's own ``3.12``. ``DENSE_ARRAYS_CMD`` or
``--dense-arrays-cmd`` overrides the whole command (e.g. ``uv python install 3.12`` first where
uv can download interpreters).

Counted: distinct *site sets* per second is the primary figure (what users value: a new
combination of binding sites, not a rearrangement of the same ones); distinct sequences per
second is secondary. sites = library sites per sequence (promoter elements excluded). Our
solutions are checked by ``check_solution``; dense-arrays outputs shorter than L are padded with
random bases to L and re-checked (only checked ones count; the padded ones are reported apart).
Mean sites are compared over all solutions and at equal count (our first k, k = the number
dense-arrays returned in the budget). Diversity, per instance and overall: mean pairwise Jaccard distance of the site sets of the
solutions (0 when every solution repeats one site set), library sites and regulators covered.
``--out PATH`` also writes the JSON line (with the commit measured) to PATH.

    uv run python bench/solver_vs_dense_arrays.py --stall 1 [--mode diverse] [--quick] [--sizes 10,20]
        [--lengths 60] [--variants plain] [--out bench/results/solver_vs_dense_arrays.json]

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
PEER_METHOD = {"optimal": "solutions", "diverse": "solutions_diverse"}  # dense-arrays' own mode for each of ours


def jaccard_spread(sets: list[frozenset]) -> float | None:
    """Mean pairwise Jaccard distance of site sets (0: one set repeated; None below two)."""
    if len(sets) < 2:
        return None
    total, pairs = 0.0, 0
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            union = sets[i] | sets[j]
            total += 1.0 - (len(sets[i] & sets[j]) / len(union) if union else 1.0)
            pairs += 1
    return total / pairs


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
    t0, c0 = time.perf_counter(), time.process_time()
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
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "name": inst["name"],
        "engine": "cpsat",
        "wall_s": wall,
        "cpu_s": cpu,
        "stop": stop,
        "bound": sols[0].bound if sols else None,
        "first_optimal": sols[0].optimal if sols else False,
        "first_s": first_s,
        "solutions": [
            {
                "sequence": s.sequence,
                "sites": s.n_sites,
                "site_set": sorted(s.site_ids),
                "regulators": sorted({p.regulator for p in s.placements if not p.fixed}),
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
                "method": PEER_METHOD[args.mode],
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
            sites = next(inst["sites"] for inst in insts if inst["name"] == r["name"])
            for sol in r["solutions"]:
                sol["regulators"] = sorted({sites[i].regulator for i in sol["site_set"]})
            res[r["name"]] = r
    return res


def summarise(r: dict | None) -> dict:
    if not r:
        return {"distinct": 0, "site_sets": 0, "rate": 0.0, "set_rate": 0.0, "mean_sites": None, "proven": 0.0, "wall_s": 0.0,
                "padded": 0, "failed_recheck": 0, "first_sites": None, "jaccard": None, "cpu_s": 0.0, "set_rate_cpu": 0.0, "sites_covered": 0,
                "regulators_covered": 0}
    seqs, sets, sites, proven, per_seq = {}, set(), [], [], []
    regs: set[str] = set()
    padded = sum(1 for s in r["solutions"] if s.get("padded"))
    unchecked = sum(1 for s in r["solutions"] if s.get("checked") is False)
    for s in r["solutions"]:
        if s["sequence"] in seqs or s.get("checked") is False:
            continue
        seqs[s["sequence"]] = s
        sets.add(tuple(s["site_set"]))
        per_seq.append(frozenset(s["site_set"]))
        regs.update(s.get("regulators", ()))
        sites.append(s["sites"])
        proven.append(bool(s.get("optimal", r.get("proven", False))))
    n = len(seqs)
    return {
        "distinct": n,
        "site_sets": len(sets),
        "rate": n / r["wall_s"] if r["wall_s"] > 0 else 0.0,
        "set_rate": len(sets) / r["wall_s"] if r["wall_s"] > 0 else 0.0,
        "cpu_s": r.get("cpu_s", 0.0),
        "set_rate_cpu": len(sets) / r["cpu_s"] if r.get("cpu_s") else 0.0,
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
        "jaccard": jaccard_spread(per_seq),  # over the solutions (rearrangements count as distance 0)
        "sites_covered": len(set().union(*per_seq)) if per_seq else 0,
        "regulators_covered": len(regs),
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
    load_before = os.getloadavg()
    theirs = {} if args.skip_theirs else run_theirs(insts, args)
    t_theirs = time.perf_counter() - t0
    ours = {}
    for inst in insts:
        ours[inst["name"]] = run_ours(inst, args)
        print(f"  ours {inst['name']}: {summarise(ours[inst['name']])}", file=sys.stderr, flush=True)

    rows = []
    hdr = (f"{'instance':22} {'sets/s o':>8} {'theirs':>7} {'ratio':>6} {'sol/s o':>7} {'theirs':>7} {'sets o/t':>9} "
           f"{'sites o/t':>11} {'bound':>6} {'1st gap':>7} {'padded':>6} {'jacc o/t':>9} {'regs o/t':>8} {'cpu sets/s o/t':>15}")
    print(hdr, file=sys.stderr)
    tot = {"ours_n": 0, "ours_wall": 0.0, "th_n": 0, "th_wall": 0.0, "ours_sets": 0, "th_sets": 0, "th_padded": 0,
           "ours_cpu": 0.0, "th_cpu": 0.0}
    for inst in insts:
        o = summarise(ours[inst["name"]])
        t = summarise(theirs.get(inst["name"]))
        bound = ours[inst["name"]]["bound"]
        ratio = (o["rate"] / t["rate"]) if t["rate"] > 0 else None
        set_ratio = (o["set_rate"] / t["set_rate"]) if t.get("set_rate") else None
        gap = (bound - o["max_sites"]) if (bound is not None and o["max_sites"] is not None) else None
        first_k = _first_k_mean(ours[inst["name"]], t["distinct"])
        first_gap = (bound - o["first_sites"]) if (bound is not None and o.get("first_sites") is not None) else None
        rows.append(
            {
                "instance": inst["name"],
                "ours": o,
                "theirs": t,
                "rate_ratio": ratio,
                "set_rate_ratio": set_ratio,
                "set_rate_cpu_ratio": (o["set_rate_cpu"] / t["set_rate_cpu"]) if t.get("set_rate_cpu") else None,
                "bound": bound,
                "gap_to_bound": gap,
                "first_gap_to_bound": first_gap,
                        "sites_ge_theirs": (t["mean_sites"] is None) or (o["mean_sites"] is not None and o["mean_sites"] >= t["mean_sites"] - 1e-9),
                # at equal counts: our first k distinct solutions, k = the number dense-arrays returned
                "ours_mean_sites_first_k": first_k,
                "sites_ge_theirs_at_equal_count": (t["mean_sites"] is None) or (first_k is not None and first_k >= t["mean_sites"] - 1e-9),
            }
        )
        tot["ours_n"] += o["distinct"]
        tot["ours_wall"] += o["wall_s"]
        tot["th_n"] += t["distinct"]
        tot["th_wall"] += t["wall_s"]
        tot["ours_sets"] += o["site_sets"]
        tot["th_sets"] += t["site_sets"]
        tot["th_padded"] += t.get("padded", 0)
        tot["ours_cpu"] += o["cpu_s"]
        tot["th_cpu"] += t["cpu_s"]
        fmt = lambda v, f="{:.2f}": "-" if v is None else f.format(v)  # noqa: E731
        print(
            f"{inst['name']:22} {o['set_rate']:8.2f} {t.get('set_rate', 0.0):7.3f} {fmt(set_ratio, '{:.1f}'):>6} {o['rate']:7.2f} "
            f"{t['rate']:7.3f} {o['site_sets']:>4}/{t['site_sets']:<4} {fmt(o['mean_sites']):>5}/{fmt(t['mean_sites']):<5} "
            f"{fmt(bound, '{:.1f}'):>6} {fmt(first_gap, '{:.0f}'):>7} {t.get('padded', 0):>6} "
            f"{fmt(o['jaccard'])}/{fmt(t['jaccard'])} {o['regulators_covered']:>3}/{t['regulators_covered']:<3} "
            f"{o['set_rate_cpu']:7.2f}/{t['set_rate_cpu']:<7.3f}",
            file=sys.stderr,
        )
    ours_rate = tot["ours_n"] / tot["ours_wall"] if tot["ours_wall"] else 0.0
    th_rate = tot["th_n"] / tot["th_wall"] if tot["th_wall"] else 0.0
    ours_sets = tot["ours_sets"] / tot["ours_wall"] if tot["ours_wall"] else 0.0
    th_sets = tot["th_sets"] / tot["th_wall"] if tot["th_wall"] else 0.0
    ours_cpu = tot["ours_sets"] / tot["ours_cpu"] if tot["ours_cpu"] else 0.0
    th_cpu = tot["th_sets"] / tot["th_cpu"] if tot["th_cpu"] else 0.0
    overall = {
        "ours_site_sets_per_cpu_s": ours_cpu,
        "theirs_site_sets_per_cpu_s": th_cpu,
        "site_set_ratio_cpu": ours_cpu / th_cpu if th_cpu else None,
        "ours_cpu_s": tot["ours_cpu"],
        "theirs_cpu_s": tot["th_cpu"],
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
        "instances_sites_lower": [r["instance"] for r in rows if not r["sites_ge_theirs"]],
        "sites_ge_theirs_at_equal_count_on_every_instance": all(r["sites_ge_theirs_at_equal_count"] for r in rows),
        "instances_sites_lower_at_equal_count": [r["instance"] for r in rows if not r["sites_ge_theirs_at_equal_count"]],
        # diversity, over the instances where both engines returned two or more solutions
        "jaccard_both": _mean_pair(rows, "jaccard"),
        "regulators_covered_both": _sum_pair(rows, "regulators_covered"),
        "instances_jaccard_ge_theirs": sum(
            1 for r in rows if r["ours"]["jaccard"] is not None and r["theirs"]["jaccard"] is not None
            and r["ours"]["jaccard"] >= r["theirs"]["jaccard"] - 1e-9
        ),
        "instances_with_both_jaccard": sum(1 for r in rows if r["ours"]["jaccard"] is not None and r["theirs"]["jaccard"] is not None),
    }
    print(
        f"overall site sets: ours {ours_sets:.2f}/s ({tot['ours_sets']}), theirs {th_sets:.3f}/s ({tot['th_sets']}, "
        f"{tot['th_padded']} padded), ratio {overall['site_set_ratio'] if overall['site_set_ratio'] is None else round(overall['site_set_ratio'], 1)}",
        file=sys.stderr,
    )
    print(
        f"overall site sets per CPU-second: ours {ours_cpu:.2f} ({tot['ours_cpu']:.0f} CPU s), theirs {th_cpu:.3f} "
        f"({tot['th_cpu']:.0f} CPU s), ratio {overall['site_set_ratio_cpu'] if overall['site_set_ratio_cpu'] is None else round(overall['site_set_ratio_cpu'], 1)}",
        file=sys.stderr,
    )
    print(
        f"overall: ours {ours_rate:.2f} sol/s ({tot['ours_n']} in {tot['ours_wall']:.0f} s), theirs {th_rate:.3f} sol/s "
        f"({tot['th_n']} in {tot['th_wall']:.0f} s), ratio {overall['ratio'] if overall['ratio'] is None else round(overall['ratio'], 1)}",
        file=sys.stderr,
    )
    print(f"diversity (instances where both have 2+ solutions): jaccard {overall['jaccard_both']}, "
          f"regulators {overall['regulators_covered_both']}; mean sites lower on {overall['instances_sites_lower']} "
          f"(at equal count: {overall['instances_sites_lower_at_equal_count']})",
          file=sys.stderr)
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
        "load_before": load_before,
        "peer_method": None if args.skip_theirs else PEER_METHOD[args.mode],
        "dense_arrays_cmd": args.dense_arrays_cmd.replace(str(Path.home()), "~"),
        "commit": commit,
        "cpu_s": _cpu_seconds(),
    }
    line = json.dumps({"benchmark": "solver_vs_dense_arrays", "meta": meta, "overall": overall, "instances": rows})
    print(line)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(line + "\n")
    return 0


def _first_k_mean(run: dict, k: int) -> float | None:
    """Mean sites of the first ``k`` distinct sequences of a run (None when k is 0)."""
    seen, sites = set(), []
    for s in run["solutions"]:
        if s["sequence"] not in seen:
            seen.add(s["sequence"])
            sites.append(s["sites"])
    sites = sites[:k]
    return sum(sites) / len(sites) if sites and k else None


def _both(rows: list[dict], key: str) -> list[tuple[float, float]]:
    return [(r["ours"][key], r["theirs"][key]) for r in rows
            if r["ours"].get(key) is not None and r["theirs"].get(key) is not None and r["theirs"]["distinct"] >= 2]


def _mean_pair(rows: list[dict], key: str) -> dict | None:
    """Mean of ``key`` for ours and theirs over the instances where both have it."""
    pairs = _both(rows, key)
    if not pairs:
        return None
    return {"ours": sum(o for o, _ in pairs) / len(pairs), "theirs": sum(t for _, t in pairs) / len(pairs), "instances": len(pairs)}


def _sum_pair(rows: list[dict], key: str) -> dict:
    """Sum of ``key`` for ours and theirs over the instances where both have it."""
    pairs = _both(rows, key)
    return {"ours": sum(o for o, _ in pairs), "theirs": sum(t for _, t in pairs), "instances": len(pairs)}


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
