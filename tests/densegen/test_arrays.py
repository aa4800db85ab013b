"""Array mode in-process and with local processes: shards, seeds, commit-time quotas, locks, traces.

The scheduler side (real Slurm and SGE arrays through the shipped templates) is in
tests/e2e/test_dense_arrays.py; here the same machinery runs without a scheduler (`--shard K/N`).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from run_fixtures import clean_env, dense, dense_bin, diagnostics, make_workspace, usr_events, usr_rows

from dnadesign.core.errors import LockTimeoutError, UsageError
from dnadesign.core.events import Actor
from dnadesign.densegen.config import load_config
from dnadesign.densegen.outputs import CommitResult, RunOutputs, trim_to_quota
from dnadesign.densegen.session import WorkspaceLock
from dnadesign.densegen.settings import RunOptions, RunSettings, SeedStream
from dnadesign.densegen.shard import Shard, detect_shard, parse_shard, resolve_shard
from dnadesign.densegen.sinks import Accepted, ParquetSink, UsrSink, build_table
from dnadesign.densegen.solver import Placement
from dnadesign.densegen.state import MetaDir
from tests.helpers_validate import assert_dataset_valid, assert_workspace_valid

# -- shards --------------------------------------------------------------------------------------

def test_shard_from_the_command_line_and_the_scheduler():
    assert parse_shard("3/16") == Shard(task=3, count=16, index=3, source="flag")
    for bad in ("0/4", "5/4", "3", "a/b", "3/0"):
        with pytest.raises(UsageError):
            parse_shard(bad)
    slurm = {"SLURM_JOB_ID": "45", "SLURM_ARRAY_JOB_ID": "41", "SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "5",
             "SLURM_ARRAY_TASK_MAX": "20", "SLURM_ARRAY_TASK_STEP": "1", "SLURM_ARRAY_TASK_COUNT": "16"}
    assert detect_shard(slurm) == Shard(task=7, count=16, index=3, source="slurm")
    sge = {"JOB_ID": "9", "SGE_TASK_ID": "5", "SGE_TASK_FIRST": "1", "SGE_TASK_LAST": "31", "SGE_TASK_STEPSIZE": "2",
           "SGE_ROOT": "/x"}
    assert detect_shard(sge) == Shard(task=5, count=16, index=3, source="sge")
    assert detect_shard({"JOB_ID": "9", "SGE_TASK_ID": "undefined", "SGE_ROOT": "/x"}) is None  # not an array
    assert detect_shard({"SLURM_JOB_ID": "3"}) is None
    assert detect_shard({}) is None
    assert resolve_shard("none", slurm) is None and resolve_shard(None, slurm) == detect_shard(slurm)
    assert Shard(3, 16, 3, "flag").label == "task-0003"


def test_seed_streams_are_reproducible_per_task_and_differ_across_tasks_and_sessions():
    a, b = SeedStream(1, 1, "task-0001"), SeedStream(1, 1, "task-0002")
    assert a.library("p") == SeedStream(1, 1, "task-0001").library("p")
    assert len({a.library("p"), b.library("p"), SeedStream(1, 2, "task-0001").library("p"), SeedStream(1, 1).library("p")}) == 4
    assert a.solve("p", 0) != a.solve("p", 1) != b.solve("p", 1)


def test_settings_are_typed_and_take_the_configs_defaults(minimal):
    cfg = load_config(minimal())
    s = RunSettings.derive(cfg, RunOptions())
    m = cfg.model
    assert (s.seed, s.checkpoint_every, s.solutions_per_library) == (m.runtime.seed, m.runtime.checkpoint_every,
                                                                     m.solver.solutions_per_library) == (1, 50, 5)
    assert s.health_interval_s == 60.0 and s.strategy == "optimal" and s.log_level == "INFO" and s.shard is None
    s2 = RunSettings.derive(cfg, RunOptions(workers=3, max_seconds=9, progress="off", shard=parse_shard("2/4")))
    assert (s2.workers, s2.max_seconds, s2.progress, s2.shard.task) == (3, 9, "off", 2)


# -- commit-time quotas ------------------------------------------------------------------------------

def _row(seq: str, plan: str = "p") -> Accepted:
    return Accepted(plan=plan, sequence=seq, placements=(Placement("s1", "LexA", 0, "+", seq[:6]),), objective=1.0,
                    bound=1.0, optimal=True, solve_time_s=0.01, library_hash="h", library_index=0, library_size=4,
                    accepted_at=datetime.now(UTC))


def _seqs(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice("ACGT") for _ in range(30)) for _ in range(n)]


def test_trim_to_quota_keeps_the_first_rows_of_each_plan():
    t = build_table([_row(s, p) for s, p in zip(_seqs(5, 1), "ppqpq", strict=True)], run_id="r")
    kept, dropped = trim_to_quota(t, {"p": 2, "q": 5}, {"p": 1, "q": 4})
    assert kept.column("densegen__plan").to_pylist() == ["p", "q"] and dropped == {"p": 2, "q": 1}
    kept, dropped = trim_to_quota(t, {"p": 9, "q": 9}, {})
    assert kept.num_rows == 5 and dropped == {}


def _outputs(root: Path, parquet: Path | None, usr: bool = True) -> RunOutputs:
    outs = RunOutputs.__new__(RunOutputs)
    outs.run_id = "r"
    outs.usr = UsrSink(root, "densegen/shared", Actor.current("densegen", run_id="r")) if usr else None
    outs.parquet = ParquetSink(parquet) if parquet else None
    return outs


def _writer(root: str, parquet: str | None, usr: bool, seed: int, quota: int, out: mp.Queue) -> None:
    """One of several processes committing batches of new rows against one quota."""
    outs = _outputs(Path(root), Path(parquet) if parquet else None, usr)
    added = 0
    for k in range(6):
        res: CommitResult = outs.commit(build_table([_row(s) for s in _seqs(3, seed * 100 + k)], run_id="r"), {"p": quota})
        added += res.rows
    out.put(added)


@pytest.mark.parametrize("usr", [True, False], ids=["usr+parquet", "parquet only"])
def test_concurrent_writers_never_overshoot_the_quota(tmp_path, usr):
    """6 processes x 6 batches x 3 rows race for a quota of 20: exactly 20 rows are committed."""
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    parquet = tmp_path / "records.parquet"
    procs = [ctx.Process(target=_writer, args=(str(tmp_path / "usr"), str(parquet), usr, seed, 20, out)) for seed in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs)
    assert sum(out.get(timeout=5) for _ in procs) == 20
    outs = _outputs(tmp_path / "usr", parquet, usr)
    assert outs.primary.plan_counts("r") == {"p": 20}
    assert ParquetSink(parquet).frame().height == 20 and ParquetSink(parquet).frame()["id"].n_unique() == 20
    if usr:
        assert outs.usr is not None and outs.usr.frame().height == 20
        assert_dataset_valid(tmp_path / "usr", "densegen/shared")


def test_commit_reports_duplicates_and_over_quota(tmp_path):
    outs = _outputs(tmp_path / "usr", tmp_path / "records.parquet")
    seqs = _seqs(6, 7)
    res = outs.commit(build_table([_row(s) for s in seqs[:4]], run_id="r"), {"p": 5})
    assert (res.added, res.committed) == ({"p": 4}, {"p": 4})
    res = outs.commit(build_table([_row(s) for s in seqs[2:6]], run_id="r"), {"p": 5})
    assert res.duplicates_by_plan == {"p": 2} and res.added == {"p": 1} and res.over_quota == {"p": 1}
    assert res.committed == {"p": 5}
    assert_dataset_valid(tmp_path / "usr", "densegen/shared")


# -- locks -------------------------------------------------------------------------------------------

def test_workspace_lock_single_run_excludes_array_tasks_and_tasks_get_their_own_slots(tmp_path, minimal):
    cfg = load_config(minimal())
    meta = MetaDir(tmp_path / "meta")
    single = RunSettings.derive(cfg, RunOptions())
    task3 = RunSettings.derive(cfg, RunOptions(shard=parse_shard("3/4")))
    a = WorkspaceLock.acquire(meta, task3)
    b = _acquire_in_thread(meta, task3)  # the same task id twice: a second slot, not a failure
    assert (a.label, b.label) != (None, None) and a.label == "task-0003" and b.label != a.label
    with pytest.raises(LockTimeoutError):
        _acquire_in_thread(meta, single)
    a.release()
    b.release()
    s = _acquire_in_thread(meta, single)
    assert s.own is s.meta and s.label is None
    s.release()


def _acquire_in_thread(meta: MetaDir, settings: RunSettings) -> WorkspaceLock:
    """Locks are per thread (re-entrant within one), so another holder is another thread."""
    import threading

    box: list = []

    def go() -> None:
        try:
            box.append(WorkspaceLock.acquire(meta, settings))
        except LockTimeoutError as exc:
            box.append(exc)

    t = threading.Thread(target=go)
    t.start()
    t.join()
    if isinstance(box[0], Exception):
        raise box[0]
    return box[0]


# -- local arrays (no scheduler) ---------------------------------------------------------------------

@pytest.mark.slow
def test_two_local_shards_fill_one_config_exactly_once(tmp_path):
    ws = tmp_path / "ws"
    cfg = make_workspace(ws, quotas={"plain": 5, "sigma70": 5})
    procs = [subprocess.Popen([dense_bin(), "run", "--no-plot", "--shard", f"{k}/2", "-c", str(cfg)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=clean_env()) for k in (1, 2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    rows = usr_rows(ws)
    assert rows.height == 10 and rows["id"].n_unique() == 10
    assert dict(rows.group_by("densegen__plan").len().rows()) == {"plain": 5, "sigma70": 5}
    tasks = sorted((ws / "outputs" / "meta" / "tasks").iterdir())
    assert [t.name for t in tasks] == ["task-0001", "task-0002"]
    first_libs = []
    for t in tasks:
        libs = [json.loads(line) for line in (t / "events.jsonl").read_text().splitlines() if '"event":"library"' in line]
        first_libs.append(libs[0]["hash"])
    assert first_libs[0] != first_libs[1]  # each task draws from its own seed stream
    # ... and the stream is reproducible: task 2 of a fresh copy of the run draws the same first library
    ws2 = tmp_path / "again"
    cfg2 = make_workspace(ws2, quotas={"plain": 1, "sigma70": 1})
    assert dense("run", "--no-plot", "--shard", "2/2", "-c", str(cfg2)).returncode == 0
    libs2 = [json.loads(line) for line in (ws2 / "outputs" / "meta" / "tasks" / "task-0002" / "events.jsonl").read_text()
             .splitlines() if '"event":"library"' in line]
    assert libs2[0]["hash"] == first_libs[1]
    info = json.loads(dense("inspect", "run", "--json", "-c", str(cfg)).stdout)
    assert [t["task"] for t in info["tasks"]] == ["1", "2"] and sum(t["rows"] for t in info["tasks"]) == 10
    assert info["status"].startswith("completed")
    # a third task started later finds no work left, and says so
    r = dense("run", "--no-plot", "--shard", "3/3", "-c", str(cfg))
    assert r.returncode == 0 and "no work left" in r.stderr
    assert usr_rows(ws).height == 10
    assert_workspace_valid(ws)


def test_array_tasks_refuse_fresh_and_extend_quota(tmp_path):
    cfg = make_workspace(tmp_path / "ws", quotas={"plain": 1, "sigma70": 1})
    for flags in (["--fresh"], ["--extend-quota", "4"]):
        r = dense("run", "--no-plot", "--shard", "1/2", *flags, "-c", str(cfg))
        assert r.returncode == 2 and r.stderr.count("error") == 1 and "array task" in r.stderr and "Traceback" not in r.stderr
    r = dense("run", "--shard", "5/2", "-c", str(cfg))
    assert r.returncode == 2 and "--shard" in r.stderr


def test_a_task_with_a_bad_config_leaves_a_trace(tmp_path):
    ws = tmp_path / "ws"
    cfg = make_workspace(ws, quotas={"plain": 1, "sigma70": 1})
    sge = clean_env(JOB_ID="12", SGE_TASK_ID="2", SGE_TASK_FIRST="1", SGE_TASK_LAST="4", SGE_TASK_STEPSIZE="1",
                    SGE_ROOT="/opt/sge", NSLOTS="1")
    r = dense("run", "--no-plot", "-c", str(cfg), env=sge)
    assert r.returncode == 0, r.stderr
    cfg.write_text(cfg.read_text().replace("schema_version: 1", "schema_version: 1\nbogus_key: 1"))
    r = dense("run", "--no-plot", "-c", str(cfg), env=sge)
    assert r.returncode == 1 and "bogus_key" in r.stderr
    jobs = [(e["action"], e["job"]["state"], (e.get("args") or {}).get("reason", "")) for e in usr_events(ws)
            if e["action"].startswith("job_")]
    assert jobs[-2][:2] == ("job_started", "running") and jobs[-1][:2] == ("job_finished", "failed")
    assert "bogus_key" in jobs[-1][2]
    assert_workspace_valid(ws)


def test_logging_level_is_honoured(tmp_path):
    cfg = make_workspace(tmp_path / "ws", quotas={"plain": 1, "sigma70": 1}, overrides={"logging": {"level": "WARNING"}})
    r = dense("run", "--no-plot", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert "warning:" in r.stderr and "dense: starting run" not in r.stderr
    cfg.write_text(cfg.read_text().replace("level: WARNING", "level: ERROR"))
    r = dense("run", "--no-plot", "--extend-quota", "1", "-c", str(cfg))
    assert r.returncode == 0 and "warning:" not in r.stderr and "dense: resuming" not in r.stderr
    assert_workspace_valid(tmp_path / "ws")


def test_diagnostics_of_tasks_feed_the_plots(tmp_path):
    from dnadesign.densegen.plots.data import run_diagnostics

    ws = tmp_path / "ws"
    cfg = make_workspace(ws, quotas={"plain": 1, "sigma70": 1})
    assert dense("run", "--no-plot", "--shard", "1/1", "-c", str(cfg)).returncode == 0
    events = run_diagnostics(load_config(cfg))
    assert [e["event"] for e in events if e["event"].startswith("session")] == ["session_started", "session_finished"]
    assert diagnostics(ws) == []  # nothing at the workspace level in array mode
