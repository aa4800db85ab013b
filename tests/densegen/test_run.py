"""`dense run` end to end on real RegulonDB sites with real CP-SAT, through the console script."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from run_fixtures import dense, diagnostics, make_workspace, parquet_rows, usr_events, usr_rows

from tests.helpers_validate import assert_workspace_valid

pytestmark = pytest.mark.slow


def _check_rows_consistent(df: pl.DataFrame) -> None:
    """Every stored placement reads exactly as stored at its offset (+ strand), and ids are unique."""
    assert df["id"].n_unique() == df.height
    for row in df.iter_rows(named=True):
        seq = row["sequence"]
        assert len(seq) == row["length"]
        n_lib = 0
        for p in row["densegen__placements"]:
            assert seq[p["offset"]:p["end"]] == p["sequence"], (row["id"], p)
            assert p["strand"] in "+-"
            n_lib += not p["fixed"]
        assert n_lib == row["densegen__n_sites"]
        assert row["densegen__solver_status"] in ("optimal", "feasible")
        gc = (seq.count("G") + seq.count("C")) / len(seq)
        assert abs(gc - row["densegen__gc"]) < 1e-9


@pytest.fixture(scope="module")
def done_run(tmp_path_factory):
    """One completed run (both sinks) shared by the read-only checks below."""
    ws = tmp_path_factory.mktemp("run") / "ws"
    cfg = make_workspace(ws, quotas={"plain": 3, "sigma70": 3})
    r = dense("run", "--no-plot", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    return ws, cfg, r


def test_fresh_run_fills_quotas_in_both_sinks(done_run):
    ws, cfg, r = done_run
    u = usr_rows(ws)
    p = parquet_rows(ws)
    assert u.height == 6 and p.height == 6
    assert sorted(u["id"].to_list()) == sorted(p["id"].to_list())
    assert u.group_by("densegen__plan").len().sort("densegen__plan").rows() == [("plain", 3), ("sigma70", 3)]
    _check_rows_consistent(u)
    _check_rows_consistent(p)
    # sigma70 rows carry their fixed promoter elements
    sig = u.filter(pl.col("densegen__plan") == "sigma70")
    for pls in sig["densegen__placements"].to_list():
        fixed = [x for x in pls if x["fixed"]]
        assert {x["sequence"] for x in fixed} == {"TTGACA", "TATAAT"}
    # the consolidated export matches the parts
    export = pl.read_parquet(ws / "outputs" / "tables" / "records.parquet")
    assert sorted(export["id"].to_list()) == sorted(p["id"].to_list())
    assert export.columns == p.columns
    # the final summary table is on stdout
    assert "plain" in r.stdout and "sigma70" in r.stdout
    assert_workspace_valid(ws)


def test_postprocess_fasta_lists_the_committed_sequences(done_run):
    ws, _, _ = done_run
    fasta = (ws / "outputs" / "tables" / "records.fasta").read_text().splitlines()
    headers, seqs = fasta[0::2], fasta[1::2]
    u = usr_rows(ws)
    assert sorted(h.split()[0][1:] for h in headers) == sorted(u["id"].to_list())
    assert sorted(seqs) == sorted(u["sequence"].to_list())
    assert all(" plan=" in h and " sites=" in h for h in headers)


def test_placements_query_well_in_polars(done_run):
    ws, _, _ = done_run
    u = usr_rows(ws)
    flat = u.select("id", "densegen__placements").explode("densegen__placements").unnest("densegen__placements")
    assert {"site_id", "regulator", "offset", "end", "strand", "sequence", "fixed"} <= set(flat.columns)
    assert flat.filter(~pl.col("fixed"))["regulator"].n_unique() >= 2


def test_meta_files_and_diagnostics(done_run):
    ws, cfg, _ = done_run
    meta = ws / "outputs" / "meta"
    state = json.loads((meta / "run_state.json").read_text())
    manifest = json.loads((meta / "run_manifest.json").read_text())
    eff = json.loads((meta / "effective_config.json").read_text())
    assert state["status"] == "completed" and state["generated"] == 6
    assert manifest["status"] == "completed" and manifest["sessions"][-1]["exit_code"] == 0
    assert eff["quotas"] == {"plain": 3, "sigma70": 3}
    assert eff["config"]["run"]["id"] == "demo_sites"
    ev = diagnostics(ws)
    kinds = [e["event"] for e in ev]
    assert kinds[0] == "session_started" and kinds[-1] == "session_finished"
    assert kinds.count("accepted") == 6
    assert "checkpoint" in kinds and "library" in kinds


def test_usr_health_events(done_run):
    ws, _, _ = done_run
    ev = usr_events(ws)
    health = [e for e in ev if e["action"] == "densegen_health"]
    statuses = [e["args"]["status"] for e in health]
    assert statuses[0] == "started" and statuses[-1] == "completed"
    last = health[-1]["metrics"]
    assert last["generated"] == 6 and last["quota"] == 6 and last["percent"] == 100.0 and "plan" in last
    assert all(e["actor"]["tool"] == "densegen" for e in health)
    appends = [e for e in ev if e["action"] == "append"]
    assert sum(e["metrics"]["rows_added"] for e in appends) == 6
    # every append commits its overlay rows in the same event
    assert all(e["metrics"].get("overlay_rows_densegen") == e["metrics"]["rows_added"] for e in appends)


def test_inspect_run_json_and_events_path(done_run):
    ws, cfg, _ = done_run
    r = dense("inspect", "run", "--json", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["status"] == "completed"
    assert {p["name"]: p["generated"] for p in info["plans"]} == {"plain": 3, "sigma70": 3}
    r = dense("inspect", "run", "--usr-events-path", "-c", str(cfg))
    assert r.returncode == 0
    assert r.stdout == f"{ws.resolve() / 'outputs' / 'usr_datasets' / 'densegen' / 'demo_sites' / '.events.log'}\n"
    # -c defaults to ./config.yaml
    r2 = dense("inspect", "run", "--usr-events-path", cwd=ws)
    assert r2.returncode == 0 and r2.stdout == r.stdout


def test_resume_is_default_and_extend_quota(done_run, tmp_path):
    src, _, _ = done_run
    ws = tmp_path / "ws"
    shutil.copytree(src, ws)
    cfg = ws / "config.yaml"
    r = dense("run", "--no-plot", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert "no new sequences" in r.stderr
    assert usr_rows(ws).height == 6
    r = dense("run", "--resume", "--extend-quota", "3", "--no-plot", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    u = usr_rows(ws)
    assert u.height == 9 and u["id"].n_unique() == 9
    assert parquet_rows(ws).height == 9
    eff = json.loads((ws / "outputs" / "meta" / "effective_config.json").read_text())
    assert sum(eff["quotas"].values()) == 9
    # a later plain resume keeps the extended quotas and writes nothing new
    r = dense("run", "--no-plot", "-c", str(cfg))
    assert r.returncode == 0 and usr_rows(ws).height == 9
    statuses = [e["args"]["status"] for e in usr_events(ws) if e["action"] == "densegen_health"]
    assert "resumed" in statuses
    assert_workspace_valid(ws)


def test_fresh_starts_over(done_run, tmp_path):
    src, _, _ = done_run
    ws = tmp_path / "ws"
    shutil.copytree(src, ws)
    cfg = ws / "config.yaml"
    data = yaml.safe_load(cfg.read_text())
    for p in data["generation"]["plans"]:
        p["sequences"] = 1
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    r = dense("run", "--fresh", "--no-plot", "--workers", "1", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert usr_rows(ws).height == 2 and parquet_rows(ws).height == 2
    assert json.loads((ws / "outputs" / "meta" / "effective_config.json").read_text())["workers"] == 1
    assert json.loads((ws / "outputs" / "meta" / "run_manifest.json").read_text())["sessions"][0]["session"] == 1
    assert_workspace_valid(ws)


def test_flag_errors(tmp_path):
    cfg = make_workspace(tmp_path / "ws", quotas={"plain": 1, "sigma70": 1})
    r = dense("run", "--fresh", "--resume", "-c", str(cfg))
    assert r.returncode == 2
    r = dense("run", "--resume", "--no-plot", "-c", str(cfg))
    assert r.returncode == 1
    assert "no run to resume" in r.stderr and "Traceback" not in r.stderr
    r = dense("run", "--extend-quota", "-1", "-c", str(cfg))
    assert r.returncode == 2
    r = dense("run", "-c", str(tmp_path / "missing.yaml"))
    assert r.returncode == 1 and "not found" in r.stderr


def test_one_writer_per_workspace(tmp_path):
    from dnadesign.core.locks import FileLock

    cfg = make_workspace(tmp_path / "ws", quotas={"plain": 1, "sigma70": 1})
    lock = FileLock(tmp_path / "ws" / "outputs" / "meta" / "run.lock", timeout=0, what="workspace run lock")
    with lock:
        r = dense("run", "--no-plot", "-c", str(cfg))
    assert r.returncode == 1
    assert "held by pid" in r.stderr and "One `dense run` may write a workspace at a time" in r.stderr
    assert r.stderr.count("\n") <= 2


def test_unreachable_quota_is_one_clear_error_and_keeps_outputs(tmp_path):
    cfg = make_workspace(tmp_path / "ws", quotas={"plain": 2, "sigma70": 2},
                         overrides={"runtime": {"round_robin": False, "max_stalled_libraries": 2}})
    data = yaml.safe_load(cfg.read_text())
    data["generation"]["plans"][1]["regulator_constraints"]["min_count_by_regulator"] = {"LexA": 4}
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    r = dense("run", "--no-plot", "-c", str(cfg))
    assert r.returncode == 1
    err_lines = [ln for ln in r.stderr.splitlines() if "error" in ln]
    assert len(err_lines) == 1 and "sigma70" in err_lines[0] and "unreachable" in err_lines[0]
    assert "Traceback" not in r.stderr
    ws = tmp_path / "ws"
    u, p = usr_rows(ws), parquet_rows(ws)
    assert u.height == 2 and p.height == 2  # the plain plan's rows are kept, readable and in sync
    _check_rows_consistent(u)
    health = [e for e in usr_events(ws) if e["action"] == "densegen_health"]
    assert health[-1]["args"]["status"] == "failed" and "unreachable" in health[-1]["args"]["reason"]
    state = json.loads((ws / "outputs" / "meta" / "run_state.json").read_text())
    assert state["status"] == "failed"
    assert_workspace_valid(ws)


def test_time_budget_stops_cleanly(tmp_path):
    ws = tmp_path / "ws"
    cfg = make_workspace(ws, quotas={"plain": 500, "sigma70": 500})
    r = dense("run", "--no-plot", "--max-seconds", "4", "-c", str(cfg))
    assert r.returncode == 1
    assert "runtime budget of 4 s reached" in r.stderr and "`dense run` resumes" in r.stderr
    accepted = sum(1 for e in diagnostics(ws) if e["event"] == "accepted")
    assert usr_rows(ws).height == accepted == parquet_rows(ws).height
    state = json.loads((ws / "outputs" / "meta" / "run_state.json").read_text())
    assert state["status"] == "incomplete" and state["generated"] == accepted
    assert_workspace_valid(ws)


def test_parallel_libraries_fill_quotas_exactly(tmp_path):
    ws = tmp_path / "ws"
    cfg = make_workspace(ws, quotas={"plain": 3, "sigma70": 2}, overrides={"solver": {"workers": 2}})
    r = dense("run", "--no-plot", "--parallel-libraries", "2", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    u, p = usr_rows(ws), parquet_rows(ws)
    assert dict(u.group_by("densegen__plan").len().rows()) == {"plain": 3, "sigma70": 2}  # no over-production
    assert sorted(u["id"].to_list()) == sorted(p["id"].to_list())
    _check_rows_consistent(u)
    libs = [e for e in diagnostics(ws) if e["event"] == "library"]
    done = [e for e in diagnostics(ws) if e["event"] == "library_done"]
    assert len(libs) == len(done)  # every library started was accounted for
    assert_workspace_valid(ws)
