"""Plan resolution: matrix expansion, quota split, problems built from libraries, quota extension."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnadesign.core.errors import ConfigError
from dnadesign.densegen.config import load_config
from dnadesign.densegen.plans import PlanSpec, extend_quotas, resolve_plans, split_quota, total_quota
from dnadesign.densegen.solver import Site

SETS = {"m35": {"a": "TTGACA", "b": "TTTACA", "c": "TTGATA"}, "m10": {"x": "TATAAT", "y": "TATACT", "z": "GATAAT"}}


def _matrix(pairing, sequences=12, name_template=None, **extra):
    def edit(r):
        r["motif_sets"] = SETS
        r["generation"]["plans"][0]["sequences"] = sequences
        if name_template:
            r["generation"]["plans"][0]["name_template"] = name_template
        r["generation"]["plans"][0]["fixed_elements"] = {"fixed_element_matrix": {
            "upstream_from_set": "m35", "downstream_from_set": "m10", "pairing": pairing,
            "spacer": [16, 18], "upstream_pos": [0, 20], **extra}}
    return edit


def test_demo_plans(demo_workspace):
    cfg = load_config(demo_workspace("demo_sites"))
    plans = resolve_plans(cfg)
    assert [p.name for p in plans] == ["plain", "sigma70"]
    plain, sigma = plans
    assert (plain.quota, plain.include_inputs, plain.min_total_sites) == (4, ("regulondb_sites",), 4)
    assert plain.groups[0].members == ("LexA", "CpxR") and plain.required_regulators == ("CpxR", "LexA")
    p = sigma.promoters[0]
    assert (p.upstream, p.downstream, p.spacer_min, p.spacer_max, p.upstream_pos) == ("TTGACA", "TATAAT", 16, 18, (20, 60))
    assert sigma.forbid_kmers == ("TTGACA", "TATAAT") and sigma.sequence_length == 100
    assert total_quota(plans) == 8
    json.dumps([q.describe() for q in plans])  # JSON-ready


def test_build_problem_carries_every_constraint(demo_workspace):
    cfg = load_config(demo_workspace("demo_sites", edit=lambda r: r["generation"]["plans"][1].update(
        fixed_elements={**r["generation"]["plans"][1]["fixed_elements"], "side_biases": {"left": ["LexA"], "right": ["Fur"]}},
        regulator_constraints={"min_count_by_regulator": {"Fis": 2}, "min_total_sites": 3})))
    sigma = resolve_plans(cfg)[1]
    lib = (Site("s1", "ACGTACGTAC", "Fis"), Site("s2", "TTTTCCCCAA", "Fis"))
    prob = sigma.build_problem(lib)
    assert prob.sites == lib and prob.length == 100 and prob.strands == "double"
    assert prob.promoters[0].upstream == "TTGACA" and prob.promoters[0].upstream_pos == (20, 60)
    assert dict(prob.min_count_by_regulator) == {"Fis": 2} and prob.min_total_sites == 3
    assert prob.forbid_kmers == ("TTGACA", "TATAAT")
    assert prob.side_biases[0].left == ("LexA",) and prob.side_biases[0].right == ("Fur",)


def test_matrix_cross_product_zip_and_explicit(minimal):
    plans = resolve_plans(load_config(minimal(_matrix("cross_product", sequences=12))))
    assert len(plans) == 9
    assert plans[0].name == "p__a__x" and plans[-1].name == "p__c__z"
    assert [p.quota for p in plans] == [2, 2, 2, 1, 1, 1, 1, 1, 1]
    assert all(p.base_plan == "p" for p in plans)
    assert dict(plans[4].variant) == {"up": "b", "down": "y"}
    assert (plans[4].promoters[0].upstream, plans[4].promoters[0].downstream) == ("TTTACA", "TATACT")

    zipped = resolve_plans(load_config(minimal(_matrix("zip", sequences=3, upstream_variants=["c", "a", "b"]))))
    assert [(dict(p.variant)["up"], dict(p.variant)["down"]) for p in zipped] == [("c", "x"), ("a", "y"), ("b", "z")]

    pairs = [{"up": "a", "down": "z"}, {"up": "c", "down": "x"}]
    explicit = resolve_plans(load_config(minimal(_matrix("explicit_pairs", sequences=5, pairs=pairs,
                                                          name_template="{plan}-{up}{down}"))))
    assert [(p.name, p.quota) for p in explicit] == [("p-az", 3), ("p-cx", 2)]


@pytest.mark.parametrize("edit, match", [
    (_matrix("zip", upstream_variants=["a", "b"]), "pairing zip needs as many"),
    (_matrix("cross_product", upstream_variants=["q"]), "variant 'q' is not in motif set 'm35'"),
    (_matrix("cross_product", sequences=4), "expands to 9 promoter variants but asks for only 4"),
    (_matrix("explicit_pairs", pairs=[{"up": "a", "down": "x"}, {"up": "a", "down": "x"}]), "lists a pair twice"),
    (_matrix("cross_product", name_template="{plan}"), "plan names clash"),
    (_matrix("cross_product", name_template="{plan}_{nope}"), "name_template"),
])
def test_matrix_errors(minimal, edit, match):
    with pytest.raises(ConfigError, match=match):
        resolve_plans(load_config(minimal(edit)))


def test_max_plans_cap(minimal):
    def edit(r):
        _matrix("cross_product")(r)
        r["generation"]["max_plans"] = 4
    with pytest.raises(ConfigError, match="max_plans"):
        resolve_plans(load_config(minimal(edit)))


def test_plan_sampling_overrides_inherit(minimal):
    def edit(r):
        r["generation"]["sampling"] = {"library_size": 9, "strategy": "uniform"}
        r["generation"]["plans"][0]["sampling"] = {"library_size": 5}
    plan = resolve_plans(load_config(minimal(edit)))[0]
    assert (plan.sampling.library_size, plan.sampling.strategy) == (5, "uniform")
    assert plan.sampling_overrides == ("library_size",)


def _plans(quotas):
    return [PlanSpec(name=f"p{i}", quota=q, include_inputs=("x",), sequence_length=50) for i, q in enumerate(quotas)]


def test_extend_quotas_examples():
    assert [p.quota for p in extend_quotas(_plans([10, 10, 20]), 8)] == [12, 12, 24]
    assert [p.quota for p in extend_quotas(_plans([1, 1, 1]), 2)] == [2, 2, 1]
    # weights use max(quota, generated)
    assert [p.quota for p in extend_quotas(_plans([5, 5]), 10, generated={"p1": 15})] == [8, 12]
    with pytest.raises(ConfigError):
        extend_quotas(_plans([1]), -1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 500), min_size=1, max_size=8), st.integers(0, 2000))
def test_extend_quotas_adds_exactly_n_deterministically(quotas, n):
    plans = _plans(quotas)
    out = extend_quotas(plans, n)
    assert sum(p.quota for p in out) - sum(quotas) == n
    assert all(b.quota >= a.quota for a, b in zip(plans, out))
    assert [p.quota for p in out] == [p.quota for p in extend_quotas(plans, n)]
    total = sum(quotas)
    for a, b in zip(plans, out):  # each share is within one of its exact proportion
        assert abs((b.quota - a.quota) - n * a.quota / total) < 1 + 1e-9


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 10_000), st.integers(1, 50))
def test_split_quota(total, n):
    parts = split_quota(total, n)
    assert sum(parts) == total and max(parts) - min(parts) <= 1 and parts == sorted(parts, reverse=True)
