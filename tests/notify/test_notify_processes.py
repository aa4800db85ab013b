"""Real processes: SIGKILL and restart, outage then spool then drain, concurrent drains, rotation, no leaks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from dnadesign.core.events import encode_event
from dnadesign.notify.spool import Spool

from .conftest import (
    SECRET_TOKEN,
    LineWaiter,
    WebhookServer,
    dead_port,
    health,
    notify_cmd,
    run_notify,
    usr_event,
    write_events,
)
from .helpers_notify import write_profile

pytestmark = pytest.mark.e2e


def _log(tmp_path, events):
    p = tmp_path / "ds" / ".events.log"
    p.parent.mkdir(parents=True, exist_ok=True)
    write_events(p, events)
    return p


def _popen(*args, url):
    env = {**os.environ, "NOTIFY_TEST_URL": url}
    return subprocess.Popen(notify_cmd(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


def test_sigkill_restart_delivers_everything_at_least_once(tmp_path, server):
    server.default = ("delay", 0.15)
    first = [usr_event("materialize") for _ in range(25)]
    log = _log(tmp_path, first)
    prof = write_profile(tmp_path)
    w = _popen("usr-events", "watch", "--profile", str(prof), "--follow", url=server.url)
    try:
        assert _wait(lambda: len(server.requests) >= 6 and len(server.requests) > len(server.delivered), 30)
        w.send_signal(signal.SIGKILL)
        w.wait(60)
    finally:
        if w.poll() is None:
            w.kill()
    assert w.returncode == -signal.SIGKILL
    more = [usr_event("materialize") for _ in range(5)]
    write_events(log, more)
    r = subprocess.run(notify_cmd("usr-events", "watch", "--profile", str(prof), "--follow", "--idle-timeout", "1"),
                       env={**os.environ, "NOTIFY_TEST_URL": server.url}, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    keys = server.keys()
    expected = {e["event_id"] for e in first + more}
    assert set(keys) == expected
    assert len(keys) - len(set(keys)) <= 1  # only the one in flight at the kill may repeat


def test_outage_spools_then_drain_delivers_all(tmp_path):
    port = dead_port()
    url = f"http://127.0.0.1:{port}/hook/{SECRET_TOKEN}"
    evs = [health("started")] + [usr_event("materialize") for _ in range(5)] + [health("completed", 100)]
    _log(tmp_path, evs)
    prof = write_profile(tmp_path)
    r = run_notify("usr-events", "watch", "--profile", str(prof), "--json", env={"NOTIFY_TEST_URL": url})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["spooled"] == 7
    assert SECRET_TOKEN not in r.stdout + r.stderr
    listing = json.loads(run_notify("spool", "list", "--profile", str(prof), "--json").stdout)
    assert listing["count"] == 7
    for f in (tmp_path / "spool").glob("*.json"):
        assert SECRET_TOKEN not in f.read_text()
    assert SECRET_TOKEN not in (tmp_path / "state" / "notify.cursor").read_text()

    bad = run_notify("spool", "drain", "--profile", str(prof), env={"NOTIFY_TEST_URL": url})
    assert bad.returncode == 1 and SECRET_TOKEN not in bad.stdout + bad.stderr
    waiting = json.loads(run_notify("spool", "list", "--profile", str(prof), "--json").stdout)["entries"]
    assert len(waiting) == 7 and max(e["attempts"] for e in waiting) >= 2  # attempts are recorded

    srv = WebhookServer(port=port)
    try:
        d = run_notify("spool", "drain", "--profile", str(prof), "--json", env={"NOTIFY_TEST_URL": url})
        assert d.returncode == 0, d.stderr
        assert json.loads(d.stdout)["delivered"] == 7
        assert sorted(srv.keys()) == sorted(e["event_id"] for e in evs)
    finally:
        srv.stop()
    assert json.loads(run_notify("spool", "list", "--profile", str(prof), "--json").stdout)["count"] == 0


def test_two_concurrent_drains_never_double_send(tmp_path, server):
    server.default = ("delay", 0.01)
    prof = write_profile(tmp_path)
    sp = Spool(tmp_path / "spool")
    keys = [f"key-{i:03d}" for i in range(40)]
    for k in keys:
        sp.put(k, "generic", {"idempotency_key": k, "text": k})
    a = _popen("spool", "drain", "--profile", str(prof), url=server.url)
    b = _popen("spool", "drain", "--profile", str(prof), url=server.url)
    ra, rb = a.wait(60), b.wait(60)
    assert (ra, rb) == (0, 0), (a.stderr.read(), b.stderr.read())
    got = server.keys()
    assert sorted(got) == keys and len(got) == len(set(got))
    assert sp.files() == []


def test_drain_dead_letters_4xx_and_after_attempt_limit(tmp_path, server):
    prof = write_profile(tmp_path)
    sp = Spool(tmp_path / "spool")
    sp.put("gone", "generic", {"text": "a"})
    sp.put("tired", "generic", {"text": "b"}, attempts=9, reason="HTTP 500")
    (tmp_path / "spool" / "corrupt.json").write_text("{half")
    server.queue(("status", 404), ("status", 500), ("status", 500))
    r = run_notify("spool", "drain", "--profile", str(prof), "--keep-going", "--json", env={"NOTIFY_TEST_URL": server.url})
    rep = json.loads(r.stdout)
    assert r.returncode == 0 and rep["dead_lettered"] == 2 and rep["unreadable"] == 1 and rep["remaining"] == 0
    dead = json.loads(run_notify("spool", "list", "--profile", str(prof), "--dead", "--json").stdout)
    reasons = {e.get("key", e.get("file")): e.get("reason") or e.get("error") for e in dead["entries"]}
    assert "HTTP 404" in reasons["gone"] and "gave up after" in reasons["tired"]


def test_rotation_mid_follow_with_real_process(tmp_path, server):
    first = [usr_event("materialize") for _ in range(3)]
    log = _log(tmp_path, first)
    prof = write_profile(tmp_path)
    w = _popen("usr-events", "watch", "--profile", str(prof), "--follow", url=server.url)
    try:
        assert server.wait_for(3, 60)
        late = usr_event("materialize")
        with open(log, "ab") as fh:
            os.rename(log, log.with_name(".events.log.1"))
            fh.write(encode_event(late))
        after = [usr_event("materialize") for _ in range(3)]
        write_events(log, after)
        assert server.wait_for(7, 60)
        w.send_signal(signal.SIGTERM)
        _, err = w.communicate(timeout=60)
    finally:
        if w.poll() is None:
            w.kill()
    assert w.returncode == 0
    assert "rotated" in err
    keys = server.keys()
    assert sorted(keys) == sorted(e["event_id"] for e in [*first, late, *after])


def test_watch_without_spool_exits_1_and_does_not_leak(tmp_path):
    _log(tmp_path, [health("started")])
    prof = write_profile(tmp_path, spool_dir=None)
    url = f"http://127.0.0.1:{dead_port()}/hook/{SECRET_TOKEN}"
    r = run_notify("usr-events", "watch", "--profile", str(prof), env={"NOTIFY_TEST_URL": url})
    assert r.returncode == 1 and "no spool" in r.stderr
    assert SECRET_TOKEN not in r.stdout + r.stderr and "Traceback" not in r.stderr


def test_dry_run_cli_needs_no_secret_and_keeps_cursor(tmp_path):
    _log(tmp_path, [health("started"), health("completed", 100)])
    prof = write_profile(tmp_path)
    r = run_notify("usr-events", "watch", "--profile", str(prof), "--dry-run", env={"NOTIFY_TEST_URL": ""})
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip().splitlines()) == 2 and "cursor not advanced" in r.stderr
    assert not (tmp_path / "state" / "notify.cursor").exists()


def test_follow_prints_ready_then_delivers_what_is_appended(tmp_path, server):
    """The readiness signal: with --follow the watcher prints a line ending in "ready" once it holds its cursor and
    polls; anything appended after that line is delivered, even if the log did not exist yet."""
    log = tmp_path / "ds" / ".events.log"
    prof = write_profile(tmp_path)
    w = _popen("usr-events", "watch", "--profile", str(prof), "--follow", url=server.url)
    err = LineWaiter(w.stderr)
    try:
        assert err.wait_for("; ready", 60), err.text()
        assert not log.exists()
        evs = [usr_event("materialize") for _ in range(3)]
        _log(tmp_path, evs)
        assert server.wait_for(3, 60)
        w.send_signal(signal.SIGTERM)
        w.wait(30)
    finally:
        if w.poll() is None:
            w.kill()
    assert w.returncode == 0
    assert server.keys() == [e["event_id"] for e in evs]
    assert f"watching {log} from byte 0" in err.text()

