"""Benchmark `infer`'s CPU presets: sequences per CPU second at 100k sequences, scorer alone and end to end.

Figures (one JSON line on stdout, progress on stderr; CPU seconds = user + system):
- `pwm`: the bundled RegulonDB PSSM v4.0 scan (92 matrices, both strands, hits at p <= 1e-4) on
  100k sequences of 100 bp, batched as `infer run` does; beside it, in the same run, the textbook
  vectorised scan (one gather per matrix position) on a subset, for the speed-up of the chunked
  look-up tables.
- `markov`: training a k=6 model on a 4.6 Mb FASTA (E. coli sized) and scoring the 100k sequences.
- `end_to_end`: `infer run --write-back` as a process on a 100k-row USR dataset (CPU of the child,
  peak RSS, batches committed), once per preset.

Usage: uv run python bench/infer_presets.py [--rows 100000] [--length 100] [--out bench/results/infer_presets.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from dnadesign.core.motifs import read_motifs
from dnadesign.infer.encode import buckets, code_matrix, pack
from dnadesign.infer.markov import MarkovModel, MarkovScorer
from dnadesign.infer.presets import REGULONDB_PSSM
from dnadesign.infer.pwm_scan import PwmScanner
from dnadesign.usr.schema import make_records
from dnadesign.usr.store import Dataset

BIN = Path(sys.executable).parent


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def random_seqs(n: int, length: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, size=(n, length))]
    return [row.tobytes().decode() for row in letters]


def batched(scorer, values: pa.Array, batch: int) -> None:
    for start in range(0, len(values), batch):
        scorer.score(values.slice(start, batch))


def textbook_scan(scanner: PwmScanner, values: pa.Array) -> None:
    """Best score and hits per matrix with one gather per matrix position (the plain numpy approach)."""
    packed = pack(values)
    for rows in buckets(packed.lengths):
        X, _ = code_matrix(packed, rows)
        for m in scanner.motifs:
            positions = X.shape[1] - m.width + 1
            for mat in (m.scores, m.scores[::-1, ::-1]):
                ext = np.concatenate([mat.astype(np.float32), np.full((m.width, 1), -np.inf, np.float32)], axis=1)
                s = sum(ext[j][X[:, j:j + positions]] for j in range(m.width))
                s.max(axis=1)
                (s >= m.threshold).sum(axis=1)


def write_genome(path: Path, bases: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    seq = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, size=bases)].tobytes()
    with open(path, "wb") as fh:
        fh.write(b">chromosome synthetic\n")
        for i in range(0, bases, 80):
            fh.write(seq[i:i + 80] + b"\n")


def end_to_end(root: Path, preset: str, extra: list[str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    res = subprocess.run([str(BIN / "infer"), "run", "--root", str(root), "--preset", preset, "--usr", "bench/arrays",
                          "--field", "sequence", "--device", "cpu", "--write-back", "--json", *extra],
                         capture_output=True, text=True, check=False)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise SystemExit(f"infer run {preset} failed: {res.stderr.strip()}")
    out = json.loads(res.stdout)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"rows": out["scored"], "batches": out["batches"], "cpu_s": round(cpu_s, 2), "wall_s": round(wall, 2),
            "seq_per_cpu_s": round(out["scored"] / cpu_s), "peak_rss_mb": round(after.ru_maxrss / 1024)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--length", type=int, default=100)
    ap.add_argument("--textbook-rows", type=int, default=10_000, help="subset for the textbook scan (it is slow)")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON line to this file")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    figures: dict = {"rows": args.rows, "length": args.length, "machine": platform.machine(), "python": platform.python_version()}
    seqs = random_seqs(args.rows, args.length, seed=1)
    values = pa.array(seqs, pa.string())

    log("pwm: preparing the 92 RegulonDB matrices")
    c0 = cpu()
    scanner = PwmScanner(read_motifs(REGULONDB_PSSM, "regulondb"))
    prep = cpu() - c0
    c0 = cpu()
    batched(scanner, values, 20_000)
    pwm_cpu = cpu() - c0
    sub = values.slice(0, args.textbook_rows)
    c0 = cpu()
    batched(scanner, sub, 20_000)
    chunked_sub = cpu() - c0
    log(f"pwm: textbook scan on {len(sub)} rows")
    c0 = cpu()
    textbook_scan(scanner, sub)
    textbook_sub = cpu() - c0
    figures["pwm"] = {"matrices": len(scanner.motifs), "prepare_cpu_s": round(prep, 3), "score_cpu_s": round(pwm_cpu, 2),
                      "seq_per_cpu_s": round(args.rows / pwm_cpu),
                      "textbook_vs_chunked": {"rows": len(sub), "textbook_cpu_s": round(textbook_sub, 2),
                                              "chunked_cpu_s": round(chunked_sub, 2),
                                              "speedup": round(textbook_sub / chunked_sub, 2)}}

    with tempfile.TemporaryDirectory(prefix="infer-bench-") as tmp:
        genome = Path(tmp) / "genome.fa"
        write_genome(genome, 4_600_000, seed=2)
        log("markov: training k=6 on 4.6 Mb")
        c0 = cpu()
        model = MarkovModel.train(genome, 6)
        train = cpu() - c0
        c0 = cpu()
        batched(MarkovScorer(model), values, 50_000)
        mk_cpu = cpu() - c0
        figures["markov"] = {"k": 6, "train_bases": model.bases, "train_cpu_s": round(train, 2), "score_cpu_s": round(mk_cpu, 2),
                             "seq_per_cpu_s": round(args.rows / mk_cpu)}

        log(f"end to end: a {args.rows}-row USR dataset")
        root = Path(tmp) / "usr"
        ds = Dataset.create(root, "bench/arrays", source="bench")
        ds.append(make_records(seqs, source="bench"))
        figures["end_to_end"] = {
            "regulondb/pwm_scan": end_to_end(root, "regulondb/pwm_scan", []),
            "markov/loglik": end_to_end(root, "markov/loglik", ["--train-fasta", str(genome)]),
        }
    line = json.dumps(figures)
    print(line)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(line + "\n")


if __name__ == "__main__":
    main()
