"""`dense plot` / `dense ls-plots` and the plots rendered after `dense run` (real run, real files)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from run_fixtures import dense, make_workspace

pytestmark = pytest.mark.slow
ALL = ["site_usage", "occupancy", "positions", "sites_per_sequence", "gc", "progress", "sequences", "logos"]
DRAWN_FOR_SITES = [n for n in ALL if n != "logos"]  # logos need PWM inputs


def test_ls_plots_lists_every_plot():
    r = dense("ls-plots", "--json")
    assert r.returncode == 0
    names = [p["name"] for p in json.loads(r.stdout)]
    assert names == ALL
    r = dense("ls-plots")
    assert r.returncode == 0 and "occupancy" in r.stdout


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
