"""Stopping `dense run` for real: SIGTERM flushes and exits 143; SIGKILL loses at most one checkpoint."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from run_fixtures import dense, dense_popen, diagnostics, make_workspace, parquet_rows, usr_events, usr_rows, wait_for

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


# -- through `uv run`, signals to the whole process group, repeated ------------------------------------

SGE_JOB = {"JOB_ID": "77", "SGE_TASK_ID": "undefined", "SGE_ROOT": "/opt/sge", "NSLOTS": "1"}


def _uv() -> str:
    import shutil

    from tests.conftest import require_component

    uv = shutil.which("uv")
    require_component(uv is not None, "uv is not on PATH")
    return str(uv)


def _job_finished(ws: Path) -> list[dict]:
    return [e["job"] for e in usr_events(ws) if e["action"] == "job_finished"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGUSR2], ids=["SIGTERM", "SIGINT", "SIGUSR2"])
def test_group_signal_through_uv_run_repeated_is_one_graceful_stop(tmp_path, sig):
    """What a scheduler does (signal every process of the job, uv forwards it again): one clean stop, no loss."""
    import os
    import subprocess

    from run_fixtures import clean_env

    from tests.conftest import REPO

    ws = tmp_path / "ws"
    cfg = make_workspace(ws, quotas={"plain": 25, "sigma70": 25}, overrides={"runtime": {"checkpoint_every": 100}})
    env = clean_env(UV_FROZEN="1", **SGE_JOB)
    proc = subprocess.Popen([_uv(), "run", "--project", str(REPO), "dense", "run", "--no-plot", "-c", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        assert wait_for(lambda: _accepted(ws) >= 1, timeout=180), "no sequence accepted in time"
        os.killpg(proc.pid, sig)
        os.killpg(proc.pid, sig)  # repeated at once: still the same request
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + sig, err
    assert "exiting without waiting" not in err
    accepted = _accepted(ws)
    assert usr_rows(ws).height == accepted == parquet_rows(ws).height  # every accepted row committed
    assert json.loads((ws / "outputs" / "meta" / "run_state.json").read_text())["status"] == "interrupted"
    (job,) = _job_finished(ws)
    assert (job["state"], job["signal"], job["exit_code"]) == ("cancelled", int(sig), 128 + int(sig))
    assert_workspace_valid(ws)
    # the resubmission resumes and completes without duplicates
    r = dense("run", "--no-plot", "-c", str(cfg), env=env)
    assert r.returncode == 0, r.stderr
    rows = usr_rows(ws)
    assert rows.height == 50 and rows["id"].n_unique() == 50
    assert_workspace_valid(ws)


def _blocks_sigterm(pid: int) -> bool:
    """Whether the process has SIGTERM in its blocked mask (/proc/PID/status `SigBlk`)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigBlk:"):
                return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    except (OSError, ValueError):
        return False
    return False


def test_sigterm_during_startup_is_honoured_at_once_with_a_trace(tmp_path):
    import subprocess

    from run_fixtures import clean_env, dense_bin

    ws = tmp_path / "ws"
    cfg = make_workspace(ws, quotas={"plain": 2, "sigma70": 2})
    proc = subprocess.Popen([dense_bin(), "run", "--no-plot", "-c", str(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=clean_env(**SGE_JOB))
    try:
        # readiness: dense has blocked its stop signals (the first thing it does), it is still starting up
        assert wait_for(lambda: _blocks_sigterm(proc.pid), timeout=60, poll=0.005)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert "during start-up" in err and "Traceback" not in err
    assert not any(e["event"] == "library" for e in diagnostics(ws))  # it stopped before solving anything
    (job,) = _job_finished(ws)
    assert (job["state"], job["signal"], job["exit_code"]) == ("cancelled", 15, 143)
    started = [e for e in usr_events(ws) if e["action"] == "job_started"]
    assert len(started) == 1
    assert_workspace_valid(ws)
