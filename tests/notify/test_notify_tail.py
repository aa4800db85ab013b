"""Reading the log: torn lines, malformed lines, truncation, replacement, rotation, --from-end."""

from __future__ import annotations

import json
import os
import threading

from dnadesign.core.events import encode_event
from dnadesign.notify.cursor import load_cursor
from dnadesign.notify.tail import LogReader
from dnadesign.notify.watch import run_watch

from .conftest import health, usr_event, write_events
from .helpers_notify import config


def _path(tmp_path):
    p = tmp_path / "ds" / ".events.log"
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def test_torn_last_line_waits_for_newline(tmp_path):
    p = _path(tmp_path)
    a, b = encode_event(health("started")), encode_event(health("completed", 100))
    p.write_bytes(a + b[:20])
    r = LogReader(p)
    lines = r.read_batch()
    assert len(lines) == 1 and lines[0].end == len(a)
    assert r.read_batch() == []
    with open(p, "ab") as fh:
        fh.write(b[20:])
    lines = r.read_batch()
    assert len(lines) == 1 and lines[0].event["args"]["status"] == "completed" and lines[0].end == len(a) + len(b)
    r.close()


def test_batches_are_bounded(tmp_path):
    p = _path(tmp_path)
    write_events(p, [usr_event("append") for _ in range(50)])
    r = LogReader(p, chunk_size=300)
    sizes = []
    while batch := r.read_batch(max_lines=7):
        sizes.append(len(batch))
    r.close()
    assert sum(sizes) == 50 and max(sizes) == 7
    assert r.offset == p.stat().st_size


def test_malformed_and_non_utf8_lines_are_skipped(tmp_path, server):
    p = _path(tmp_path)
    good = health("started")
    p.write_bytes(b"{not json\n" + b"\xff\xfe\xfa\n" + b"[1,2]\n" + b"\n" + encode_event(good))
    warns: list[str] = []
    s = run_watch(config(tmp_path, server.url, warn_to=warns))
    assert s.malformed == 3 and s.delivered == 1 and server.keys() == [good["event_id"]]
    assert sum("skipping line" in w for w in warns) == 3


def test_truncated_log_restarts_from_beginning(tmp_path, server):
    p = _path(tmp_path)
    write_events(p, [health("started"), health("completed", 100)])
    run_watch(config(tmp_path, server.url))
    with open(p, "r+b") as fh:  # same inode, shorter content
        fh.truncate(0)
    new = health("started", run_id="run-2")
    write_events(p, [new])
    warns: list[str] = []
    s = run_watch(config(tmp_path, server.url, warn_to=warns))
    assert s.delivered == 1 and server.keys()[-1] == new["event_id"]
    assert any("truncated" in w or "replaced" in w for w in warns)


def test_replaced_log_is_detected_by_identity(tmp_path, server):
    p = _path(tmp_path)
    write_events(p, [health("started"), usr_event("materialize"), usr_event("materialize")])
    run_watch(config(tmp_path, server.url))
    assert len(server.keys()) == 3
    tmp = p.with_name("new.log")
    newer = [health("started", run_id="run-9"), usr_event("materialize"), usr_event("materialize"), usr_event("materialize")]
    write_events(tmp, newer)  # bigger than the old file: offset alone would skip events
    os.replace(tmp, p)
    warns: list[str] = []
    s = run_watch(config(tmp_path, server.url, warn_to=warns))
    assert s.delivered == 4 and server.keys()[3:] == [e["event_id"] for e in newer]
    assert any("replaced or rotated" in w for w in warns)


def test_from_end_skips_history_and_torn_tail(tmp_path, server):
    p = _path(tmp_path)
    write_events(p, [health("started"), health("completed", 100)])
    later = encode_event(usr_event("materialize"))
    with open(p, "ab") as fh:
        fh.write(later[:10])
    s = run_watch(config(tmp_path, server.url, start="end"))
    assert s.delivered == 0
    with open(p, "ab") as fh:
        fh.write(later[10:])
    s = run_watch(config(tmp_path, server.url))
    assert s.delivered == 1 and server.keys() == [json.loads(later)["event_id"]]


def test_rotation_mid_follow_loses_nothing(tmp_path, server):
    p = _path(tmp_path)
    first = [health("started")] + [usr_event("materialize") for _ in range(3)]
    write_events(p, first)
    stop = threading.Event()
    cfg = config(tmp_path, server.url, follow=True, stop=stop)
    th = threading.Thread(target=run_watch, args=(cfg,))
    th.start()
    try:
        assert server.wait_for(4, 60)
        # a writer still holding the old file appends just before the rotation
        late = usr_event("materialize")
        with open(p, "ab") as fh:
            os.rename(p, p.with_name(".events.log.1"))
            fh.write(encode_event(late))
        after = [usr_event("materialize") for _ in range(3)]
        write_events(p, after)
        assert server.wait_for(8, 60)
    finally:
        stop.set()
        th.join(60)
    keys = server.keys()
    expected = [e["event_id"] for e in [*first, late, *after]]
    assert sorted(keys) == sorted(expected) and len(keys) == len(set(keys))
    cur = load_cursor(cfg.cursor)
    assert cur.offset == p.stat().st_size and cur.file.ino == p.stat().st_ino


def test_dry_run_over_large_log_is_streaming(tmp_path):
    p = _path(tmp_path)
    write_events(p, [usr_event("append") for _ in range(3000)])
    out: list[str] = []
    s = run_watch(config(tmp_path, None, dry_run=True, emit_to=out))
    assert s.lines == 3000 and s.printed == 3000 and len(out) == 3000  # speed is measured in bench/notify_watch.py


def test_rotation_while_stopped_finishes_the_old_file_first(tmp_path, server):
    p = _path(tmp_path)
    first = [usr_event("materialize") for _ in range(2)]
    write_events(p, first)
    run_watch(config(tmp_path, server.url))
    unread_old = [usr_event("materialize") for _ in range(2)]
    write_events(p, unread_old)
    os.rename(p, p.with_name(".events.log.1"))
    new = [usr_event("materialize") for _ in range(3)]
    write_events(p, new)
    warns: list[str] = []
    s = run_watch(config(tmp_path, server.url, warn_to=warns))
    assert s.delivered == 5
    assert server.keys() == [e["event_id"] for e in first + unread_old + new]
    assert any("finishing .events.log.1" in w for w in warns)
    assert run_watch(config(tmp_path, server.url)).delivered == 0


def test_read_error_mid_follow_reopens(tmp_path, server, monkeypatch):
    """Fault injection: one read fails like a stale NFS handle; the watcher reopens and loses nothing."""
    p = _path(tmp_path)
    evs = [usr_event("materialize") for _ in range(3)]
    write_events(p, evs)
    real = LogReader.read_batch
    calls = {"n": 0}

    def flaky(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(116, "Stale file handle")
        return real(self, *a, **kw)

    monkeypatch.setattr(LogReader, "read_batch", flaky)
    warns: list[str] = []
    s = run_watch(config(tmp_path, server.url, follow=True, idle_timeout=0.5, warn_to=warns))
    assert s.delivered == 3 and any("Stale file handle" in w for w in warns)
