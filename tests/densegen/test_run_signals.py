"""Stopping `dense run` for real: SIGTERM flushes and exits 143; SIGKILL loses at most one checkpoint."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from run_fixtures import dense, dense_popen, diagnostics, make_workspace, parquet_rows, usr_events, usr_rows, wait_for  # noqa: E402

from tests.helpers_validate import assert_workspace_valid

pytestmark = pytest.mark.slow


def _accepted(ws: Path) -> int:
    return sum(1 for e in diagnostics(ws) if e["event"] == "accepted")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_flushes_records_state_and_exits_128_plus_signum(tmp_path, sig):
    # SIGINT matters on its own: CP-SAT installs a SIGINT handler during every solve that would
    # otherwise swallow a Ctrl-C (the run would go on to its quota of 80 and this test would time out)
    ws = tmp_path / "ws"
    cfg = make_workspace(ws, quotas={"plain": 40, "sigma70": 40},
                         overrides={"runtime": {"checkpoint_every": 50}, "solver": {"time_limit_s": 8, "run_time_limit_s": 30}})
    proc = dense_popen("run", "--no-plot", "-c", str(cfg))
    try:
        assert wait_for(lambda: _accepted(ws) >= 1, timeout=90), "no sequence accepted in time"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err
    assert signal.Signals(sig).name in err
    # checkpoint_every is 50, so everything below was flushed by the signal path, not a checkpoint
    accepted = _accepted(ws)
    assert usr_rows(ws).height == accepted
    assert parquet_rows(ws).height == accepted
    state = json.loads((ws / "outputs" / "meta" / "run_state.json").read_text())
    assert state["status"] == "interrupted" and state["generated"] == accepted
    health = [e for e in usr_events(ws) if e["action"] == "densegen_health"]
    assert health[-1]["args"]["status"] == "failed" and health[-1]["args"]["signal"] == sig
    assert health[-1]["metrics"]["generated"] == accepted
    finished = [e for e in diagnostics(ws) if e["event"] == "session_finished"]
    assert finished and finished[-1]["status"] == "interrupted" and finished[-1]["exit_code"] == 128 + sig
    assert_workspace_valid(ws)


def test_sigkill_loses_at_most_one_checkpoint_and_resume_writes_no_duplicates(tmp_path):
    ws = tmp_path / "ws"
    every = 2
    cfg = make_workspace(ws, quotas={"plain": 3, "sigma70": 2}, overrides={"runtime": {"checkpoint_every": every}})
    proc = dense_popen("run", "--no-plot", "-c", str(cfg))
    try:
        assert wait_for(lambda: _accepted(ws) >= 2, timeout=90), "no sequence accepted in time"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    accepted_before = _accepted(ws)
    committed = usr_rows(ws).height
    assert accepted_before - committed <= every  # lost at most one checkpoint interval
    parquet_rows(ws)  # the parquet sink is readable right after a SIGKILL (manifest + immutable parts)
    assert_workspace_valid(ws)  # valid right after the kill, before any repair
    # the stale lock of the killed process does not block, and the resume completes the quotas
    r = dense("run", "--no-plot", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    u, p = usr_rows(ws), parquet_rows(ws)
    assert u.height == 5 and u["id"].n_unique() == 5
    assert p.height == 5 and sorted(p["id"].to_list()) == sorted(u["id"].to_list())
    statuses = [e["args"]["status"] for e in usr_events(ws) if e["action"] == "densegen_health"]
    assert statuses[0] == "started" and "resumed" in statuses and statuses[-1] == "completed"
    manifest = json.loads((ws / "outputs" / "meta" / "run_manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert_workspace_valid(ws)
