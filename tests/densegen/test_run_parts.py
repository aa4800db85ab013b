"""The parts of `dense run`, each built and driven alone (real config, real CP-SAT, real sinks).

session (lock, validation, outputs, quotas) -> library_loop (k libraries at once) -> acceptance
(checks, pending rows, checkpoints) -> finalise (outcome, records).
"""

from __future__ import annotations

import sys
from datetime import UTC
from pathlib import Path

import pytest

from dnadesign.core.events import Actor
from dnadesign.densegen.acceptance import Acceptor
from dnadesign.densegen.config import load_config
from dnadesign.densegen.finalise import decide_outcome, finish_session
from dnadesign.densegen.library import LibrarySampler
from dnadesign.densegen.library_loop import LibraryLoop, QuotaUnreachableError, StallGuard
from dnadesign.densegen.progress import RunProgress
from dnadesign.densegen.session import Session, WorkspaceLock, effective_plans, open_session
from dnadesign.densegen.settings import RunOptions, RunSettings
from dnadesign.densegen.shard import parse_shard
from dnadesign.densegen.signals import StopFlag
from dnadesign.densegen.state import MetaDir, PlanState, RunState
from dnadesign.densegen.telemetry import Diagnostics
from tests.helpers_validate import assert_dataset_valid

sys.path.insert(0, str(Path(__file__).parent))


def _usr_on(raw: dict) -> None:
    raw["output"] = {"targets": ["usr", "parquet"]}
    raw["solver"] = {"time_limit_s": 3, "workers": 1, "solutions_per_library": 3}
    raw["runtime"] = {"checkpoint_every": 2, "max_stalled_libraries": 8}


def _session(cfg_path, options: RunOptions | None = None) -> tuple[Session, StopFlag]:
    cfg = load_config(cfg_path)
    options = options or RunOptions(progress="off")
    settings = RunSettings.derive(cfg, options)
    stop = StopFlag()
    lock = WorkspaceLock.acquire(MetaDir(cfg.outputs_dir / "meta"), settings)
    s = open_session(cfg, settings, options, stop, Actor.current("densegen", run_id=cfg.run_id), lock, None)
    return s, stop


def _loop(s: Session, acceptor: Acceptor, progress: RunProgress) -> LibraryLoop:
    samplers = {p.name: LibrarySampler(p, s.pools, s.settings.sampling, s.seeds.library(p.name)) for p in s.plans}
    return LibraryLoop(state=s.state, plans={p.name: p for p in s.plans}, samplers=samplers, acceptor=acceptor,
                       settings=s.settings, seeds=s.seeds, stop=s.stop, diag=s.diag, progress=progress,
                       base_options=lambda seed, workers: s.cfg.solver_options(seed=seed, workers=workers))


@pytest.mark.parametrize("k", [1, 2], ids=["serial", "two-at-once"])
def test_library_loop_fills_the_quota_exactly_then_finalise_records_it(minimal, k):
    s, _ = _session(minimal(_usr_on), RunOptions(progress="off", parallel_libraries=k, workers=2))
    try:
        acceptor = Acceptor(state=s.state, outputs=s.outputs, settings=s.settings, diag=s.diag, health=s.health, meta=s.meta)
        with RunProgress("off", s.state) as progress:
            _loop(s, acceptor, progress).run()
        assert s.state.plans["p"].generated == 3 and len(acceptor.pending) <= 3
        outcome = finish_session(s, acceptor, None)
    finally:
        s.lock.release()
    assert (outcome.status, outcome.exit_code) == ("completed", 0)
    assert s.outputs.plan_counts() == {"p": 3}
    assert s.meta.load_state().status == "completed" and s.meta.load_manifest()["sessions"][0]["committed"] == 3
    assert_dataset_valid(s.cfg.outputs_dir / "usr_datasets", "densegen/t")


def test_a_stop_ends_the_loop_with_every_accepted_row_committed(minimal):
    s, stop = _session(minimal(lambda raw: (_usr_on(raw), raw["generation"]["plans"][0].update(sequences=40))))
    try:
        acceptor = Acceptor(state=s.state, outputs=s.outputs, settings=s.settings, diag=s.diag, health=s.health, meta=s.meta)
        orig = acceptor.consider

        def consider(task, sol):  # fault injection: a stop request right after the first acceptance
            ok = orig(task, sol)
            if ok:
                stop.request("SIGTERM", 15)
            return ok

        acceptor.consider = consider  # type: ignore[method-assign]
        with RunProgress("off", s.state) as progress:
            _loop(s, acceptor, progress).run()
        outcome = finish_session(s, acceptor, None)
    finally:
        s.lock.release()
    assert (outcome.status, outcome.exit_code) == ("interrupted", 143)
    assert s.outputs.plan_counts() == {"p": s.state.plans["p"].accepted_session} != {}
    assert s.meta.load_state().status == "interrupted"


def test_acceptor_commits_smaller_batches_near_the_end_of_an_array(minimal):
    s, _ = _session(minimal(_usr_on), RunOptions(progress="off", shard=parse_shard("1/4")))
    try:
        acceptor = Acceptor(state=s.state, outputs=s.outputs, settings=s.settings, diag=s.diag, health=s.health, meta=s.meta)
        assert acceptor.threshold() == 1  # 3 rows left for 4 tasks
        s.state.plans["p"].quota = 400
        assert acceptor.threshold() == s.settings.checkpoint_every  # far from the end: the configured batch
    finally:
        s.lock.release()
        s.diag.close()


def test_stall_guard_stops_a_plan_that_makes_no_progress(tmp_path, minimal):
    settings = RunSettings.derive(load_config(minimal(_usr_on)), RunOptions())
    state = RunState(run_id="t", config_path="", config_sha256="", session=1)
    state.plans["p"] = PlanState("p", quota=5)
    diag = Diagnostics(tmp_path / "events.jsonl", "t", 1)
    guard = StallGuard(state, settings, diag)
    for _ in range(settings.max_stalled_libraries - 1):
        guard.after_library("p", 0)
    guard.after_library("p", 1)  # progress resets the count
    for _ in range(settings.max_stalled_libraries - 1):
        guard.after_library("p", 0)
    with pytest.raises(QuotaUnreachableError, match="plan p made no progress"):
        guard.after_library("p", 0)
    diag.close()


def test_outcomes():
    state = RunState(run_id="r", config_path="", config_sha256="", session=1)
    state.plans["p"] = PlanState("p", quota=2, generated=2, accepted_session=2)
    stop = StopFlag()
    assert decide_outcome(stop, state, None).status == "completed"
    state.plans["p"].accepted_session = 0
    assert "add more with --extend-quota" in decide_outcome(stop, state, None).message
    state.task = {"task": 3}
    assert "no work left" in decide_outcome(stop, state, None).message
    assert decide_outcome(stop, state, ValueError("x")).status == "failed"
    stop.request("runtime budget of 5 s reached")
    assert (decide_outcome(stop, state, None).status, decide_outcome(stop, state, None).exit_code) == ("incomplete", 1)
    sig = StopFlag()
    sig.request("SIGUSR2", 12)
    assert (decide_outcome(sig, state, None).status, decide_outcome(sig, state, None).exit_code) == ("interrupted", 140)


def test_effective_quotas_keep_earlier_extensions_and_add_exactly_n(minimal):
    from dnadesign.densegen.plans import resolve_plans

    plans = resolve_plans(load_config(minimal()))
    assert [p.quota for p in effective_plans(plans, {"p": 7}, 0, {})] == [7]
    assert [p.quota for p in effective_plans(plans, {"p": 7}, 5, {"p": 7})] == [12]
    assert [p.quota for p in effective_plans(plans, {}, 0, {})] == [3]


def test_repeated_signals_within_the_window_are_one_request():
    import os
    import signal

    from run_fixtures import wait_for

    from dnadesign.densegen.signals import SignalGuard

    stop = StopFlag()
    # polling (not Event.wait): a thread that predates the guard may take the signal, and then the handler
    # runs in the main thread only when it runs Python code again
    with SignalGuard(stop, repeat_window_s=30):
        os.kill(os.getpid(), signal.SIGTERM)
        assert wait_for(lambda: stop.requested, timeout=10)
        os.kill(os.getpid(), signal.SIGTERM)  # a launcher forwarding the same signal: not an impatient repeat
        os.kill(os.getpid(), signal.SIGUSR2)
        assert wait_for(lambda: stop.repeats == 2, timeout=10)  # recorded as repeats, not acted on: still alive
    assert stop.signum == signal.SIGTERM and stop.exit_code == 143


def test_a_row_another_writer_stored_first_does_not_count_towards_the_quota(minimal):
    from datetime import datetime

    from dnadesign.densegen.outputs import RunOutputs
    from dnadesign.densegen.sinks import Accepted, build_table
    from dnadesign.densegen.solver import Placement

    s, _ = _session(minimal(_usr_on))
    try:
        acceptor = Acceptor(state=s.state, outputs=s.outputs, settings=s.settings, diag=s.diag, health=s.health, meta=s.meta)
        seqs = ["ACGTTGCAAGGCTTACGATCGATCGGATCCATGCAAGCTTGCATGCCTGCAGGTCGACTC"[:60], "T" * 20 + "ACGTACGTGGCC" * 3 + "A" * 4]
        rows = [Accepted(plan="p", sequence=q, placements=(Placement("s", "LexA", 0, "+", q[:6]),), objective=1.0, bound=1.0,
                         optimal=True, solve_time_s=0.1, library_hash="h", library_index=0, library_size=4,
                         accepted_at=datetime.now(UTC)) for q in seqs]
        acceptor.pending.extend(rows)
        s.state.plans["p"].generated = 2
        other = RunOutputs(s.cfg, Actor.current("densegen", run_id="t"))  # another task commits one of them first
        assert other.commit(build_table(rows[:1], run_id="t"), {"p": 3}).added == {"p": 1}
        res = acceptor.flush()
        assert res is not None and res.added == {"p": 1} and res.duplicates == 1
        assert s.state.plans["p"].generated == 2 and not s.state.plans["p"].done  # 2 of 3: the loop goes on
        assert s.state.plans["p"].duplicates == 1
    finally:
        s.lock.release()
        s.diag.close()
    assert_dataset_valid(s.cfg.outputs_dir / "usr_datasets", "densegen/t")
