"""Prometheus textfile metrics: `core.metrics`, `dense run --metrics-dir`, `notify usr-events watch --metrics-dir`.

Every file is parsed with `prometheus_client`'s own text parser (the format node_exporter reads).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dnadesign.core.events import Actor, append_event, make_event
from dnadesign.core.metrics import PER_JOB_LABELS, MetricSet, PeriodicTextfile, textfile_name, write_textfile
from tests.conftest import run_cli
from tests.densegen.run_fixtures import clean_env, dense, dense_popen, make_workspace, wait_for


def parse(path: Path) -> dict[str, list]:
    """{sample name: [(labels, value), ...]} of a textfile, through prometheus_client's parser."""
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(path.read_text()):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(samples: dict, name: str, **labels) -> float:
    hits = [v for lab, v in samples[name] if all(lab.get(k) == w for k, w in labels.items())]
    assert len(hits) == 1, (name, labels, samples.get(name))
    return hits[0]


def test_render_escapes_and_parses(tmp_path):
    m = MetricSet({"dataset": "densegen/demo"})
    m.gauge("x_info", "with \\ and\nnewline", 1, note='quote " back\\slash\nnl')
    m.counter("x_events_total", "Events.", 3, kind="a")
    m.counter("x_events_total", "Events.", 4.5, kind="b")
    m.gauge("x_nan", "Not a number.", float("nan"))
    m.gauge("x_absent", "Not known yet.", None)
    path = write_textfile(tmp_path / textfile_name("x", "densegen/demo"), m)
    assert path.name == "x_densegen__demo.prom"
    got = parse(path)
    assert value(got, "x_info", note='quote " back\\slash\nnl', dataset="densegen/demo") == 1
    assert value(got, "x_events_total", kind="b") == 4.5
    assert value(got, "x_nan") != value(got, "x_nan")  # NaN
    assert "x_absent" not in got


@pytest.mark.parametrize("label", sorted(PER_JOB_LABELS))
def test_counters_refuse_per_job_labels(label):
    m = MetricSet()
    with pytest.raises(ValueError, match="per-job"):
        m.counter("x_total", "x", 1, **{label: "123"})
    with pytest.raises(ValueError, match="per-job"):
        MetricSet({label: "1"}).counter("x_total", "x", 1)
    m.gauge("x_info", "info-style gauges may carry them", 1, **{label: "123"})
    with pytest.raises(ValueError, match="_total"):
        m.counter("x_count", "x", 1)
    with pytest.raises(ValueError):
        m.gauge("bad-name", "x", 1)


def test_periodic_writer_is_atomic_under_concurrent_reads(tmp_path):
    """A reader that parses the file in a loop while it is rewritten never sees a partial file."""
    n = {"i": 0}

    def collect() -> MetricSet:
        n["i"] += 1
        m = MetricSet()
        for k in range(200):  # a file of a few KB, rewritten fast
            m.gauge("x_value", "x", n["i"], k=str(k))
        return m

    path = tmp_path / "x.prom"
    writer = PeriodicTextfile(path, collect, interval_s=0.01).start()
    bad: list[str] = []
    done = threading.Event()

    def read() -> None:
        reads = 0
        while reads < 300:
            try:
                fams = list(text_string_to_metric_families(path.read_text()))
            except Exception as exc:
                bad.append(repr(exc))
                break
            values = {s.value for f in fams for s in f.samples}
            if len(fams) != 1 or len(fams[0].samples) != 200 or len(values) != 1:
                bad.append("partial file")
                break
            reads += 1
        done.set()

    t = threading.Thread(target=read)
    t.start()
    assert done.wait(60)
    writer.stop()
    t.join()
    assert not bad
    assert writer.writes >= 2
    assert [p.name for p in tmp_path.iterdir()] == ["x.prom"]  # no temp files left behind


def test_dense_run_metrics_dir(tmp_path):
    cfg = make_workspace(tmp_path / "ws", quotas={"plain": 3, "sigma70": 2})
    mdir = tmp_path / "metrics"
    proc = dense_popen("run", "-c", str(cfg), "--no-plot", "--metrics-dir", str(mdir),
                       env=clean_env(DNADESIGN_METRICS_INTERVAL_S="0.2"))
    path = mdir / "dense_densegen__demo_sites.prom"
    try:
        # Readiness: the file appears at start with the run up.
        assert wait_for(lambda: path.exists() and "dense_run_up" in path.read_text(), timeout=120)
        live = parse(path)  # written before the first solve, so the run is still going
        assert value(live, "dense_run_up") == 1 and value(live, "dense_run_status", status="running") == 1
        _out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    got = parse(path)
    assert value(got, "dense_run_up") == 0
    assert value(got, "dense_run_last_exit_code") == 0
    assert value(got, "dense_run_status", status="completed") == 1
    assert value(got, "dense_plan_sequences_committed", plan="plain") == 3
    assert value(got, "dense_plan_sequences_quota", plan="sigma70") == 2
    assert sum(v for _, v in got["dense_sequences_accepted_total"]) == 5
    assert value(got, "dense_run_info") == 1
    for name, samples in got.items():
        for labels, _ in samples:
            assert labels.get("dataset") == "densegen/demo_sites" and labels.get("scheduler") == "none"
            if name.endswith("_total"):
                assert not PER_JOB_LABELS & set(labels), (name, labels)
    assert [p.name for p in mdir.iterdir()] == [path.name]


def test_dense_run_metrics_dir_not_writable(tmp_path):
    cfg = make_workspace(tmp_path / "ws", quotas={"plain": 1, "sigma70": 1})
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    r = dense("run", "-c", str(cfg), "--no-plot", "--metrics-dir", str(blocker))
    assert r.returncode == 1
    assert "--metrics-dir" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "ws" / "outputs" / "usr_datasets").exists()  # refused before any work


def test_notify_watch_metrics_dir(tmp_path):
    log = tmp_path / "usr" / "densegen" / "demo" / ".events.log"
    log.parent.mkdir(parents=True)
    actor = Actor.current("densegen", run_id="r")
    for i in range(5):
        append_event(log, make_event("densegen_health", "densegen/demo", actor, args={"status": "running"},
                                     metrics={"generated": i, "quota": 5, "percent": 20.0 * i}, job={}))
    append_event(log, make_event("densegen_health", "densegen/demo", actor, args={"status": "completed"}, job={}))
    with open(log, "ab") as fh:
        fh.write(b"not json\n")
    mdir = tmp_path / "m"
    r = run_cli("notify", "usr-events", "watch", "--events", str(log), "--cursor", str(tmp_path / "cursor"),
                "--provider", "generic", "--dry-run", "--from-start", "--json", "--metrics-dir", str(mdir))
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    got = parse(mdir / "notify_densegen__demo.prom")
    assert value(got, "notify_lines_read_total") == summary["lines"] == 7
    assert value(got, "notify_messages_total", outcome="printed") == summary["printed"] >= 1
    assert value(got, "notify_malformed_lines_total") == 1
    assert value(got, "notify_lag_bytes") == 0 and value(got, "notify_watch_up") == 0
    assert value(got, "notify_cursor_offset_bytes") == os.path.getsize(log)
    assert {lab["events"] for s in got.values() for lab, _ in s} == {"densegen/demo"}
