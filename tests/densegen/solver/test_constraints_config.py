"""The rule keys of the config: parsed by their constraint modules into plan rules, refused with
one line naming the key, and honoured end to end by `dense run` (real CP-SAT, RegulonDB sites)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from dnadesign.core.errors import ConfigError
from dnadesign.densegen.config import load_config
from dnadesign.densegen.plans import resolve_plans
from dnadesign.densegen.solver import Site
from dnadesign.densegen.solver import constraints as c
from dnadesign.densegen.solver.constraints.homopolymer import longest_run
from dnadesign.densegen.solver.constraints.iupac import both_strands, matches

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from run_fixtures import dense, make_workspace, usr_rows

from tests.helpers_validate import assert_workspace_valid

RULES = {
    "sequence_constraints": {
        "forbid_patterns": ["gcnnnnnnngc"],
        "forbid_enzymes": ["BsaI", "EcoRI"],
        "gc_windows": [{"window": 20, "min": 0.2, "max": 0.8}],
        "max_homopolymer": 5,
    },
    "regulator_constraints": {
        "max_count_by_regulator": {"Fis": 1},
        "pins": [{"regulator": "CpxR", "window": [0, 30]}],
        "spacing": [{"a": "CpxR", "b": "ArcA", "min_gap": 0, "max_gap": 20}],
        "weights": {"LexA": 3},
    },
}


def _with_rules(raw: dict, seq: dict | None = None, reg: dict | None = None) -> None:
    raw["generation"]["sequence_constraints"] = dict(RULES["sequence_constraints"] if seq is None else seq)
    raw["generation"]["plans"][0]["regulator_constraints"] = dict(RULES["regulator_constraints"] if reg is None else reg)


def test_rule_keys_become_plan_rules_and_problem_rules(minimal):
    cfg = load_config(minimal(lambda raw: _with_rules(raw)))
    (plan,) = resolve_plans(cfg)
    assert plan.rules == (
        c.ForbiddenPatterns(("GCNNNNNNNGC",), ("GCNNNNNNNGC",)),
        c.ForbiddenPatterns(("GGTCTC", "GAATTC"), ("BsaI", "EcoRI")),
        c.GcContent(0.2, 0.8, 20),
        c.MaxHomopolymer(5),
        c.RegulatorCount("Fis", 0, 1),
        c.Pin("CpxR", 0, 30),
        c.Spacing("CpxR", "ArcA", 0, 20),
        c.RegulatorWeights((("LexA", 3),)),
    )
    assert "CpxR" in plan.required_regulators  # pinned: the sampler must offer it
    problem = plan.build_problem([Site("s1", "ACGTACGTAC", "CpxR")])
    assert problem.rules == plan.rules and problem.weighted
    described = json.loads(json.dumps(plan.describe()))
    assert [r["rule"] for r in described["rules"]] == [
        "forbid_patterns", "forbid_enzymes", "gc_windows", "max_homopolymer", "max_count_by_regulator", "pins", "spacing",
        "weights"]


@pytest.mark.parametrize(
    "seq, reg, key, text",
    [
        ({"forbid_kmers": ["GCNNNNNNNGC"]}, None, "generation.sequence_constraints.forbid_kmers",
         "go under `generation.sequence_constraints.forbid_patterns`"),
        ({"forbid_patterns": ["GCXGC"]}, None, "generation.sequence_constraints.forbid_patterns",
         "forbid_patterns[0]: 'GCXGC' is not a DNA pattern"),
        ({"forbid_enzymes": ["BsaJ1"]}, None, "generation.sequence_constraints.forbid_enzymes", "did you mean 'BsaJI'?"),
        ({"gc_windows": [{"window": 10, "min": 0.7, "max": 0.2}]}, None, "generation.sequence_constraints.gc_windows",
         "gc_windows[0]: min 0.7 is above max 0.2"),
        ({"gc_windows": [{"window": 10, "minimum": 0.2}]}, None, "generation.sequence_constraints.gc_windows",
         "gc_windows[0]: unknown key 'minimum'"),
        ({"max_homopolymer": 0}, None, "generation.sequence_constraints.max_homopolymer", "max_homopolymer must be >= 1"),
        ({}, {"max_count_by_regulator": {"Fis": -1}}, "generation.plans[0].regulator_constraints.max_count_by_regulator",
         "max_count_by_regulator[Fis] must be >= 0"),
        ({}, {"pins": [{"regulator": "CpxR", "at": 3, "window": [0, 4]}]}, "generation.plans[0].regulator_constraints.pins",
         "give exactly one of `at`"),
        ({}, {"spacing": [{"a": "CpxR", "b": "ArcA"}]}, "generation.plans[0].regulator_constraints.spacing",
         "spacing[0]: give min_gap, max_gap or both"),
        ({}, {"weights": {"LexA": 2.5}}, "generation.plans[0].regulator_constraints.weights",
         "weights[LexA] must be an integer"),
    ],
)
def test_bad_rule_values_are_one_line_naming_the_key(minimal, seq, reg, key, text):
    path = minimal(lambda raw: _with_rules(raw, seq, reg or {}))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert "\n" not in msg and f"`{key}`" in msg and text in msg, msg


def test_validate_config_reports_an_impossible_pin(tmp_path):
    cfg = make_workspace(tmp_path / "ws", quotas={"plain": 1, "sigma70": 1})
    data = yaml.safe_load(cfg.read_text())
    data["generation"]["plans"][0]["regulator_constraints"]["pins"] = [{"regulator": "LexA", "at": 45}]
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    r = dense("validate-config", "-c", str(cfg))
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "pin 'LexA' at 45" in ln]
    assert len(lines) == 1 and "cannot start there in a 50-bp sequence" in lines[0], r.stderr


@pytest.mark.slow
def test_dense_run_honours_the_rules(tmp_path):
    """The demo without its LexA minimum: weights place the long LexA sites; every row obeys the rules."""
    cfg = make_workspace(tmp_path / "ws", quotas={"plain": 3, "sigma70": 2})
    data = yaml.safe_load(cfg.read_text())
    data["generation"]["sampling"]["cover_all_regulators"] = True
    data["solver"]["solutions_per_library"] = 1  # weights pick the best solution; later ones are levelled by count
    data["generation"]["sequence_constraints"].update(
        {"forbid_enzymes": ["BsaI", "EcoRI"], "max_homopolymer": 5, "gc_windows": [{"window": 20, "min": 0.15, "max": 0.85}]})
    for plan in data["generation"]["plans"]:
        rc = plan["regulator_constraints"]
        rc.pop("min_count_by_regulator", None)
        rc["weights"] = {"LexA": 4}
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    r = dense("run", "--no-plot", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    rows = usr_rows(tmp_path / "ws")
    assert rows.height == 5
    for row in rows.iter_rows(named=True):
        seq = row["sequence"]
        regs = [p["regulator"] for p in row["densegen__placements"] if not p["fixed"]]
        assert "LexA" in regs, (seq, regs)
        assert longest_run(seq)[0] <= 5
        for site in ("GGTCTC", "GAATTC"):
            assert not any(matches(seq, p) for p in both_strands((site,)))
        gcs = [sum(c in "GC" for c in seq[i : i + 20]) / 20 for i in range(len(seq) - 19)]
        assert min(gcs) >= 0.15 and max(gcs) <= 0.85
    assert_workspace_valid(tmp_path / "ws")


def test_plan_pools_drop_sites_the_rules_refuse(minimal):
    from dnadesign.densegen.library import build_pools, plan_pool

    plain = load_config(minimal())
    (p0,) = resolve_plans(plain)
    before, _ = plan_pool(p0, build_pools(plain))
    cfg = load_config(minimal(lambda raw: _with_rules(raw, {"forbid_enzymes": ["MseI"], "max_homopolymer": 4}, {})))
    (plan,) = resolve_plans(cfg)
    sites, dropped = plan_pool(plan, build_pools(cfg))
    gone = [s for s in before if matches(s.sequence, "TTAA") or longest_run(s.sequence)[0] > 4]  # TTAA: a palindrome
    assert gone and dropped["breaks a sequence rule"] == len(gone)
    assert {s.id for s in sites} == {s.id for s in before} - {s.id for s in gone}
