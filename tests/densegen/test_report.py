"""`dense report`: a self-contained HTML page of a real run, opened in a real headless Chromium.

The browser test drives Debian's `chromium` through Playwright (`executable_path`, no downloaded
browser). Under CI=true a missing browser or Playwright fails the test; locally it skips.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from run_fixtures import dense, make_workspace

from tests.helpers_validate import assert_workspace_valid

pytestmark = pytest.mark.slow
VIEWPORT = {"width": 1280, "height": 900}
NEVER_PLACED = "ZzzLong"  # one 60-bp site: longer than the 50-bp sequences, so never placed


class _Refs(HTMLParser):
    """Every src/href of the page, and the text."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href") and v is not None:
                self.refs.append((tag, k, v))

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Refs:
    p = _Refs()
    p.feed(html)
    return p


@pytest.fixture(scope="module")
def run_ws(tmp_path_factory):
    """A real small run of the sites demo, with its report written by the real CLI."""
    ws = tmp_path_factory.mktemp("report") / "ws"
    cfg = make_workspace(ws, quotas={"plain": 2, "sigma70": 1})
    with (ws / "inputs" / "regulondb_sites.csv").open("a") as fh:
        fh.write(f"{NEVER_PLACED},{'ACGTTGCA' * 7}ACGT\n")
    r = dense("run", "--no-plot", "--progress", "off", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert_workspace_valid(ws)
    r = dense("report", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    page = Path(r.stdout.strip())
    assert page == ws / "outputs" / "report.html"
    return ws, cfg, page


def test_report_is_self_contained_and_matches_the_run(run_ws):
    ws, cfg, page = run_ws
    html = page.read_text()
    refs = _parse(html)
    text = " ".join(refs.text)
    # nothing loaded from anywhere: images are data URIs, links are in-page anchors or relative table files
    for tag, attr, value in refs.refs:
        assert not re.match(r"^[a-z][a-z0-9+.-]*://", value, re.I), (tag, attr, value)
        if tag == "img":
            assert value.startswith("data:image/png;base64,")
    imgs = [v for t, _a, v in refs.refs if t == "img"]
    names = re.findall(r'<figure id="plot-([a-z_]+)"', html)
    assert set(names) >= {"site_usage", "occupancy", "positions", "sites_per_sequence", "gc", "progress", "sequences"}
    from PIL import Image

    for v in imgs:
        im = Image.open(io.BytesIO(base64.b64decode(v.split(",", 1)[1])))
        assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 150
    # the per-plan table and the summary say what `dense inspect run --json` says
    info = json.loads(dense("inspect", "run", "--json", "-c", str(cfg)).stdout)
    for p in info["plans"]:
        row = re.search(rf"<tr><td>{p['name']}</td><td>(\d+)</td><td>(\d+)</td><td>[^<]*</td><td>[^<]*</td><td>([0-9.]+)</td>",
                        html)
        assert row, p["name"]
        assert (int(row.group(1)), int(row.group(2))) == (p["quota"], p["generated"])
        assert abs(float(row.group(3)) - p["mean_sites_per_100bp"]) < 0.01
    assert "Unplaced regulators" in text and "Solver bound gaps" in text and "Analysis tables" in text
    assert f"{info['generated']} of quota {info['quota']}" in text
    tables = ws / "outputs" / "tables"
    if any(list((tables / t).glob("*.parquet")) for t in ("libraries", "attempts")):
        links = [v for t, _a, v in refs.refs if t == "a" and v.endswith(".parquet")]
        assert links and all((page.parent / v).is_file() for v in links)
    else:
        assert "This run has no analysis tables" in text


def test_report_json_lists_bound_gaps_from_the_records(run_ws):
    _ws, cfg, _page = run_ws
    out = Path(_page.parent / "elsewhere" / "r.html")
    r = dense("report", "--json", "--only", "sequences,site_usage", "-o", str(out), "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["path"] == str(out) and out.is_file()
    assert doc["plots"] == ["sequences", "site_usage"]
    gaps = {g["plan"]: g for g in doc["bound_gaps"]}
    assert set(gaps) == {"plain", "sigma70"}
    for g in gaps.values():
        assert g["with_bound"] == g["rows"] and 0 <= g["optimal"] <= g["rows"] and g["max_gap"] >= 0


def test_report_usage_and_input_errors_are_one_line(tmp_path, run_ws):
    _ws, cfg, _page = run_ws
    r = dense("report", "--only", "nope", "-c", str(cfg))
    assert r.returncode == 2 and "unknown plot" in r.stderr and "Traceback" not in r.stderr
    r = dense("report", "-c", str(tmp_path / "missing.yaml"))
    assert r.returncode == 1 and "Traceback" not in r.stderr and r.stderr.strip()
    r = dense("report", "-o", str(tmp_path), "-c", str(cfg))
    assert r.returncode == 2 and "is a directory" in r.stderr


def test_report_of_a_run_without_rows_says_so(tmp_path):
    cfg = make_workspace(tmp_path / "empty", quotas={"plain": 1, "sigma70": 1})
    r = dense("report", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    html = Path(r.stdout.strip()).read_text()
    assert "no committed sequences yet" in html and "<img" not in html


def test_report_of_an_array_run_lists_its_tasks(tmp_path):
    cfg = make_workspace(tmp_path / "arr", quotas={"plain": 2, "sigma70": 2})
    for shard in ("1/2", "2/2"):
        r = dense("run", "--no-plot", "--progress", "off", "--shard", shard, "-c", str(cfg))
        assert r.returncode == 0, r.stderr
    r = dense("report", "--json", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert len(doc["tasks"]) == 2 and sum(t["rows"] for t in doc["tasks"]) == doc["generated"] == 4
    html = Path(doc["path"]).read_text()
    assert 'id="tasks"' in html and html.count("<figure") >= 6
    assert_workspace_valid(tmp_path / "arr")


def _browser() -> str | None:
    for name in (os.environ.get("DNADESIGN_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def test_report_opens_in_a_headless_browser_without_errors(run_ws, tmp_path):
    chromium = _browser()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None  # type: ignore[assignment]
    if chromium is None or sync_playwright is None:
        missing = "chromium" if chromium is None else "playwright"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} is missing: .ci/run installs Debian's chromium and uv sync installs playwright")
        pytest.skip(f"{missing} not installed")
    _ws, _cfg, page_path = run_ws
    shot = tmp_path / "report.png"
    console, page_errors, failed, bad_status = [], [], [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.on("console", lambda m: console.append((m.type, m.text)))
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.on("requestfailed", lambda r: failed.append(r.url[:80]))
            page.on("response", lambda r: bad_status.append(r.url[:80]) if r.status >= 400 else None)
            page.goto(page_path.as_uri(), wait_until="load")
            unplaced = page.locator("#unplaced")
            unplaced_visible = unplaced.is_visible()
            unplaced_rows = page.locator("h2#unplaced + p + table tbody tr").all_inner_texts()
            images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
            title = page.title()
            page.screenshot(path=str(shot))
            full_height = page.evaluate("document.documentElement.scrollHeight")
        finally:
            browser.close()
    assert [c for c in console if c[0] in ("error", "warning")] == []
    assert page_errors == [] and failed == [] and bad_status == []
    assert images and all(ok and w > 0 for ok, w in images)  # every embedded plot decoded
    assert title.startswith("DenseGen run ")
    assert unplaced_visible  # the unplaced-regulator section is rendered, listing the regulator never placed
    assert sum(row.split("\t")[1] == NEVER_PLACED for row in unplaced_rows) == 2, unplaced_rows  # once per plan
    _ws, cfg, _page = run_ws
    listed = json.loads(dense("report", "--json", "-o", str(tmp_path / "r.html"), "-c", str(cfg)).stdout)
    assert len(unplaced_rows) == len(listed["unplaced_regulators"])  # the page shows every entry
    assert full_height > VIEWPORT["height"] * 3  # the plots are on the page
    from PIL import Image

    im = Image.open(shot)
    assert im.format == "PNG" and im.size == (VIEWPORT["width"], VIEWPORT["height"])
    colors = im.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colors is None or len(colors) > 20  # not a blank page
    grey = im.convert("L")
    dark = sum(grey.histogram()[:128])
    assert dark > 0.002 * im.size[0] * im.size[1]  # text drawn


def test_report_reads_the_run_once_and_agrees_with_each_reader(run_ws, monkeypatch):
    """`gather` folds statistics, bound gaps and the plots' aggregate from one pass over the rows,
    with the same figures `inspect_run` and `load_plot_data` give when each reads the run alone."""
    from dnadesign.densegen import run_scan
    from dnadesign.densegen.config import load_config
    from dnadesign.densegen.inspect_run import inspect_run
    from dnadesign.densegen.plots.data import load_plot_data
    from dnadesign.densegen.report.content import gather

    _ws, cfg_path, _page = run_ws
    cfg = load_config(cfg_path)
    alone_info, alone_plots = inspect_run(cfg), load_plot_data(cfg).agg
    passes = []
    real = run_scan.iter_run_batches

    def counted(*args, **kwargs):
        passes.append(args[1] if len(args) > 1 else kwargs.get("columns"))
        return real(*args, **kwargs)

    monkeypatch.setattr(run_scan, "iter_run_batches", counted)
    content = gather(cfg, ["sequences", "site_usage"])
    assert len(passes) == 1, passes
    assert content.info["plans"] == alone_info["plans"]
    assert content.info["unplaced_regulators"] == alone_info["unplaced_regulators"]
    assert {g["plan"]: g["rows"] for g in content.bound_gaps} == {p["name"]: p["generated"] for p in alone_info["plans"]}
    assert [f.name for f in content.figures] == ["sequences", "site_usage"]
    assert alone_plots.rows == alone_info["generated"]
