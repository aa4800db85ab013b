"""Array mode on real Slurm and SGE: N tasks, ONE config, each quota filled exactly once.

Every job goes through the shipped templates (`jobs/densegen-array.sh`, `jobs/densegen-cpu.sh`) and
`uv run`, as users submit them. Waits are on readiness signals (a job's own exit, an event or a
diagnostics line appearing), never on fixed sleeps. Every dataset ends with `usr validate` OK.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import polars as pl
import pytest
import yaml

from dnadesign.core.events import read_events
from tests.conftest import REPO, require_component, run_cli
from tests.densegen.run_fixtures import clean_env, diagnostics, make_workspace, usr_rows, wait_for
from tests.helpers_validate import assert_dataset_valid, assert_workspace_valid

pytestmark = [pytest.mark.e2e, pytest.mark.scheduler, pytest.mark.slow]
JOBS = REPO / "jobs"
DATASET = "densegen/demo_sites"


def _uv_env(**extra: str) -> dict:
    import shutil

    require_component(shutil.which("uv") is not None, "uv is not on PATH (the job scripts call `uv run`)")
    return clean_env(DNADESIGN_REPO=str(REPO), UV_FROZEN="1", **extra)


def _events(ws: Path, dataset: str = DATASET) -> list[dict]:
    return read_events(ws / "outputs" / "usr_datasets" / dataset / ".events.log")


def _task_diagnostics(ws: Path) -> list[dict]:
    out: list[dict] = []
    tasks = ws / "outputs" / "meta" / "tasks"
    for d in sorted(tasks.iterdir()) if tasks.exists() else []:
        path = d / "events.jsonl"
        if path.exists():
            out += [json.loads(line) for line in path.read_text().splitlines() if line.strip().endswith("}")]
    return out


def _accepted_by_task(ws: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in _task_diagnostics(ws):
        if e.get("event") == "accepted":
            counts[e["task"]] = counts.get(e["task"], 0) + 1
    return counts


def _logs(path: Path, pattern: str) -> str:
    return "".join(f"== {p.name}\n{p.read_text()}" for p in sorted(path.glob(pattern)))


def _check_array(ws: Path, quotas: dict[str, int], tasks: list[str], scheduler: str, dataset: str = DATASET) -> None:
    """rows == quota per plan, unique ids, one job_started and one completed job_finished per task, validate OK."""
    rows = usr_rows(ws, dataset)
    assert rows.height == sum(quotas.values()) and rows["id"].n_unique() == rows.height
    per_plan = dict(rows.group_by("densegen__plan").len().rows())
    assert per_plan == quotas, per_plan
    events = _events(ws, dataset)
    started = [e["job"] for e in events if e["action"] == "job_started"]
    finished = [e["job"] for e in events if e["action"] == "job_finished"]
    assert sorted(j["task_id"] for j in started) == sorted(tasks)
    assert sorted(j["task_id"] for j in finished) == sorted(tasks)
    assert all(j["scheduler"] == scheduler for j in started + finished)
    assert len({j["job_id"] for j in started}) == 1  # one array
    assert all(j["state"] == "completed" and j["exit_code"] == 0 for j in finished), finished
    info = json.loads(run_cli("dense", "inspect", "run", "--json", "-c", str(ws / "config.yaml"), env=clean_env()).stdout)
    assert {p["name"]: (p["generated"], p["quota"]) for p in info["plans"]} == {k: (v, v) for k, v in quotas.items()}
    assert info["over_quota"] == {}
    assert sorted(t["task"] for t in info["tasks"]) == sorted(tasks) and {t["state"] for t in info["tasks"]} == {"completed"}
    assert sum(t["rows"] for t in info["tasks"]) == rows.height  # what each task committed adds up
    assert_dataset_valid(ws / "outputs" / "usr_datasets", dataset)


# -- Slurm ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [4, 16])
def test_slurm_array_fills_one_config_exactly_once(slurm, tmp_path, n):
    ws = tmp_path / "ws"
    quotas = {"plain": 6, "sigma70": 6} if n == 4 else {"plain": 12, "sigma70": 12}
    cfg = make_workspace(ws, quotas=quotas)
    res = subprocess.run(["sbatch", "--wait", f"--array=1-{n}", "--cpus-per-task=1", "-o", str(tmp_path / "slurm-%A_%a.out"),
                          str(JOBS / "densegen-array.sh")], capture_output=True, text=True, timeout=1800,
                         env=_uv_env(DENSEGEN_CONFIG=str(cfg)), cwd=tmp_path)
    assert res.returncode == 0, res.stderr + _logs(tmp_path, "slurm-*.out")  # --wait: the worst task's exit code
    _check_array(ws, quotas, [str(t) for t in range(1, n + 1)], "slurm")


def test_slurm_two_workspaces_sharing_one_dataset_never_overshoot(slurm, tmp_path):
    shared = tmp_path / "shared_usr"
    quotas = {"plain": 5, "sigma70": 5}
    configs = []
    for k, seed in ((1, 11), (2, 22)):
        configs.append(make_workspace(tmp_path / f"ws{k}", quotas=quotas, overrides={
            "runtime": {"seed": seed}, "output": {"usr": {"root": str(shared), "dataset": "densegen/shared"}}}))
    procs = [subprocess.Popen(["sbatch", "--wait", "--cpus-per-task=1", "-o", str(tmp_path / f"slurm-ws{k}-%j.out"),
                               str(JOBS / "densegen-cpu.sh")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_uv_env(DENSEGEN_CONFIG=str(c)), cwd=tmp_path) for k, c in enumerate(configs, 1)]
    for p in procs:
        _, err = p.communicate(timeout=1200)
        assert p.returncode == 0, err + _logs(tmp_path, "slurm-*.out")
    from dnadesign.usr.store import Dataset

    rows = Dataset(shared, "densegen/shared").scan().collect()
    assert rows.height == 10 and rows["id"].n_unique() == 10  # the shared quota, never more
    assert dict(rows.group_by("densegen__plan").len().rows()) == quotas
    finished = [e["job"] for e in read_events(shared / "densegen" / "shared" / ".events.log") if e["action"] == "job_finished"]
    assert len(finished) == 2 and all(j["state"] == "completed" for j in finished)
    assert_dataset_valid(shared, "densegen/shared")


def test_slurm_scancel_of_an_array_through_the_template_then_resubmit(slurm, tmp_path):
    ws = tmp_path / "ws"
    # Large enough that the cancel lands mid-run, before the tasks (which share the quota) fill it,
    # on an idle machine too: 40 each was before the small-library fast path made `dense run`
    # about 4x faster per sequence; 160 each was filled before the cancel on a loaded one.
    quotas = {"plain": 600, "sigma70": 600}
    cfg = make_workspace(ws, quotas=quotas, overrides={"runtime": {"checkpoint_every": 100, "max_seconds": 900}})
    env = _uv_env(DENSEGEN_CONFIG=str(cfg))
    sub = subprocess.run(["sbatch", "--parsable", "--array=1-2", "--cpus-per-task=1", "-o", str(tmp_path / "slurm-%A_%a.out"),
                          str(JOBS / "densegen-array.sh")], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert sub.returncode == 0, sub.stderr
    job_id = sub.stdout.strip().split(";")[0]
    try:
        assert wait_for(lambda: len(_accepted_by_task(ws)) == 2, timeout=300), _logs(tmp_path, "slurm-*.out")
        live = json.loads(run_cli("dense", "inspect", "run", "--json", "-c", str(cfg), env=clean_env()).stdout)
        assert {t["task"]: t["state"] for t in live["tasks"]} == {"1": "running", "2": "running"}
        assert live["status"].startswith("running (array: 2 task(s), 2 running")
        subprocess.run(["scancel", job_id], check=True, timeout=30)
        assert wait_for(lambda: sum(e["action"] == "job_finished" for e in _events(ws)) == 2, timeout=120), \
            _logs(tmp_path, "slurm-*.out")
    finally:
        subprocess.run(["scancel", job_id], capture_output=True, timeout=30)
    assert wait_for(lambda: not subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True).stdout.strip(),
                    timeout=120)
    finished = {e["job"]["task_id"]: e["job"] for e in _events(ws) if e["action"] == "job_finished"}
    for task in ("1", "2"):
        job = finished[task]
        assert (job["state"], job["signal"], job["exit_code"]) == ("cancelled", 15, 143), job
        state = json.loads((ws / "outputs" / "meta" / "tasks" / f"task-000{task}" / "run_state.json").read_text())
        assert state["status"] == "interrupted"
    # checkpoint_every is 100: every row below was committed by the signal path, none lost
    assert usr_rows(ws).height == sum(_accepted_by_task(ws).values())
    logs = _logs(tmp_path, "slurm-*.out")
    assert "exiting without waiting" not in logs  # the group signal + uv's forwarded copy are one request
    assert_workspace_valid(ws)

    res = subprocess.run(["sbatch", "--wait", "--array=1-2", "--cpus-per-task=1", "-o", str(tmp_path / "again-%A_%a.out"),
                          str(JOBS / "densegen-array.sh")], capture_output=True, text=True, timeout=1200, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr + _logs(tmp_path, "again-*.out")
    rows = usr_rows(ws)
    total = sum(quotas.values())
    assert rows.height == total and rows["id"].n_unique() == total
    assert dict(rows.group_by("densegen__plan").len().rows()) == quotas
    assert_workspace_valid(ws)


def test_slurm_sigkilled_task_is_reconciled_lost_and_the_array_completes(slurm, tmp_path):
    ws = tmp_path / "ws"
    quotas = {"plain": 100, "sigma70": 100}  # large enough that task 1 is still running when it is killed
    cfg = make_workspace(ws, quotas=quotas)
    proc = subprocess.Popen(["sbatch", "--wait", "--array=1-2", "--cpus-per-task=1", "-o", str(tmp_path / "slurm-%A_%a.out"),
                             str(JOBS / "densegen-array.sh")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_uv_env(DENSEGEN_CONFIG=str(cfg)), cwd=tmp_path)
    state1 = ws / "outputs" / "meta" / "tasks" / "task-0001" / "run_state.json"
    try:
        assert wait_for(lambda: _accepted_by_task(ws).get("task-0001", 0) >= 1, timeout=300), _logs(tmp_path, "slurm-*.out")
        pid = int(json.loads(state1.read_text())["pid"])
        assert pid > 1 and pid != os.getpid() and os.getpgid(pid) != os.getpgid(0), pid
        os.kill(pid, signal.SIGKILL)  # dense itself: no handler runs
        proc.communicate(timeout=1200)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0  # --wait reports the killed task
    events = _events(ws)
    finished = {e["job"]["task_id"]: e["job"] for e in events if e["action"] == "job_finished"}
    assert "1" not in finished and finished["2"]["state"] == "completed"
    rows = usr_rows(ws)
    total = sum(quotas.values())
    assert rows.height == total and rows["id"].n_unique() == total  # the surviving task completed the quota
    r = run_cli("usr", "--root", str(ws / "outputs" / "usr_datasets"), "events", "reconcile", DATASET, "--json")
    assert r.returncode == 0, r.stderr
    assert [j["task_id"] for j in json.loads(r.stdout)["lost"]] == ["1"]
    info = json.loads(run_cli("dense", "inspect", "run", "--json", "-c", str(cfg), env=clean_env()).stdout)
    assert {t["task"]: t["state"] for t in info["tasks"]} == {"1": "lost", "2": "completed"}
    assert_workspace_valid(ws)


# -- SGE ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [4, 16])
def test_sge_array_fills_one_config_exactly_once(sge, tmp_path, n):
    ws = tmp_path / "ws"
    quotas = {"plain": 6, "sigma70": 6} if n == 4 else {"plain": 12, "sigma70": 12}
    cfg = make_workspace(ws, quotas=quotas)
    env = {**_uv_env(DENSEGEN_CONFIG=str(cfg)), **{k: v for k, v in sge.items() if k.startswith("SGE_")}}
    res = subprocess.run(["qsub", "-sync", "y", "-V", "-t", f"1-{n}", "-wd", str(tmp_path), str(JOBS / "densegen-array.sh")],
                         capture_output=True, text=True, timeout=1800, env=env)
    logs = _logs(tmp_path, "densegen_array.*")
    assert "Your job-array" in res.stdout, res.stdout + res.stderr + logs
    _check_array(ws, quotas, [str(t) for t in range(1, n + 1)], "sge")


def test_sge_qdel_through_the_template_then_resubmit(sge, tmp_path):
    ws = tmp_path / "demo_hpc"
    quotas = {"plain": 30, "sigma70": 30}
    cfg = make_workspace(ws, quotas=quotas, overrides={"runtime": {"checkpoint_every": 100}})
    env = {**_uv_env(DENSEGEN_CONFIG=str(cfg)), **{k: v for k, v in sge.items() if k.startswith("SGE_")}}
    base = ["qsub", "-V", "-pe", "smp", "1", "-wd", str(tmp_path)]
    sub = subprocess.run([*base, "-terse", str(JOBS / "densegen-cpu.sh")], capture_output=True, text=True, timeout=60, env=env)
    assert sub.returncode == 0, sub.stderr
    job_id = sub.stdout.strip().split(".")[0]
    try:
        assert wait_for(lambda: any(e["event"] == "accepted" for e in diagnostics(ws)), timeout=300), \
            _logs(tmp_path, "densegen.*")
        subprocess.run(["qdel", job_id], check=True, capture_output=True, timeout=30, env=sge)
        assert wait_for(lambda: any(e["action"] == "job_finished" for e in _events(ws)), timeout=120), \
            _logs(tmp_path, "densegen.*")
    finally:
        subprocess.run(["qdel", job_id], capture_output=True, timeout=30, env=sge)
    job = next(e["job"] for e in _events(ws) if e["action"] == "job_finished")
    # qdel of a -notify job: SIGUSR2 first (the template asks for -notify), then SIGKILL after the notify time
    assert (job["state"], job["signal"], job["exit_code"]) == ("cancelled", 12, 140), job
    assert json.loads((ws / "outputs" / "meta" / "run_state.json").read_text())["status"] == "interrupted"
    accepted = sum(1 for e in diagnostics(ws) if e["event"] == "accepted")
    assert usr_rows(ws).height == accepted  # committed == accepted (checkpoint_every is 100)
    assert_workspace_valid(ws)

    res = subprocess.run([*base, "-sync", "y", str(JOBS / "densegen-cpu.sh")], capture_output=True, text=True,
                         timeout=1200, env=env)
    assert res.returncode == 0, res.stdout + res.stderr + _logs(tmp_path, "densegen.*")
    rows = usr_rows(ws)
    assert rows.height == 60 and rows["id"].n_unique() == 60
    assert_workspace_valid(ws)


def test_seed_001_qsub_path_as_written(sge, tmp_path):
    """`qsub -P <project> -v DENSEGEN_CONFIG=... docs/bu-scc/jobs/densegen-cpu.qsub` from the checkout, then the resume."""
    ws = tmp_path / "demo_hpc"
    cfg = make_workspace(ws, quotas={"plain": 1, "sigma70": 1}, overrides={"solver": {"workers": None}})
    project = "dnadesign_test"
    if subprocess.run(["qconf", "-sprj", project], capture_output=True, env=sge).returncode != 0:
        spec = tmp_path / "prj"
        spec.write_text(f"name {project}\noticket 0\nfshare 0\nacl NONE\nxacl NONE\n")
        subprocess.run(["qconf", "-Aprj", str(spec)], check=True, capture_output=True, env=sge)
    env = {k: v for k, v in clean_env().items() if k not in ("DNADESIGN_REPO", "UV_FROZEN")} | {
        k: v for k, v in sge.items() if k.startswith("SGE_")}
    # the runbook's commands through a shell, as written (`-sync y` waits; `-o` keeps the job log out of the checkout)
    first = f"qsub -P {project} -v DENSEGEN_CONFIG={cfg} docs/bu-scc/jobs/densegen-cpu.qsub"
    again = (f"qsub -P {project} \\\n  -v DENSEGEN_CONFIG={cfg},DENSEGEN_RUN_ARGS='--resume --extend-quota 8 --no-plot' \\\n"
             "  docs/bu-scc/jobs/densegen-cpu.qsub")
    for cmd, total in ((first, 2), (again, 10)):
        cmd = cmd.replace("qsub ", f"qsub -sync y -o {tmp_path} ", 1)
        res = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=1200, env=env, cwd=REPO)
        assert res.returncode == 0, res.stdout + res.stderr + _logs(tmp_path, "densegen.o*")
        rows = usr_rows(ws)
        assert rows.height == total and rows["id"].n_unique() == total
    started = [e for e in _events(ws) if e["action"] == "job_started"]
    assert len(started) == 2 and all(e["job"]["scheduler"] == "sge" for e in started)
    workers = {e["metrics"].get("workers") for e in _events(ws) if e["action"] == "densegen_health" and "workers" in e["metrics"]}
    assert workers == {4}  # `#$ -pe omp 4` in the template: NSLOTS=4 -> 4 CP-SAT workers
    assert_workspace_valid(ws)


def test_array_task_that_cannot_start_leaves_a_trace(slurm, tmp_path):
    """A bad config and a locked workspace: every task still writes job_started + job_finished with the reason."""
    ws = tmp_path / "ws"
    cfg = make_workspace(ws, quotas={"plain": 1, "sigma70": 1})
    run = subprocess.run(["sbatch", "--wait", "--cpus-per-task=1", "-o", str(tmp_path / "first-%j.out"),
                          str(JOBS / "densegen-cpu.sh")], capture_output=True, text=True, timeout=900,
                         env=_uv_env(DENSEGEN_CONFIG=str(cfg)), cwd=tmp_path)
    assert run.returncode == 0, run.stderr + _logs(tmp_path, "first-*.out")
    data = yaml.safe_load(cfg.read_text())
    data["generation"]["plans"][0]["include_inputs"] = ["no_such_input"]
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    res = subprocess.run(["sbatch", "--wait", "--array=1-2", "--cpus-per-task=1", "-o", str(tmp_path / "bad-%A_%a.out"),
                          str(JOBS / "densegen-array.sh")], capture_output=True, text=True, timeout=900,
                         env=_uv_env(DENSEGEN_CONFIG=str(cfg)), cwd=tmp_path)
    assert res.returncode == 1
    events = _events(ws)
    bad = [e for e in events if e["action"] == "job_finished" and e["job"].get("task_id")]
    assert sorted(e["job"]["task_id"] for e in bad) == ["1", "2"]
    assert all(e["job"]["state"] == "failed" and e["job"]["exit_code"] == 1 and "no_such_input" in e["args"]["reason"]
               for e in bad)
    started = [e for e in events if e["action"] == "job_started" and e["job"].get("task_id")]
    assert sorted(e["job"]["task_id"] for e in started) == ["1", "2"]
    assert pl.DataFrame(usr_rows(ws)).height == 2  # nothing lost

    # the config is fine again, but a single `dense run` holds the workspace: the tasks fail with a trace
    from dnadesign.core.locks import FileLock

    data["generation"]["plans"][0]["include_inputs"] = ["regulondb_sites"]
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    with FileLock(ws / "outputs" / "meta" / "run.lock", timeout=0):
        res = subprocess.run(["sbatch", "--wait", "--array=1-2", "--cpus-per-task=1", "-o", str(tmp_path / "locked-%A_%a.out"),
                              str(JOBS / "densegen-array.sh")], capture_output=True, text=True, timeout=900,
                             env=_uv_env(DENSEGEN_CONFIG=str(cfg)), cwd=tmp_path)
    assert res.returncode == 1
    locked = [e for e in _events(ws) if e["action"] == "job_finished" and "workspace run lock" in e["args"].get("reason", "")]
    assert sorted(e["job"]["task_id"] for e in locked) == ["1", "2"] and all(e["job"]["state"] == "failed" for e in locked)
    assert usr_rows(ws).height == 2
    assert_workspace_valid(ws)
