"""A real `dense run` stopped mid-way (SIGTERM on observed progress): the alert notify builds from the run's own
USR `.events.log` says what happened, why, where, and that `dense run` resumes; the resumed run completes."""

from __future__ import annotations

import json
import re
import signal

import pytest

from tests.conftest import run_cli
from tests.densegen.run_fixtures import clean_env, dense, dense_popen, make_workspace, usr_events, wait_for

pytestmark = pytest.mark.e2e


def _slack_payloads(events, ws):
    r = run_cli("notify", "usr-events", "watch", "--events", str(events), "--cursor", str(ws / "c"), "--provider", "slack",
                "--only-tools", "densegen", "--only-actions", "densegen_health", "--dry-run")
    assert r.returncode == 0, r.stderr
    return [json.loads(ln)["payload"] for ln in r.stdout.splitlines()]


def test_stopped_dense_run_alert_says_why_and_that_dense_run_resumes(tmp_path):
    ws = tmp_path / "demo"
    config = make_workspace(ws, quotas={"plain": 400, "sigma70": 400})
    events = ws / "outputs" / "usr_datasets" / "densegen" / "demo_sites" / ".events.log"
    run = dense_popen("run", "--no-plot", "-c", str(config), env=clean_env())
    try:
        # stop on observed progress: once the run has committed rows (an append event), not on a timer
        assert wait_for(lambda: any(e["action"] == "append" for e in usr_events(ws)), 180), run.stderr.read() if run.poll() else ""
        run.send_signal(signal.SIGTERM)
        run.wait(120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 128 + signal.SIGTERM

    payloads = _slack_payloads(events, ws)
    last = payloads[-1]
    section = last["blocks"][0]["text"]["text"]
    context = last["blocks"][1]["elements"][0]["text"]
    assert "*DenseGen stopped: densegen/demo_sites*" in section
    assert "Why: stopped by SIGTERM" in section and "*Next:* run `uv run dense run` again with the same config" in section
    assert re.search(r"resumes from the \d+ saved sequences", section)
    assert "on " in context and "id " in context and not re.search(r"\b[0-9a-f]{32}\b", json.dumps(last))

    # the resumed run, stopped by its time budget this time: the alert says so and what to change
    r = dense("run", "--no-plot", "--max-seconds", "2", "-c", str(config), timeout=300)
    assert r.returncode in (0, 1), r.stderr
    payloads = _slack_payloads(events, ws)
    texts = [p["text"] for p in payloads]
    assert any(t.startswith("DenseGen resumed on densegen/demo_sites") for t in texts)
    if r.returncode == 1:
        final = payloads[-1]["blocks"][0]["text"]["text"]
        assert "runtime budget" in final and "raise the run's time budget" in final
    v = run_cli("usr", "--root", str(ws / "outputs" / "usr_datasets"), "validate", "densegen/demo_sites")
    assert v.returncode == 0, v.stdout + v.stderr
