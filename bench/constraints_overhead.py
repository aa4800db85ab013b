"""Cost and outcome of every design rule, old tree vs this tree side by side (CPU seconds).

The same problems (a 100-site RegulonDB library, 200 bp) run from `git archive REF src` and from
this tree, each in a fresh process: the legacy problems (plain; a sigma70 promoter, its hexamers
forbidden and whole-sequence GC bounds) for precheck, model build and checker CPU, and each rule
alone on top of the legacy rules (IUPAC pattern + enzymes, GC windows, homopolymer, maximum
count, pin, spacing, weights) for the model build and the CPU to a first solution within a 4 s
deterministic limit. Per problem and tree: sites, value (the objective's site value: weighted
under weights), bound, the checker's verdict and CPU; per rule the differences new - old
(`sites_delta`, `value_delta`). `sites: null` when no solution came.

Sequences are not compared: a deterministic limit is counted work (`solver/budget.py`), and
what a 4 s limit buys changed when the count did (commit aa4e014), so two trees may return
other, equally valid, sequences. What must hold is that every solution passes the checker
(`all_checked`) and no rule loses value (`value_regressions`: the rules whose first solution
is worth less on this tree). Prints one JSON line on stdout (`--out` also writes it).

    uv run python bench/constraints_overhead.py --baseline-ref 38ee1eb [--out bench/results/constraints_overhead.json]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from child_runs import commit_label, run_child, write_line  # bench/ is on sys.path when run as a script
from cli_startup import checkout

REPO = Path(__file__).resolve().parents[1]

WORKER = r'''
import csv, json, resource, sys
from dataclasses import replace
from dnadesign.densegen.solver import Problem, PromoterConstraint, Site, SolverOptions, check_solution, precheck, solve
from dnadesign.densegen.solver.model import PositionalModel

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

rows = list(csv.DictReader(open(sys.argv[1])))
sites = tuple(Site(f"t{i}", r["tfbs"], r["tf"]) for i, r in enumerate(rows[:100]))
prom = PromoterConstraint("sigma70", "TTGACA", "TATAAT", 16, 18, (20, 80))
legacy = [
    Problem(sites, 200),
    Problem(sites, 200, promoters=(prom,), forbid_kmers=("TTGACA", "TATAAT"), gc_min=0.3, gc_max=0.6),
]
out = {}
for k, p in enumerate(legacy):
    name = ["plain", "legacy_rules"][k]
    t = cpu(); precheck(p); t_pre = cpu() - t
    t = cpu(); pm = PositionalModel(p); t_model = cpu() - t
    sols = list(solve(p, SolverOptions(time_limit_s=4, seed=1, deterministic=True), 2))
    t = cpu()
    for _ in range(20):
        for s in sols:
            assert check_solution(p, s) == []
    t_check = (cpu() - t) / 20 / max(1, len(sols))
    out[name] = {"precheck_cpu_s": round(t_pre, 4), "model_build_cpu_s": round(t_model, 3),
                 "check_cpu_s": round(t_check, 5), "placements": len(pm.placements),
                 "constraints": len(pm.model.proto.constraints), "sites": [s.n_sites for s in sols],
                 "value": [int(s.objective + 1e-9) for s in sols], "bound": sols[0].bound if sols else None,
                 "checked": all(check_solution(p, s) == [] for s in sols)}
try:  # each new rule alone on top of legacy_rules: first solution within 4 s (deterministic), on both trees
    from dnadesign.densegen.solver import NoSolutionFoundError
    from dnadesign.densegen.solver.constraints import (GcContent, MaxHomopolymer, Pin, RegulatorCount,
                                                       RegulatorWeights, Spacing, forbidden_rule)
except ImportError:  # a baseline from before the constraint modules
    rules = {}
else:
    regs = sorted({s.regulator for s in sites})
    rules = {"forbid_patterns+enzymes": forbidden_rule(patterns=("GCNNNNNNNGC",), enzymes=(("BsaI", "GGTCTC"), ("EcoRI", "GAATTC"))),
             "gc_windows": GcContent(0.2, 0.8, 20), "max_homopolymer": MaxHomopolymer(5),
             "max_count_by_regulator": RegulatorCount(regs[0], 0, 2), "pins": Pin(regs[1], 100, 180),
             "spacing": Spacing(regs[2], regs[3], 0, 40), "weights": RegulatorWeights(((regs[4], 3),))}
out["rules_alone"] = {}
for name, rule in rules.items():
    p = replace(legacy[1], rules=(rule,))
    t = cpu(); pm = PositionalModel(p); t_model = cpu() - t
    t = cpu()
    try:
        sol = next(iter(solve(p, SolverOptions(time_limit_s=4, seed=1, deterministic=True), 1)))
        got = {"sites": sol.n_sites, "value": int(sol.objective + 1e-9), "objective": sol.objective, "bound": sol.bound,
               "checked": check_solution(p, sol) == []}
    except NoSolutionFoundError:
        got = {"sites": None}
    out["rules_alone"][name] = {"model_build_cpu_s": round(t_model, 3), "first_solution_cpu_s": round(cpu() - t, 2),
                                "constraints": len(pm.model.proto.constraints), **got}
print(json.dumps(out))
'''


def run(src: Path, which: str) -> dict:
    """The worker's figures on the tree whose ``src`` is given (a fresh process)."""
    data = REPO / "tests" / "data" / "tfbs_lib100.csv"
    got = run_child([sys.executable, "-c", WORKER, str(data), which], src)
    if "error" in got:
        raise SystemExit(f"constraints_overhead: the {which} worker failed: {got['error']}")
    return got


def delta(new: dict | None, old: dict | None, key: str) -> int | None:
    """``new[key] - old[key]`` when both trees found a solution, else None."""
    if not new or not old or new.get(key) is None or old.get(key) is None:
        return None
    return new[key] - old[key]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline-ref", default="main")
    ap.add_argument("--out", default=None, help="also write the JSON line to this file")
    args = ap.parse_args()
    load_before = round(os.getloadavg()[0], 1)
    with tempfile.TemporaryDirectory() as tmp:
        old = run(checkout(args.baseline_ref, Path(tmp)), "old")
    new = run(REPO / "src", "new")
    ref = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.baseline_ref], capture_output=True, text=True).stdout.strip()
    legacy = {k: {"baseline": old[k], "new": new[k]} for k in old if k != "rules_alone"}
    rules = {k: {"baseline": old["rules_alone"].get(k), "new": v, "sites_delta": delta(v, old["rules_alone"].get(k), "sites"),
                 "value_delta": delta(v, old["rules_alone"].get(k), "value")}
             for k, v in new["rules_alone"].items()}
    solved = [r["new"] for r in legacy.values()] + [r["new"] for r in rules.values() if r["new"].get("sites") is not None]
    write_line({"bench": "constraints_overhead", "unit": "cpu_s", "baseline_ref": ref, "commit": commit_label("src"),
                "load_before": load_before, "load_1min": round(os.getloadavg()[0], 1), "cpus": os.cpu_count(),
                "all_checked": all(r["checked"] for r in solved if "checked" in r),
                "value_regressions": sorted(k for k, r in rules.items() if (r["value_delta"] or 0) < 0
                                            or (r["new"].get("sites") is None and (r["baseline"] or {}).get("sites") is not None)),
                "results": legacy, "rules_alone": rules}, args.out)


if __name__ == "__main__":
    main()
