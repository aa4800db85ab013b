"""Kills during a write-back run (SIGKILL on observed progress, SIGTERM) and the rerun: every row scored once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pyarrow as pa
import pytest

from dnadesign.core import events as ev
from dnadesign.infer.presets import REGULONDB_PSSM, read_motifs
from dnadesign.infer.pwm_scan import PwmScanner
from dnadesign.usr.store import Dataset
from dnadesign.usr.validate import validate
from tests.conftest import run_cli, script
from tests.infer.conftest import DS, make_dataset, overlay_ids

NS = "infer__regulondb"
ROWS = 6000
BATCH = 100


def start_run(root) -> subprocess.Popen:
    env = {**os.environ, "DNADESIGN_USR_ROOT": str(root)}
    return subprocess.Popen([script("infer"), "run", "--preset", "regulondb/pwm_scan", "--usr", DS, "--field", "sequence",
                             "--device", "cpu", "--write-back", "--batch-size", str(BATCH)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_committed_batches(root, proc: subprocess.Popen, n: int, timeout: float = 120) -> int:
    """Poll the event log until `n` infer batches are committed (readiness on observed progress)."""
    log = root / DS / ".events.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = sum(1 for e in ev.read_events(log) if e["action"] == "attach" and e["actor"]["tool"] == "infer")
        if done >= n:
            return done
        if proc.poll() is not None:
            pytest.fail(f"infer exited ({proc.returncode}) before {n} batch(es) were committed: {proc.stderr.read()}")
        time.sleep(0.02)
    pytest.fail(f"no {n} committed batch(es) within {timeout}s")


def check_every_row_scored_once(root) -> None:
    ids = overlay_ids(root, "infer")
    rows = Dataset.open(root, DS).scan().collect()
    assert len(ids) == len(set(ids)) == ROWS == rows.height  # nothing lost, nothing duplicated
    direct = PwmScanner(read_motifs(REGULONDB_PSSM, "regulondb")).score(pa.array(rows["sequence"].to_list()))
    assert rows[f"{NS}__hits_total"].to_list() == direct["hits_total"].to_pylist()
    rep = validate(Dataset.open(root, DS))
    assert rep.ok, rep.errors


@pytest.mark.timeout(300)
def test_sigkill_after_a_committed_batch_then_rerun_scores_each_row_once(root):
    make_dataset(root, ROWS, seed=21)
    proc = start_run(root)
    wait_for_committed_batches(root, proc, 1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    committed = len(overlay_ids(root, "infer"))
    assert 0 < committed < ROWS, "the kill must land mid-run (after a commit, before the end)"
    assert committed % BATCH == 0  # whole batches only
    rep = validate(Dataset.open(root, DS))
    assert rep.ok, rep.errors
    r = run_cli("infer", "run", "--preset", "regulondb/pwm_scan", "--usr", DS, "--field", "sequence", "--device", "cpu",
                "--write-back", "--batch-size", "1000", "--json", env={"DNADESIGN_USR_ROOT": str(root)})
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["skipped"] == committed and res["scored"] == ROWS - committed
    check_every_row_scored_once(root)


@pytest.mark.timeout(300)
def test_sigterm_stops_between_batches_with_a_failed_event_then_rerun_completes(root):
    make_dataset(root, ROWS, seed=22)
    proc = start_run(root)
    wait_for_committed_batches(root, proc, 1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "stopped by a signal" in lines[0] and "Rerun the same command" in lines[0]
    health = [e for e in ev.read_events(root / DS / ".events.log") if e["action"] == "infer_health"]
    assert health[-1]["args"]["status"] == "failed" and "stopped by a signal" in health[-1]["args"]["error"]
    committed = len(overlay_ids(root, "infer"))
    assert health[-1]["metrics"]["scored"] == committed and 0 < committed < ROWS
    r = run_cli("infer", "run", "--preset", "regulondb/pwm_scan", "--usr", DS, "--field", "sequence", "--device", "cpu",
                "--write-back", env={"DNADESIGN_USR_ROOT": str(root)})
    assert r.returncode == 0, r.stderr
    check_every_row_scored_once(root)
