"""The watch loop in-process: filters, delivery, spool, dead letters, throttle persistence, roll-ups."""

from __future__ import annotations

import json
import threading

import pytest

from dnadesign.core.errors import DeliveryError
from dnadesign.core.events import Actor, make_event
from dnadesign.notify.cursor import load_cursor
from dnadesign.notify.filters import EventFilter
from dnadesign.notify.watch import run_watch

from .conftest import dead_port, health, usr_event, write_events
from .helpers_notify import config


def _log(tmp_path, events):
    p = tmp_path / "ds" / ".events.log"
    p.parent.mkdir(parents=True, exist_ok=True)
    write_events(p, events)
    return p


def test_delivers_selected_events_and_advances_cursor(tmp_path, server):
    evs = [health("started"), usr_event("append"), usr_event("materialize", tool="usr"), usr_event("materialize")]
    log = _log(tmp_path, evs)
    cfg = config(tmp_path, server.url, filter=EventFilter.build(["densegen"], ["densegen_health", "materialize"]))
    s = run_watch(cfg)
    assert s.delivered == 2 and s.filtered == 2
    assert server.keys() == [evs[0]["event_id"], evs[3]["event_id"]]
    cur = load_cursor(cfg.cursor)
    assert cur.offset == log.stat().st_size
    # a second run finds nothing new
    assert run_watch(config(tmp_path, server.url)).delivered == 0


def test_dry_run_prints_and_keeps_cursor(tmp_path):
    _log(tmp_path, [health("started"), health("completed", 100)])
    out: list[str] = []
    s = run_watch(config(tmp_path, None, dry_run=True, emit_to=out))
    assert s.printed == 2 and len(out) == 2
    assert json.loads(out[1])["status"] == "success"
    assert not (tmp_path / "state" / "notify.cursor").exists()
    s2 = run_watch(config(tmp_path, None, dry_run=True, advance_on_dry_run=True, emit_to=[]))
    assert s2.printed == 2 and load_cursor(tmp_path / "state" / "notify.cursor").offset > 0


def test_transient_failure_spools_and_continues(tmp_path, server):
    server.default = ("status", 500)
    evs = [health("started"), health("completed", 100)]
    _log(tmp_path, evs)
    cfg = config(tmp_path, server.url)
    s = run_watch(cfg)
    assert s.spooled == 2 and s.delivered == 0
    files = sorted((tmp_path / "spool").glob("*.json"))
    assert {json.loads(f.read_text())["key"] for f in files} == {e["event_id"] for e in evs}
    assert all((f.stat().st_mode & 0o777) == 0o600 for f in files)
    assert ((tmp_path / "spool").stat().st_mode & 0o777) == 0o700


def test_4xx_goes_to_dead_letter_with_reason(tmp_path, server):
    server.queue(("status", 410))
    _log(tmp_path, [health("started"), health("completed", 100)])
    s = run_watch(config(tmp_path, server.url))
    assert s.dead_lettered == 1 and s.delivered == 1
    dead = list((tmp_path / "spool" / "dead").glob("*.json"))
    assert len(dead) == 1 and "HTTP 410" in json.loads(dead[0].read_text())["reason"]


def test_no_spool_failure_stops_and_keeps_cursor_before_event(tmp_path, server):
    evs = [health("started"), health("completed", 100)]
    log = _log(tmp_path, evs)
    server.queue(("ok",), ("status", 500), ("status", 500))
    with pytest.raises(DeliveryError) as ei:
        run_watch(config(tmp_path, server.url, spool=False))
    assert "no spool" in ei.value.message
    first_end = log.read_bytes().index(b"\n") + 1
    assert load_cursor(tmp_path / "state" / "notify.cursor").offset == first_end
    s = run_watch(config(tmp_path, server.url, spool=False))  # server healthy again: the event is retried
    assert s.delivered == 1 and server.keys() == [evs[0]["event_id"], evs[1]["event_id"]]


def test_unreachable_without_spool_raises(tmp_path):
    _log(tmp_path, [health("started")])
    with pytest.raises(DeliveryError):
        run_watch(config(tmp_path, f"http://127.0.0.1:{dead_port()}/x", spool=False))


def test_throttle_state_survives_restart(tmp_path, server):
    t = lambda s: f"2026-01-01T00:00:{s:02d}.000000Z"  # noqa: E731
    evs = [health("started", 0, ts=t(0))] + [health("running", g, ts=t(1 + i)) for i, g in enumerate([3, 11, 12, 25, 26])]
    log = _log(tmp_path, evs[:4])
    run_watch(config(tmp_path, server.url))
    assert server.keys() == [evs[0]["event_id"], evs[2]["event_id"]]  # started, then the 10% step
    write_events(log, evs[4:])
    run_watch(config(tmp_path, server.url))  # a restart must not re-send 10% or send 12%
    assert server.keys() == [evs[0]["event_id"], evs[2]["event_id"], evs[4]["event_id"]]


def test_heartbeat_and_min_gap(tmp_path, server):
    from dnadesign.notify.throttle import ProgressThrottle

    t = lambda s: f"2026-01-01T00:{s // 60:02d}:{s % 60:02d}.000000Z"  # noqa: E731
    evs = [health("running", 1, ts=t(0)), health("running", 20, ts=t(5)), health("running", 21, ts=t(70)),
           health("running", 22, ts=t(200)), health("running", 23, ts=t(400))]
    _log(tmp_path, evs)
    run_watch(config(tmp_path, server.url, throttle=ProgressThrottle(10, 60, 300)))
    # first one; 20% blocked by the 60 s gap; at 70 s the step counts; 200 s nothing new; 400 s heartbeat
    assert server.keys() == [evs[0]["event_id"], evs[2]["event_id"], evs[4]["event_id"]]


def _job(state, task, exit_code=0, signal=None, action="job_finished", job_id="77", array=True):
    job = {"scheduler": "slurm", "job_id": job_id, "task_id": task, "state": state, "exit_code": exit_code, "signal": signal}
    if array:
        job["array"] = {"first": 1, "last": 3, "step": 1}
    return make_event(action, "densegen/demo", Actor.current("densegen", run_id=f"r{task}"), job=job)


def test_job_alerts_and_array_rollup(tmp_path, server):
    evs = [_job("completed", "1"), _job("failed", "2", exit_code=3), _job(None, None, action="job_started", array=False),
           _job("cancelled", None, signal=15, job_id="88", array=False), _job("completed", None, job_id="89", array=False),
           _job("completed", "3")]
    _log(tmp_path, evs)
    run_watch(config(tmp_path, server.url, filter=EventFilter.build(["densegen"], ["densegen_health"])))
    bodies = server.bodies()
    assert len(bodies) == 2
    assert bodies[0]["status"] == "failure" and "88" in bodies[0]["text"] and "cancelled" in bodies[0]["text"]
    assert bodies[1]["fields"]["tasks"] == 3 and "2 completed" in bodies[1]["text"] and "1 failed" in bodies[1]["text"]
    assert load_cursor(tmp_path / "state" / "notify.cursor").rollup == {}


def test_array_rollup_state_persists_across_runs(tmp_path, server):
    log = _log(tmp_path, [_job("completed", "1"), _job("completed", "2")])
    run_watch(config(tmp_path, server.url))
    assert server.bodies() == []
    write_events(log, [_job("lost", "3", action="job_lost")])
    run_watch(config(tmp_path, server.url))
    assert len(server.bodies()) == 1 and "1 lost" in server.bodies()[0]["text"]


def test_stop_on_terminal_status(tmp_path, server):
    _log(tmp_path, [health("started"), health("completed", 100), usr_event("materialize")])
    s = run_watch(config(tmp_path, server.url, stop_on_terminal=True, follow=True))
    assert s.stopped == "terminal" and s.delivered == 2


def test_idle_timeout_in_follow(tmp_path, server):
    _log(tmp_path, [health("started")])
    s = run_watch(config(tmp_path, server.url, follow=True, idle_timeout=0.3))
    assert s.stopped == "idle" and s.delivered == 1


def test_follow_waits_for_missing_file_then_reads(tmp_path, server):
    stop = threading.Event()
    ready = threading.Event()
    cfg = config(tmp_path, server.url, follow=True, stop=stop, on_ready=lambda what: ready.set())
    th = threading.Thread(target=run_watch, args=(cfg,))
    th.start()
    try:
        assert ready.wait(30)  # the watcher is polling for the missing file
        assert not cfg.events.exists()
        _log(tmp_path, [health("started")])
        assert server.wait_for(1, 60)
    finally:
        stop.set()
        th.join(60)
    assert not th.is_alive()


def test_second_watcher_on_same_cursor_is_refused(tmp_path, server):
    from dnadesign.core.errors import LockTimeoutError

    _log(tmp_path, [health("started")])
    stop = threading.Event()
    th = threading.Thread(target=run_watch, args=(config(tmp_path, server.url, follow=True, stop=stop),))
    th.start()
    try:
        assert server.wait_for(1, 60)
        with pytest.raises(LockTimeoutError):
            run_watch(config(tmp_path, server.url))
    finally:
        stop.set()
        th.join(60)
