"""Every message answers what happened (and why), where (host, job/array task, dataset) and what to do next;
no 32-hex event id in what people read; the incumbent's generic JSON shape for existing receivers."""

from __future__ import annotations

import json
import re

import pytest

from dnadesign.core.events import make_event
from dnadesign.notify.filters import EventFilter
from dnadesign.notify.payloads import flush_failed_message, health_message, job_message, rollup_message
from dnadesign.notify.providers import format_message
from dnadesign.notify.watch import run_watch

from .conftest import run_notify, write_events
from .helpers_notify import JOB, config, densegen_actor, densegen_health

HEX32 = re.compile(r"\b[0-9a-f]{32}\b")


def _readable(provider: str, payload: dict) -> str:
    """The text people see (machine fields such as the generic idempotency_key left out)."""
    if provider == "generic":
        payload = {k: v for k, v in payload.items() if k != "idempotency_key"}
    return json.dumps(payload)


def test_stopped_run_says_why_where_and_that_dense_run_resumes():
    ev = densegen_health("failed", outcome="interrupted", signal=15,
                 reason="stopped by SIGTERM; 40/100 sequences are saved, `dense run` resumes")
    msg = health_message(ev, ev["event_id"])
    assert msg.status == "failure" and msg.title == "DenseGen stopped: densegen/demo" and msg.terminal
    assert "at 40/100 sequences (40%)" in msg.text and "Why: stopped by SIGTERM" in msg.text
    assert "`uv run dense run`" in msg.next_step and "resumes from the 40 saved sequences" in msg.next_step
    slack = format_message("slack", msg)
    section, context = slack["blocks"][0]["text"]["text"], slack["blocks"][1]["elements"][0]["text"]
    assert "*Next:*" in section and "resumes" in section
    assert "on node17" in context and "slurm job 41 task 3" in context and f"id {ev['event_id'][:8]}" in context
    for provider in ("slack", "discord", "generic", "apprise"):
        assert not HEX32.search(_readable(provider, format_message(provider, msg))), provider
    body = format_message("apprise", msg)["body"]
    assert "Where: on node17 · slurm job 41 task 3 · dataset densegen/demo" in body and "Next: run `uv run dense run`" in body


def test_failed_run_gives_the_error_and_what_to_do():
    ev = densegen_health("failed", outcome="failed", reason="FlushFailedError: usr: disk quota exceeded")
    msg = health_message(ev, ev["event_id"])
    assert msg.title == "DenseGen failed: densegen/demo"
    assert "Why: FlushFailedError: usr: disk quota exceeded" in msg.text
    assert msg.next_step.startswith("fix the cause above, then run `uv run dense run` again")


def test_budget_stop_and_missing_reason():
    ev = densegen_health("failed", outcome="incomplete", reason="stopped: runtime budget of 60 s reached; 40/100 sequences are saved")
    msg = health_message(ev, ev["event_id"])
    assert "stopped" in msg.title and "raise the run's time budget" in msg.next_step
    bare = health_message(densegen_health("failed"), "k" * 32)
    assert "Why: no reason was recorded; see the job's output log" in bare.text


def test_lifecycle_messages():
    started = health_message(densegen_health("started", job={}), "a" * 32)
    assert started.text == "DenseGen started on densegen/demo: 40/100 sequences (40%)." and started.job is None
    done = health_message(densegen_health("completed"), "b" * 32)
    assert done.status == "success" and "uv run usr head densegen/demo" in done.next_step


def test_job_failure_lost_and_array_rollup():
    failed = make_event("job_finished", "densegen/demo", densegen_actor(), job={**JOB, "state": "failed", "exit_code": 3})
    m = job_message(failed, failed["event_id"], "failed")
    assert m.text == "slurm job 41 task 3 failed (exit code 3)." and "`sacct -j 41`" in m.next_step and "resumes" in m.next_step
    killed = make_event("job_finished", "densegen/demo", densegen_actor(), job={**JOB, "scheduler": "sge", "state": "cancelled", "signal": 9})
    m = job_message(killed, killed["event_id"], "cancelled")
    assert "signal 9 (SIGKILL)" in m.text and "`qacct -j 41`" in m.next_step
    lost = make_event("job_lost", "densegen/demo", densegen_actor(), job={**JOB, "state": "lost"})
    m = job_message(lost, lost["event_id"], "lost")
    assert "is lost" in m.text and "memory or time limit" in m.text
    summary = {"scheduler": "slurm", "job_id": "41", "tasks": 4, "counts": {"completed": 2, "failed": 1, "lost": 1},
               "not_completed": ["2", "4"]}
    r = rollup_message(failed, summary)
    assert "sbatch --array=2,4" in r.next_step and r.job == "slurm array job 41" and "tasks 2, 4" in r.text
    flush = make_event("densegen_flush_failed", "densegen/demo", densegen_actor(), args={"error": "No space left on device"}, job=JOB)
    m = flush_failed_message(flush, flush["event_id"])
    assert "Why: No space left on device" in m.text and "free space" in m.next_step


def test_incumbent_generic_shape_keeps_old_receivers_working():
    ev = densegen_health("completed")
    ev["fingerprint"] = {"rows": 40, "manifest": "abc"}
    body = format_message("generic", health_message(ev, ev["event_id"]), "incumbent")
    assert set(body) == {"status", "tool", "run_id", "timestamp", "message", "meta", "host"}
    assert body["status"] == "success" and body["tool"] == "densegen" and body["run_id"] == "demo-run"
    assert body["timestamp"] == ev["ts"] and body["host"] == "node17"
    assert body["meta"] == {"usr_event_version": 1, "usr_action": "densegen_health", "usr_dataset_name": "densegen/demo",
                            "usr_fingerprint": {"rows": 40, "manifest": "abc"}, "usr_registry_hash": None,
                            "usr_timestamp": ev["ts"]}
    assert "DenseGen completed" in body["message"]


def test_incumbent_shape_through_the_watcher_and_the_cli(tmp_path, server):
    log = tmp_path / "ds" / ".events.log"
    log.parent.mkdir(parents=True)
    write_events(log, [densegen_health("started"), make_event("materialize", "densegen/demo", densegen_actor(), job={})])
    run_watch(config(tmp_path, server.url, payload_shape="incumbent", filter=EventFilter.build(["densegen"], [])))
    bodies = server.bodies()
    assert [b["status"] for b in bodies] == ["started", "running"]  # incumbent receivers know four statuses
    assert all(set(b) >= {"status", "tool", "run_id", "timestamp", "meta"} for b in bodies)
    r = run_notify("send", "--provider", "slack", "--payload-shape", "incumbent", "--url-env", "X", "--dry-run")
    assert r.returncode == 2 and "generic provider only" in r.stderr


@pytest.mark.parametrize("env,where", [
    ({"SLURM_JOB_ID": "77", "SLURM_ARRAY_JOB_ID": "70", "SLURM_ARRAY_TASK_ID": "5"}, "slurm job 70 task 5"),
    ({"SLURM_JOB_ID": "", "JOB_ID": "9001", "SGE_TASK_ID": "undefined", "SGE_ROOT": "/opt/sge"}, "sge job 9001"),
])
def test_send_says_where_it_ran(env, where):
    r = run_notify("send", "--provider", "slack", "--status", "failure", "--message", "preprocessing failed",
                   "--next", "rerun step 2", "--dry-run", env=env)
    assert r.returncode == 0, r.stderr
    payload = json.loads(r.stdout)["payload"]
    context = payload["blocks"][1]["elements"][0]["text"]
    assert where in context and "on " in context and not HEX32.search(json.dumps(payload))
    assert "*Next:* rerun step 2" in payload["blocks"][0]["text"]["text"]
