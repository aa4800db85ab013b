"""Benchmark the USR store: append cost vs dataset size, head/info/scan/validate at 1M rows, snapshot overhead.

Prints one JSON line of figures on stdout (progress on stderr). Usage:
    uv run python bench/usr_store.py [--sizes 10000,100000,1000000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from dnadesign.usr import query
from dnadesign.usr.schema import make_records
from dnadesign.usr.store import Dataset
from dnadesign.usr.validate import validate


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def random_seqs(n: int, rng: random.Random, length: int = 60) -> list[str]:
    return ["".join(rng.choices("ACGT", k=length)) for _ in range(n)]


def timed(fn, repeat: int = 1) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--appends", type=int, default=5, help="appends of 1,000 rows measured per size")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="usr-bench-"))
    rng = random.Random(7)
    figures: dict = {"append_1000_s": {}, "append_1000_s_max": {}}
    biggest = None
    for n in sizes:
        ds = Dataset.create(work, f"bench/n{n}")
        t0 = time.perf_counter()
        for start in range(0, n, 250_000):
            ds.append(make_records(random_seqs(min(250_000, n - start), rng), source="bench"))
        log(f"built {n} rows in {time.perf_counter() - t0:.1f}s")
        runs = []
        for _ in range(args.appends):
            batch = make_records(random_seqs(1000, rng), source="bench")
            runs.append(timed(lambda: ds.append(batch)))
        figures["append_1000_s"][str(n)] = round(statistics.median(runs), 4)
        figures["append_1000_s_max"][str(n)] = round(max(runs), 4)
        log(f"append 1000 rows at {n}: median {statistics.median(runs):.3f}s max {max(runs):.3f}s")
        biggest = ds
    ds = biggest
    n = ds.manifest().rows
    figures["rows"] = n
    figures["head_s"] = round(timed(lambda: query.head(ds, 10), 3), 4)
    figures["info_s"] = round(timed(lambda: (ds.manifest(), ds.snapshots()), 3), 4)
    figures["filtered_scan_s"] = round(timed(lambda: ds.scan().filter(pl.col("sequence").str.contains("TTGACA")).collect(), 3), 4)
    figures["get_by_id_s"] = round(timed(lambda: query.get(ds, ds.scan().head(1).collect()["id"][0]), 3), 4)
    t0 = time.perf_counter()
    rep = validate(ds)
    figures["validate_s"] = round(time.perf_counter() - t0, 3)
    figures["validate_ok"] = rep.ok
    for tool_args in (["head", ds.id, "-n", "5"], ["info", ds.id]):
        t0 = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "usr"), "--root", str(work), *tool_args], capture_output=True, check=True)
        figures[f"cli_{tool_args[0]}_wall_s"] = round(time.perf_counter() - t0, 3)
    data_bytes = ds.manifest().bytes
    for i in range(5):
        ds.snapshot(f"s{i}")
    snap_bytes = dir_bytes(ds.paths.snapshots_dir)
    figures["dataset_bytes"] = data_bytes
    figures["five_snapshots_bytes"] = snap_bytes
    figures["five_snapshots_overhead_pct"] = round(100 * snap_bytes / data_bytes, 4)
    figures["incumbent_reference"] = {"append_1_row_at_1M_s": 6.5, "five_snapshots_of_43MB_bytes": 175_000_000}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
