"""The user's runbooks (shared/seeds/000, 001) as written, on a copy of the packaged sites demo.

The demo config is only tightened for speed (shorter sequences, short solver limits); every
command and flag is the one in the runbooks: validate-config --probe-solver, run --no-plot,
run --resume --extend-quota 8 --no-plot, inspect run --usr-events-path.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.densegen.run_fixtures import clean_env, dense, make_workspace, usr_events, usr_rows
from tests.helpers_validate import assert_workspace_valid

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_runbook_000_and_001_commands(tmp_path):
    ws = tmp_path / "demo_hpc"
    cfg = make_workspace(ws, quotas={"plain": 1, "sigma70": 1}, overrides={"solver": {"workers": None}})
    # what an SGE job (`#$ -pe omp 2`) sees in its environment
    sge = clean_env(JOB_ID="4242", SGE_TASK_ID="undefined", SGE_ROOT="/opt/sge", NSLOTS="2")
    CONFIG = str(cfg)

    r = dense("validate-config", "--probe-solver", "-c", CONFIG, env=sge)
    assert r.returncode == 0, r.stderr
    r = dense("run", "--no-plot", "-c", CONFIG, env=sge)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr and "━" not in r.stderr  # no progress bars in a batch log
    assert usr_rows(ws).height == 2

    r = dense("run", "--resume", "--extend-quota", "8", "--no-plot", "-c", CONFIG, env=sge)
    assert r.returncode == 0, r.stderr
    rows = usr_rows(ws)
    assert rows.height == 10 and rows["id"].n_unique() == 10

    r = dense("inspect", "run", "--usr-events-path", "-c", CONFIG)
    assert r.returncode == 0 and r.stderr == ""
    path = Path(r.stdout.strip())
    assert r.stdout == f"{path}\n"
    assert path == ws.resolve() / "outputs" / "usr_datasets" / "densegen" / "demo_sites" / ".events.log"
    assert path.exists()

    events = usr_events(ws)
    actions = [e["action"] for e in events]
    assert actions.count("job_started") == 2 and actions.count("job_finished") == 2
    finished = [e for e in events if e["action"] == "job_finished"]
    assert all(e["job"]["scheduler"] == "sge" and e["job"]["job_id"] == "4242" and e["job"]["state"] == "completed"
               for e in finished)
    health = [e for e in events if e["action"] == "densegen_health"]
    assert [h["args"]["status"] for h in health if h["args"]["status"] != "running"] == ["started", "completed", "resumed", "completed"]
    for h in health:
        assert {"generated", "quota", "percent", "plan"} <= set(h["metrics"])
    assert health[-1]["metrics"]["generated"] == 10 and health[-1]["metrics"]["quota"] == 10
    # CP-SAT workers came from the scheduler's allocation (NSLOTS=2)
    eff = json.loads((ws / "outputs" / "meta" / "effective_config.json").read_text())
    assert eff["workers"] == 2
    assert_workspace_valid(ws)
