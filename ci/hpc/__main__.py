"""`python -m ci.hpc [driver flags]` runs the driver; `validate DIR`, `push DIR` and `baseline SUMMARY` are helpers.

    python -m ci.hpc --tests-only                          # what run_hpc_ci.sh does
    python -m ci.hpc validate hpc-ci/artifacts             # check the artifacts against ci/hpc/schemas
    python -m ci.hpc push hpc-ci/artifacts                 # push summaries to $HPC_RESULTS_REMOTE
    python -m ci.hpc baseline hpc-ci/artifacts             # bench/baseline.json from a run's figures
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from dnadesign.core.atomic import atomic_write_json
from dnadesign.core.errors import DnadesignError

from .bench_phase import baseline_from_summary, load_json
from .driver import HARNESS, main, validate_artifacts
from .publish import push_results


def _helper(cmd: str, rest: list[str]) -> int:
    if len(rest) != 1:
        sys.stderr.write(f"python -m ci.hpc {cmd}: give the artifacts directory (e.g. hpc-ci/artifacts)\n")
        return 2
    art = Path(rest[0])
    if not (art / "meta.json").exists():
        sys.stderr.write(f"python -m ci.hpc {cmd}: {art} has no meta.json. Run ci/hpc/run_hpc_ci.sh first.\n")
        return 1
    try:
        if cmd == "validate":
            problems = validate_artifacts(art)
            for p in problems:
                sys.stderr.write(p + "\n")
            sys.stdout.write(json.dumps({"ok": not problems, "problems": len(problems)}) + "\n")
            return 1 if problems else 0
        if cmd == "push":
            remote = os.environ.get("HPC_RESULTS_REMOTE")
            if not remote:
                sys.stderr.write("python -m ci.hpc push: set HPC_RESULTS_REMOTE to the results repository.\n")
                return 2
            push_results(art, remote, os.environ.get("HPC_RESULTS_BRANCH") or "hpc-results")
            return 0
        summary = load_json(art / "benchmarks" / "summary.json", "benchmarks summary")
        target = HARNESS / "bench" / "baseline.json"
        atomic_write_json(target, baseline_from_summary(summary, load_json(art / "meta.json", "meta")))
        sys.stderr.write(f"baseline written to {target}; review it and commit it\n")
        return 0
    except DnadesignError as exc:
        sys.stderr.write(f"python -m ci.hpc {cmd}: {exc.render()}\n")
        return int(exc.exit_code)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] in ("validate", "push", "baseline"):
        sys.exit(_helper(args[0], args[1:]))
    sys.exit(main(args))
