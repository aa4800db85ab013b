"""The HPC CI driver (`ci/hpc/run_hpc_ci.sh` runs this): tests with coverage, benchmarks, artifacts, publishing.

Writes under `$HPC_CI_OUTPUT/artifacts/` (default `hpc-ci/artifacts/` in the driver's repository):
`coverage/lcov.info`, `tests/summary.json`, `benchmarks/summary.json`, `meta.json`,
`hpc-results.json`, `badges/{tests,benchmarks}.json` and `logs/`. See docs/hpc-ci.md.

Exit codes: 0 every phase run passed; 1 a phase failed (a test failed, a benchmark broke, a
regression with --fail-on-regression, an upload or push failed) or the run could not start; 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from dnadesign.core.atomic import atomic_write_json
from dnadesign.core.errors import DnadesignError as CIError
from dnadesign.core.errors import UsageError
from dnadesign.core.timeutil import utc_now

from . import artifacts as A
from .bench_phase import baseline_from_summary, load_json, run_phase
from .checkout import Checkout, child_env, prepare
from .proc import Runner
from .publish import push_results
from .tests_phase import run_tests

HARNESS = Path(__file__).resolve().parents[2]
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)
DEFAULT_PYTEST_ARGS = "-m 'not slow'"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line and exit 2, like every other tool here
        raise UsageError(f"run_hpc_ci.sh: {message}", hint="see run_hpc_ci.sh --help")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = _Parser(prog="run_hpc_ci.sh", description="HPC CI: extended tests with coverage, benchmarks, artifacts for badges.")
    p.add_argument("--tests-only", action="store_true", help="run the tests phase only")
    p.add_argument("--benchmarks-only", action="store_true", help="run the benchmarks phase only")
    p.add_argument("--no-codecov", action="store_true", help="do not upload coverage to Codecov")
    p.add_argument("--no-push", action="store_true", help="do not push summaries even when HPC_RESULTS_REMOTE is set")
    p.add_argument("--update-baseline", action="store_true",
                   help="after the benchmarks, write their figures to bench/baseline.json of the driver's repository")
    p.add_argument("--fail-on-regression", action="store_true", help="exit 1 when a benchmark regressed beyond its threshold")
    p.add_argument("--output", metavar="DIR", help="output directory (default $HPC_CI_OUTPUT, else hpc-ci/ in the repository)")
    args = p.parse_args(argv)
    if args.tests_only and args.benchmarks_only:
        p.error("--tests-only and --benchmarks-only exclude each other")
    if args.update_baseline and args.tests_only:
        p.error("--update-baseline needs the benchmarks phase")
    return args


def _say(msg: str) -> None:
    sys.stderr.write(f"hpc-ci: {msg}\n")
    sys.stderr.flush()


def _iso(t: Any) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _float_env(name: str) -> float | None:
    raw = os.environ.get(name)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not a number") from None


def _clean(art: Path, do_tests: bool, do_bench: bool) -> None:
    """Remove what this run rewrites, so no stale file from an earlier run is mistaken for this one's."""
    art.mkdir(parents=True, exist_ok=True)
    stale = ["meta.json", "hpc-results.json", "latest-meta.json", "badges"]
    stale += ["tests", "coverage", "logs/tests.log"] if do_tests else []
    stale += ["benchmarks", "logs/benchmarks.log"] if do_bench else []
    for rel in stale:
        path = art / rel
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def upload_codecov(art: Path, meta: dict[str, Any], log) -> dict[str, Any]:
    """Phase 1 of the seed: upload lcov.info with a Codecov flag. The token is read from the environment only."""
    flag = os.environ.get("HPC_CI_CODECOV_FLAG") or "hpc-extended"
    if not os.environ.get("CODECOV_TOKEN"):
        return {"flag": flag, "upload": "skipped", "upload_reason": "CODECOV_TOKEN is not set"}
    uploader = shutil.which(os.environ.get("HPC_CI_CODECOV_CMD") or "codecov")
    if uploader is None:
        return {"flag": flag, "upload": "skipped", "upload_reason": "no codecov uploader on PATH"}
    cmd = [uploader, "-F", flag, "-f", str(art / "coverage" / "lcov.info"), "-C", str(meta["commit"])]
    if meta.get("branch"):
        cmd += ["-B", str(meta["branch"])]
    with open(art / "logs" / "codecov.log", "ab") as fh:  # CODECOV_TOKEN reaches the uploader through its environment
        res = subprocess.run(cmd, stdout=fh, stderr=fh, stdin=subprocess.DEVNULL, env=child_env(), timeout=600)
    log(f"codecov upload ({flag}): {'ok' if res.returncode == 0 else f'failed, exit {res.returncode}'}")
    return {"flag": flag, "upload": "uploaded" if res.returncode == 0 else "failed",
            "upload_reason": None if res.returncode == 0 else "see logs/codecov.log"}


def main(argv: list[str] | None = None) -> int:
    """Run the driver; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv)
    except CIError as exc:
        sys.stderr.write(f"run_hpc_ci.sh: {exc.render()}\n")
        return int(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("run_hpc_ci.sh: interrupted\n")
        return 130


def _main(argv: list[str]) -> int:
    args = parse_args(argv)
    do_tests, do_bench = not args.benchmarks_only, not args.tests_only
    threshold = _float_env("HPC_CI_REGRESSION_PCT")
    out = Path(args.output or os.environ.get("HPC_CI_OUTPUT") or HARNESS / "hpc-ci")
    art = out / "artifacts"
    runner = Runner()

    def on_signal(signum: int, _frame: Any) -> None:
        _say(f"signal {signum}: stopping; the artifacts record what ran")
        runner.stop(signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, on_signal)
    start, t0 = utc_now(), time.monotonic()
    _clean(art, do_tests, do_bench)
    (art / "logs").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)

    co: Checkout | None = None
    problem: str | None = None
    tests = coverage = benches = None
    try:
        co = prepare(HARNESS, env, Path(sys.executable), _say)
        pytest_args = os.environ.get("HPC_CI_PYTEST_ARGS", DEFAULT_PYTEST_ARGS)
        if do_tests:
            tests, coverage = run_tests(co, art, pytest_args, runner, _say)
        if do_bench and not runner.stopping:
            selection = Path(os.environ.get("HPC_CI_BENCH_SELECTION") or _first(co.workdir, "ci/hpc/benchmarks.json"))
            baseline = Path(os.environ["HPC_CI_BASELINE"]) if os.environ.get("HPC_CI_BASELINE") \
                else co.workdir / "bench" / "baseline.json"
            benches = run_phase(co, art, selection, baseline, threshold, runner, _say)
    except CIError as exc:
        problem = exc.render()
        _say(problem)
    finally:
        versions = A.env_versions(co.python) if co is not None else {}
        now = utc_now()
        meta = A.build_meta(commit=co.commit if co else os.environ.get("HPC_CI_COMMIT"),
                            branch=co.branch if co else os.environ.get("HPC_CI_BRANCH"), dirty=bool(co and co.dirty),
                            source=co.source if co else None, versions=versions, env=env, started_at=_iso(start),
                            generated_at=_iso(now), wall_s=time.monotonic() - t0,
                            phases={"tests": do_tests, "benchmarks": do_bench},
                            pytest_args=os.environ.get("HPC_CI_PYTEST_ARGS", DEFAULT_PYTEST_ARGS) if do_tests else None, argv=argv)
        if problem:
            meta["error"] = problem
        if runner.stopping:
            meta["stopped_by_signal"] = runner.stop_signal
        if co is not None:
            co.cleanup(keep=bool(os.environ.get("HPC_CI_KEEP_WORKDIR")))
    stamp = {"commit": meta["commit"], "branch": meta["branch"], "generated_at": meta["generated_at"]}
    if do_tests and tests is None:
        tests = {"status": "error", "note": problem or "the tests did not run", "suites": {}, "failing_suites": [],
                 "failures": [], "totals": None, "log_file": "logs/tests.log"}
    if do_bench and benches is None:
        benches = {"status": "error" if problem or runner.stopping else "skipped", "note": problem, "benchmarks": {},
                   "runs": {}, "regressions": [], "worst_regression_pct": None, "worst_regression_figure": None,
                   "log_file": "logs/benchmarks.log"}
    if coverage is not None:
        coverage = {"flag": os.environ.get("HPC_CI_CODECOV_FLAG") or "hpc-extended", **coverage,
                    "report_file": "coverage/lcov.info", "summary_file": "coverage/summary.json",
                    "upload": "skipped", "upload_reason": "--no-codecov"}
        atomic_write_json(art / "coverage" / "summary.json", {"schema_version": 1, **stamp, **coverage})
        if not args.no_codecov:
            coverage.update(upload_codecov(art, meta, _say))
    if tests is not None:
        atomic_write_json(art / "tests" / "summary.json", {"schema_version": 1, **stamp, **tests})
    if benches is not None:
        atomic_write_json(art / "benchmarks" / "summary.json", {"schema_version": 1, **stamp, **benches})
    results = A.build_results(meta, tests, coverage, benches)
    atomic_write_json(art / "meta.json", meta)
    atomic_write_json(art / "hpc-results.json", results)
    atomic_write_json(art / "latest-meta.json", A.latest_meta(meta, results))
    atomic_write_json(art / "badges" / "tests.json", A.tests_badge(meta, tests))
    atomic_write_json(art / "badges" / "benchmarks.json", A.benchmarks_badge(meta, benches))

    failed = bool(problem) or runner.stopping
    failed |= bool(tests and tests["status"] != "passed")
    failed |= bool(benches and benches["status"] in ("failed", "error"))
    failed |= bool(args.fail_on_regression and benches and benches["status"] == "regressed")
    failed |= bool(coverage and coverage.get("upload") == "failed")
    if args.update_baseline and benches and benches["status"] in ("passed", "regressed"):
        target = HARNESS / "bench" / "baseline.json"
        atomic_write_json(target, baseline_from_summary(benches, meta))
        _say(f"baseline written to {target}; review it and commit it")
    remote = os.environ.get("HPC_RESULTS_REMOTE")
    if remote and not args.no_push:
        try:
            push_results(art, remote, os.environ.get("HPC_RESULTS_BRANCH") or "hpc-results", _say)
        except CIError as exc:
            _say(exc.render())
            failed = True
    summary = (f"tests {results['tests']['status']}, benchmarks {results['benchmarks']['status']}"
               + (f", coverage {coverage['coverage_percent']}%" if coverage else "") + f"; artifacts in {art}")
    sys.stdout.write(f"hpc-ci: {summary}\n")
    sys.stdout.flush()
    if runner.stopping:
        return 128 + int(runner.stop_signal or signal.SIGTERM)
    return 1 if failed else 0


def _first(workdir: Path, rel: str) -> Path:
    """The commit's own copy of a CI file when it has one, else the driver's."""
    own = workdir / rel
    return own if own.exists() else HARNESS / rel


def validate_artifacts(art: Path) -> list[str]:
    """Check every artifact against `ci/hpc/schemas` (needs jsonschema); returns the problems found."""
    import jsonschema
    from referencing import Registry, Resource

    schemas = {p.name.removesuffix(".schema.json"): load_json(p, "schema")
               for p in sorted((HARNESS / "ci" / "hpc" / "schemas").glob("*.schema.json"))}
    registry = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas.values())
    pairs = {"tests/summary.json": "tests-summary", "benchmarks/summary.json": "benchmarks-summary", "meta.json": "meta",
             "hpc-results.json": "hpc-results", "badges/tests.json": "shields-endpoint",
             "badges/benchmarks.json": "shields-endpoint", "coverage/summary.json": "coverage-summary"}
    problems = []
    for rel, name in pairs.items():
        path = art / rel
        if not path.exists():
            continue
        validator = jsonschema.Draft202012Validator(schemas[name], registry=registry)
        for err in validator.iter_errors(json.loads(path.read_text())):
            problems.append(f"{rel}: /{'/'.join(str(p) for p in err.absolute_path)}: {err.message}")
    return problems
