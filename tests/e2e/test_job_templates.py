"""The shipped job scripts in jobs/ submitted as users do: an array with one workspace per task.

(One config shared by every task, cancels, kills and the seed-001 SGE path: tests/e2e/test_dense_arrays.py.)"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO, require_component
from tests.densegen.run_fixtures import clean_env, make_workspace, usr_events, usr_rows
from tests.helpers_validate import assert_workspace_valid

pytestmark = [pytest.mark.e2e, pytest.mark.scheduler]
JOBS = REPO / "jobs"


def _uv_env() -> dict:
    require_component(shutil.which("uv") is not None, "uv is not on PATH (the job scripts call `uv run`)")
    return clean_env(DNADESIGN_REPO=str(REPO), UV_FROZEN="1")


def test_slurm_array_template_runs_one_workspace_per_task(slurm, tmp_path):
    for task in (1, 2):
        make_workspace(tmp_path / f"task_{task}", quotas={"plain": 1, "sigma70": 1})
    env = _uv_env()
    env["DENSEGEN_CONFIG_TEMPLATE"] = str(tmp_path / "task_{task}" / "config.yaml")
    res = subprocess.run(["sbatch", "--wait", "--array=1-2", "--cpus-per-task=2", "-o", str(tmp_path / "slurm-%A_%a.out"),
                          str(JOBS / "densegen-array.sh")], capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    logs = "".join(p.read_text() for p in tmp_path.glob("slurm-*.out"))
    assert res.returncode == 0, res.stderr + logs
    for task in ("1", "2"):
        ws = tmp_path / f"task_{task}"
        assert usr_rows(ws).height == 2
        events = usr_events(ws)
        jobs = [e["job"] for e in events if e["action"] in ("job_started", "job_finished")]
        assert {j["task_id"] for j in jobs} == {task} and all(j["scheduler"] == "slurm" for j in jobs)
        assert [j["state"] for j in jobs][-1] == "completed"
        assert_workspace_valid(ws)
