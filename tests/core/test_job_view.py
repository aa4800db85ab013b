"""`core.job_view` over logs written by the real job-event helpers (scheduler environments given explicitly)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from dnadesign.core import events as ev
from dnadesign.core.job_view import JobViewBuilder, build_job_view, format_runtime, view_state
from dnadesign.core.jobs import job_finished, job_started
from dnadesign.usr.store import Dataset
from tests.conftest import run_cli


def _slurm(job: str, task: str | None = None, first: int = 1, last: int = 3) -> dict[str, str]:
    env = {"SLURM_JOB_ID": job if task is None else str(int(job) + int(task)), "SLURM_CPUS_ON_NODE": "1"}
    if task is not None:
        env.update(SLURM_ARRAY_JOB_ID=job, SLURM_ARRAY_TASK_ID=task, SLURM_ARRAY_TASK_MIN=str(first),
                   SLURM_ARRAY_TASK_MAX=str(last), SLURM_ARRAY_TASK_STEP="1")
    return env


def _append(log, env, rows: int) -> None:
    actor = ev.Actor.current("densegen", run_id="r")
    ev.append_event(log, ev.make_event("append", "test/jobs", actor, metrics={"rows_added": rows}, job=ev.job_block(env)))


def test_states_rows_runtime_and_array_rollup(tmp_path):
    log = tmp_path / ".events.log"
    actor = ev.Actor.current("densegen", run_id="r")
    ev.append_event(log, ev.make_event("init", "test/jobs", actor, job={}))  # no job block: ignored
    for task, code, sig in (("1", 0, None), ("2", 42, None), ("3", 143, 15)):
        env = _slurm("100", task)
        job_started(log, "test/jobs", actor, env)
        _append(log, env, 5)
        job_finished(log, "test/jobs", actor, exit_code=code, signal=sig, env=env)
    job_started(log, "test/jobs", actor, _slurm("100", "4", last=5))  # still running
    plain = _slurm("200")
    job_started(log, "test/jobs", actor, plain)
    job_finished(log, "test/jobs", actor, exit_code=2, env=plain)
    with open(log, "ab") as fh:
        fh.write(b'{"action":"job_finished","job":{"scheduler":"slurm"  BROKEN\n')
        fh.write(b'{"event_version":1,"action":"job_started","job":{"scheduler":"slurm","job_id":"3')  # torn tail

    view = build_job_view(log)
    by = {(t.job_id, t.task_id): t for t in view.tasks}
    assert by[("100", "1")].state == "completed" and by[("100", "1")].rows_written == 5
    assert by[("100", "2")].state == "failed" and by[("100", "2")].exit_code == 42
    assert by[("100", "3")].state == "cancelled" and by[("100", "3")].signal == 15
    assert by[("100", "4")].state == "running" and by[("100", "4")].runtime_s is not None
    assert by[("200", None)].state == "failed" and by[("200", None)].exit_code == 2
    assert all(t.host and t.runtime_s is not None and t.runtime_s >= 0 for t in view.tasks)
    assert view.malformed == 1
    assert view.counts["failed"] == 2 and view.counts["running"] == 1
    (arr,) = view.arrays
    assert arr.job_id == "100" and arr.tasks_expected == 3 and arr.tasks_seen == 4 and arr.rows_written == 15
    assert arr.problem_tasks == {"failed": ["2"], "cancelled": ["3"]} and not arr.done


def test_lost_timeout_requeue_and_frozen_terminal():
    b = JobViewBuilder()

    def event(action, ts, **job):
        return {"action": action, "ts": ts, "actor": {"host": "n1", "run_id": "r"},
                "job": {"scheduler": "sge", "job_id": "7", "task_id": None, **job}}

    b.feed(event("job_started", "2026-01-01T00:00:00Z", state="running"))
    b.feed(event("job_lost", "2026-01-01T00:05:00Z", state="lost"))
    assert b.result().tasks[0].state == "lost"
    b.feed(event("job_finished", "2026-01-01T00:06:00Z", state="cancelled", exit_code=143, signal=15,
                 scheduler_reason="TimeLimit"))  # a late finish beats the inference
    t = b.result().tasks[0]
    assert (t.state, t.runtime_s, t.reason) == ("timeout", 360.0, "TimeLimit")
    b.feed(event("job_finished", "2026-01-01T00:07:00Z", state="completed", exit_code=0))  # frozen
    assert b.result().tasks[0].state == "timeout"
    b.feed(event("job_started", "2026-01-01T01:00:00Z", state="running"))  # requeued: a new attempt
    b.feed(event("job_finished", "2026-01-01T01:00:30Z", state="completed", exit_code=0))
    t = b.result().tasks[0]
    assert (t.state, t.attempts, t.runtime_s, t.exit_code) == ("completed", 2, 30.0, 0)


def test_view_state_rules():
    assert view_state("job_lost", {"scheduler_state": "TIMEOUT"}) == "timeout"
    assert view_state("job_lost", {}) == "lost"
    assert view_state("job_finished", {"state": None, "exit_code": 0, "signal": 9}) == "cancelled"
    assert view_state("job_finished", {"state": None, "exit_code": 139, "signal": 11}) == "failed"
    assert format_runtime(3723) == "1h02m03s" and format_runtime(4.21) == "4.2s" and format_runtime(None) == ""


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["job_started", "job_finished", "job_lost", "append", "init"]),
                          st.sampled_from(["1", "2", None]), st.integers(-1, 200), st.none() | st.integers(1, 20)), max_size=30))
def test_builder_never_crashes_and_counts_every_task(ops):
    b = JobViewBuilder()
    for i, (action, task, code, sig) in enumerate(ops):
        b.feed({"action": action, "ts": f"2026-01-01T00:00:{i % 60:02d}Z", "metrics": {"rows_added": 1},
                "job": {"scheduler": "slurm", "job_id": "9", "task_id": task, "exit_code": code, "signal": sig}})
    view = b.result()
    assert sum(view.counts.values()) == len(view.tasks)
    assert len({t.key for t in view.tasks}) == len(view.tasks)


def test_usr_events_jobs_cli(usr_root):
    ds = Dataset.create(usr_root, "test/jobs")
    actor = ev.Actor.current("densegen", run_id="r")
    env = _slurm("55", "1", last=2)
    job_started(ds.events_path, "test/jobs", actor, env)
    _append(ds.events_path, env, 7)
    job_finished(ds.events_path, "test/jobs", actor, exit_code=1, env=env)
    r = run_cli("usr", "--root", str(usr_root), "events", "jobs", "test/jobs", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["tasks"][0]["state"] == "failed" and doc["tasks"][0]["rows_written"] == 7
    assert doc["arrays"][0]["tasks_expected"] == 2 and doc["arrays"][0]["not_seen"] == 1
    r = run_cli("usr", "--root", str(usr_root), "events", "jobs", "test/jobs")
    assert r.returncode == 0 and "failed" in r.stdout and "array slurm 55: 1/2 tasks seen" in r.stdout
    r = run_cli("usr", "--root", str(usr_root), "events", "jobs", "test/jobs", "--state", "completed")
    assert r.returncode == 0 and "No tasks match" in r.stdout and "array slurm 55" in r.stdout
    r = run_cli("usr", "--root", str(usr_root), "events", "jobs", "test/jobs", "--state", "bogus")
    assert r.returncode == 2 and "bogus" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("usr", "--root", str(usr_root), "events", "jobs", "test/missing")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
