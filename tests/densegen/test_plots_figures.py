"""The plots read at a glance: assertions on the figure objects of real runs (real CP-SAT, real data).

Two real runs are made once per module: the sites demo (with one extra regulator whose only site
is longer than the sequence, so it is never placed) and the PWM demo (background filler in the pool).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=True)

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from run_fixtures import REPO, deep_update, dense, make_workspace

from dnadesign.densegen.config import load_config
from dnadesign.densegen.outputs import committed_frame
from dnadesign.densegen.plots import (
    PLOTS,
    figures,
    logos,
    sequences,
)
from dnadesign.densegen.plots.aggregate import covered_positions
from dnadesign.densegen.plots.data import PlotData, explode_placements, inputs_view, load_plot_data
from dnadesign.densegen.plots.timeline import Timeline, run_timeline
from tests.helpers_validate import assert_workspace_valid

pytestmark = pytest.mark.slow
NEVER_PLACED = "ZzzLong"  # one 60-bp site: longer than the 50-bp sequences, never placed


class RunData(PlotData):
    """The streamed PlotData plus the ground truth read the simple way (every row, every placement)."""

    frame: pl.DataFrame
    placements: pl.DataFrame

    @property
    def sites(self) -> pl.DataFrame:
        return self.placements.filter(pl.col("role") == "site")


def load_with_truth(cfg_path: Path, batch_rows: int | None = None) -> RunData:
    cfg = load_config(cfg_path)
    data = load_plot_data(cfg, batch_rows=batch_rows)
    out = RunData(data.run_id, data.agg, data.events, data.inputs, data.examples, data.example_placements)
    out.frame = committed_frame(cfg)[0]
    out.placements = explode_placements(out.frame, inputs_view(cfg))
    out.cfg_path = cfg_path  # type: ignore[attr-defined]
    return out


@pytest.fixture(scope="module")
def sites_data(tmp_path_factory):
    ws = tmp_path_factory.mktemp("plots") / "sites"
    cfg = make_workspace(ws, quotas={"plain": 3, "sigma70": 2})
    with (ws / "inputs" / "regulondb_sites.csv").open("a") as fh:
        fh.write(f"{NEVER_PLACED},{'ACGTTGCA' * 7}ACGT\n")
    r = dense("run", "--no-plot", "--progress", "off", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert_workspace_valid(ws)
    return load_with_truth(cfg)


@pytest.fixture(scope="module")
def pwm_data(tmp_path_factory):
    ws = tmp_path_factory.mktemp("plots") / "pwm"
    shutil.copytree(REPO / "workspaces" / "demo_pwm", ws, ignore=shutil.ignore_patterns("outputs"))
    cfg_path = ws / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg = deep_update(cfg, {"solver": {"time_limit_s": 3, "run_time_limit_s": 8, "workers": 1},
                            "runtime": {"max_seconds": 120}})
    cfg["generation"]["plans"][0]["sequences"] = 3
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    r = dense("run", "--no-plot", "--progress", "off", "-c", str(cfg_path))
    assert r.returncode == 0, r.stderr
    assert_workspace_valid(ws, "densegen/demo_pwm")
    return load_with_truth(cfg_path)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _integer_ticks(values) -> bool:
    return all(float(v).is_integer() for v in values)


def _legend_clear_of_axes(fig, legend, axes) -> None:
    """The legend's box shares no area with any axes' data area."""
    fig.canvas.draw()
    box = legend.get_window_extent()
    for ax in axes:
        data_box = ax.get_window_extent()
        overlap_w = min(box.x1, data_box.x1) - max(box.x0, data_box.x0)
        overlap_h = min(box.y1, data_box.y1) - max(box.y0, data_box.y0)
        assert overlap_w <= 0.5 or overlap_h <= 0.5, f"legend {box} over axes {data_box}"


def test_registry_lists_the_new_plots():
    assert {"positions", "logos"} <= set(PLOTS)


def test_site_usage_lists_every_regulator_including_never_placed(sites_data):
    fig = figures.site_usage(sites_data)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert set(labels) == set(sites_data.regulators)
    assert NEVER_PLACED in labels and "LexA" in labels
    assert any("never placed" in t.get_text() for t in ax.texts)
    assert _integer_ticks(ax.get_xticks())
    assert ax.get_xlabel() == "placed binding sites"
    _legend_clear_of_axes(fig, ax.get_legend(), [ax])
    # the bars add up to the binding sites placed
    widths = sum(p.get_width() for p in ax.patches)
    assert widths == sites_data.sites.height


@pytest.mark.parametrize("name", ["site_usage", "occupancy", "positions", "sites_per_sequence", "gc", "progress"])
def test_legends_sit_beside_the_data(sites_data, name):
    fig = figures_by_name(name, sites_data)
    ax = fig.axes[0]
    assert ax.get_legend() is not None, name
    _legend_clear_of_axes(fig, ax.get_legend(), [ax])


def figures_by_name(name: str, data):
    from dnadesign.densegen.plots.render import draw

    return draw(name, data)


@pytest.mark.parametrize("name", ["sites_per_sequence", "gc", "progress"])
def test_count_axes_have_whole_number_ticks(sites_data, name):
    fig = figures_by_name(name, sites_data)
    fig.canvas.draw()
    ax = fig.axes[0]
    assert _integer_ticks(ax.get_yticks()), ax.get_yticks()
    if name == "sites_per_sequence":
        assert _integer_ticks(ax.get_xticks())
        bar_total = sum(p.get_height() for p in ax.patches)
        assert bar_total == sites_data.frame.height


def test_sequence_gallery_has_bp_axis_readable_bases_and_promoter_labels(sites_data):
    fig = sequences.sequence_gallery(sites_data)
    axes = [ax for ax in fig.axes]
    assert axes and axes[-1].get_xlabel() == "position (bp)"
    L = int(sites_data.frame["length"].max())
    seqs = set(sites_data.frame["sequence"].to_list())
    texts = []
    for ax in axes:
        ticks = list(ax.get_xticks())
        assert ticks[0] == 0 and all(t % 10 == 0 for t in ticks) and max(ticks) < L
        bases = [t for t in ax.texts if t.get_text() in seqs]
        assert len(bases) == 1 and bases[0].get_fontsize() >= 6  # the row's bases, drawn at a readable size
        texts.extend(t.get_text() for t in ax.texts)
    assert any(t.startswith("-35") for t in texts) and any(t.startswith("-10") for t in texts)
    assert not any("upstream" in t or "downstream" in t for t in texts)
    # bases line up with the bp axis: the glyph run spans L positions of the axis
    fig.canvas.draw()
    ax = axes[0]
    base_text = next(t for t in ax.texts if t.get_text() in seqs)
    box = base_text.get_window_extent()
    x0, x1 = ax.transData.transform([(-0.5, 0), (L - 0.5, 0)])[:, 0]
    assert abs(box.x0 - x0) < 3 and abs((box.x1 - box.x0) - (x1 - x0)) < 0.02 * (x1 - x0)
    legend = fig.legends[0]
    _legend_clear_of_axes(fig, legend, axes)


def test_positions_show_strands_per_regulator_and_unplaced_rows(sites_data):
    fig = figures.regulator_positions(sites_data)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert [lab.split("\n")[0] for lab in labels] == list(reversed(sites_data.regulators))
    assert f"{NEVER_PLACED}\nnever placed" in labels
    counts = sites_data.sites.group_by("regulator", "strand").len()
    for reg, strand, n in counts.iter_rows():
        label = next(lab for lab in labels if lab.split("\n")[0] == reg)
        assert f"{n} {strand}" in label, (label, strand, n)
    assert ax.get_xlabel().startswith("site start (bp")


def test_progress_marks_the_time_to_the_first_sequence(sites_data):
    fig = figures.progress_over_time(sites_data)
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("time to first sequence:") for t in legend)
    assert all(any(t.startswith(f"{plan} (first after") for t in legend) for plan in sites_data.plan_order)
    _, secs = run_timeline(sites_data.events, sites_data.frame["densegen__accepted_at"].to_list())
    first = min(secs)
    assert first > 0  # measured from the session's start, not from the first row
    vlines = [line for line in ax.lines if line.get_linestyle() == ":"]
    assert vlines and abs(vlines[0].get_xdata()[0] - first) < 1e-6
    assert "run time" in ax.get_xlabel()


def test_timeline_cuts_idle_gaps_and_merges_overlaps():
    tl = Timeline.from_intervals([(100.0, 110.0), (105.0, 120.0), (1000.0, 1005.0)])
    assert tl.run_time(100.0) == 0.0 and tl.run_time(120.0) == 20.0
    assert tl.run_time(1002.0) == 22.0
    assert tl.run_time(500.0) == 20.0  # idle time between sessions counts nothing
    assert tl.breaks == [20.0]


def test_background_filler_is_drawn_apart_and_never_counted(pwm_data):
    filler = pwm_data.placements.filter(pl.col("role") == "filler")
    assert filler.height > 0  # the demo's plan includes a background pool
    assert "background" not in pwm_data.regulators
    assert not pwm_data.sites.filter(pl.col("regulator") == "background").height
    labels = [t.get_text() for t in figures.site_usage(pwm_data).axes[0].get_yticklabels()]
    assert "background" not in labels and set(labels) == {"LexA", "CpxR", "Fur", "PhoB"}
    fig = sequences.sequence_gallery(pwm_data)
    names = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "background filler (not a site)" in names and "background" not in names
    ax = figures.sites_per_sequence(pwm_data).axes[0]
    mean_in_legend = [float(t.get_text().split("mean ")[1].rstrip(")")) for t in ax.get_legend().get_texts()]
    expected = pwm_data.sites.height / pwm_data.frame.height
    assert abs(mean_in_legend[0] - expected) < 0.01


def test_logos_of_the_pwm_inputs(pwm_data, sites_data):
    fig = logos.motif_logos(pwm_data)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title(loc="left").split(" (")[0] for ax in visible] == ["LexA", "CpxR", "Fur", "PhoB"]
    for ax in visible:
        assert ax.get_ylabel() == "bits" and ax.get_ylim() == (0.0, 2.0)
        assert _integer_ticks(ax.get_xticks()) and min(ax.get_xticks()) >= 1
        assert len(ax.patches) > 0  # glyphs drawn
    assert logos.motif_logos(sites_data) is None  # site tables have no matrices


def test_information_matrix_is_bounded_by_two_bits():
    import numpy as np

    m = np.array([[10, 0, 0, 0], [1, 1, 1, 1], [5, 5, 0, 0]], dtype=float)
    h = logos.information_matrix(m)
    assert 1.6 < h.sum(axis=1)[0] <= 2.0 and h.sum(axis=1)[1] == 0.0 and 0.7 < h.sum(axis=1)[2] < 1.0


def test_occupancy_counts_each_covered_position_once_per_sequence(sites_data):
    L = int(sites_data.frame["length"].max())
    sites = sites_data.sites
    expected = [0] * L
    for _key, grp in sites.group_by("id"):
        covered = {i for off, end in grp.select("offset", "end").iter_rows() for i in range(off, min(end, L))}
        for i in covered:
            expected[i] += 1
    assert covered_positions(sites, L).tolist() == expected
    ax = figures.occupancy(sites_data).axes[0]
    line = ax.get_lines()[0]
    assert max(line.get_ydata()) <= 1.0 and ax.get_ylabel() == "fraction of sequences covered"


def test_streamed_aggregate_equals_the_whole_frame_whatever_the_batch_size(sites_data, pwm_data):
    """Batches of 1 and 2 rows give the same counts, histograms and sample as one batch, and match the rows."""
    for data in (sites_data, pwm_data):
        for batch_rows in (1, 2):
            small = load_plot_data(load_config(data.cfg_path), batch_rows=batch_rows).agg
            agg = data.agg
            assert small.rows == agg.rows == data.frame.height
            assert small.site_counts == agg.site_counts
            assert small.starts.keys() == agg.starts.keys() and small.cover.keys() == agg.cover.keys()
            for key in agg.starts:
                n = max(len(agg.starts[key]), len(small.starts[key]))
                assert np.array_equal(np.pad(agg.starts[key], (0, n - len(agg.starts[key]))),
                                      np.pad(small.starts[key], (0, n - len(small.starts[key]))))
            for key in agg.cover:
                assert np.array_equal(agg.cover[key][:agg.L], small.cover[key][:agg.L])
            for plan, ps in agg.plans.items():
                other = small.plans[plan]
                assert (ps.rows, ps.sites) == (other.rows, other.sites)
                assert np.array_equal(ps.gc_hist, other.gc_hist) and np.array_equal(np.sort(ps.times), np.sort(other.times))
            assert sorted(small.sample["id"].to_list()) == sorted(agg.sample["id"].to_list())
        # against the rows read whole
        truth = dict(((r, p), n) for r, p, n in data.sites.group_by("regulator", "plan").len().iter_rows())
        assert data.agg.site_counts == truth
        for (reg, strand), grp in data.sites.group_by("regulator", "strand"):
            assert data.agg.starts[(reg, strand)].sum() == grp.height
            assert np.flatnonzero(data.agg.starts[(reg, strand)]).tolist() == sorted(set(grp["offset"].to_list()))
        per_plan = dict(data.frame.group_by("densegen__plan").len().iter_rows())
        assert {p: ps.rows for p, ps in data.agg.plans.items()} == per_plan


def test_the_sample_is_bounded_and_seeded(sites_data, monkeypatch):
    """With fewer sample slots than rows the sample keeps exactly that many rows per plan, the same on every run."""
    from dnadesign.densegen.plots import aggregate

    monkeypatch.setattr(aggregate, "SAMPLE_ROWS", 1)
    monkeypatch.setattr(aggregate, "TIME_SAMPLE", 1)
    cfg = load_config(sites_data.cfg_path)
    a = load_plot_data(cfg, batch_rows=1)
    b = load_plot_data(cfg)
    assert a.agg.sample.group_by("densegen__plan").len()["len"].to_list() == [1, 1]
    assert sorted(a.agg.sample["id"].to_list()) == sorted(b.agg.sample["id"].to_list())
    for ps in a.agg.plans.values():
        assert len(ps.times) == 1 and ps.rows > 1
    # the progress curve still runs from the first accepted row (1) to all of them
    x, plans, ranks = figures.accepted_curve(a)
    for plan, ps in a.agg.plans.items():
        r = ranks[np.array(plans) == plan]
        assert r[0] == 1 and r[-1] == ps.rows
    assert a.examples is not None and set(a.examples["sequence"].to_list()) <= set(sites_data.frame["sequence"].to_list())
    fig = sequences.sequence_gallery(a)
    assert fig is not None and len([ax for ax in fig.axes]) == a.examples.height == 2


def test_covered_positions_counts_nested_and_overlapping_sites_once():
    rng = np.random.default_rng(5)
    rows, L = 300, 40
    off = rng.integers(0, L, 2000)
    frame = pl.DataFrame({"_row": rng.integers(0, rows, 2000), "offset": off,
                          "end": np.minimum(off + rng.integers(1, 15, 2000), L + 3)})  # ends past L are clipped
    expected = np.zeros(L)
    for _r, grp in frame.group_by("_row"):
        covered = {i for o, e in grp.select("offset", "end").iter_rows() for i in range(o, min(e, L))}
        expected[sorted(covered)] += 1
    assert covered_positions(frame, L).tolist() == expected.tolist()
    by_id = frame.with_columns(pl.format("id{}", pl.col("_row")).alias("id")).drop("_row")
    assert covered_positions(by_id, L).tolist() == expected.tolist()


def test_both_sinks_stream_the_same_rows_and_fetch_by_id(sites_data):
    """The run writes USR and Parquet: streaming either (any batch size) gives the run's rows, projected."""
    from dnadesign.densegen.run_scan import _sink_batches, fetch_rows, run_sinks
    from dnadesign.densegen.sinks import ParquetSink, UsrSink

    cfg = load_config(sites_data.cfg_path)
    sinks = run_sinks(cfg)
    assert {type(s) for s in sinks} == {UsrSink, ParquetSink}
    truth = sorted(sites_data.frame["id"].to_list())
    for sink in sinks:
        for batch_rows in (1, 3, 1000):
            tables = list(_sink_batches(sink, ["id", "densegen__gc"], batch_rows))
            assert all(t.num_rows <= batch_rows for t in tables)
            assert all(set(t.column_names) == {"id", "densegen__gc", "densegen__run_id", "densegen__plan"} for t in tables)
            assert sorted(i for t in tables for i in t.column("id").to_pylist()) == truth
    some = truth[:2]
    rows = fetch_rows(cfg, [*some, "0" * 40], ["id", "sequence"])
    assert sorted(rows["id"].to_list()) == some and rows.columns == ["id", "sequence"]
