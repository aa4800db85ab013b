"""`usr events jobs` under real Slurm: completed, failed (1, 2, 42), cancelled, timeout and lost tasks of one array.

Each task runs a tiny job that records its lifecycle with the project's helpers (`core.jobs`), the
way `dense run` does inside `jobs/*.sh`: `job_started`, then `job_finished` with the exit code, or
from a SIGTERM handler with the signal. Task 5 is cancelled with `scancel`; task 6 has its time
limit lowered to zero while it runs, so slurmctld ends it for the time limit (its TERM is the same
as a cancel's; the scheduler's reason tells them apart); task 7 SIGKILLs itself (no `job_finished`
is possible) and `usr events reconcile` marks it lost.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dnadesign.usr.store import Dataset
from tests.conftest import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.scheduler]

TASK = textwrap.dedent("""
    import os, signal, sys, threading
    from pathlib import Path
    from dnadesign.core.events import Actor, append_event, job_block, make_event
    from dnadesign.core.jobs import job_finished, job_started
    log, mode, ready = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    actor = Actor.current("jobtest")
    job_started(log, "test/jobs", actor)
    append_event(log, make_event("append", "test/jobs", actor, metrics={"rows_added": 3}, job=job_block()))
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "wait":
        stop = threading.Event()
        def on_term(signum, frame):
            job_finished(log, "test/jobs", actor, exit_code=128 + signum, signal=signum)
            os._exit(128 + signum)
        signal.signal(signal.SIGTERM, on_term)
        ready.write_text("ready")
        stop.wait(300)
        sys.exit(3)
    job_finished(log, "test/jobs", actor, exit_code=int(mode))
    sys.exit(int(mode))
""")

MODES = {1: "0", 2: "1", 3: "2", 4: "42", 5: "wait", 6: "wait", 7: "kill"}


def _wait_for(check, what: str, timeout: float = 120.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _in_queue(job_id: str) -> bool:
    res = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%i"], capture_output=True, text=True, timeout=30)
    return bool(res.stdout.strip())


def test_job_states_under_slurm(slurm, usr_root, tmp_path):
    ds = Dataset.create(usr_root, "test/jobs")
    code = tmp_path / "task.py"
    code.write_text(TASK)
    cases = " ".join(f"{k}) M={v};;" for k, v in MODES.items())
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\n"
                      f"case $SLURM_ARRAY_TASK_ID in {cases} esac\n"
                      f'exec {sys.executable} {code} {ds.events_path} $M {tmp_path}/ready.$SLURM_ARRAY_TASK_ID\n')
    res = subprocess.run(["sbatch", "--parsable", "--array=1-7", "--time=10", "-o", str(tmp_path / "out.%a"), str(script)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    job_id = res.stdout.strip().split(";")[0]
    try:
        _wait_for(lambda: (tmp_path / "ready.5").exists() and (tmp_path / "ready.6").exists(), "tasks 5 and 6 to start")
        assert subprocess.run(["scancel", f"{job_id}_5"], timeout=30).returncode == 0
        # The time limit expiring now: slurmctld's periodic check ends the task for TimeLimit.
        assert subprocess.run(["scontrol", "update", f"JobId={job_id}_6", "TimeLimit=0"], timeout=30).returncode == 0
        _wait_for(lambda: not _in_queue(job_id), f"array {job_id} to leave the queue", timeout=180, every=0.5)
    finally:
        subprocess.run(["scancel", job_id], timeout=30)

    r = run_cli("usr", "--root", str(usr_root), "events", "reconcile", "test/jobs", "--json")
    assert r.returncode == 0, r.stderr
    assert [j["task_id"] for j in json.loads(r.stdout)["lost"]] == ["7"]

    r = run_cli("usr", "--root", str(usr_root), "events", "jobs", "test/jobs", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    tasks = {t["task_id"]: t for t in doc["tasks"]}
    assert set(tasks) == {str(k) for k in MODES}
    got = {k: (t["state"], t["exit_code"], t["signal"]) for k, t in tasks.items()}
    assert got == {"1": ("completed", 0, None), "2": ("failed", 1, None), "3": ("failed", 2, None),
                   "4": ("failed", 42, None), "5": ("cancelled", 143, 15), "6": ("timeout", 143, 15),
                   "7": ("lost", None, None)}
    assert tasks["6"]["reason"] == "TimeLimit"
    assert all(t["job_id"] == job_id and t["rows_written"] == 3 and t["host"] for t in tasks.values())
    assert all(t["runtime_s"] is not None for k, t in tasks.items() if k != "7")
    (arr,) = doc["arrays"]
    assert arr["tasks_expected"] == 7 and arr["tasks_seen"] == 7 and arr["done"] and arr["rows_written"] == 21
    assert arr["states"] == {"completed": 1, "failed": 3, "cancelled": 1, "timeout": 1, "lost": 1}
    assert arr["problem_tasks"] == {"failed": ["2", "3", "4"], "cancelled": ["5"], "timeout": ["6"], "lost": ["7"]}

    text = run_cli("usr", "--root", str(usr_root), "events", "jobs", "test/jobs")
    assert text.returncode == 0 and f"array slurm {job_id}: 7/7 tasks seen" in text.stdout
    assert Path(tmp_path / "out.1").exists()
    v = run_cli("usr", "--root", str(usr_root), "validate", "test/jobs")
    assert v.returncode == 0, v.stdout + v.stderr
