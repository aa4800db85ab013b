"""USR at scale: every read and maintenance command on datasets WITH overlays, CPU seconds and peak RSS.

Builds (and caches) datasets of `--rows` records (120-bp sequences) appended in parts of
`--part-rows` rows, each append carrying a 3-column `densegen` overlay in the same commit, as
`dense run` writes them. Then runs, each in its own process so CPU and peak RSS are its own
(`os.wait4`): `usr info` (the reference), `head -n 5`, `get ID`, `grep PATTERN --limit 20`, a
filtered scan through the Python API, `export` to Parquet, CSV and FASTA, `validate`; on a copy:
append 1,000 rows, write an overlay for `--overlay-ids` ids, `compact` (and the reads again after
it); and disk use against one zstd Parquet file of the same data (the Parquet export).

With `--old-ref REF` (default: the merge base with main) the same commands also run with the code
of REF (exported with `git archive`), side by side in the same run (its exports only up to
`--old-exports-max-rows`). Prints one JSON line on stdout;
progress goes to stderr. Generated inputs and built datasets are cached under `--cache`.

    uv run python bench/usr_scale.py --rows 1000000
    flock /tmp/dnadesign-bench.lock uv run python bench/usr_scale.py --rows 1000000,10000000 --out bench/results/usr_scale.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
SEQ_LEN = 120
PATTERN = "TTGACA"


def log(msg: str) -> None:
    print(f"[usr_scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def code_version() -> str:
    h = hashlib.sha256()
    for p in sorted((REPO / "src/dnadesign/usr").glob("*.py")):
        h.update(p.read_bytes())
    return h.hexdigest()[:10]


# -- data ------------------------------------------------------------------------------------------
def generate_chunk(path: Path, start: int, n: int, seed: int) -> None:
    """n random 120-bp records (+ their overlay values), vectorised except one sha1 call per row."""
    rng = np.random.default_rng(seed * 1_000_003 + start)
    codes = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, size=(n, SEQ_LEN), dtype=np.uint8)]
    buf = codes.tobytes()
    sha1 = hashlib.sha1
    ids = [sha1(b"dna|" + buf[i * SEQ_LEN:(i + 1) * SEQ_LEN]).hexdigest() for i in range(n)]
    offsets = np.arange(0, (n + 1) * SEQ_LEN, SEQ_LEN, dtype=np.int32)
    seq = pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(buf))
    gc = ((codes == ord("G")) | (codes == ord("C"))).mean(axis=1)
    table = pa.table({
        "id": pa.array(ids, pa.string()), "sequence": seq,
        "plan": pa.array(np.array(["sigma70_high", "sigma70_mid", "sigma32"])[rng.integers(0, 3, n)]),
        "n_sites": pa.array(rng.integers(3, 12, n).astype(np.int32)), "gc": pa.array(gc),
    })
    pq.write_table(table, path, compression="zstd")


def inputs(cache: Path, rows: int, part_rows: int, seed: int) -> list[Path]:
    d = cache / f"gen-s{seed}-p{part_rows}"
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for k, start in enumerate(range(0, rows, part_rows)):
        p = d / f"chunk-{k:05d}.parquet"
        if not p.exists():
            generate_chunk(p, start, min(part_rows, rows - start), seed)
        out.append(p)
    return out


def build(cache: Path, rows: int, part_rows: int, seed: int, mode: str = "separate") -> Path:
    """A dataset root with `bench/scale` of `rows` records, built once per code version and cached.

    `separate`: each append is followed by a `write_overlay("densegen", ...)` of its rows (which
    folds them into the base once that pays, as a user's `usr attach` or `infer` run does).
    `separate-nofold`: the same with `fold=False`, so the 3 columns stay in overlay parts (the
    join path reads must handle, and the layout of datasets written before the fold).
    `with-append`: the overlay goes with the records in one `append` call, as `dense run` writes it.
    """
    from dnadesign.usr.store import Dataset

    root = cache / f"ds-r{rows}-p{part_rows}-s{seed}-{mode}-{code_version()}"
    if (root / "bench/scale/manifest.json").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    t0 = time.process_time()
    ds = Dataset.create(root, "bench/scale")
    now = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    for k, p in enumerate(inputs(cache, rows, part_rows, seed)):
        t = pq.read_table(p)
        n = t.num_rows
        rec = pa.table({"id": t["id"], "bio_type": pa.array(["dna"] * n), "sequence": t["sequence"],
                        "alphabet": pa.array(["dna_4"] * n), "length": pa.array(np.full(n, SEQ_LEN, np.int32)),
                        "source": pa.array(["bench"] * n), "created_at": pa.array([now] * n, pa.timestamp("us", tz="UTC"))})
        ov = pa.table({"id": t["id"], "plan": t["plan"], "n_sites": t["n_sites"], "gc": t["gc"]})
        if mode.startswith("separate"):
            ds.append(rec)
            ds.write_overlay("densegen", ov, fold=(mode == "separate"))
        else:
            ds.append(rec, overlays={"densegen": ov})
        if k % 10 == 0:
            log(f"built {min((k + 1) * part_rows, rows)} / {rows} rows")
    log(f"built {rows} rows in {time.process_time() - t0:.1f} s CPU")
    return root


def many_parts(cache: Path, rows: int, parts: int, seed: int) -> Path:
    """A dataset of `rows` records in `parts` appends, each with its overlay part (unfolded: the
    compaction benchmark's input)."""
    return build(cache, rows, -(-rows // parts), seed + 1, mode="separate-nofold")


# -- measuring -------------------------------------------------------------------------------------
def measured(argv: list[str], env: dict | None = None) -> dict:
    """Run a process under GNU time: its own CPU seconds (user+sys) and peak RSS (MB).

    (`ru_maxrss` from wait4 would count the benchmark's own pages copied at fork.) Python bytecode
    caching is on, as on a user's machine (this environment sets PYTHONDONTWRITEBYTECODE).
    """
    full_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    full_env.update(env or {})
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf, tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        t0 = time.perf_counter()
        rc = subprocess.call(["/usr/bin/time", "-f", "%U %S %M", "-o", tf.name, *argv], stdout=fo, stderr=fe, env=full_env)
        wall = time.perf_counter() - t0
        user, sys_, rss_kb = tf.read().split()[-3:]
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read()
    return {"cpu_s": round(float(user) + float(sys_), 3), "rss_mb": round(int(rss_kb) / 1024, 1), "wall_s": round(wall, 2),
            "rc": rc, "out": out.decode(errors="replace")[-300:], "err": err.decode(errors="replace")[-300:]}


def usr_cmd(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", "from dnadesign.usr.cli import main; main()", "--root", str(root), *args]


SCAN = ("import sys, polars as pl\nfrom dnadesign.usr.store import Dataset\n"
        "ds = Dataset.open(sys.argv[1], 'bench/scale')\n"
        "n = ds.scan().filter(pl.col('sequence').str.contains('TTGACA')).select(['id', 'sequence', 'densegen__gc']).collect().height\n"
        "print(n)")
APPEND = ("import sys, hashlib, numpy as np\nfrom dnadesign.usr.store import Dataset\nfrom dnadesign.usr.schema import make_records\n"
          "import resource\nds = Dataset.open(sys.argv[1], 'bench/scale')\n"
          "rng = np.random.default_rng(int(sys.argv[2]))\nseqs = [''.join(r) for r in np.array(list('ACGT'))[rng.integers(0, 4, (1000, 150))]]\n"
          "recs = make_records(seqs, source='bench')\n"
          "t = resource.getrusage(resource.RUSAGE_SELF); c0 = t.ru_utime + t.ru_stime\n"
          "ds.append(recs)\n"
          "t = resource.getrusage(resource.RUSAGE_SELF); print(round(t.ru_utime + t.ru_stime - c0, 4))")
OVERLAY = ("import sys, resource, numpy as np, pyarrow as pa, pyarrow.parquet as pq\nfrom dnadesign.usr.store import Dataset\n"
           "ds = Dataset.open(sys.argv[1], 'bench/scale'); n = int(sys.argv[2])\n"
           "ids = []\nfor e in ds.manifest().parts:\n"
           "    ids.append(pq.read_table(ds.paths.file(e.file), columns=['id']).column('id'))\n"
           "    if sum(len(x) for x in ids) >= n: break\n"
           "ids = pa.chunked_array([c for x in ids for c in x.chunks]).slice(0, n)\n"
           "table = pa.table({'id': ids, 'score': pa.array(np.random.default_rng(1).random(len(ids)))})\n"
           "def cpu():\n    t = resource.getrusage(resource.RUSAGE_SELF); return t.ru_utime + t.ru_stime\n"
           "c0 = cpu(); ds.write_overlay('infer', table, fold=False); c1 = cpu(); f = ds.fold_overlays(); c2 = cpu()\n"
           "print(round(c1 - c0, 4), round(c2 - c1, 4), f['rows_rewritten'])\n"
           "print(round(c2 - c0, 4))")


def old_tree(ref: str) -> Path:
    """The `src/` of git ref `ref`, exported once under /tmp."""
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", ref], capture_output=True, text=True, check=True).stdout.strip()
    dest = Path(tempfile.gettempdir()) / f"usr-scale-old-{sha[:12]}"
    if not (dest / "src/dnadesign/usr/store.py").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", sha, "src/dnadesign"], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "src"


def reads(root: Path, rid: str, work: Path, env: dict | None = None, exports: bool = True) -> dict:
    measured(usr_cmd(root, "info", "bench/scale"), env)  # warm-up: bytecode cache, page cache
    measured(usr_cmd(root, "head", "bench/scale", "-n", "1"), env)
    out = {}
    out["info"] = measured(usr_cmd(root, "info", "bench/scale", "--json"), env)
    out["head"] = measured(usr_cmd(root, "head", "bench/scale", "-n", "5"), env)
    out["get"] = measured(usr_cmd(root, "get", "bench/scale", rid), env)
    out["grep"] = measured(usr_cmd(root, "grep", "bench/scale", PATTERN, "--limit", "20"), env)
    out["filtered_scan_api"] = measured([sys.executable, "-c", SCAN, str(root)], env)
    if exports:
        for fmt in ("parquet", "csv", "fasta"):
            target = work / f"export.{fmt}"
            out[f"export_{fmt}"] = measured(usr_cmd(root, "export", "bench/scale", str(target)), env)
            out[f"export_{fmt}"]["bytes"] = target.stat().st_size if target.exists() else None
    return out


def data_bytes(ds_dir: Path) -> tuple[int, int]:
    data = sum(p.stat().st_size for sub in ("records", "_derived") for p in (ds_dir / sub).rglob("*.parquet"))
    index = sum(p.stat().st_size for p in (ds_dir / "_index").glob("*")) if (ds_dir / "_index").exists() else 0
    return data, index


def disk_vs_export(root: Path, work: Path, data: int | None = None, index: int | None = None) -> dict:
    """Data and index bytes of `root`'s dataset against one zstd Parquet export of the same rows."""
    if data is None or index is None:
        data, index = data_bytes(root / "bench/scale")
    target = work / "layout-export.parquet"
    exp = measured(usr_cmd(root, "export", "bench/scale", str(target)))
    single = target.stat().st_size
    target.unlink()
    return {"export_rc": exp["rc"], "data_bytes": data, "index_bytes": index, "single_zstd_parquet_bytes": single,
            "ratio_data": round(data / single, 3), "ratio_with_index": round((data + index) / single, 3)}


def bench_layouts(cache: Path, rows: int, args: argparse.Namespace) -> dict:
    """Disk of each realistic layout at `rows` rows (ratios to one zstd Parquet file of the same data)."""
    out: dict = {"rows": rows}
    with tempfile.TemporaryDirectory(prefix="usr-scale-", dir=args.work) as w:
        work = Path(w)
        for mode in ("separate", "separate-nofold", "with-append"):
            log(f"layouts: {mode} at {rows} rows")
            out[mode] = disk_vs_export(build(cache, rows, args.part_rows, args.seed, mode=mode), work)
        log("layouts: several overlay writes")
        copy = work / "several"
        shutil.copytree(build(cache, rows, args.part_rows, args.seed, mode="separate"), copy)
        r = measured([sys.executable, "-c", SEVERAL, str(copy)])
        out["several_overlay_writes"] = {"rc": r["rc"], "cpu_s": r["cpu_s"], "rss_mb": r["rss_mb"], **disk_vs_export(copy, work)}
        v = measured(usr_cmd(copy, "validate", "bench/scale"))
        out["several_overlay_writes"]["validate_rc"] = v["rc"]
    return out


SEVERAL = ("import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq\nfrom dnadesign.usr.store import Dataset\n"
           "ds = Dataset.open(sys.argv[1], 'bench/scale'); rng = np.random.default_rng(5)\n"
           "ids = pa.chunked_array([c for e in ds.manifest().parts for c in pq.read_table(ds.paths.file(e.file), columns=['id']).column('id').chunks])\n"
           "for k in range(3):  # three infer batches of a third each (the way infer writes back)\n"
           "    part = ids.slice(k * len(ids) // 3, len(ids) // 3 + 1)\n"
           "    ds.write_overlay('infer', pa.table({'id': part, 'score': pa.array(rng.random(len(part)))}))\n"
           "pick = np.sort(rng.choice(len(ids), len(ids) // 20, replace=False))  # a sparse 5% label, scattered\n"
           "ds.write_overlay('label', pa.table({'id': ids.take(pa.array(pick)), 'tag': pa.array(['x'] * len(pick))}))\n"
           "ds.delete(ids.slice(0, 100).to_pylist(), reason='bench')\n")


def slim(d: dict) -> dict:
    """Drop captured stderr/stdout from passing runs (keep it for failures; keep stdout of ops that print a figure)."""
    return {k: ({kk: vv for kk, vv in v.items() if kk not in ("out", "err") or v.get("rc") or (kk == "out" and k in KEEP_OUT)}
                if isinstance(v, dict) else v) for k, v in d.items()}


KEEP_OUT = {"v"}


def bench_size(cache: Path, rows: int, args: argparse.Namespace, old_src: Path | None) -> dict:
    root = build(cache, rows, args.part_rows, args.seed)
    ds_dir = root / "bench/scale"
    first = json.loads((ds_dir / "manifest.json").read_text())["parts"][0]["file"]
    rid = pq.read_table(ds_dir / first, columns=["id"]).column("id")[7].as_py()
    res: dict = {"rows": rows, "parts": len(json.loads((ds_dir / "manifest.json").read_text())["parts"])}
    with tempfile.TemporaryDirectory(prefix="usr-scale-", dir=args.work) as w:
        work = Path(w)
        log(f"{rows}: reads")
        res["new"] = slim(reads(root, rid, work))
        res["new"]["validate"] = slim({"v": measured(usr_cmd(root, "validate", "bench/scale"))})["v"]
        data, index = data_bytes(ds_dir)
        single = res["new"]["export_parquet"]["bytes"]
        res["disk"] = {"data_bytes": data, "index_bytes": index, "single_zstd_parquet_bytes": single,
                       "ratio_data": round(data / single, 3), "ratio_with_index": round((data + index) / single, 3)}
        if old_src is not None:
            log(f"{rows}: reads with the old code")
            old_root = work / "old-root"
            shutil.copytree(root, old_root, ignore=shutil.ignore_patterns("_index"))
            env = {"PYTHONPATH": str(old_src)}
            res["old"] = slim(reads(old_root, rid, work, env, exports=rows <= args.old_exports_max_rows))
            res["old"]["validate"] = slim({"v": measured(usr_cmd(old_root, "validate", "bench/scale"), env)})["v"]
            shutil.rmtree(old_root)
        log(f"{rows}: appends and overlay writes on a copy")
        copy = work / "copy"
        shutil.copytree(root, copy)
        for k in range(3):
            r = slim({"v": measured([sys.executable, "-c", APPEND, str(copy), str(100 + k)])})["v"]
            r["op_cpu_s"] = float(r.pop("out", "nan").strip().splitlines()[-1]) if r.get("rc") == 0 else None
            res["new"].setdefault("append_1000", []).append(r)
        n_ov = min(args.overlay_ids, rows)
        r = measured([sys.executable, "-c", OVERLAY, str(copy), str(n_ov)])
        r["op_cpu_s"] = float(r["out"].strip().splitlines()[-1]) if r.get("rc") == 0 else None
        if r.get("rc") == 0:
            commit, fold, folded = r["out"].strip().splitlines()[-2].split()
            r.update(commit_cpu_s=float(commit), fold_cpu_s=float(fold), folded_rows=int(folded))
        data, index = data_bytes(copy / "bench/scale")
        if rows <= args.layout_max_rows:
            res["disk_after_overlay_write"] = disk_vs_export(copy, work, data, index)
        res["new"][f"write_overlay_{n_ov}"] = slim({"v": r})["v"]
        shutil.rmtree(copy)
        log(f"{rows}: compaction on a copy")
        shutil.copytree(root, copy)
        res["new"]["compact"] = slim({"v": measured(usr_cmd(copy, "compact", "bench/scale", "--json"))})["v"]
        res["after_compact"] = slim(reads(copy, rid, work, exports=False))
        data, index = data_bytes(copy / "bench/scale")
        res["disk_after_compact"] = {"data_bytes": data, "index_bytes": index, "ratio_data": round(data / single, 3),
                                     "ratio_with_index": round((data + index) / single, 3)}
        res["after_compact"]["validate"] = slim({"v": measured(usr_cmd(copy, "validate", "bench/scale"))})["v"]
    return res


def bench_compaction(cache: Path, rows: int, parts: int, args: argparse.Namespace, old_src: Path | None) -> dict:
    """The issue's compaction case: `rows` records in `parts` appends; reads before and after."""
    root = many_parts(cache, rows, parts, args.seed)
    ds_dir = root / "bench/scale"
    first = json.loads((ds_dir / "manifest.json").read_text())["parts"][0]["file"]
    rid = pq.read_table(ds_dir / first, columns=["id"]).column("id")[3].as_py()
    res: dict = {"rows": rows, "parts": parts}
    with tempfile.TemporaryDirectory(prefix="usr-scale-", dir=args.work) as w:
        work = Path(w)
        copy = work / "copy"
        shutil.copytree(root, copy)
        res["before"] = slim(reads(copy, rid, work, exports=False))
        res["compact"] = slim({"v": measured(usr_cmd(copy, "compact", "bench/scale", "--json"))})["v"]
        res["after"] = slim(reads(copy, rid, work, exports=False))
        if old_src is not None:
            old = work / "old"
            shutil.copytree(root, old, ignore=shutil.ignore_patterns("_index"))
            env = {"PYTHONPATH": str(old_src)}
            res["old_before"] = slim(reads(old, rid, work, env, exports=False))
            res["old_compact"] = slim({"v": measured(usr_cmd(old, "compact", "bench/scale", "--json"), env)})["v"]
            res["old_after"] = slim(reads(old, rid, work, env, exports=False))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="1000000", help="comma-separated dataset sizes ('' = only the other sections)")
    ap.add_argument("--part-rows", type=int, default=250_000, help="rows per append (each with its overlay)")
    ap.add_argument("--overlay-ids", type=int, default=1_000_000)
    ap.add_argument("--compaction-rows", type=int, default=1_000_000)
    ap.add_argument("--compaction-parts", type=int, default=224)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dense-path-rows", type=int, default=1_000_000, help="also measure disk for the dense write path (0 = skip)")
    ap.add_argument("--layout-rows", default="1000000", help="sizes at which every layout's disk is measured ('' = skip)")
    ap.add_argument("--layout-max-rows", type=int, default=1_000_000, help="disk after the overlay write measured up to this size")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "usr-scale-cache"))
    ap.add_argument("--work", default=None, help="scratch directory (default: system temp)")
    ap.add_argument("--old-ref", default="", help="git ref of the code to compare with ('' = merge base with main; 'none' = skip)")
    ap.add_argument("--old-exports-max-rows", type=int, default=1_000_000, help="run the old code's exports up to this size (slow)")
    ap.add_argument("--out", default=None, help="also write the JSON line to this file")
    args = ap.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    old_src = None
    if args.old_ref != "none":
        ref = args.old_ref or subprocess.run(["git", "-C", str(REPO), "merge-base", "HEAD", "main"], capture_output=True,
                                             text=True, check=True).stdout.strip()
        old_src = old_tree(ref)
        log(f"old code: {ref}")
    t0 = time.process_time()
    figures: dict = {"machine": {"cpus": os.cpu_count(), "load_1m": os.getloadavg()[0]}, "sizes": {}}
    if args.compaction_parts:
        log(f"compaction case: {args.compaction_rows} rows in {args.compaction_parts} parts")
        figures["compaction_case"] = bench_compaction(cache, args.compaction_rows, args.compaction_parts, args, old_src)
    for rows in [int(r) for r in args.rows.split(",") if r]:
        figures["sizes"][str(rows)] = bench_size(cache, rows, args, old_src)
    if args.dense_path_rows:
        rows = args.dense_path_rows
        log(f"disk of the dense write path at {rows} rows")
        root = build(cache, rows, args.part_rows, args.seed, mode="with-append")
        with tempfile.TemporaryDirectory(prefix="usr-scale-", dir=args.work) as w:
            target = Path(w) / "export.parquet"
            exp = measured(usr_cmd(root, "export", "bench/scale", str(target)))
            data, index = data_bytes(root / "bench/scale")
            single = target.stat().st_size
            figures["disk_dense_write_path"] = {"rows": rows, "export_rc": exp["rc"], "data_bytes": data, "index_bytes": index,
                                                "single_zstd_parquet_bytes": single, "ratio_data": round(data / single, 3),
                                                "ratio_with_index": round((data + index) / single, 3)}
    for rows in [int(r) for r in args.layout_rows.split(",") if r]:
        figures.setdefault("disk_layouts", {})[str(rows)] = bench_layouts(cache, rows, args)
    figures["bench_process_cpu_s"] = round(time.process_time() - t0, 1)
    figures["children_cpu_s"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime + resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime, 1)
    line = json.dumps(figures)
    print(line)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(line + "\n")


if __name__ == "__main__":
    main()
