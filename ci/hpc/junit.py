"""pytest's JUnit XML -> the per-suite test summary (`tests/summary.json`).

A suite is the first folder under `tests/` (`core`, `usr`, `densegen`, `notify`, `e2e`, ...), read
from each test case's classname (`tests.core.test_events`) or, for a file that failed to import,
from its path.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

MAX_FAILURES = 50
MAX_MESSAGE = 500


def suite_of(classname: str, name: str) -> str:
    """`tests.core.test_x` -> `core`; `tests/usr/test_y.py` -> `usr`; a test file directly in tests/ -> `tests`."""
    source = classname or name
    parts = [p for p in source.replace("/", ".").split(".") if p]
    if parts and parts[0] == "tests":
        parts = parts[1:]
    if len(parts) >= 2 and not parts[0].startswith("test_"):
        return parts[0]
    return "tests"


def _empty() -> dict[str, Any]:
    return {"tests": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0, "duration_seconds": 0.0}


def summarize_junit(path: str | Path) -> dict[str, Any]:
    """Counts per suite and in total, plus the first failures (suite, test id, one-line message)."""
    root = ET.parse(path).getroot()
    suites: dict[str, dict[str, Any]] = {}
    totals = _empty()
    failures: list[dict[str, str]] = []
    for case in root.iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        suite = suite_of(classname, name)
        counts = suites.setdefault(suite, _empty())
        outcome = "passed"
        detail = None
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed" if child.tag == "failure" else "errors"
                detail = child
                break
            if child.tag == "skipped":
                outcome = "skipped"
        for c in (counts, totals):
            c["tests"] += 1
            c[outcome] += 1
            c["duration_seconds"] = round(c["duration_seconds"] + float(case.get("time") or 0.0), 3)
        if detail is not None and len(failures) < MAX_FAILURES:
            message = (detail.get("message") or detail.text or "").strip().splitlines()
            test_id = f"{classname.replace('.', '/')}.py::{name}" if classname else name
            failures.append({"suite": suite, "test": test_id, "kind": "failure" if outcome == "failed" else "error",
                             "message": (message[0] if message else "")[:MAX_MESSAGE]})
    failing = sorted(s for s, c in suites.items() if c["failed"] or c["errors"])
    return {"totals": totals, "suites": dict(sorted(suites.items())), "failing_suites": failing, "failures": failures}


def tests_status(summary: dict[str, Any] | None, pytest_exit: int | None) -> str:
    """passed / failed / error from the junit counts and pytest's exit code (5 = nothing collected is an error)."""
    if summary is None:
        return "error"
    totals = summary["totals"]
    if totals["failed"] or totals["errors"]:
        return "failed"
    if pytest_exit not in (0, None) or totals["tests"] == 0:
        return "error"
    return "passed"
