"""Benchmark the default plots of a run; prints ONE JSON line of figures.

Runs the packaged demos (`workspaces/demo_sites`, `workspaces/demo_pwm`) once into a temp dir,
then renders their default plots (every plot, the config's formats) in a fresh process per
workspace and per code version, and reports the CPU seconds of that process (user + sys,
imports included) and of the rendering alone. With `--baseline REV` the same rendering is done by
the code of git revision REV (exported with `git archive`) on the same outputs, side by side.

Figures per workspace: cpu_render_s (after the config is loaded: matplotlib import, reading the rows,
drawing, saving), cpu_total_s (the whole process, interpreter start-up included), files.

Usage: uv run python bench/dense_plots.py [--baseline 3e9e021] [--formats png,pdf]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default=None, help="git revision whose plot code is measured side by side")
    ap.add_argument("--formats", default="", help="comma-separated formats (default: each config's plots.formats)")
    args = ap.parse_args()
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    result: dict = {"bench": "dense_plots", "commit": commit, "formats": args.formats or "config", "workspaces": {}}
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
