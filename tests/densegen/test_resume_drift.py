"""Config drift on resume: defaults added to the schema after a run started are not drift; real edits are.

A real run (real CP-SAT on the demo's sites) writes its effective config; the test then rewrites
that saved config as an older version of DenseGen would have written it (without the keys added
later, e.g. the newer regulator constraints), and resumes with `dense run --extend-quota`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from run_fixtures import dense, make_workspace

from dnadesign.densegen.session import changed_keys
from tests.helpers_validate import assert_workspace_valid

pytestmark = pytest.mark.slow
LATER_KEYS = ("max_count_by_regulator", "pins", "spacing", "weights")  # regulator constraints added after 1.0


def _age_saved_config(ws: Path) -> None:
    """Remove from the saved config the keys an older DenseGen did not write (their defaults are in effect)."""
    path = ws / "outputs" / "meta" / "effective_config.json"
    doc = json.loads(path.read_text())
    removed = 0
    for plan in doc["config"]["generation"]["plans"]:
        for key in LATER_KEYS:
            removed += plan["regulator_constraints"].pop(key, None) is not None
    assert removed == 2 * len(LATER_KEYS)  # two plans, each had every key
    path.write_text(json.dumps(doc))


def test_resume_after_defaults_were_added_does_not_warn_but_a_real_change_does(tmp_path):
    ws = tmp_path / "ws"
    cfg = make_workspace(ws, quotas={"plain": 1, "sigma70": 1})
    r = dense("run", "--no-plot", "--progress", "off", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    _age_saved_config(ws)
    r = dense("run", "--no-plot", "--progress", "off", "--extend-quota", "1", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert "config changed" not in r.stderr, r.stderr
    # a real change still warns, and names the key
    _age_saved_config(ws)
    doc = yaml.safe_load(cfg.read_text())
    doc["generation"]["plans"][0]["regulator_constraints"]["min_total_sites"] = 1
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    r = dense("run", "--no-plot", "--progress", "off", "--extend-quota", "1", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert "config changed since the last session (generation.plans" in r.stderr, r.stderr
    assert_workspace_valid(ws)


def test_changed_keys_treats_a_missing_unset_key_as_no_change():
    old = {"solver": {"time_limit_s": 1}, "generation": {"gc": {"min": 0.3}}}
    assert changed_keys(old, {**old, "postprocess": None}) == []
    assert changed_keys(old, {"solver": {"time_limit_s": 1, "hint": None}, "generation": {"gc": {"min": 0.3}}}) == []
    assert changed_keys(old, {"solver": {"time_limit_s": 1, "hint": 5}, "generation": {"gc": {"min": 0.3}}}) == ["solver.hint"]
    assert changed_keys(old, {"solver": {"time_limit_s": 1}, "generation": {"gc": {"min": 0.4}}}) == ["generation.gc.min"]
