"""`dense validate-config`, `dense inspect config|plan|inputs`, `dense workspace init|list|where`."""

from __future__ import annotations

import json

import pytest

from dnadesign.densegen.cli import app
from tests.conftest import invoke, run_cli


def dense(*args, **kw):
    return invoke(app, *args, **kw)


def test_validate_config_with_probe_real_subprocess(demo_workspace):
    cfg = demo_workspace("demo_sites")
    r = run_cli("dense", "validate-config", "--probe-solver", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert "Config is valid" in r.stdout and "2 plan(s), total quota 8" in r.stdout
    assert "Solver probe OK" in r.stdout


def test_validate_config_json_and_default_path(demo_workspace, monkeypatch):
    monkeypatch.delenv("DENSEGEN_CONFIG", raising=False)
    monkeypatch.delenv("DENSEGEN_CONFIG_PATH", raising=False)
    cfg = demo_workspace("demo_pwm")
    monkeypatch.chdir(cfg.parent)
    r = dense("validate-config", "--json", "--probe-solver")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["valid"] and out["plans"] == 1 and out["total_quota"] == 4 and out["solver_probe_s"] is not None


@pytest.mark.parametrize("edit, message", [
    (lambda r: r.update(surprise=True), "unknown key `surprise`"),
    (lambda r: r["inputs"][0].update(path="inputs/gone.csv"), "gone.csv not found"),
    (lambda r: r["generation"].update(sequence_length=20), "promoter 'sigma70' needs at least 28 bp"),
    (lambda r: r["generation"]["plans"][0]["regulator_constraints"]["groups"][0].update(members=["XyzR"]),
     "regulator group 'stress' has no members"),
    (lambda r: r["motif_sets"].update(bad={"v": "TTGAUA"}), "is not DNA"),
])
def test_validate_config_errors_are_one_line_exit_1(demo_workspace, edit, message):
    cfg = demo_workspace("demo_sites", edit=edit)
    r = dense("validate-config", "-c", str(cfg))
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr


def test_missing_config_is_clear(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DENSEGEN_CONFIG", raising=False)
    monkeypatch.delenv("DENSEGEN_CONFIG_PATH", raising=False)
    r = dense("validate-config")
    assert r.returncode == 1 and "config.yaml not found" in r.stderr


def test_inspect_config_plan_inputs(demo_workspace):
    cfg = demo_workspace("demo_sites")
    r = dense("inspect", "config", "-c", str(cfg), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["outputs"]["usr"]["dataset"] == "densegen/demo_sites"
    assert out["outputs"]["parquet"].endswith("outputs/tables/records.parquet")
    assert out["effective"]["solver"]["strategy"] == "diverse"
    r = dense("inspect", "config", "-c", str(cfg))
    assert r.returncode == 0 and "sigma70" in r.stdout and "Solver and runtime" in r.stdout

    r = dense("inspect", "plan", "-c", str(cfg), "--json")
    plans = json.loads(r.stdout)["plans"]
    assert [p["name"] for p in plans] == ["plain", "sigma70"]
    assert plans[1]["promoters"][0]["spacer_min"] == 16
    assert dense("inspect", "plan", "-c", str(cfg)).returncode == 0

    r = dense("inspect", "inputs", "-c", str(cfg), "--json", "--show-sites", "2")
    rows = json.loads(r.stdout)["inputs"]
    assert rows[0]["sites"] == 230 and rows[0]["regulators"] == 6 and len(rows[0]["first_sites"]) == 2
    assert dense("inspect", "inputs", "-c", str(cfg)).returncode == 0
    one = json.loads(dense("inspect", "inputs", "-c", str(cfg), "--json", "-i", "regulondb_sites").stdout)["inputs"]
    assert [r["name"] for r in one] == ["regulondb_sites"]
    bad = dense("inspect", "inputs", "-c", str(cfg), "-i", "nope")
    assert bad.returncode == 2 and "unknown input nope" in bad.stderr


def test_workspace_list_where_and_env(workspaces_root, tmp_path, monkeypatch):
    monkeypatch.delenv("DENSEGEN_WORKSPACE_ROOT", raising=False)
    r = dense("workspace", "where")
    assert r.returncode == 0 and r.stdout.strip() == str(workspaces_root)
    items = json.loads(dense("workspace", "list", "--json").stdout)
    assert {"demo_sites", "demo_pwm"} <= {w["name"] for w in items}
    monkeypatch.setenv("DENSEGEN_WORKSPACE_ROOT", str(tmp_path))
    assert json.loads(dense("workspace", "where", "--json").stdout) == {"root": str(tmp_path.resolve()), "source": "env"}
    assert json.loads(dense("workspace", "list", "--json").stdout) == []


def test_workspace_init_from_packaged_and_from_config(tmp_path, demo_workspace):
    r = dense("workspace", "init", "my_ws", "--from", "demo_sites", "--root", str(tmp_path))
    assert r.returncode == 0, r.stderr
    ws = tmp_path / "my_ws"
    assert (ws / "inputs" / "regulondb_sites.csv").is_file() and (ws / "outputs").is_dir()
    out = json.loads(dense("inspect", "config", "-c", str(ws / "config.yaml"), "--json").stdout)
    assert out["run_id"] == "my_ws" and out["outputs"]["usr"]["dataset"] == "densegen/my_ws"
    assert dense("validate-config", "-c", str(ws / "config.yaml")).returncode == 0

    again = dense("workspace", "init", "my_ws", "--from", "demo_sites", "--root", str(tmp_path))
    assert again.returncode == 1 and "already exists" in again.stderr

    src = demo_workspace("demo_pwm", dest="elsewhere")
    r = dense("workspace", "init", "--id", "linked", "--from-config", str(src), "--root", str(tmp_path), "--no-copy-inputs")
    assert r.returncode == 0, r.stderr
    linked = (tmp_path / "linked" / "config.yaml").read_text()
    assert str(src.parent / "inputs" / "regulondb_pssm_subset.txt") in linked
    assert dense("validate-config", "-c", str(tmp_path / "linked" / "config.yaml")).returncode == 0

    shared = tmp_path / "shared_usr"
    r = dense("workspace", "init", "hpc", "--from", "demo_pwm", "--root", str(tmp_path), "--targets", "parquet",
              "--usr-root", str(shared))
    assert r.returncode == 0, r.stderr
    out = json.loads(dense("inspect", "config", "-c", str(tmp_path / "hpc" / "config.yaml"), "--json").stdout)
    assert out["outputs"]["usr"] == {"root": str(shared), "dataset": "densegen/hpc"}
    assert out["outputs"]["parquet"].endswith("records.parquet")

    bad = dense("workspace", "init", "Bad Id", "--root", str(tmp_path))
    assert bad.returncode == 1 and "workspace id" in bad.stderr
    unknown = dense("workspace", "init", "x", "--from", "nope", "--root", str(tmp_path))
    assert unknown.returncode == 1 and "demo_sites" in unknown.stderr and not (tmp_path / "x").exists()


@pytest.mark.parametrize("name", ["demo_sites", "demo_pwm", "demo_promoter_matrix"])
def test_every_packaged_workspace_validates(demo_workspace, name):
    cfg = demo_workspace(name)
    r = dense("validate-config", "--json", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["valid"] and out["total_quota"] <= 10  # demos stay small enough to run in well under a minute
    plans = json.loads(dense("inspect", "plan", "--json", "-c", str(cfg)).stdout)["plans"]
    if name == "demo_promoter_matrix":
        assert [p["name"] for p in plans][:2] == ["panel_cons_cons", "panel_cons_c5"] and len(plans) == 6
        assert {(p["variant"]["up"], p["variant"]["down"]) for p in plans} == {
            (u, d) for u in ("cons", "t6", "a3") for d in ("cons", "c5")}


def test_validate_config_refuses_unknown_default_plots_and_warns_about_skipped_ones(minimal):
    cfg = minimal(lambda raw: raw.update(plots={"default": ["occupancy", "no_such_plot"]}))
    r = dense("validate-config", "--json", "-c", str(cfg))
    assert r.returncode == 1
    assert not json.loads(r.stdout)["valid"]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "plots.default names unknown plot 'no_such_plot'" in lines[0] and "occupancy" in lines[0]
    cfg = minimal(lambda raw: raw.update(plots={"default": ["placement_occupancy_map", "stage_a_sampling_yield"]}))
    r = dense("validate-config", "--json", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    warnings = json.loads(r.stdout)["warnings"]
    assert any("stage_a_sampling_yield" in w and "skipped" in w for w in warnings)
