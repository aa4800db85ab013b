"""`dense plot` / `dense ls-plots` and the plots rendered after `dense run` (real run, real files)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from run_fixtures import dense, make_workspace

from tests.helpers_validate import assert_workspace_valid

pytestmark = pytest.mark.slow
ALL = ["site_usage", "occupancy", "positions", "sites_per_sequence", "gc", "progress", "sequences", "logos"]
DRAWN_FOR_SITES = [n for n in ALL if n != "logos"]  # logos need PWM inputs


# The incumbent DenseGen's 18 plot ids (reference: shared/reference/densegen.md), as users' configs list them.
INCUMBENT_IDS = [
    "attempt_outcome_timeline", "background_sequence_logo", "compression_ratio_by_plan", "dense_array_showcase_video",
    "plan_regulator_deployment_heatmap", "placement_occupancy_map", "retained_pool_coverage_by_regulator",
    "score_strata_and_deployed_length_bridge", "retained_vs_deployed_length_mix_by_regulator",
    "retained_vs_deployed_tier_mix_by_regulator", "solve_pressure_and_progress", "source_cohort_concentration",
    "source_plan_input_heatmap", "stage_a_pool_diversity", "stage_a_pool_score_strata", "stage_a_sampling_yield",
    "tfbs_concentration_profile", "upstream_motif_supply_and_pwm_strength",
]


def test_ls_plots_lists_every_plot_with_the_incumbent_ids():
    r = dense("ls-plots", "--json")
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    assert [p["name"] for p in doc] == ALL
    by_name = {p["name"]: p["incumbent_names"] for p in doc}
    assert "tfbs_concentration_profile" in by_name["positions"]
    assert {"background_sequence_logo", "upstream_motif_supply_and_pwm_strength"} <= set(by_name["logos"])
    assert "placement_occupancy_map" in by_name["occupancy"]
    r = dense("ls-plots")
    assert r.returncode == 0
    text = r.stdout
    for name in [*ALL, *INCUMBENT_IDS]:
        assert name in text, name  # every incumbent id is either mapped or listed as skipped


def test_every_incumbent_plot_id_maps_to_a_plot_or_is_skipped_with_a_reason():
    from dnadesign.densegen.plots import INCUMBENT_PLOTS, INCUMBENT_WITHOUT_EQUIVALENT, PLOTS, resolve_plot_names

    assert set(INCUMBENT_PLOTS) | set(INCUMBENT_WITHOUT_EQUIVALENT) == set(INCUMBENT_IDS)
    assert set(INCUMBENT_PLOTS.values()) <= set(PLOTS)
    names, notes = resolve_plot_names(["placement_occupancy_map", "occupancy", "tfbs_concentration_profile",
                                       "stage_a_pool_diversity", "background_sequence_logo"])
    assert names == ["occupancy", "positions", "logos"]  # mapped, in order, each once
    assert len(notes) == 1 and "stage_a_pool_diversity" in notes[0]


def test_plots_default_with_incumbent_ids_renders_ours_and_an_unknown_id_fails_before_the_run(tmp_path):
    ws = tmp_path / "ws"
    cfg = make_workspace(ws, quotas={"plain": 1, "sigma70": 1},
                         overrides={"plots": {"default": ["bogus_plot", "placement_occupancy_map"], "formats": ["png"]}})
    r = dense("run", "--progress", "off", "-c", str(cfg))
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown plot 'bogus_plot'" in lines[0] and "positions" in lines[0], r.stderr
    assert not (ws / "outputs" / "usr_datasets").exists() and not (ws / "outputs" / "tables" / "records.parquet").exists()
    r = dense("ls-plots", "-c", str(cfg))
    assert r.returncode == 1 and "bogus_plot" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    doc = yaml.safe_load(cfg.read_text())
    doc["plots"]["default"] = ["placement_occupancy_map", "tfbs_concentration_profile", "stage_a_pool_diversity"]
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    r = dense("run", "--progress", "off", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert "stage_a_pool_diversity" in r.stderr  # skipped, with a warning
    drawn = sorted(p.name for p in (ws / "outputs" / "plots").glob("*.png"))
    assert drawn == ["occupancy.png", "positions.png"]
    r = dense("plot", "--only", "tfbs_concentration_profile,plan_regulator_deployment_heatmap", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert sorted(Path(p).name for p in r.stdout.split()) == ["positions.png", "site_usage.png"]
    assert_workspace_valid(ws)


def test_plot_without_rows_is_a_clear_error(tmp_path):
    cfg = make_workspace(tmp_path / "ws", quotas={"plain": 1, "sigma70": 1})
    r = dense("plot", "-c", str(cfg))
    assert r.returncode == 1 and "no committed sequences" in r.stderr
    r = dense("plot", "--only", "nope", "-c", str(cfg))
    assert r.returncode == 2 and "unknown plot" in r.stderr


def test_run_renders_plots_then_plot_only_png_and_pdf(tmp_path):
    ws = tmp_path / "ws"
    cfg = make_workspace(ws, quotas={"plain": 2, "sigma70": 1})
    r = dense("run", "-c", str(cfg))  # plots after the run (no --no-plot)
    assert r.returncode == 0, r.stderr
    assert_workspace_valid(ws)
    plots = ws / "outputs" / "plots"
    assert not (plots / "logos.png").exists()  # no PWM input: no logos
    for name in DRAWN_FOR_SITES:
        png = plots / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    r = dense("plot", "--only", "sequences,occupancy", "--format", "png,pdf", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    listed = r.stdout.split()
    assert len(listed) == 4
    for name in ("sequences", "occupancy"):
        assert (plots / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
    inv = json.loads((plots / "plots_manifest.json").read_text())
    assert {(f["plot"], f["format"]) for f in inv["files"]} == {("sequences", "png"), ("sequences", "pdf"),
                                                              ("occupancy", "png"), ("occupancy", "pdf")}
    assert not list(plots.glob(".*tmp*"))
