"""Benchmark the default plots of a run; prints ONE JSON line of figures.

Runs the packaged demos (`workspaces/demo_sites`, `workspaces/demo_pwm`) once into a temp dir,
then renders their default plots (every plot, the config's formats) in a fresh process per
workspace and per code version, and reports the CPU seconds of that process (user + sys,
imports included) and of the rendering alone. With `--baseline REV` the same rendering is done by
the code of git revision REV (exported with `git archive`) on the same outputs, side by side.

Figures per workspace: cpu_render_s (after the config is loaded: matplotlib import, reading the rows,
drawing, saving), cpu_total_s (the whole process, interpreter start-up included), files.

With `--rows 1000000,10000000` it measures at scale instead: a synthetic dataset of that many rows
in the real record shape (the demo_sites run's committed rows, records + `densegen` overlay,
tiled with fresh random sequences and ids, appended in parts like `dense run` appends) is built
once per size (cached under `--cache`), then `dense plot` (every default plot) and `dense report`
run in their own processes, new code and `--baseline` side by side, each measured under GNU time
(CPU s, peak RSS). A baseline process is capped at `--baseline-mem-gb` of address space and
`--timeout` seconds (a cap it hits is reported, not fatal).

Usage: uv run python bench/dense_plots.py [--baseline 3e9e021] [--formats png,pdf]
       uv run python bench/dense_plots.py --rows 1000000,10000000 --baseline 792af17 --out bench/results/dense_plots_scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cli_startup import checkout as export_rev  # bench/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]
DEMOS = ("demo_sites", "demo_pwm")

# cpu_render_s starts after the config is loaded (what `dense run` has done when it draws the plots),
# so it includes importing matplotlib and the plot modules, reading the rows, drawing and saving.
RENDER = """
import json, sys, time
from dnadesign.densegen.config import load_config
cfg = load_config(sys.argv[1])
t1 = time.process_time()
from dnadesign.densegen.plots.render import render_plots
fmts = sys.argv[2].split(",") if len(sys.argv) > 2 and sys.argv[2] else None
paths = render_plots(cfg, formats=fmts)
print(json.dumps({"cpu_render_s": round(time.process_time() - t1, 3), "files": len(paths)}))
"""


def dense_bin() -> str:
    p = Path(sys.executable).parent / "dense"
    return str(p) if p.exists() else "dense"


def clean_env(src: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SGE_")) and k not in ("JOB_ID", "NSLOTS")}
    env["PYTHONPATH"] = str(src)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure as users run it: with compiled bytecode cached
    env["MPLBACKEND"] = "Agg"
    return env


def run_demo(name: str, dest: Path) -> Path:
    shutil.copytree(REPO / "workspaces" / name, dest, ignore=shutil.ignore_patterns("outputs"))
    cfg = dest / "config.yaml"
    r = subprocess.run([dense_bin(), "run", "--no-plot", "--progress", "off", "-c", str(cfg)], capture_output=True,
                       text=True, env=clean_env(REPO / "src"), timeout=900)
    if r.returncode != 0:
        sys.exit(f"dense run of {name} failed: {r.stderr.strip()[-400:]}")
    return cfg


def render(src: Path, cfg: Path, formats: str) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([sys.executable, "-c", RENDER, str(cfg), formats], capture_output=True, text=True,
                       env=clean_env(src), timeout=900)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        return {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"}
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["cpu_total_s"] = round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 3)
    return out


# -- at scale ---------------------------------------------------------------------------------------
def build_scale(cache: Path, rows: int, part_rows: int = 250_000, seed: int = 7) -> Path:
    """A demo_sites workspace whose USR dataset holds `rows` synthetic rows of the run (cached)."""
    import datetime as dt
    import hashlib

    import numpy as np
    import pyarrow as pa

    ws = cache / f"ws-{rows}"
    if (ws / ".built").exists():
        return ws / "config.yaml"
    shutil.rmtree(ws, ignore_errors=True)
    cfg = run_demo("demo_sites", ws)
    from dnadesign.densegen.config import load_config
    from dnadesign.densegen.sinks.usr_sink import UsrSink
    from dnadesign.usr.store import Dataset

    loaded = load_config(cfg)
    root, dataset_id = loaded.usr_target()
    sink = UsrSink(root, dataset_id, None)
    template = sink.ds.scan(namespaces=["densegen"]).collect().to_arrow()
    ov_cols = [c for c in template.column_names if c.startswith("densegen__")]
    shutil.rmtree(ws / "outputs" / "tables", ignore_errors=True)  # the Parquet sink: USR alone holds the rows
    shutil.rmtree(sink.ds.dir)
    ds = Dataset.create(sink.root, dataset_id)
    rng = np.random.default_rng(seed)
    L = int(template.column("length")[0].as_py())
    t0 = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    for start in range(0, rows, part_rows):
        n = min(part_rows, rows - start)
        pick = pa.array(np.arange(start, start + n) % template.num_rows)
        part = template.take(pick)
        codes = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, size=(n, L), dtype=np.uint8)]
        buf = codes.tobytes()
        ids = [hashlib.sha1(b"dna|" + buf[i * L:(i + 1) * L]).hexdigest() for i in range(n)]
        offsets = np.arange(0, (n + 1) * L, L, dtype=np.int32)
        seq = pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(buf))
        at = pa.array([t0 + dt.timedelta(milliseconds=int(k)) for k in range(start, start + n)], pa.timestamp("us", tz="UTC"))
        rec = pa.table({"id": pa.array(ids), "bio_type": part["bio_type"], "sequence": seq, "alphabet": part["alphabet"],
                        "length": part["length"], "source": part["source"], "created_at": part["created_at"]})
        ov = part.select(ov_cols).set_column(ov_cols.index("densegen__accepted_at"), "densegen__accepted_at", at)
        ds.append(rec, overlays={"densegen": ov.add_column(0, "id", pa.array(ids))})
        print(f"[dense_plots] built {start + n} / {rows} rows", file=sys.stderr, flush=True)
    (ws / ".built").write_text("ok")
    return cfg


def scale_commands(src: Path, cfg: Path, mem_gb: float | None, timeout: int) -> dict:
    """`dense plot` (png) and `dense report` of `cfg` with the code of `src`: CPU s, peak RSS, wall."""
    from usr_scale import measured

    out = {}
    cmds = {"plots": ["plot", "--format", "png"], "report": ["report", "-o", str(cfg.parent / "outputs" / "bench_report.html")]}
    for name, args in cmds.items():
        py = "import sys; sys.argv[0] = 'dense'; from dnadesign.densegen.cli import main; main()"
        argv = [sys.executable, "-c", py, *args, "-c", str(cfg)]
        if mem_gb:
            argv = ["bash", "-c", f"ulimit -v {int(mem_gb * 1024 * 1024)}; exec timeout {timeout} \"$@\"", "_", *argv]
        else:
            argv = ["timeout", str(timeout), *argv]
        r = measured(argv, env={"PYTHONPATH": str(src), "MPLBACKEND": "Agg"})
        entry = {k: r[k] for k in ("cpu_s", "rss_mb", "wall_s", "rc")}
        if r["rc"] != 0:
            line = "timeout" if r["rc"] == 124 else (r["err"].strip().splitlines() or ["?"])[-1]
            entry["error"] = line.replace(str(cfg.parent), "<workspace>")[:200]  # no path of this machine
        out[name] = entry
    return out


def main_scale(args) -> None:
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    result: dict = {"bench": "dense_plots_scale", "commit": commit, "load_before": list(os.getloadavg()), "sizes": {}}
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dense-plots-") as tmp:
        base_src = export_rev(args.baseline, Path(tmp)) if args.baseline else None
        for rows in [int(x) for x in args.rows.split(",")]:
            cfg = build_scale(cache, rows)
            entry = {"new": scale_commands(REPO / "src", cfg, None, args.timeout)}
            if base_src is not None:
                entry["baseline"] = scale_commands(base_src, cfg, args.baseline_mem_gb, args.timeout)
            result["sizes"][str(rows)] = entry
            print(f"[dense_plots] {rows}: {json.dumps(entry)}", file=sys.stderr, flush=True)
    if args.baseline:
        result["baseline"] = args.baseline
    line = json.dumps(result, separators=(",", ":"))
    if args.out:
        Path(args.out).write_text(line + "\n")
    print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default=None, help="git revision whose plot code is measured side by side")
    ap.add_argument("--formats", default="", help="comma-separated formats (default: each config's plots.formats)")
    ap.add_argument("--rows", default=None, help="measure at scale: comma-separated dataset sizes (e.g. 1000000,10000000)")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "dense-plots-scale"), help="where scale datasets are kept")
    ap.add_argument("--baseline-mem-gb", type=float, default=14.0, help="address-space cap of a baseline process (scale mode)")
    ap.add_argument("--timeout", type=int, default=1200, help="seconds per command (scale mode)")
    ap.add_argument("--out", default=None, help="also write the JSON line to this file")
    args = ap.parse_args()
    if args.rows:
        main_scale(args)
        return
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    result: dict = {"bench": "dense_plots", "commit": commit, "formats": args.formats or "config",
                    "load_before": list(os.getloadavg()), "workspaces": {}}
    with tempfile.TemporaryDirectory(prefix="dense-plots-") as tmp:
        base_src = export_rev(args.baseline, Path(tmp)) if args.baseline else None
        for name in DEMOS:
            cfg = run_demo(name, Path(tmp) / name)
            sides = {"new": REPO / "src", **({"baseline": base_src} if base_src is not None else {})}
            for src in sides.values():  # warm-up: bytecode compiled and cached, fonts found
                render(src, cfg, args.formats)
            entry = {side: render(src, cfg, args.formats) for side, src in sides.items()}
            result["workspaces"][name] = entry
    news = [w["new"] for w in result["workspaces"].values()]
    result["max_cpu_render_s"] = max(n.get("cpu_render_s", float("nan")) for n in news)
    result["target_cpu_render_s"] = 3.0
    if args.baseline:
        result["baseline"] = args.baseline
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
