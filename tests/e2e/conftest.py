"""Fixtures for real-component tests (schedulers). Missing components skip locally and fail under CI=true."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_component

SCRIPTS = Path(__file__).parent / "scripts"


@pytest.fixture(scope="session")
def slurm() -> None:
    """A running single-node Slurm (started by tests/e2e/scripts/slurm_up.sh when installed and root)."""
    require_component(shutil.which("sbatch") is not None and shutil.which("slurmctld") is not None,
                      "Slurm is not installed (apt-get install slurmctld slurmd slurm-client munge)")
    require_component(os.geteuid() == 0, "starting slurmctld needs root")
    res = subprocess.run(["bash", str(SCRIPTS / "slurm_up.sh")], capture_output=True, text=True, timeout=120)
    require_component(res.returncode == 0, f"Slurm did not start: {res.stderr.strip()[-300:]}")


SGE_ENV = {"SGE_ROOT": "/var/lib/gridengine", "SGE_CELL": "default"}


@pytest.fixture(scope="session")
def sge() -> dict:
    """A running single-node SGE (tests/e2e/scripts/sge_up.sh); returns the client environment."""
    require_component(shutil.which("qsub") is not None and shutil.which("sge_qmaster") is not None,
                      "SGE is not installed (apt-get install gridengine-master gridengine-exec gridengine-client)")
    require_component(os.geteuid() == 0, "starting sge_qmaster needs root")
    env = {**os.environ, **SGE_ENV}
    res = subprocess.run(["bash", str(SCRIPTS / "sge_up.sh")], capture_output=True, text=True, timeout=180, env=env)
    require_component(res.returncode == 0, f"SGE did not start: {res.stderr.strip()[-300:]}")
    return env
