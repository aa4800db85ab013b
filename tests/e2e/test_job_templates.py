"""The shipped job scripts in jobs/ submitted as users do: a Slurm array and an SGE resume job."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import REPO, require_component
from tests.densegen.run_fixtures import make_workspace, usr_events, usr_rows

pytestmark = [pytest.mark.e2e, pytest.mark.scheduler]
JOBS = REPO / "jobs"


def _uv_env() -> dict:
    require_component(shutil.which("uv") is not None, "uv is not on PATH (the job scripts call `uv run`)")
    return {**os.environ, "DNADESIGN_REPO": str(REPO), "UV_FROZEN": "1"}


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


def test_sge_template_runs_then_resumes_with_run_args(sge, tmp_path):
    ws = tmp_path / "demo_hpc"
    config = make_workspace(ws, quotas={"plain": 1, "sigma70": 1}, overrides={"solver": {"workers": None}})
    env = {**_uv_env(), **sge, "DENSEGEN_CONFIG": str(config)}
    base = ["qsub", "-sync", "y", "-V", "-wd", str(tmp_path), "-o", str(tmp_path)]
    res = subprocess.run([*base, str(JOBS / "densegen-cpu.sh")], capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stdout + res.stderr + "".join(p.read_text() for p in tmp_path.glob("densegen.*"))
    assert usr_rows(ws).height == 2
    # the runbook's resume: -v DENSEGEN_RUN_ARGS='--resume --extend-quota 8 --no-plot'
    env["DENSEGEN_RUN_ARGS"] = "--resume --extend-quota 2 --no-plot"
    res = subprocess.run([*base, str(JOBS / "densegen-cpu.sh")], capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    rows = usr_rows(ws)
    assert rows.height == 4 and rows["id"].n_unique() == 4
    started = [e for e in usr_events(ws) if e["action"] == "job_started"]
    assert len(started) == 2 and all(e["job"]["scheduler"] == "sge" for e in started)
    workers = {e["metrics"].get("workers") for e in usr_events(ws) if e["action"] == "densegen_health" and "workers" in (e.get("metrics") or {})}
    assert workers == {4}  # `#$ -pe omp 4` in the template: NSLOTS=4 -> 4 CP-SAT workers
