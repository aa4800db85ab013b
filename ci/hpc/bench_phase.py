"""The benchmarks phase: run the CI selection of `bench/` scripts, compare each figure with the baseline.

The selection (`ci/hpc/benchmarks.json`) names, per benchmark, the command (a `bench/` script
with small arguments, so CI stays quick) and the figures to keep from its one JSON line, each with
the direction that is better (`lower` / `higher`) and optionally its own regression threshold.
A figure is a regression when it is worse than its baseline by more than the threshold:
`worse_pct = delta_vs_baseline_pct` for lower-is-better figures and its negative otherwise.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dnadesign.core.errors import DnadesignError as CIError

from .checkout import Checkout, child_env
from .proc import Runner

DEFAULT_THRESHOLD_PCT = 25.0
DEFAULT_BENCH_TIMEOUT_S = 1800.0


def load_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from a file, or a CIError naming the file."""
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as exc:
        raise CIError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CIError(f"{what} {path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise CIError(f"{what} {path} is not a JSON object")
    return doc


def load_selection(path: Path) -> dict[str, Any]:
    """The benchmark selection, checked: every benchmark has a name, a command and figures with a direction."""
    doc = load_json(path, "benchmark selection")
    benches = doc.get("benchmarks")
    if not isinstance(benches, list) or not benches:
        raise CIError(f"benchmark selection {path} lists no benchmarks", hint='add {"benchmarks": [{"name", "command", "figures"}]}')
    for i, b in enumerate(benches):
        where = f"{path}: benchmarks[{i}]"
        if not isinstance(b, dict) or not isinstance(b.get("name"), str) or not isinstance(b.get("command"), list) \
                or not b["command"] or not isinstance(b.get("figures"), dict) or not b["figures"]:
            raise CIError(f"{where} needs a name, a non-empty command list and figures")
        for fig, spec in b["figures"].items():
            if not isinstance(spec, dict) or spec.get("better") not in ("lower", "higher"):
                raise CIError(f"{where}.figures.{fig} needs better: lower or higher")
    return doc


def extract(doc: Any, path: str) -> float | None:
    """The number at `a/b/c` in a benchmark's JSON document, or None."""
    node = doc
    for part in path.split("/"):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        return None
    return float(node)


def last_json_line(text: str) -> dict[str, Any] | None:
    """The last line of a benchmark's stdout that is a JSON object (benchmarks print one)."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict):
                return doc
    return None


def run_benchmarks(co: Checkout, art: Path, selection: Mapping[str, Any], runner: Runner, log) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Run every benchmark of the selection; returns (runs, figures: id -> {value, better, unit, threshold_pct, bench})."""
    raw_dir, logs = art / "benchmarks" / "raw", art / "logs"
    raw_dir.mkdir(parents=True, exist_ok=True)
    runs: dict[str, Any] = {}
    figures: dict[str, dict[str, Any]] = {}
    for b in selection["benchmarks"]:
        name = b["name"]
        out = raw_dir / f"{name}.out"
        cmd = [str(co.python), *[str(c) for c in b["command"]]]
        log(f"benchmark {name}: {' '.join(str(c) for c in b['command'])}")
        res = runner.run(cmd, cwd=co.workdir, env=child_env({k: str(v) for k, v in (b.get("env") or {}).items()}),
                         log=logs / "benchmarks.log", stdout=out, timeout=float(b.get("timeout_s") or DEFAULT_BENCH_TIMEOUT_S))
        doc = last_json_line(out.read_text(errors="replace")) if out.exists() else None
        status = "ok"
        error = None
        if res.stopped:
            status, error = "stopped", "stopped by a signal"
        elif res.timed_out:
            status, error = "timeout", f"no result within {b.get('timeout_s') or DEFAULT_BENCH_TIMEOUT_S:.0f} s"
        elif res.exit_code != 0:
            status, error = "failed", f"exit code {res.exit_code}; see logs/benchmarks.log"
        elif doc is None:
            status, error = "failed", "printed no JSON line of figures"
        if doc is not None:
            (raw_dir / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n")
        out.unlink(missing_ok=True)
        missing = []
        for path, spec in b["figures"].items():
            value = extract(doc, path) if doc is not None else None
            if doc is not None and value is None:
                missing.append(path)
            figures[f"{name}/{path}"] = {"bench": name, "value": value, "better": spec["better"], "unit": spec.get("unit"),
                                          "threshold_pct": spec.get("threshold_pct")}
        if status == "ok" and missing:
            status, error = "failed", f"figures missing from its output: {', '.join(missing)}"
        runs[name] = {"status": status, "exit_code": res.exit_code, "duration_seconds": res.wall_s, "cpu_seconds": res.cpu_s,
                      "peak_rss_mb": res.peak_rss_mb, "raw_file": f"benchmarks/raw/{name}.json" if doc is not None else None,
                      "error": error}
        log(f"benchmark {name}: {status} in {res.wall_s:.1f} s ({res.cpu_s:.1f} CPU s)" + (f" - {error}" if error else ""))
    return runs, figures


def compare(figures: Mapping[str, Mapping[str, Any]], baseline: Mapping[str, Any] | None, default_threshold: float) -> dict[str, Any]:
    """Figures against the baseline: per-figure delta and regression flag, the regressions, the worst one."""
    base = (baseline or {}).get("figures") or {}
    out: dict[str, Any] = {}
    worst: tuple[float, str] | None = None
    regressions = []
    for fid, fig in figures.items():
        spec = base.get(fid) if isinstance(base.get(fid), Mapping) else None
        ref = spec.get("value") if spec else None
        own = fig.get("threshold_pct")
        threshold = float(own) if own is not None else default_threshold
        value = fig.get("value")
        delta = worse = None
        if isinstance(ref, (int, float)) and not isinstance(ref, bool) and ref != 0 and value is not None:
            delta = round(100.0 * (value - ref) / abs(ref), 2)
            worse = delta if fig["better"] == "lower" else -delta
        regression = worse is not None and worse > threshold
        out[fid] = {"bench": fig["bench"], "value": value, "baseline": ref, "delta_vs_baseline_pct": delta, "worse_pct": worse,
                    "better": fig["better"], "unit": fig.get("unit"), "threshold_pct": threshold, "regression": regression}
        if regression:
            regressions.append(fid)
        if worse is not None and (worst is None or worse > worst[0]):
            worst = (worse, fid)
    return {"benchmarks": out, "regressions": sorted(regressions),
            "worst_regression_pct": None if worst is None else worst[0],
            "worst_regression_figure": None if worst is None else worst[1]}


def bench_status(runs: Mapping[str, Any], comparison: Mapping[str, Any]) -> str:
    """failed (a benchmark did not produce its figures) / regressed / passed."""
    if any(r["status"] != "ok" for r in runs.values()):
        return "failed"
    return "regressed" if comparison["regressions"] else "passed"


def run_phase(co: Checkout, art: Path, selection_path: Path, baseline_path: Path | None, threshold_override: float | None,
              runner: Runner, log) -> dict[str, Any]:
    """Run the selection and return the benchmarks summary (without commit/branch, which the driver adds).

    `threshold_override` (HPC_CI_REGRESSION_PCT) replaces the selection's default threshold.
    """
    selection = load_selection(selection_path)
    baseline = load_json(baseline_path, "benchmark baseline") if baseline_path and baseline_path.exists() else None
    if baseline is None:
        log("benchmarks: no baseline file; figures are recorded without comparison")
    default = float(threshold_override if threshold_override is not None
                    else selection.get("default_threshold_pct") or DEFAULT_THRESHOLD_PCT)
    t0 = time.monotonic()
    runs, figures = run_benchmarks(co, art, selection, runner, log)
    comparison = compare(figures, baseline, default)
    status = bench_status(runs, comparison)
    return {
        "status": status,
        "duration_seconds": round(time.monotonic() - t0, 3),
        "cpu_seconds": round(sum(r["cpu_seconds"] for r in runs.values()), 3),
        "default_threshold_pct": default,
        "baseline": None if baseline is None else {
            "file": _rel(baseline_path, co.workdir), "commit": baseline.get("commit"), "generated_at": baseline.get("generated_at"),
            "machine": baseline.get("machine")},
        "selection_file": _rel(selection_path, co.workdir),
        "runs": runs,
        **comparison,
        "log_file": "logs/benchmarks.log",
    }


def _rel(path: Path | None, base: Path) -> str | None:
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return Path(path).name


def baseline_from_summary(summary: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    """A new `bench/baseline.json` document from a run's benchmarks summary and meta."""
    figures = {fid: {"value": f["value"], "better": f["better"], **({"unit": f["unit"]} if f.get("unit") else {})}
               for fid, f in sorted(summary.get("benchmarks", {}).items()) if f.get("value") is not None}
    return {
        "schema_version": 1,
        "generated_at": meta.get("generated_at"),
        "commit": meta.get("commit"),
        "machine": {k: meta.get(k) for k in ("node", "cluster", "scheduler", "partition", "cpus", "python_version")},
        "refresh": "ci/hpc/run_hpc_ci.sh --benchmarks-only --update-baseline  (then review and commit bench/baseline.json)",
        "figures": figures,
    }
