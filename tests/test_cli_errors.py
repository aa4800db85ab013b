"""Error snapshots of the first hour: what a new user sees when something is wrong.

Each case runs the real console script and compares stderr (paths replaced by placeholders)
with the exact text expected: one line per error (a config lists each of its problems on its
own line), the right exit code, no traceback, no multi-line box.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

DEMO = REPO / "workspaces" / "demo_sites"


def norm(text: str, **paths: Path) -> str:
    for name, p in sorted(paths.items(), key=lambda kv: -len(str(kv[1]))):
        text = text.replace(str(p), f"<{name}>")
    return text


def assert_no_box(r) -> None:
    assert "Traceback" not in r.stderr and "╭" not in r.stderr and "│" not in r.stderr, r.stderr


@pytest.mark.parametrize(("argv", "code", "expected"), [
    (["usr", "head"], 2, "usr: error: missing argument 'DATASET'. Run `usr head --help` for usage."),
    (["usr", "head", "a/b", "--bogus"], 2,
     "usr: error: no such option: --bogus (Possible options: --columns). Run `usr head --help` for usage."),
    (["usr", "hed"], 2, "usr: error: no such command 'hed'. Did you mean 'head'? Run `usr --help` for usage."),
    (["usr", "head", "a/b", "-n", "many"], 2,
     "usr: error: invalid value for '-n': Input should be a valid integer, unable to parse string as an integer. "
     "Run `usr head --help` for usage."),
    (["dense", "run", "--extend-quota", "-3"], 2,
     "dense: error: invalid value for '--extend-quota': Input should be greater than or equal to 0. "
     "Run `dense run --help` for usage."),
    (["dense", "workspace", "init", "x", "--copy"], 2,
     "dense: error: no such option: --copy (Possible options: --copy-inputs). Run `dense workspace init --help` for usage."),
    (["notify", "spool", "drain", "--nope"], 2, None),
])
def test_command_line_misuse_is_one_line(argv, code, expected, tmp_path):
    r = run_cli(*argv, cwd=tmp_path)
    assert r.returncode == code
    assert_no_box(r)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{argv[0]}: error: "), r.stderr
    if expected is not None:
        assert lines[0] == expected


def test_config_with_several_problems_shows_all_of_them(tmp_path):
    shutil.copytree(DEMO / "inputs", tmp_path / "inputs")
    text = (DEMO / "config.yaml").read_text()
    text = text.replace("library_size: 10", "libary_size: 10").replace("sequence_length: 100", "sequence_length: 2")
    text = text.replace("strategy: diverse", "strategy: best")
    (tmp_path / "config.yaml").write_text(text)
    r = run_cli("dense", "validate-config", "-c", str(tmp_path / "config.yaml"))
    assert r.returncode == 1
    assert_no_box(r)
    assert norm(r.stderr, CFG=tmp_path / "config.yaml") == (
        "dense: error: <CFG> has 3 problems:\n"
        "  - unknown key `generation.sampling.libary_size` (did you mean `library_size`?); allowed keys here: "
        "cover_all_regulators, coverage_alpha, library_size, max_sites_per_regulator, strategy, unique_binding_cores, "
        "unique_binding_sites\n"
        "  - `generation.sequence_length`: Input should be greater than or equal to 4\n"
        "  - `solver.strategy`: Input should be 'optimal' or 'diverse'. See docs/dense-config.md.\n")
    assert "more problem" not in r.stderr

    j = run_cli("dense", "validate-config", "-c", str(tmp_path / "config.yaml"), "--json")
    assert j.returncode == 1
    doc = json.loads(j.stdout)
    assert doc["valid"] is False and doc["exit_code"] == 1 and doc["config"] == str(tmp_path / "config.yaml")
    assert [e["key"] for e in doc["errors"]] == ["generation.sampling.libary_size", "generation.sequence_length", "solver.strategy"]
    assert doc["errors"][0]["hint"].startswith("allowed keys here: ")


def test_validate_config_json_for_a_missing_file_is_a_document_too(tmp_path):
    r = run_cli("dense", "validate-config", "-c", str(tmp_path / "nope.yaml"), "--json")
    assert r.returncode == 1
    assert json.loads(r.stdout) == {"config": str(tmp_path / "nope.yaml"), "valid": False, "exit_code": 1, "errors": [
        {"key": None, "problem": f"config file {tmp_path / 'nope.yaml'} not found",
         "hint": "pass -c PATH, or create a workspace with `dense workspace init`"}]}


@pytest.fixture
def demo_root(tmp_path: Path) -> Path:
    """A dataset where the demo keeps it: <workspace>/outputs/usr_datasets/densegen/demo_sites."""
    root = tmp_path / "workspaces" / "demo_sites" / "outputs" / "usr_datasets"
    csv = tmp_path / "seqs.csv"
    csv.write_text("sequence\nACGTACGTAAACGT\nTTTTGGGGCCAAGT\n")
    r = run_cli("usr", "--root", str(root), "import", "densegen/demo_sites", str(csv), "--create")
    assert r.returncode == 0, r.stderr
    return root


def test_head_with_a_mistyped_id_suggests_the_close_one(demo_root, tmp_path):
    r = run_cli("usr", "--root", str(demo_root), "head", "densegen/demo_site")
    assert r.returncode == 1
    assert norm(r.stderr, ROOT=demo_root) == (
        "usr: error: dataset densegen/demo_site does not exist under <ROOT>. Did you mean densegen/demo_sites?\n")


def test_nonexistent_root_is_an_error(tmp_path):
    r = run_cli("usr", "--root", str(tmp_path / "nonexistent"), "ls")
    assert r.returncode == 1
    assert norm(r.stderr, X=tmp_path) == (
        "usr: error: the USR root <X>/nonexistent does not exist. Check --root; `usr init namespace/name` creates a root.\n")
    r = run_cli("usr", "ls", env={"DNADESIGN_USR_ROOT": str(tmp_path / "nonexistent")})
    assert r.returncode == 1 and "Check $DNADESIGN_USR_ROOT" in r.stderr


def test_empty_default_root_says_where_the_demo_data_is(demo_root, tmp_path):
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg"), "DNADESIGN_USR_ROOT": ""}
    r = run_cli("usr", "ls", cwd=tmp_path, env=env)
    assert r.returncode == 0
    assert norm(r.stdout, X=tmp_path) == "No datasets under <X>/xdg/dnadesign/usr (it does not exist yet)\n"
    assert r.stderr == ("datasets written by `dense run` live in their workspace: densegen/demo_sites in "
                        "`usr --root workspaces/demo_sites/outputs/usr_datasets ls`\n")
    r = run_cli("usr", "head", "densegen/demo_sites", cwd=tmp_path, env=env)
    assert r.returncode == 1
    assert norm(r.stderr, X=tmp_path) == (
        "usr: error: dataset densegen/demo_sites not found: the USR root <X>/xdg/dnadesign/usr does not exist. "
        "Check --root (or $DNADESIGN_USR_ROOT); `usr ls` lists what a root holds.\n")
    (tmp_path / "xdg" / "dnadesign" / "usr").mkdir(parents=True)
    r = run_cli("usr", "head", "densegen/demo_sites", cwd=tmp_path, env=env)
    assert norm(r.stderr, X=tmp_path) == (
        "usr: error: dataset densegen/demo_sites is not under <X>/xdg/dnadesign/usr, but the workspace root "
        "workspaces/demo_sites/outputs/usr_datasets has it. "
        "Use `usr --root workspaces/demo_sites/outputs/usr_datasets <command> densegen/demo_sites`.\n")


def test_head_at_80_columns_is_readable(tmp_path):
    root = tmp_path / "root"
    csv = tmp_path / "seqs.csv"
    seqs = ["ACGT" * 25, "TTGACA" * 16 + "GGGG", "CCCCAAAATTTTGGGG" * 6 + "ACGT"]
    csv.write_text("sequence\n" + "\n".join(seqs) + "\n")
    assert run_cli("usr", "--root", str(root), "import", "densegen/demo", str(csv), "--create").returncode == 0
    ids = json.loads(run_cli("usr", "--root", str(root), "head", "densegen/demo", "--json").stdout)
    over = tmp_path / "over.csv"
    over.write_text("id,plan,n_sites,gc,library_hash,solver_status\n" + "".join(
        f"{r['id']},sigma70_plan_{k},{k + 5},0.{40 + k},{'f' * 32},optimal\n" for k, r in enumerate(ids)))
    assert run_cli("usr", "--root", str(root), "attach", "densegen/demo", str(over), "--namespace", "densegen").returncode == 0
    r = run_cli("usr", "--root", str(root), "head", "densegen/demo", env={"COLUMNS": "80"})
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert all(len(ln) <= 80 for ln in lines), r.stdout
    header = lines[0].split()
    assert header[:3] == ["id", "sequence", "length"] and "plan" in header and "n_sites" in header
    assert "denseg…" not in r.stdout and "sigma70_plan_0" in r.stdout
    assert "derived columns shown without their densegen__ prefix" in r.stderr and "--columns a,b or --json" in r.stderr
