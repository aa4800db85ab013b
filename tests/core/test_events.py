import json
import multiprocessing as mp

from hypothesis import given, settings, strategies as st

from dnadesign.core import events as ev
from dnadesign.core.secrets import REDACTED


def _actor():
    return ev.Actor.current("test", run_id="r1")


def test_event_line_has_contract_fields(tmp_path):
    log = tmp_path / ".events.log"
    e = ev.make_event("append", "demo/a", _actor(), args={"webhook_url": "https://x/y", "n": 3}, metrics={"rows": 1},
                      fingerprint={"rows": 1, "manifest": "abc"})
    ev.append_event(log, e)
    got = ev.read_events(log)[0]
    for key in ("event_version", "event_id", "ts", "action", "dataset", "actor", "args", "metrics", "fingerprint"):
        assert key in got
    assert got["dataset"] == {"id": "demo/a"}
    assert set(got["actor"]) == {"tool", "run_id", "correlation_id", "host", "pid", "user"}
    assert got["args"]["webhook_url"] == REDACTED and got["args"]["n"] == 3
    assert got["ts"].endswith("Z")


def test_torn_last_line_is_not_read_and_next_append_stays_parseable(tmp_path):
    log = tmp_path / ".events.log"
    ev.append_event(log, ev.make_event("init", "demo/a", _actor()))
    with open(log, "ab") as fh:
        fh.write(b'{"event_version":1,"action":"app')  # a writer died mid-line
    recs = list(ev.iter_event_records(log))
    assert len(recs) == 1 and recs[0].event["action"] == "init"
    ev.append_event(log, ev.make_event("append", "demo/a", _actor()))
    recs = list(ev.iter_event_records(log))
    assert [r.event["action"] if r.event else "BAD" for r in recs] == ["init", "BAD", "append"]
    assert recs[1].error and "malformed" in recs[1].error


def _writer(path, n, tag):
    for i in range(n):
        ev.append_event(path, ev.make_event("append", "demo/a", ev.Actor.current("t"), args={"tag": tag, "i": i}))


def test_concurrent_appends_from_processes_never_interleave(tmp_path):
    log = tmp_path / ".events.log"
    procs = [mp.get_context("spawn").Process(target=_writer, args=(log, 50, t)) for t in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    lines = log.read_bytes().splitlines()
    assert len(lines) == 200
    parsed = [json.loads(x) for x in lines]
    assert len({p["event_id"] for p in parsed}) == 200
    for t in range(4):
        assert [p["args"]["i"] for p in parsed if p["args"]["tag"] == t] == list(range(50))


def test_tail_events_reads_the_end(tmp_path):
    log = tmp_path / ".events.log"
    ev.append_events(log, [ev.make_event("append", "demo/a", _actor(), metrics={"i": i}) for i in range(3000)])
    assert [e["metrics"]["i"] for e in ev.tail_events(log, 3)] == [2997, 2998, 2999]
    assert len(ev.tail_events(log, 5000)) == 3000


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30), max_size=8),
       st.integers(min_value=0, max_value=200))
def test_reader_never_crashes_and_offsets_tile_the_file(tmp_path_factory, garbage, cut):
    log = tmp_path_factory.mktemp("ev") / ".events.log"
    ev.append_event(log, ev.make_event("init", "demo/a", _actor()))
    with open(log, "ab") as fh:
        for g in garbage:
            fh.write(g.replace("\n", " ").encode() + b"\n")
        fh.write(b"x" * cut)  # torn tail
    recs = list(ev.iter_event_records(log))
    assert recs[0].event is not None
    pos = 0
    for r in recs:
        assert r.offset >= pos and r.end > r.offset
        pos = r.end
    assert pos <= log.stat().st_size
