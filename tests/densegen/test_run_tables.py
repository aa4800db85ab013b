"""The run loop's analysis tables and early end of a library (real config, real CP-SAT, real sinks).

Faults (a solver whose next solution never comes, a table write that fails half-way) are injected
by wrapping the real functions; everything else is the real thing.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import replace as dataclasses_replace
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from dnadesign.densegen import library_loop, tables
from dnadesign.densegen.acceptance import Acceptor
from dnadesign.densegen.finalise import finish_session
from dnadesign.densegen.progress import RunProgress
from dnadesign.densegen.settings import RunOptions
from dnadesign.densegen.solver import solve as real_solve
from dnadesign.densegen.tables import RunTables, read_tables
from tests.densegen.run_fixtures import dense, dense_popen, make_workspace, usr_rows, wait_for
from tests.densegen.test_run_parts import _loop, _session, _usr_on
from tests.helpers_validate import assert_dataset_valid, assert_workspace_valid

ENDED_BY = {"exhausted", "solutions_per_library", "early_end", "run_time_limit", "quota_met", "stopped", "run_failed",
            "infeasible", "no_solution"}


def _run(cfg_path, **opts):
    s, _ = _session(cfg_path, RunOptions(progress="off", **opts))
    try:
        acceptor = Acceptor(state=s.state, outputs=s.outputs, settings=s.settings, diag=s.diag, health=s.health,
                            meta=s.meta)
        with RunProgress("off", s.state) as progress:
            _loop(s, acceptor, progress).run()
        outcome = finish_session(s, acceptor, None)
    finally:
        s.lock.release()
    return s, outcome


def _more(n: int):
    def edit(raw: dict) -> None:
        _usr_on(raw)
        raw["generation"]["plans"][0]["sequences"] = n
    return edit


def test_tables_hold_one_row_per_library_and_per_candidate_matching_the_stored_records(minimal, tmp_path):
    s, outcome = _run(minimal(_more(5)))
    assert outcome.status == "completed"
    t = read_tables(tmp_path)  # the workspace directory (its config.yaml says where the outputs are)
    assert (tmp_path / "outputs" / "tables" / "libraries" / "s0001.parquet").is_file()
    assert (tmp_path / "outputs" / "tables" / "attempts" / "s0001.parquet").is_file()
    lib, att = t.libraries, t.attempts
    ps = s.state.plans["p"]
    assert lib.height == ps.libraries and att.height == ps.solves
    assert set(lib["ended_by"].to_list()) <= ENDED_BY
    assert lib["accepted"].sum() == ps.accepted_session == 5
    assert lib["solutions"].sum() == att.height
    assert (lib["sampled_sites"] > 0).all() and lib["regulators"].list.len().min() >= 1
    ok = lib.filter(pl.col("solutions") > 0)
    assert (ok["time_to_first_s"] <= ok["total_s"]).all() and ok["best_sites"].min() >= 1
    accepted = att.filter(pl.col("outcome") == "accepted")
    stored = set(s.outputs.run_frame(["id"])["id"].to_list())
    assert set(accepted["record_id"].to_list()) == stored and accepted.height == len(stored)
    assert att.filter(pl.col("outcome") != "accepted")["record_id"].null_count() == att.height - accepted.height
    # attempts number the candidates of each library 0, 1, 2, ...
    for (_, idx), grp in att.group_by(["plan", "library_index"]):
        assert sorted(grp["attempt"].to_list()) == list(range(grp.height)), idx
    assert_dataset_valid(tmp_path / "outputs" / "usr_datasets", "densegen/t")
    # a second session writes its own files; the reader concatenates them
    s2, _ = _run(minimal(_more(7)))
    t2 = read_tables(s2.cfg)
    assert set(t2.attempts["session"].to_list()) == {1, 2} and 2 in set(t2.libraries["session"].to_list())
    assert t2.attempts.filter(pl.col("outcome") == "accepted").height == 7


def test_fresh_removes_the_tables_of_earlier_sessions(minimal, tmp_path):
    cfg = minimal(_more(2))
    _run(cfg)
    s, _ = _run(cfg, fresh=True)
    assert set(read_tables(tmp_path).libraries["session"].to_list()) == {1}
    assert s.state.session == 1
    assert_dataset_valid(tmp_path / "outputs" / "usr_datasets", "densegen/t")


def test_a_library_whose_next_solution_is_not_coming_ends_early_and_the_run_moves_on(minimal, tmp_path, monkeypatch):
    released: list[threading.Event] = []

    def stuck_after_first(problem, options, n_solutions):
        """Fault: the real solver's first solution, then a next one that never comes (until cancelled)."""
        it = real_solve(problem, options, n_solutions)
        yield next(it)
        assert options.cancel is not None
        options.cancel.wait()  # the run loop must cancel it; a bounded test timeout guards this
        released.append(options.cancel)

    monkeypatch.setattr(library_loop, "solve", stuck_after_first)
    s, outcome = _run(minimal(_more(3)))
    assert outcome.status == "completed" and s.outputs.plan_counts() == {"p": 3}
    lib = read_tables(tmp_path).libraries
    early = lib.filter(pl.col("ended_by") == "early_end")
    assert early.height >= 2  # every library but (perhaps) the last one, which met the quota
    assert early["reason"].str.contains("the first took").all()
    assert_dataset_valid(tmp_path / "outputs" / "usr_datasets", "densegen/t")
    assert (early["solutions"] == 1).all() and (early["accepted"] == 1).all()
    events = [e for e in s.diag.path.read_text().splitlines() if '"early_end"' in e]
    assert len(events) == early.height
    # every stuck solve was released through its cancel event (bounded wait for the daemon threads)
    for _ in range(200):
        if len(released) >= early.height:
            break
        threading.Event().wait(0.05)
    assert len(released) >= early.height


def test_next_solution_budget_grows_with_the_time_to_first():
    assert library_loop.next_solution_budget(0.0) == library_loop.EARLY_END_MIN_S
    assert library_loop.next_solution_budget(4.0) == pytest.approx(4.0 * library_loop.EARLY_END_FACTOR)


def test_cancel_ends_a_real_cp_sat_enumeration(minimal):
    s, _ = _session(minimal(_usr_on))
    try:
        plan = s.plans[0]
        from dnadesign.densegen.library import LibrarySampler

        sampler = LibrarySampler(plan, s.pools, s.settings.sampling, s.seeds.library(plan.name))
        problem = plan.build_problem(tuple(sampler.next()))
        cancel = threading.Event()
        options = s.cfg.solver_options(seed=1, workers=1)
        import dataclasses

        options = dataclasses.replace(options, mode="diverse", time_limit_s=60, run_time_limit_s=600, cancel=cancel)
        it = iter(real_solve(problem, options, 1000))
        first = next(it)
        assert first.n_sites >= 1
        cancel.set()
        rest: list = []
        done = threading.Event()

        def drain() -> None:
            rest.extend(it)
            done.set()

        threading.Thread(target=drain, daemon=True).start()
        assert done.wait(60), "the enumeration did not end after cancel"
        assert len(rest) <= 1  # at most the solution a stopped search had already found
    finally:
        s.lock.release()


def test_a_table_write_that_fails_half_way_leaves_the_previous_file(tmp_path, monkeypatch):
    t = RunTables(tmp_path / "outputs", run_id="r", session=1)
    t.add_attempt(plan="p", library_index=0, attempt=0, outcome="accepted", n_sites=3, record_id="x")
    t.write()
    before = pq.read_table(t.path("attempts")).num_rows
    t.add_attempt(plan="p", library_index=0, attempt=1, outcome="duplicate", n_sites=3)

    def torn(table, where, **kw):  # fault: the disk fills up half-way through the write
        Path(where).write_bytes(b"PAR1 torn")
        raise OSError("No space left on device")

    monkeypatch.setattr(tables.pq, "write_table", torn)
    with pytest.raises(OSError):
        t.write()
    assert pq.read_table(t.path("attempts")).num_rows == before == 1
    assert not [p for p in t.path("attempts").parent.iterdir() if p.name.startswith(".")]
    assert read_tables(tmp_path).attempts.height == 1


def test_background_filler_is_stored_apart_and_never_counted_as_a_binding_site(demo_workspace):
    def fast(raw: dict) -> None:
        raw["solver"].update(workers=1, time_limit_s=5, run_time_limit_s=10)
        raw["generation"]["plans"][0]["sequences"] = 4

    cfg = demo_workspace("demo_pwm", edit=fast)
    s, outcome = _run(cfg)
    assert outcome.status == "completed"
    ws = cfg.parent
    pools = s.pools
    filler_ids = {x.id for p in pools.values() if p.kind == "background" for x in p.sites}
    filler_regs = {x.regulator for p in pools.values() if p.kind == "background" for x in p.sites}
    assert filler_ids and filler_regs == {"background"}
    frame = s.outputs.run_frame()
    assert frame.height == 4
    n_filler = 0
    for row in frame.iter_rows(named=True):
        sites = [p for p in row["densegen__placements"] if not p["fixed"]]
        assert not {p["site_id"] for p in sites} & filler_ids
        assert not set(row["densegen__regulators"]) & filler_regs
        assert row["densegen__n_sites"] == len(sites)
        assert row["densegen__sites_per_100bp"] == pytest.approx(100.0 * len(sites) / row["length"])
        for p in row["densegen__filler"]:
            assert p["site_id"] in filler_ids and row["sequence"][p["offset"]:p["end"]] == p["sequence"]
        n_filler += len(row["densegen__filler"])
    assert n_filler > 0  # the demo does place filler: it is kept, apart
    lib = read_tables(ws).libraries
    assert not any(filler_regs & set(r) for r in lib["regulators"].to_list())
    att = read_tables(ws).attempts.filter(pl.col("outcome") == "accepted")
    assert sorted(att["n_sites"].to_list()) == sorted(frame["densegen__n_sites"].to_list())
    assert_dataset_valid(ws / "outputs" / "usr_datasets", "densegen/demo_pwm")


def test_the_reason_a_solver_gives_for_ending_is_recorded(minimal, tmp_path, monkeypatch):
    def says_why(problem, options, n_solutions):
        """The real solver's solutions, then the reason it stopped (a generator's return value)."""
        yield from real_solve(problem, options, 1)
        return "no further site set at or above the level"

    monkeypatch.setattr(library_loop, "solve", says_why)
    _run(minimal(_more(2)))
    lib = read_tables(tmp_path).libraries.filter(pl.col("ended_by") == "exhausted")
    assert lib.height >= 1
    assert set(lib["reason"].to_list()) == {"no further site set at or above the level"}

    def says_budget(problem, options, n_solutions):
        """A solver that names one of its standard reasons: the run budget was spent."""
        yield from real_solve(problem, options, 1)
        return "budget"

    monkeypatch.setattr(library_loop, "solve", says_budget)
    _run(minimal(_more(4)))
    lib = read_tables(tmp_path).libraries.filter(pl.col("session") == 2)
    assert set(lib["ended_by"].to_list()) <= {"run_time_limit", "quota_met"} and "run_time_limit" in set(lib["ended_by"])
    assert_dataset_valid(tmp_path / "outputs" / "usr_datasets", "densegen/t")


def test_a_run_killed_mid_session_leaves_readable_tables_and_the_resume_adds_its_own(tmp_path):
    ws = tmp_path / "ws"
    cfg = make_workspace(ws, quotas={"plain": 30, "sigma70": 30},
                         overrides={"runtime": {"checkpoint_every": 1, "max_stalled_libraries": 50}})
    proc = dense_popen("run", "--no-plot", "--progress", "off", "-c", str(cfg))
    first = ws / "outputs" / "tables" / "attempts" / "s0001.parquet"
    try:
        assert wait_for(first.exists, timeout=120), "the first session never wrote its tables"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    t = read_tables(ws)  # a complete earlier version of each file, never a torn one
    assert t.attempts.height >= 1 and set(t.attempts["session"].to_list()) == {1}
    stored = set(usr_rows(ws)["id"].to_list())
    # every accepted attempt in the (last written) table was committed before the table was written
    assert set(t.attempts.filter(pl.col("outcome") == "accepted")["record_id"].to_list()) <= stored
    r = dense("run", "--no-plot", "--progress", "off", "--max-seconds", "20", "-c", str(cfg))
    assert r.returncode in (0, 1), r.stderr
    t2 = read_tables(ws)
    assert set(t2.attempts["session"].to_list()) == {1, 2} and 2 in set(t2.libraries["session"].to_list())
    assert not list((ws / "outputs" / "tables" / "attempts").glob(".*"))  # no temp file left behind
    assert_workspace_valid(ws)


def test_a_first_solve_starved_of_cpu_switches_the_session_to_cpu_seconds(minimal):
    import time

    from dnadesign.densegen.acceptance import LibraryTask

    s, _ = _session(minimal(_usr_on))
    try:
        acceptor = Acceptor(state=s.state, outputs=s.outputs, settings=s.settings, diag=s.diag, health=s.health,
                            meta=s.meta)
        with RunProgress("off", s.state) as progress:
            loop = _loop(s, acceptor, progress)
            assert loop.options("p", 0).clock == "wall"
            plan = s.plans[0]
            sampler = loop.samplers["p"]
            library = tuple(sampler.next())
            # a library that ran 10 s of wall clock with (almost) no CPU: what an oversubscribed node does
            busy = LibraryTask(plan=plan, sampler=sampler, index=0, library=library, lhash="x",
                               problem=plan.build_problem(library), t0=time.monotonic() - 10.0,
                               cpu0=time.process_time())
            loop.finish_library(busy, "no solution: no solution found within 3 s (wall clock)", "no_solution")
            assert loop.clock == "cpu" and loop.options("p", 1).clock == "cpu"
            events = [e for e in s.diag.path.read_text().splitlines() if '"solver_clock"' in e]
            assert len(events) == 1 and "oversubscribed" in events[0]
            # a library that had its CPU and still found nothing does not switch anything
            loop.clock = None
            fed = dataclasses_replace(busy, t0=time.monotonic() - 1.0, cpu0=time.process_time() - 5.0)
            loop.finish_library(fed, "no solution: no solution found within 3 s (wall clock)", "no_solution")
            assert loop.clock is None
    finally:
        s.lock.release()
