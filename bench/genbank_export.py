"""GenBank export at scale: CPU seconds and peak RSS of `usr export --format genbank` against
FASTA and Parquet exports of the same dataset, at several sizes (memory must stay flat).

Builds (and caches) datasets of `--rows` records (100-bp sequences), each with a `densegen`
overlay as `dense run` writes it: 8 placed sites (random regulators, strands and offsets, the
site sequence sliced from the record) and, for every other record, a sigma70 promoter pair.
Each export runs in its own process under GNU time (CPU user+sys, peak RSS). Prints one JSON
line on stdout; progress goes to stderr.

    flock /tmp/dnadesign-bench.lock uv run python bench/genbank_export.py --rows 10000,100000 \\
        --out bench/results/genbank_export.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
SEQ_LEN = 100
SITES = 8
CHUNK = 20_000
REGULATORS = np.array(["LexA", "CpxR", "Fur", "PhoB", "CRP", "ArcA"])


def log(msg: str) -> None:
    print(f"[genbank_export {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def placements_type() -> pa.DataType:
    return pa.list_(pa.struct([("site_id", pa.string()), ("regulator", pa.string()), ("offset", pa.int32()),
                               ("end", pa.int32()), ("strand", pa.string()), ("sequence", pa.string()),
                               ("fixed", pa.bool_())]))


def chunk(start: int, n: int, seed: int) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed * 1_000_003 + start)
    codes = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, size=(n, SEQ_LEN), dtype=np.uint8)]
    seqs = [bytes(r).decode() for r in codes]
    ids = [hashlib.sha1(f"dna|{s}".encode()).hexdigest() for s in seqs]
    places = []
    for i, s in enumerate(seqs):
        row = []
        for k in range(SITES):
            a = int(rng.integers(0, SEQ_LEN - 16))
            w = int(rng.integers(8, 17))
            reg = str(REGULATORS[rng.integers(0, len(REGULATORS))])
            row.append({"site_id": f"in:{reg}:{i}-{k}", "regulator": reg, "offset": a, "end": a + w,
                        "strand": "+" if rng.random() < 0.5 else "-", "sequence": s[a:a + w], "fixed": False})
        if i % 2 == 0:
            row.append({"site_id": "sigma70:upstream", "regulator": "promoter", "offset": 20, "end": 26, "strand": "+",
                        "sequence": s[20:26], "fixed": True})
            row.append({"site_id": "sigma70:downstream", "regulator": "promoter", "offset": 43, "end": 49, "strand": "+",
                        "sequence": s[43:49], "fixed": True})
        places.append(row)
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    rec = pa.table({"id": ids, "bio_type": ["dna"] * n, "sequence": seqs, "alphabet": ["dna_4"] * n,
                    "length": pa.array(np.full(n, SEQ_LEN, np.int32)), "source": ["densegen:bench:mix"] * n,
                    "created_at": pa.array([now] * n, pa.timestamp("us", tz="UTC"))})
    ov = pa.table({"id": ids, "plan": ["mix"] * n, "placements": pa.array(places, type=placements_type())})
    return rec, ov


def build(cache: Path, rows: int, seed: int) -> Path:
    from dnadesign.usr.store import Dataset

    root = cache / f"gb-r{rows}-s{seed}"
    if (root / "bench/gb" / "_manifest.json").exists() or (root / "bench/gb" / "manifest.json").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    ds = Dataset.create(root, "bench/gb")
    for start in range(0, rows, CHUNK):
        rec, ov = chunk(start, min(CHUNK, rows - start), seed)
        ds.append(rec, overlays={"densegen": ov})
    log(f"built {rows} rows")
    return root


def measured(argv: list[str]) -> dict:
    """A process under GNU time: its own CPU seconds (user+sys) and peak RSS (MB)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", tf.name, *argv], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        user, sys_, rss_kb = tf.read().split()[-3:]
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {p.stderr[-500:]}")
    return {"cpu_s": round(float(user) + float(sys_), 2), "rss_mb": round(int(rss_kb) / 1024, 1), "wall_s": round(wall, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="10000,100000")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "dnadesign-bench-genbank")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    usr = str(Path(sys.executable).parent / "usr")
    results: dict = {"bench": "genbank_export", "seq_len": SEQ_LEN, "sites_per_record": SITES,
                     "host_cpus": os.cpu_count(), "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "sizes": {}}
    for rows in [int(x) for x in args.rows.split(",")]:
        root = build(args.cache, rows, args.seed)
        out_dir = Path(tempfile.mkdtemp(prefix="gbx-"))
        try:
            fig: dict = {}
            for fmt, name in (("genbank", "x.gb"), ("fasta", "x.fasta"), ("parquet", "x.parquet")):
                log(f"{rows} rows: export {fmt}")
                fig[fmt] = measured([usr, "--root", str(root), "export", "bench/gb", str(out_dir / name), "--format", fmt])
                fig[fmt]["out_mb"] = round((out_dir / name).stat().st_size / 2**20, 1)
            fig["genbank"]["records_per_cpu_s"] = round(rows / max(fig["genbank"]["cpu_s"], 1e-9))
            results["sizes"][str(rows)] = fig
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
    summarise(results)
    emit(json.dumps(results), args.out)


def summarise(results: dict) -> None:
    """Growth of peak RSS against rows, and records per CPU second between the smallest and largest size."""
    sizes = list(results["sizes"])
    if len(sizes) < 2:
        return
    a, b = results["sizes"][sizes[0]]["genbank"], results["sizes"][sizes[-1]]["genbank"]
    results["genbank_rss_growth"] = round(b["rss_mb"] / a["rss_mb"], 2)
    results["rows_growth"] = int(sizes[-1]) // int(sizes[0])
    extra_cpu = b["cpu_s"] - a["cpu_s"]
    if extra_cpu > 0:
        results["genbank_marginal_records_per_cpu_s"] = round((int(sizes[-1]) - int(sizes[0])) / extra_cpu)


def emit(line: str, out: Path | None) -> None:
    print(line)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(line + "\n")

if __name__ == "__main__":
    main()
