"""Fixtures for real-component tests (schedulers). Missing components skip locally and fail under CI=true.

The single-node Slurm and SGE daemons are shared by every pytest session on the machine. A session
holds a shared flock on `/tmp/dnadesign-<scheduler>.users` while it uses a scheduler; at teardown
it stops the daemons only if it started them and no other session holds the file (it takes the
exclusive lock without blocking, else it leaves them running for the others).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_component

SCRIPTS = Path(__file__).parent / "scripts"
SGE_ENV = {"SGE_ROOT": "/var/lib/gridengine", "SGE_CELL": "default"}


def _running(name: str) -> bool:
    return subprocess.run(["pgrep", "-x", name], capture_output=True).returncode == 0


def _shared_daemons(name: str, up: str, down: str, daemon: str, env: dict | None, timeout: float) -> Iterator[None]:
    users = open(f"/tmp/dnadesign-{name}.users", "a")  # noqa: SIM115 - held for the whole session
    try:
        fcntl.flock(users, fcntl.LOCK_SH)
        started = not _running(daemon)
        res = subprocess.run(["bash", str(SCRIPTS / up)], capture_output=True, text=True, timeout=timeout, env=env)
        require_component(res.returncode == 0, f"{name} did not start: {res.stderr.strip()[-300:]}")
        yield
        if started:
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)  # no other session uses the daemons
            except BlockingIOError:
                return
            subprocess.run(["bash", str(SCRIPTS / down)], capture_output=True, timeout=120, env=env)
    finally:
        users.close()


@pytest.fixture(scope="session")
def slurm() -> Iterator[None]:
    """A running single-node Slurm (started by tests/e2e/scripts/slurm_up.sh when installed and root)."""
    require_component(shutil.which("sbatch") is not None and shutil.which("slurmctld") is not None,
                      "Slurm is not installed (apt-get install slurmctld slurmd slurm-client munge)")
    require_component(os.geteuid() == 0, "starting slurmctld needs root")
    yield from _shared_daemons("slurm", "slurm_up.sh", "slurm_down.sh", "slurmctld", None, 120)


@pytest.fixture(scope="session")
def sge() -> Iterator[dict]:
    """A running single-node SGE (tests/e2e/scripts/sge_up.sh); yields the client environment."""
    require_component(shutil.which("qsub") is not None and shutil.which("sge_qmaster") is not None,
                      "SGE is not installed (apt-get install gridengine-master gridengine-exec gridengine-client)")
    require_component(os.geteuid() == 0, "starting sge_qmaster needs root")
    env = {**os.environ, **SGE_ENV}
    for _ in _shared_daemons("sge", "sge_up.sh", "sge_down.sh", "sge_qmaster", env, 180):
        yield env
