"""Shared plumbing of the solver benchmarks (imported by them; not a benchmark itself).

- ``run_child(cmd, src)``: run one instance in a child process (its own peak RSS), optionally on
  another tree's ``src`` (first on ``PYTHONPATH``), and read the JSON line it prints last;
- ``peak_rss_mb()``: the calling process's peak RSS, for a child to report;
- ``commit_label(paths)``: the short HEAD commit, ``-dirty`` when ``paths`` have local changes;
- ``write_line(out, path)``: print the result as one JSON line and write it to ``path`` if given.

Benchmarks import it as ``from child_runs import ...`` (``bench/`` is on ``sys.path`` when a
script of it runs), like ``cli_startup.checkout`` for a baseline tree.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_child(cmd: list[str], src: str | Path | None = None) -> dict:
    """Run ``cmd`` (a child printing one JSON line last) and return that line, parsed; with
    ``src``, that tree's ``src`` directory is the child's ``PYTHONPATH``. When the child prints
    nothing, ``{"error": [its last stderr line]}``."""
    env = dict(os.environ, PYTHONPATH=str(src)) if src else None
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    lines = proc.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {"error": proc.stderr.strip().splitlines()[-1:]}


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def commit_label(*paths: str) -> str:
    """Short HEAD commit of the repository, with ``-dirty`` when ``paths`` (relative to it)
    have uncommitted changes."""
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", *paths], capture_output=True, text=True).stdout.strip()
    return commit + ("-dirty" if dirty else "")


def write_line(out: dict, path: str | None) -> None:
    """Print ``out`` as one JSON line on stdout; also write it to ``path`` when given."""
    line = json.dumps(out)
    print(line)
    if path:
        Path(path).write_text(line + "\n")
