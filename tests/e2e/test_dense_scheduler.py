"""`dense run` inside real scheduler jobs: the user's own SGE script of runbook 000, and `scancel` of the
shipped single-job template (through `uv run`, as users submit it)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.conftest import REPO, require_component
from tests.densegen.run_fixtures import (
    clean_env,
    dense_bin,
    diagnostics,
    make_workspace,
    usr_events,
    usr_rows,
    wait_for,
)
from tests.helpers_validate import assert_workspace_valid

pytestmark = [pytest.mark.e2e, pytest.mark.scheduler, pytest.mark.slow]


def test_sge_job_runs_runbook_000(sge, tmp_path):
    ws = tmp_path / "demo_hpc"
    cfg = make_workspace(ws, quotas={"plain": 1, "sigma70": 1}, overrides={"solver": {"workers": None}})
    script = tmp_path / "run_densegen.sh"
    script.write_text(
        "#!/bin/bash\n"
        "set -euo pipefail\n"
        f'CONFIG="{cfg}"\n'
        f'{dense_bin()} validate-config --probe-solver -c "$CONFIG"\n'
        f'{dense_bin()} run --no-plot -c "$CONFIG"\n'
    )
    res = subprocess.run(["qsub", "-sync", "y", "-N", "densegen_demo", "-pe", "smp", "2", "-j", "y", "-o", str(tmp_path),
                          "-wd", str(tmp_path), str(script)], capture_output=True, text=True, timeout=300, env=sge)
    assert res.returncode == 0, res.stdout + res.stderr
    log = "".join(p.read_text() for p in tmp_path.glob("densegen_demo.o*"))
    assert "complete: 2/2" in log and "dense: 2/2 (100%)" in log  # batch log: one-line summaries ...
    assert "━" * 30 not in log  # ... and no progress bars (the summary table's rules are short)
    assert usr_rows(ws).height == 2
    events = usr_events(ws)
    started = [e for e in events if e["action"] == "job_started"]
    finished = [e for e in events if e["action"] == "job_finished"]
    assert len(started) == 1 and len(finished) == 1
    assert finished[0]["job"]["scheduler"] == "sge" and finished[0]["job"]["state"] == "completed"
    assert finished[0]["job"]["exit_code"] == 0
    eff = json.loads((ws / "outputs" / "meta" / "effective_config.json").read_text())
    assert eff["workers"] == 2  # CP-SAT workers from NSLOTS
    assert_workspace_valid(ws)


def test_slurm_scancel_of_the_template_stops_cleanly(slurm, tmp_path):
    require_component(shutil.which("uv") is not None, "uv is not on PATH (the job scripts call `uv run`)")
    ws = tmp_path / "ws"
    # still running at the cancel (40 each was enough before the small-library fast path)
    cfg = make_workspace(ws, quotas={"plain": 160, "sigma70": 160}, overrides={"runtime": {"checkpoint_every": 50}})
    env = clean_env(DNADESIGN_REPO=str(REPO), UV_FROZEN="1", DENSEGEN_CONFIG=str(cfg))
    sub = subprocess.run(["sbatch", "--parsable", "--cpus-per-task=2", "-o", str(tmp_path / "slurm-%j.out"),
                          str(REPO / "jobs" / "densegen-cpu.sh")], capture_output=True, text=True, timeout=60, env=env,
                         cwd=tmp_path)
    assert sub.returncode == 0, sub.stderr
    job_id = sub.stdout.strip().split(";")[0]
    try:
        assert wait_for(lambda: any(e["event"] == "accepted" for e in diagnostics(ws)), timeout=300)
        subprocess.run(["scancel", job_id], check=True, timeout=30)
        assert wait_for(lambda: any(e["action"] == "job_finished" for e in usr_events(ws)), timeout=120), \
            (tmp_path / f"slurm-{job_id}.out").read_text()
    finally:
        subprocess.run(["scancel", job_id], capture_output=True, timeout=30)
    events = usr_events(ws)
    fin = [e for e in events if e["action"] == "job_finished"][-1]["job"]
    assert fin["scheduler"] == "slurm" and fin["signal"] == 15 and fin["state"] == "cancelled" and fin["exit_code"] == 143
    health = [e for e in events if e["action"] == "densegen_health"][-1]
    assert health["args"]["status"] == "failed" and health["args"]["signal"] == 15
    accepted = sum(1 for e in diagnostics(ws) if e["event"] == "accepted")
    assert usr_rows(ws).height == accepted  # everything accepted was flushed on SIGTERM (checkpoint_every is 50)
    assert json.loads((ws / "outputs" / "meta" / "run_state.json").read_text())["status"] == "interrupted"
    assert_workspace_valid(ws)
