"""Job lifecycle events under real single-node Slurm (sbatch) and SGE (qsub), including a SIGKILLed task."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from dnadesign.core.events import read_events
from dnadesign.usr.store import Dataset
from tests.conftest import run_cli
from tests.helpers_validate import assert_dataset_valid

pytestmark = [pytest.mark.e2e, pytest.mark.scheduler]

EMIT = textwrap.dedent("""
    import os, sys
    from dnadesign.core.events import Actor
    from dnadesign.core.jobs import job_started, job_finished
    from dnadesign.core.scheduler import detect_scheduler
    log, mode = sys.argv[1], sys.argv[2]
    actor = Actor.current("jobtest")
    job_started(log, "test/jobs", actor)
    print("cpus", detect_scheduler().cpus, flush=True)
    if mode == "kill":
        os.kill(os.getpid(), 9)
    job_finished(log, "test/jobs", actor, exit_code=int(mode))
    sys.exit(int(mode))
""")


def _sbatch(tmp_path, body: str, *extra: str) -> int:
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\n" + body + "\n")
    res = subprocess.run(["sbatch", "--wait", "-o", str(tmp_path / "slurm-%A_%a.out"), *extra, str(script)],
                         capture_output=True, text=True, timeout=180)
    return res.returncode


def test_array_job_events_and_sigkill_reconciled(slurm, usr_root, tmp_path):
    ds = Dataset.create(usr_root, "test/jobs")
    log = ds.events_path
    code = tmp_path / "emit.py"
    code.write_text(EMIT)
    # array of 3: task 1 completes, task 2 fails with exit 3, task 3 is SIGKILLed (no job_finished possible)
    body = f'case $SLURM_ARRAY_TASK_ID in 1) M=0;; 2) M=3;; 3) M=kill;; esac\n{sys.executable} {code} {log} $M'
    rc = _sbatch(tmp_path, body, "--array=1-3", "--cpus-per-task=2")
    assert rc != 0  # sbatch --wait reports the worst task
    events = read_events(log)
    started = [e for e in events if e["action"] == "job_started"]
    finished = {e["job"]["task_id"]: e["job"] for e in events if e["action"] == "job_finished"}
    assert sorted(e["job"]["task_id"] for e in started) == ["1", "2", "3"]
    assert all(e["job"]["scheduler"] == "slurm" and e["job"]["array"] == {"first": 1, "last": 3, "step": 1} for e in started)
    assert len({e["job"]["job_id"] for e in started}) == 1  # keyed by the array master id
    assert finished["1"]["state"] == "completed" and finished["2"]["state"] == "failed" and finished["2"]["exit_code"] == 3
    assert "3" not in finished
    out = (tmp_path / f"slurm-{started[0]['job']['job_id']}_1.out").read_text()
    assert "cpus 2" in out  # the allocation, not the machine's core count

    r = run_cli("usr", "--root", str(usr_root), "events", "reconcile", "test/jobs", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert [j["task_id"] for j in res["lost"]] == ["3"]
    lost = [e for e in read_events(log) if e["action"] == "job_lost"]
    assert len(lost) == 1 and lost[0]["job"]["state"] == "lost"
    # idempotent: a second pass finds nothing new
    again = json.loads(run_cli("usr", "--root", str(usr_root), "events", "reconcile", "test/jobs", "--json").stdout)
    assert again == {"lost": [], "running": [], "unknown": []}
    assert_dataset_valid(usr_root, "test/jobs")


def test_sge_array_job_events_and_reconcile(sge, usr_root, tmp_path):
    ds = Dataset.create(usr_root, "test/jobs")
    log = ds.events_path
    code = tmp_path / "emit.py"
    code.write_text(EMIT)
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\n"
                      f'case $SGE_TASK_ID in 1) M=0;; 2) M=3;; 3) M=kill;; esac\n{sys.executable} {code} {log} $M\n')
    res = subprocess.run(["qsub", "-sync", "y", "-t", "1-3", "-pe", "smp", "2", "-j", "y", "-o", str(tmp_path), "-wd", str(tmp_path),
                          str(script)], capture_output=True, text=True, timeout=180, env=sge)
    assert "Your job-array" in res.stdout, res.stdout + res.stderr
    events = read_events(log)
    started = [e for e in events if e["action"] == "job_started"]
    finished = {e["job"]["task_id"]: e["job"] for e in events if e["action"] == "job_finished"}
    assert sorted(e["job"]["task_id"] for e in started) == ["1", "2", "3"]
    assert all(e["job"]["scheduler"] == "sge" and e["job"]["array"] == {"first": 1, "last": 3, "step": 1} for e in started)
    assert finished["1"]["state"] == "completed" and finished["2"]["exit_code"] == 3 and "3" not in finished
    outs = "".join(p.read_text() for p in tmp_path.glob("job.sh.o*"))
    assert outs.count("cpus 2") == 3  # NSLOTS from the parallel environment
    r = run_cli("usr", "--root", str(usr_root), "events", "reconcile", "test/jobs", "--json", env=sge)
    assert r.returncode == 0, r.stderr
    assert [j["task_id"] for j in json.loads(r.stdout)["lost"]] == ["3"]
    assert_dataset_valid(usr_root, "test/jobs", env=sge)
