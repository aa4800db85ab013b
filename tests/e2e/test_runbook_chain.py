"""Seed runbook 000 end to end: `dense run` on a workspace, then notify wired to its USR .events.log.

DenseGen -> USR `.events.log` -> notify, with every command and flag as the runbook writes them
(plus `--allow-insecure-localhost`, because the test's webhook receiver is http on 127.0.0.1).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli
from tests.densegen.run_fixtures import dense, make_workspace
from tests.notify.conftest import SECRET_TOKEN, WebhookServer

pytestmark = pytest.mark.e2e


def test_dense_to_usr_to_notify(tmp_path):
    ws = tmp_path / "demo_hpc"
    config = make_workspace(ws, quotas={"plain": 2, "sigma70": 2})
    r = dense("validate-config", "--probe-solver", "-c", str(config))
    assert r.returncode == 0, r.stderr
    r = dense("run", "--no-plot", "-c", str(config))
    assert r.returncode == 0, r.stderr
    r = dense("inspect", "run", "--usr-events-path", "-c", str(config))
    events = r.stdout.strip()
    assert r.returncode == 0 and events.endswith("/.events.log") and "\n" not in events

    server = WebhookServer()
    try:
        env = {"DENSEGEN_WEBHOOK": server.url}
        out = ws / "outputs"
        profile = out / "notify.profile.json"
        r = run_cli("notify", "profile", "wizard", "--profile", str(profile), "--provider", "slack",
                    "--events", events, "--cursor", str(out / "notify.cursor"), "--spool-dir", str(out / "notify_spool"),
                    "--secret-source", "env", "--url-env", "DENSEGEN_WEBHOOK",
                    "--only-tools", "densegen", "--only-actions", "densegen_health,densegen_flush_failed,materialize",
                    "--allow-insecure-localhost", env=env)
        assert r.returncode == 0, r.stderr
        r = run_cli("notify", "profile", "doctor", "--profile", str(profile), env=env)
        assert r.returncode == 0, r.stdout + r.stderr

        # dry run: payloads printed, nothing sent, cursor not advanced
        r = run_cli("notify", "usr-events", "watch", "--profile", str(profile), "--dry-run", env=env)
        assert r.returncode == 0, r.stderr
        assert "densegen" in r.stdout and not server.delivered
        assert not (out / "notify.cursor").exists() or json.loads((out / "notify.cursor").read_text()).get("offset", 0) == 0

        # live: the run's health events (started ... completed) arrive once, then a rerun sends nothing new
        r = run_cli("notify", "usr-events", "watch", "--profile", str(profile), "--follow", "--idle-timeout", "2", env=env)
        assert r.returncode == 0, r.stderr
        texts = [b["text"] for b in server.bodies()]
        assert texts[0].startswith("DenseGen started on densegen/demo_sites")
        assert texts[-1] == "DenseGen completed on densegen/demo_sites: 4/4 sequences (100%)."
        n = len(server.delivered)
        r = run_cli("notify", "usr-events", "watch", "--profile", str(profile), "--follow", "--idle-timeout", "1", env=env)
        assert r.returncode == 0 and len(server.delivered) == n
        # a later dense session produces new alerts from where the cursor stopped
        r = dense("run", "--resume", "--extend-quota", "2", "--no-plot", "-c", str(config))
        assert r.returncode == 0, r.stderr
        r = run_cli("notify", "usr-events", "watch", "--profile", str(profile), "--follow", "--idle-timeout", "2", env=env)
        assert r.returncode == 0 and len(server.delivered) > n
        # the secret never shows up anywhere a user or a log could see it
        for blob in (r.stdout, r.stderr, profile.read_text(), (out / "notify.cursor").read_text()):
            assert SECRET_TOKEN not in blob
    finally:
        server.stop()
