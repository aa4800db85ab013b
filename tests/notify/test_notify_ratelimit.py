"""Rate limits are carried across messages, runs and processes (issue 11.4), counted as POSTs on a real server."""

from __future__ import annotations

import json
import threading
import time

from dnadesign.notify.cursor import load_cursor
from dnadesign.notify.http_transport import http_sender
from dnadesign.notify.profile import DeliveryPolicy
from dnadesign.notify.ratelimit import RateGate, destination_id, state_path_for
from dnadesign.notify.spool import Spool
from dnadesign.notify.watch import run_watch

from .conftest import SECRET_TOKEN, run_notify, usr_event, write_events
from .helpers_notify import FAST, config, write_profile


def _log(tmp_path, events):
    p = tmp_path / "ds" / ".events.log"
    p.parent.mkdir(parents=True, exist_ok=True)
    write_events(p, events)
    return p


def test_watch_carries_the_rate_limit_to_the_next_messages(tmp_path, server):
    """A Slack-like endpoint (one post per 0.5 s, 429 otherwise): one 429 teaches the pace for the rest.

    Before the fix every message after the first was refused once (2 POSTs per message: 23 for 12).
    """
    server.min_gap = 0.5
    evs = [usr_event("materialize") for _ in range(12)]
    _log(tmp_path, evs)
    cfg = config(tmp_path, None)
    cfg.sender = http_sender(server.url, FAST, allow_insecure_localhost=True, state_path=state_path_for(tmp_path / "spool", None))
    s = run_watch(cfg)
    assert s.delivered == 12 and s.spooled == 0
    assert sorted(server.keys()) == sorted(e["event_id"] for e in evs)
    refused = sum(1 for r in server.requests if r["action"] == "status")
    assert len(server.requests) <= 12 + 2, f"{len(server.requests)} POSTs for 12 messages ({refused} refused)"
    state = json.loads((tmp_path / "spool" / ".ratelimit.json").read_text())
    assert SECRET_TOKEN not in json.dumps(state) and "127.0.0.1" not in json.dumps(state)
    assert list(state["destinations"]) == [destination_id(server.url)]


def test_long_retry_after_spools_without_posting_and_drain_waits_too(tmp_path, server):
    """Retry-After beyond retry_after_max: the watcher posts once, spools the rest without a POST, and a drain
    started right after sends nothing either (the not-before time is persisted next to the spool)."""
    server.queue(("status", 429, {"Retry-After": "3600"}))
    evs = [usr_event("materialize") for _ in range(5)]
    _log(tmp_path, evs)
    prof = write_profile(tmp_path)
    r = run_notify("usr-events", "watch", "--profile", str(prof), "--json", env={"NOTIFY_TEST_URL": server.url})
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["spooled"] == 5 and summary["delivered"] == 0
    assert len(server.requests) == 1
    assert "rate limited by the destination until" in r.stderr and SECRET_TOKEN not in r.stdout + r.stderr

    d = run_notify("spool", "drain", "--profile", str(prof), "--keep-going", "--json", env={"NOTIFY_TEST_URL": server.url})
    assert d.returncode == 1
    rep = json.loads(d.stdout)
    assert rep["rate_limited"] and rep["remaining"] == 5 and rep["delivered"] == 0
    assert len(server.requests) == 1  # the drain honoured the watcher's not-before time: no POST at all
    entries = json.loads(run_notify("spool", "list", "--profile", str(prof), "--json").stdout)["entries"]
    assert len(entries) == 5 and all(e["attempts"] <= 1 for e in entries)  # waiting is not an attempt

    doc = run_notify("profile", "doctor", "--profile", str(prof), "--json", env={"NOTIFY_TEST_URL": server.url})
    checks = {c["name"]: c for c in json.loads(doc.stdout)["checks"]}
    assert checks["ratelimit"]["status"] == "warn" and "429" in checks["ratelimit"]["detail"]


def test_drain_waits_for_a_short_not_before_set_by_another_process(tmp_path, server):
    """A watcher got `429 Retry-After: 2`; a drain started at once posts only after the 2 s have passed."""
    server.queue(("status", 429, {"Retry-After": "2"}))
    _log(tmp_path, [usr_event("materialize")])
    prof = write_profile(tmp_path, delivery=FAST.model_copy(update={"max_attempts": 1}))
    r = run_notify("usr-events", "watch", "--profile", str(prof), "--json", env={"NOTIFY_TEST_URL": server.url})
    assert r.returncode == 0 and json.loads(r.stdout.strip().splitlines()[-1])["spooled"] == 1
    refused_at = server.requests[0]["t"]
    d = run_notify("spool", "drain", "--profile", str(prof), "--json", env={"NOTIFY_TEST_URL": server.url})
    assert d.returncode == 0, d.stderr
    assert json.loads(d.stdout)["delivered"] == 1 and len(server.requests) == 2
    assert server.requests[1]["t"] - refused_at >= 1.9  # a lower bound: load only makes it later


def test_gate_state_is_shared_and_merged(tmp_path):
    """Two gates on one state file (two processes): each sees the other's not-before; the later one wins."""
    path = tmp_path / "spool" / ".ratelimit.json"
    path.parent.mkdir()
    clock = [1000.0]
    a = RateGate("dest-a", path, clock=lambda: clock[0])
    b = RateGate("dest-a", path, clock=lambda: clock[0])
    other = RateGate("dest-b", path, clock=lambda: clock[0])
    assert a.wait_seconds() == 0
    a.rate_limited(30, "HTTP 429")
    assert b.wait_seconds() == 30 and other.wait_seconds() == 0
    b.rate_limited(5, "HTTP 429")  # an earlier not-before never shortens a later one
    assert a.wait_seconds() == 30
    clock[0] += 31
    assert a.wait_seconds() == 0
    a.posted()  # the learned spacing (capped) now paces posts across processes
    assert 0 < b.wait_seconds() <= 10
    clock[0] += 11
    assert b.wait_seconds() == 0


def test_sender_spaces_posts_after_a_429_without_a_state_file(server):
    server.min_gap = 0.3
    with http_sender(server.url, DeliveryPolicy(max_attempts=3, backoff_base=0.01, min_interval=0),
                     allow_insecure_localhost=True) as s:
        t0 = time.monotonic()
        for i in range(6):
            assert s.deliver({"i": i}, f"k{i}").ok
    assert len(server.requests) <= 7 and time.monotonic() - t0 >= 5 * 0.3


def test_spool_file_is_not_listed_as_a_payload(tmp_path):
    sp = Spool(tmp_path / "spool").ensure()
    RateGate("d", sp.path / ".ratelimit.json").rate_limited(10, "HTTP 429")
    assert sp.files() == [] and list(sp.entries()) == []


def test_a_stop_during_a_rate_limit_wait_posts_nothing_and_keeps_the_cursor(tmp_path, server):
    """SIGTERM while waiting out a Retry-After: no early POST, nothing spooled, the event stays for the next run."""
    evs = [usr_event("materialize") for _ in range(2)]
    _log(tmp_path, evs)
    state = state_path_for(tmp_path / "spool", None)
    state.parent.mkdir(parents=True)
    RateGate(destination_id(server.url), state).rate_limited(60, "HTTP 429")
    stop = threading.Event()
    cfg = config(tmp_path, None, stop=stop, on_ready=lambda what: stop.set())
    cfg.sender = http_sender(server.url, FAST, allow_insecure_localhost=True, state_path=state, stop=stop)
    s = run_watch(cfg)
    assert s.stopped == "stopped" and (s.delivered, s.spooled) == (0, 0) and server.requests == []
    cur = load_cursor(cfg.cursor)
    assert cur is None or cur.offset == 0
    assert Spool(tmp_path / "spool").files() == []
