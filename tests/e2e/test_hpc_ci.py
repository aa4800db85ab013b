"""The HPC CI driver (`ci/hpc/run_hpc_ci.sh`) for real: under Slurm on a scratch clone of a commit, in place,
stopped by a signal, pushing to a local bare results repository; its JSON validated against `ci/hpc/schemas`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from ci.hpc import junit
from ci.hpc.bench_phase import compare, extract
from ci.hpc.driver import validate_artifacts

from tests.conftest import REPO, require_component

DRIVER = REPO / "ci" / "hpc" / "run_hpc_ci.sh"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@localhost", "GIT_TERMINAL_PROMPT": "0"}

CANARY = textwrap.dedent("""
    def test_canary_passes():
        assert 1 + 1 == 2


    def test_canary_fails_on_purpose():
        assert "deliberate" == "failure"
""")

# A tiny benchmark selection over a real bench script; the baseline makes one figure a clear regression.
SELECTION = {"default_threshold_pct": 25, "benchmarks": [{
    "name": "jobs_view", "command": ["bench/usr_events_jobs.py", "--lines", "3000"], "timeout_s": 300,
    "figures": {"fold_cpu_s": {"better": "lower", "unit": "s"}, "tasks": {"better": "higher", "threshold_pct": 0},
                "cli_peak_rss_mb": {"better": "lower", "threshold_pct": 15}}}]}
BASELINE = {"schema_version": 1, "figures": {"jobs_view/fold_cpu_s": {"value": 1e-6, "better": "lower"},
                                             "jobs_view/tasks": {"value": 60, "better": "higher"},
                                             "jobs_view/cli_peak_rss_mb": {"value": 1e6, "better": "lower"}}}


def git(*args: str, cwd: Path) -> str:
    res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_ENV}, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def driver_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HPC_CI_", "HPC_RESULTS_", "SLURM_", "SGE_"))
           and k not in ("CODECOV_TOKEN", "JOB_ID")}
    env.update(GIT_ENV, HPC_CI_OUTPUT=str(tmp_path / "hpc-ci"), **extra)
    return env


def read(art: Path, rel: str) -> dict:
    return json.loads((art / rel).read_text())


@pytest.fixture
def origin(tmp_path):
    """A bare 'origin' cloned from this repository's committed history, plus a branch adding a failing test."""
    require_component(shutil.which("git") is not None and (REPO / ".git").exists(), "needs git and a git checkout of the repository")
    bare, work = tmp_path / "origin.git", tmp_path / "work"
    git("clone", "--quiet", "--bare", str(REPO), str(bare), cwd=tmp_path)
    git("clone", "--quiet", str(bare), str(work), cwd=tmp_path)
    git("checkout", "--quiet", "-b", "ci-canary", cwd=work)
    (work / "tests" / "core" / "test_zz_ci_canary.py").write_text(CANARY)
    git("add", "tests/core/test_zz_ci_canary.py", cwd=work)
    git("commit", "--quiet", "-m", "a deliberately failing test", cwd=work)
    git("push", "--quiet", "origin", "ci-canary", cwd=work)
    return bare, git("rev-parse", "HEAD", cwd=work)


@pytest.mark.e2e
@pytest.mark.scheduler
def test_driver_under_slurm_on_a_commit(slurm, origin, tmp_path):
    bare, sha = origin
    results = tmp_path / "results.git"
    git("init", "--quiet", "--bare", str(results), cwd=tmp_path)
    (tmp_path / "selection.json").write_text(json.dumps(SELECTION))
    (tmp_path / "baseline.json").write_text(json.dumps(BASELINE))
    env = driver_env(tmp_path, HPC_CI_REPO=str(bare), HPC_CI_COMMIT=sha, HPC_CI_BRANCH="ci-canary",
                     HPC_CI_PYTEST_ARGS="tests/core/test_zz_ci_canary.py tests/core/test_job_view.py -k 'not cli'",
                     HPC_CI_BENCH_SELECTION=str(tmp_path / "selection.json"), HPC_CI_BASELINE=str(tmp_path / "baseline.json"),
                     HPC_RESULTS_REMOTE=str(results), DNADESIGN_REPO=str(REPO), HPC_CI_WORKDIR=str(tmp_path / "clone"))
    res = subprocess.run(["sbatch", "--parsable", "--wait", "--cpus-per-task=2", "--time=20", "-o", str(tmp_path / "job.%j.out"),
                          str(REPO / "jobs" / "hpc-ci.sh"), "--no-codecov"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=1200)
    job_id = res.stdout.strip().splitlines()[0].split(";")[0]
    log = (tmp_path / f"job.{job_id}.out").read_text()
    assert res.returncode == 1, log  # a test failed: the job fails
    art = tmp_path / "hpc-ci" / "artifacts"
    assert validate_artifacts(art) == []

    tests = read(art, "tests/summary.json")
    assert tests["status"] == "failed" and tests["commit"] == sha and tests["branch"] == "ci-canary"
    assert tests["failing_suites"] == ["core"]
    assert tests["suites"]["core"]["failed"] == 1 and tests["suites"]["core"]["passed"] >= 4
    assert [f["test"].rsplit("::", 1)[1] for f in tests["failures"]] == ["test_canary_fails_on_purpose"]

    lcov = (art / "coverage" / "lcov.info").read_text()
    assert "SF:src/dnadesign/core/job_view.py" in lcov
    cov = read(art, "coverage/summary.json")
    assert 0 < cov["coverage_percent"] < 100 and cov["covered_lines"] > 100

    bench = read(art, "benchmarks/summary.json")
    assert bench["status"] == "regressed" and bench["regressions"] == ["jobs_view/fold_cpu_s"]
    fig = bench["benchmarks"]["jobs_view/fold_cpu_s"]
    assert fig["regression"] and fig["delta_vs_baseline_pct"] > 25 and fig["baseline"] == 1e-6
    assert bench["benchmarks"]["jobs_view/tasks"] == {**bench["benchmarks"]["jobs_view/tasks"], "value": 60.0,
                                                      "delta_vs_baseline_pct": 0.0, "regression": False}
    assert not bench["benchmarks"]["jobs_view/cli_peak_rss_mb"]["regression"]
    assert bench["worst_regression_figure"] == "jobs_view/fold_cpu_s" and bench["worst_regression_pct"] == fig["worse_pct"]

    meta = read(art, "meta.json")
    assert (meta["scheduler"], meta["job_id"], meta["partition"], meta["cpus"]) == ("slurm", job_id, "debug", 2)
    assert meta["commit"] == sha and meta["branch"] == "ci-canary" and not meta["dirty"]
    assert meta["node"] and meta["python_version"] and meta["ortools_version"] and meta["polars_version"]
    assert meta["wall_time_seconds"] > 0
    hpc = read(art, "hpc-results.json")
    assert hpc["schema_version"] == 1 and hpc["tests"]["status"] == "failed" and hpc["benchmarks"]["status"] == "regressed"
    assert hpc["hpc"]["job_id"] == job_id and hpc["coverage"]["flag"] == "hpc-extended"
    badge = read(art, "badges/tests.json")
    assert badge["color"] == "red" and sha[:7] in badge["message"] and meta["generated_at"][:10] in badge["message"]
    assert sha[:7] in read(art, "badges/benchmarks.json")["message"]

    # the small JSON files went to the results branch of the (local, bare) results repository
    files = git("--git-dir", str(results), "ls-tree", "-r", "--name-only", "hpc-results", cwd=tmp_path).splitlines()
    assert {f"{sha}/tests.json", f"{sha}/benchmarks.json", f"{sha}/meta.json", f"{sha}/hpc-results.json",
            "latest-tests.json", "latest-benchmarks.json", "latest-meta.json", "badges/tests.json", "README.md"} <= set(files)
    assert all(f.endswith((".json", ".md")) for f in files)
    latest = json.loads(git("--git-dir", str(results), "show", "hpc-results:latest-tests.json", cwd=tmp_path))
    assert latest["status"] == "failed" and latest["commit"] == sha
    assert not (tmp_path / "clone").exists()  # the scratch clone is removed


def test_driver_in_place_tests_only_passes(tmp_path):
    require_component(shutil.which("git") is not None and (REPO / ".git").exists(), "needs git and a git checkout of the repository")
    env = driver_env(tmp_path, HPC_CI_PYTEST_ARGS="tests/core/test_job_view.py::test_view_state_rules")
    res = subprocess.run([str(DRIVER), "--tests-only", "--no-codecov"], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    art = tmp_path / "hpc-ci" / "artifacts"
    assert validate_artifacts(art) == []
    tests = read(art, "tests/summary.json")
    assert tests["status"] == "passed" and tests["totals"]["passed"] == 1 and tests["suites"]["core"]["tests"] == 1
    assert read(art, "hpc-results.json")["benchmarks"]["status"] == "skipped"
    assert not (art / "benchmarks").exists()
    assert read(art, "meta.json")["scheduler"] == "none"
    assert read(art, "badges/tests.json")["color"] == "brightgreen"
    assert "tests passed" in res.stdout


def test_codecov_upload_keeps_the_token_off_the_command_line(tmp_path):
    """A stand-in uploader (Codecov itself is a network service) records what it was given."""
    require_component(shutil.which("git") is not None and (REPO / ".git").exists(), "needs git and a git checkout of the repository")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "codecov").write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                                    f"json.dump({{'argv': sys.argv[1:], 'token_in_env': 'CODECOV_TOKEN' in os.environ}},"
                                    f" open({str(tmp_path / 'upload.json')!r}, 'w'))\n")
    (bindir / "codecov").chmod(0o755)
    env = driver_env(tmp_path, HPC_CI_PYTEST_ARGS="tests/core/test_job_view.py::test_view_state_rules",
                     CODECOV_TOKEN="s3cr3t-token-value", PATH=f"{bindir}:{os.environ['PATH']}")
    res = subprocess.run([str(DRIVER), "--tests-only"], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    up = json.loads((tmp_path / "upload.json").read_text())
    assert up["token_in_env"] and "s3cr3t-token-value" not in " ".join(up["argv"])
    assert up["argv"][:2] == ["-F", "hpc-extended"] and up["argv"][3].endswith("coverage/lcov.info")
    art = tmp_path / "hpc-ci" / "artifacts"
    assert read(art, "hpc-results.json")["coverage"]["upload"] == "uploaded"
    for path in art.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".log", ".xml", ".info"):
            assert "s3cr3t-token-value" not in path.read_text(errors="replace"), path
    assert "s3cr3t-token-value" not in res.stdout + res.stderr


def test_sigterm_stops_the_running_phase_and_still_writes_artifacts(tmp_path):
    require_component(shutil.which("git") is not None and (REPO / ".git").exists(), "needs git and a git checkout of the repository")
    ready, child = tmp_path / "ready", tmp_path / "child.pid"
    (tmp_path / "test_blocks.py").write_text(textwrap.dedent(f"""
        import os, time
        from pathlib import Path
        def test_blocks():
            Path({str(child)!r}).write_text(str(os.getpid()))
            Path({str(ready)!r}).write_text("ready")
            for _ in range(600):
                time.sleep(0.2)
    """))
    env = driver_env(tmp_path, HPC_CI_PYTEST_ARGS=f"{tmp_path / 'test_blocks.py'}")
    proc = subprocess.Popen([str(DRIVER), "--no-codecov"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert ready.exists(), proc.stderr.read() if proc.poll() is not None else "test never started"
        os.killpg(proc.pid, signal.SIGTERM)  # as a scheduler does: the whole job's process group
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGTERM, err
    art = tmp_path / "hpc-ci" / "artifacts"
    assert validate_artifacts(art) == []
    assert read(art, "tests/summary.json")["status"] == "error"
    assert read(art, "meta.json")["stopped_by_signal"] == signal.SIGTERM
    assert read(art, "hpc-results.json")["benchmarks"]["status"] == "error"  # never started
    pid = int(child.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the blocked test process is gone too


def test_usage_and_checkout_errors(origin, tmp_path):
    bare, _ = origin
    for args in (["--tests-only", "--benchmarks-only"], ["--bogus"], ["--tests-only", "--update-baseline"]):
        res = subprocess.run([str(DRIVER), *args], capture_output=True, text=True, env=driver_env(tmp_path), timeout=120)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr, res.stderr
    res = subprocess.run([str(DRIVER), "--tests-only"], capture_output=True, text=True, timeout=300,
                         env=driver_env(tmp_path, HPC_CI_REPO=str(bare), HPC_CI_COMMIT="deadbeef" * 5))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    art = tmp_path / "hpc-ci" / "artifacts"
    assert validate_artifacts(art) == []
    assert read(art, "tests/summary.json")["status"] == "error" and "deadbeef" in read(art, "meta.json")["error"]
    res = subprocess.run([str(DRIVER)], capture_output=True, text=True, timeout=120,
                         env=driver_env(tmp_path, HPC_CI_REPO="https://ci:tok3n@example.invalid/x.git", HPC_CI_BRANCH="main"))
    assert res.returncode == 1 and "credentials" in res.stderr and "tok3n" not in res.stderr


def test_push_creates_the_branch_and_keeps_history(origin, tmp_path):
    """Two runs' summaries pushed to a local bare repository; a URL with a password is refused."""
    from ci.hpc.publish import push_results

    results = tmp_path / "results.git"
    git("init", "--quiet", "--bare", str(results), cwd=tmp_path)
    art = tmp_path / "art"
    for i, sha in enumerate(("a" * 40, "b" * 40)):
        (art / "tests").mkdir(parents=True, exist_ok=True)
        (art / "meta.json").write_text(json.dumps({"commit": sha, "generated_at": f"2026-01-0{i + 1}T00:00:00Z"}))
        (art / "tests" / "summary.json").write_text(json.dumps({"status": "passed", "commit": sha}))
        (art / "hpc.log").write_text("big logs stay on the cluster")
        push_results(art, str(results), "hpc-results", log=lambda _m: None)
    log = git("--git-dir", str(results), "log", "--format=%s", "hpc-results", cwd=tmp_path).splitlines()
    assert len(log) == 2 and log[0].startswith("HPC results for bbbbbbbbbbbb")
    files = git("--git-dir", str(results), "ls-tree", "-r", "--name-only", "hpc-results", cwd=tmp_path).splitlines()
    assert {"a" * 40 + "/tests.json", "b" * 40 + "/tests.json", "latest-tests.json"} <= set(files)
    assert not any(f.endswith(".log") for f in files)
    assert json.loads(git("--git-dir", str(results), "show", "hpc-results:latest-tests.json", cwd=tmp_path))["commit"] == "b" * 40
    env = driver_env(tmp_path, HPC_RESULTS_REMOTE="https://u:hunter2@example.invalid/r.git")
    res = subprocess.run([str(REPO / "ci" / "hpc" / "push_to_hpc_results_branch.sh"), str(art)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 1 and "hunter2" not in res.stderr and "deploy key" in res.stderr


def test_junit_suites_and_benchmark_comparison_units():
    assert junit.suite_of("tests.core.test_events", "test_x") == "core"
    assert junit.suite_of("tests.densegen.solver.test_bound", "t") == "densegen"
    assert junit.suite_of("", "tests.usr.test_cli") == "usr"
    assert junit.suite_of("tests.test_top", "t") == "tests"
    assert junit.tests_status({"totals": {"failed": 0, "errors": 0, "tests": 0}}, 5) == "error"
    assert junit.tests_status(None, 0) == "error"
    assert extract({"a": {"10000": 2.5}, "b": [1, {"c": 3}]}, "a/10000") == 2.5
    assert extract({"b": [1, {"c": 3}]}, "b/1/c") == 3 and extract({"a": True}, "a") is None and extract({}, "x") is None
    figures = {"x/t": {"bench": "x", "value": 1.3, "better": "lower"}, "x/r": {"bench": "x", "value": 70.0, "better": "higher"},
               "x/ok": {"bench": "x", "value": 1.1, "better": "lower", "threshold_pct": 20},
               "x/new": {"bench": "x", "value": 5.0, "better": "lower"}, "x/zero": {"bench": "x", "value": 1.0, "better": "lower"}}
    base = {"figures": {"x/t": {"value": 1.0}, "x/r": {"value": 100.0}, "x/ok": {"value": 1.0}, "x/zero": {"value": 0}}}
    got = compare(figures, base, 25.0)
    assert got["regressions"] == ["x/r", "x/t"]
    assert got["benchmarks"]["x/t"]["delta_vs_baseline_pct"] == 30.0 and got["benchmarks"]["x/r"]["worse_pct"] == 30.0
    assert not got["benchmarks"]["x/ok"]["regression"] and got["benchmarks"]["x/new"]["baseline"] is None
    assert got["benchmarks"]["x/zero"]["delta_vs_baseline_pct"] is None
    assert got["worst_regression_pct"] == 30.0
