"""The tests phase: pytest under coverage.py (subprocesses too), JUnit XML -> `tests/summary.json`, lcov."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Any

from .checkout import Checkout, child_env
from .junit import summarize_junit, tests_status
from .lcov import lcov_totals
from .proc import Runner

DEFAULT_TIMEOUT_S = 4 * 3600.0


def coverage_rc(path: Path, data_file: Path) -> Path:
    """A coverage config for the run: the package only, every Python subprocess measured too."""
    path.write_text("[run]\n"
                    "source_pkgs = dnadesign\n"
                    "parallel = true\n"
                    "patch = subprocess\n"
                    f"data_file = {data_file}\n"
                    "[report]\n"
                    "skip_empty = true\n")
    return path


def run_tests(co: Checkout, art: Path, pytest_args: str, runner: Runner, log) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Run the selected tests; returns (the tests summary, the coverage block or None)."""
    tests_dir, cov_dir, logs = art / "tests", art / "coverage", art / "logs"
    for d in (tests_dir, cov_dir, logs):
        d.mkdir(parents=True, exist_ok=True)
    junit, log_file = tests_dir / "junit.xml", logs / "tests.log"
    rc = coverage_rc(cov_dir / "coveragerc", cov_dir / ".coverage")
    args = shlex.split(pytest_args)
    timeout = DEFAULT_TIMEOUT_S
    log(f"tests: pytest {' '.join(args) or '(all)'} under coverage")
    t0 = time.monotonic()
    env = child_env({"COVERAGE_RCFILE": str(rc)})
    res = runner.run([str(co.python), "-m", "coverage", "run", f"--rcfile={rc}", "-m", "pytest", f"--junitxml={junit}",
                      "-o", "junit_family=xunit2", "-p", "no:cacheprovider", *args],
                     cwd=co.workdir, env=env, log=log_file, timeout=timeout)
    duration = round(time.monotonic() - t0, 3)
    counts = summarize_junit(junit) if junit.exists() and junit.stat().st_size else None
    status = tests_status(counts, res.exit_code)
    if res.stopped or res.timed_out:
        status = "error"
    summary: dict[str, Any] = {
        "status": status,
        "pytest_exit_code": res.exit_code,
        "duration_seconds": duration,
        "cpu_seconds": res.cpu_s,
        "selection": pytest_args,
        **(counts or {"totals": None, "suites": {}, "failing_suites": [], "failures": []}),
        "junit_file": "tests/junit.xml" if junit.exists() else None,
        "log_file": "logs/tests.log",
        "note": ("stopped by a signal" if res.stopped else "timed out" if res.timed_out
                 else None if counts else "pytest wrote no JUnit XML; see logs/tests.log"),
    }
    log(f"tests: {status} ({_brief(counts)}) in {duration:.1f} s")
    coverage = _coverage(co, cov_dir, rc, runner, log_file)
    return summary, coverage


def _brief(counts: dict[str, Any] | None) -> str:
    if not counts:
        return "no results"
    t = counts["totals"]
    return f"{t['passed']} passed, {t['failed']} failed, {t['errors']} errors, {t['skipped']} skipped"


def _coverage(co: Checkout, cov_dir: Path, rc: Path, runner: Runner, log_file: Path) -> dict[str, Any] | None:
    """Combine the data files and write `coverage/lcov.info` + `coverage/summary.json` figures; None if no data."""
    env = child_env({"COVERAGE_RCFILE": str(rc)})
    if not any(cov_dir.glob(".coverage*")):
        return None
    runner.run([str(co.python), "-m", "coverage", "combine", f"--rcfile={rc}", "--quiet"], cwd=co.workdir, env=env,
               log=log_file, timeout=600)
    lcov = cov_dir / "lcov.info"
    res = runner.run([str(co.python), "-m", "coverage", "lcov", f"--rcfile={rc}", "-o", str(lcov), "--quiet"],
                     cwd=co.workdir, env=env, log=log_file, timeout=600)
    if res.exit_code != 0 or not lcov.exists():
        return None
    return lcov_totals(lcov)
