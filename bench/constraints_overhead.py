"""Cost of constraints-as-modules: CPU seconds of precheck + model build + checker, old vs new.

The same legacy problems (a 100-site RegulonDB library, 200 bp, with a sigma70 promoter, the
sigma70 hexamers forbidden and whole-sequence GC bounds) run from `git archive REF src` and from
this tree, each in a fresh process; the sequences of a short deterministic solve must be
identical. The new rules (IUPAC pattern, enzymes, GC windows, homopolymer, pin, spacing,
weights) are timed on the new tree only, each alone on top of the legacy rules: model build and
the CPU to a first solution within a 4 s (deterministic) limit, or `sites: null` when none came. Prints one JSON line on stdout.

    uv run python bench/constraints_overhead.py --baseline-ref 3e9e021
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

WORKER = r'''
import csv, hashlib, json, resource, sys
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
                 "sequences_sha": hashlib.sha256("".join(s.sequence for s in sols).encode()).hexdigest()[:12]}
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
        got = {"sites": sol.n_sites, "objective": sol.objective, "bound": sol.bound, "checked": check_solution(p, sol) == []}
    except NoSolutionFoundError:
        got = {"sites": None}
    out["rules_alone"][name] = {"model_build_cpu_s": round(t_model, 3), "first_solution_cpu_s": round(cpu() - t, 2),
                                "constraints": len(pm.model.proto.constraints), **got}
print(json.dumps(out))
'''


def run(src: Path, which: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    data = REPO / "tests" / "data" / "tfbs_lib100.csv"
    r = subprocess.run([sys.executable, "-c", WORKER, str(data), which], env=env, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"constraints_overhead: the {which} worker failed: {r.stderr.strip().splitlines()[-1]}")
    return json.loads(r.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline-ref", default="main")
    args = ap.parse_args()
    load_before = round(os.getloadavg()[0], 1)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "src.tar"
        subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), args.baseline_ref, "src"], check=True)
        with tarfile.open(archive) as tf:
            tf.extractall(tmp, filter="data")
        old = run(Path(tmp) / "src", "old")
    new = run(REPO / "src", "new")
    ref = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.baseline_ref], capture_output=True, text=True).stdout.strip()
    same = all(old[k]["sequences_sha"] == new[k]["sequences_sha"] for k in old if k != "rules_alone")
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(json.dumps({"bench": "constraints_overhead", "unit": "cpu_s", "baseline_ref": ref, "commit": head,
                      "load_before": load_before, "load_1min": round(os.getloadavg()[0], 1), "cpus": os.cpu_count(),
                      "same_sequences_as_baseline": same,
                      "results": {k: {"baseline": old[k], "new": new[k]} for k in old if k != "rules_alone"},
                      "rules_alone": {k: {"baseline": old["rules_alone"].get(k), "new": v} for k, v in new["rules_alone"].items()}}))


if __name__ == "__main__":
    main()
