"""Shared test helpers: running console scripts and locating shared data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
BIN = Path(sys.executable).parent


def script(name: str) -> str:
    """Path of a console script installed in the test environment (`usr`, `dense`, `notify`)."""
    path = BIN / name
    return str(path) if path.exists() else (shutil.which(name) or name)


def run_cli(*args: str, env: dict | None = None, cwd: str | Path | None = None, timeout: float = 300,
            input: str | None = None) -> subprocess.CompletedProcess:
    """Run a console script as a real subprocess and capture its output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([script(args[0]), *args[1:]], capture_output=True, text=True, env=full_env, cwd=cwd,
                          timeout=timeout, input=input)


def invoke(app, *args: str, env: dict | None = None, input: str | None = None):
    """Run a Typer app in-process (fast); returns an object with returncode, stdout, stderr."""
    from types import SimpleNamespace

    from typer.testing import CliRunner

    res = CliRunner().invoke(app, [str(a) for a in args], env=env, input=input)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return SimpleNamespace(returncode=res.exit_code, stdout=res.stdout, stderr=res.stderr)


def require_component(ok: bool, reason: str) -> None:
    """Skip locally when a real component is missing; fail under CI=true where it must be present."""
    if ok:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required test component missing under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def usr_root(tmp_path: Path) -> Path:
    root = tmp_path / "usr_root"
    root.mkdir()
    return root
