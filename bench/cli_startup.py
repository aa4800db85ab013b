"""CPU seconds of `--help` for every tool (target: under 0.3 s each), old vs new in the same run.

Each command runs as a fresh Python process, the way a console script starts, and its CPU time
(user + system, from wait4) is taken; the median of --repeat runs is reported. With
--baseline-ref REF the same commands also run from `git archive REF src` (e.g. main) so the
figures compare side by side under the same load. Prints one JSON line on stdout.

    flock /tmp/dnadesign-bench.lock uv run python bench/cli_startup.py --baseline-ref main
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENTRY = {"usr": "dnadesign.usr.cli", "dense": "dnadesign.densegen.cli", "notify": "dnadesign.notify.cli",
         "infer": "dnadesign.infer.cli"}
COMMANDS = [
    ["usr", "--help"], ["usr", "head", "--help"], ["usr", "pull", "--help"], ["usr", "migrate", "--help"],
    ["dense", "--help"], ["dense", "run", "--help"], ["dense", "validate-config", "--help"], ["dense", "config", "migrate", "--help"],
    ["notify", "--help"], ["notify", "usr-events", "watch", "--help"],
    ["infer", "--help"],
]
TARGET_CPU_S = 0.3


def cpu_of(argv: list[str], src: Path) -> float | None:
    """CPU seconds (user + sys) of one run of a tool from `src`; None if the command fails there."""
    code = f"import sys; sys.argv = {argv!r}; from {ENTRY[argv[0]]} import main; main()"
    env = {**os.environ, "PYTHONPATH": str(src), "COLUMNS": "80"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        return None
    return usage.ru_utime + usage.ru_stime


def median_cpu(argv: list[str], src: Path, repeat: int) -> float | None:
    runs = [cpu_of(argv, src) for _ in range(repeat)]
    ok = [r for r in runs if r is not None]
    return round(statistics.median(ok), 3) if ok else None


def checkout(ref: str, into: Path) -> Path:
    """`src/` of a git ref, unpacked under `into`."""
    archive = into / "src.tar"
    with open(archive, "wb") as fh:
        subprocess.run(["git", "-C", str(REPO), "archive", ref, "src"], stdout=fh, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="runs per command (the median is reported)")
    ap.add_argument("--baseline-ref", default=None, help="git ref to compare against (e.g. main)")
    args = ap.parse_args()
    new_src = REPO / "src"
    results: dict[str, dict[str, float | None]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        old_src = checkout(args.baseline_ref, Path(tmp)) if args.baseline_ref else None
        for argv in COMMANDS:
            name = " ".join(argv)
            row: dict[str, float | None] = {"new": median_cpu(argv, new_src, args.repeat)}
            if old_src is not None:
                row["baseline"] = median_cpu(argv, old_src, args.repeat)
            if row["new"] is None and row.get("baseline") is None:
                continue  # the tool or command does not exist in either checkout
            results[name] = row
            print(f"{name:40} {row}", file=sys.stderr, flush=True)
    new = [r["new"] for r in results.values() if r["new"] is not None]
    print(json.dumps({
        "bench": "cli_startup", "unit": "cpu_s_median", "repeat": args.repeat, "baseline_ref": args.baseline_ref,
        "load_1min": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(), "target_cpu_s": TARGET_CPU_S,
        "max_new": max(new) if new else None,
        "over_target": sorted(k for k, r in results.items() if r["new"] is not None and r["new"] >= TARGET_CPU_S),
        "results": results,
    }))


if __name__ == "__main__":
    main()
