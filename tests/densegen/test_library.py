"""Pools, library sampling and preflight checks on the real demo inputs."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnadesign.core.errors import ConfigError, InputError
from dnadesign.densegen.config import load_config
from dnadesign.densegen.library import LibrarySampler, Pool, build_pools, library_hash, plan_pool, preflight
from dnadesign.densegen.plans import PlanSpec, resolve_plans
from dnadesign.densegen.solver import Site, precheck


def _rc(s):
    return s.translate(str.maketrans("ACGT", "TGCA"))[::-1]


@pytest.fixture
def demo(demo_workspace):
    cfg = load_config(demo_workspace("demo_sites"))
    return cfg, resolve_plans(cfg), build_pools(cfg)


def test_pools_are_deterministic_and_described(demo_workspace):
    cfg = load_config(demo_workspace("demo_pwm"))
    a, b, c = build_pools(cfg, seed=1), build_pools(cfg, seed=1), build_pools(cfg, seed=2)
    assert a["regulondb_pwms"].sites == b["regulondb_pwms"].sites != c["regulondb_pwms"].sites
    assert a["background"].sites == b["background"].sites
    s = a["regulondb_pwms"].summary()
    assert s["kind"] == "pwm_sampled" and s["sites_per_regulator"] == {"CpxR": 30, "Fur": 30, "LexA": 30, "PhoB": 30}
    site = a["regulondb_pwms"].sites[0]
    assert a["regulondb_pwms"].info[site.id]["score_norm"] >= 0.7


def test_sampler_is_deterministic_per_seed_and_call(demo):
    cfg, plans, pools = demo
    plan = plans[0]
    s1, s2, s3 = (LibrarySampler(plan, pools, seed=k) for k in (4, 4, 5))
    libs1 = [s1.next() for _ in range(5)]
    assert libs1 == [s2.next() for _ in range(5)]
    assert libs1 != [s3.next() for _ in range(5)]
    assert len({library_hash(lib) for lib in libs1}) == 5


def test_library_respects_plan_constraints_and_uniqueness(demo):
    cfg, plans, pools = demo
    plain = plans[0]
    sampler = LibrarySampler(plain, pools, seed=1)
    for _ in range(30):
        lib = sampler.next()
        assert len(lib) == 10
        regs = {s.regulator for s in lib}
        assert regs & {"LexA", "CpxR"}  # group stress: 1 of LexA, CpxR
        canon = [min(s.sequence, _rc(s.sequence)) for s in lib]
        assert len(set(canon)) == len(canon)
        for a in lib:  # unique_binding_cores: no site inside another (either strand)
            for b in lib:
                if a is not b:
                    assert a.sequence not in b.sequence and _rc(a.sequence) not in b.sequence
        for s in lib:  # forbidden k-mers never offered
            for k in ("TTGACA", "TATAAT"):
                assert k not in s.sequence and k not in _rc(s.sequence)
        counts = Counter(s.regulator for s in lib)
        assert max(counts.values()) - min(counts.values()) <= 1  # tf_balanced over 6 regulators


def test_min_counts_cover_all_and_caps(demo):
    cfg, plans, pools = demo
    base = plans[0]
    from dataclasses import replace

    plan = replace(base, min_count_by_regulator=(("Fur", 3),),
                   sampling=base.sampling.model_copy(update={"strategy": "uniform", "cover_all_regulators": True,
                                                             "max_sites_per_regulator": 3, "library_size": 10}))
    sampler = LibrarySampler(plan, pools, seed=9)
    for _ in range(20):
        lib = sampler.next()
        counts = Counter(s.regulator for s in lib)
        assert counts["Fur"] == 3 and len(counts) == 6 and max(counts.values()) <= 3 and len(lib) == 10


def test_coverage_weighted_spreads_offers_more_than_uniform(demo):
    cfg, plans, pools = demo
    from dataclasses import replace

    def offers(strategy):
        plan = replace(plans[0], groups=(), sampling=plans[0].sampling.model_copy(update={"strategy": strategy, "coverage_alpha": 3.0}))
        sampler = LibrarySampler(plan, pools, seed=2)
        seen = Counter()
        for _ in range(40):
            seen.update(s.id for s in sampler.next())
        return seen, len(sampler.sites)

    cov, n = offers("coverage_weighted")
    uni, _ = offers("uniform")
    assert len(cov) > len(uni) and len(cov) > 0.9 * n
    assert max(cov.values()) <= max(uni.values())
    # placement feedback: a site reported as placed is offered less afterwards
    plan = replace(plans[0], groups=(), sampling=plans[0].sampling.model_copy(update={"strategy": "coverage_weighted", "coverage_alpha": 5.0}))
    sampler = LibrarySampler(plan, pools, seed=3)
    hot = sampler.sites[0].id
    sampler.observe([hot] * 50)
    assert all(hot not in {s.id for s in sampler.next()} for _ in range(20))


def test_explicit_sampling_argument_keeps_plan_overrides(minimal):
    def edit(r):
        r["generation"]["plans"][0]["sampling"] = {"library_size": 4}
    cfg = load_config(minimal(edit))
    plan = resolve_plans(cfg)[0]
    pools = build_pools(cfg)
    sampler = LibrarySampler(plan, pools, cfg.model.generation.sampling, seed=1)
    assert len(sampler.next()) == 4 and sampler.sampling.strategy == "tf_balanced"


def test_small_pool_gives_whole_pool_and_problem_passes_precheck(demo):
    cfg, plans, pools = demo
    tiny = {"x": Pool("x", "binding_sites", (Site("a", "ACGTTGCA", "R1"), Site("b", "GGATCCAA", "R2")))}
    plan = PlanSpec(name="t", quota=1, include_inputs=("x",), sequence_length=30)
    lib = LibrarySampler(plan, tiny, seed=0).next()
    assert {s.id for s in lib} == {"a", "b"}
    precheck(plans[1].build_problem(LibrarySampler(plans[1], pools, seed=0).next()))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.text("ACGT", min_size=4, max_size=10), st.sampled_from(["A", "B", "C"])), min_size=1, max_size=12),
       st.randoms())
def test_library_hash_is_order_independent(items, rnd):
    sites = [Site(f"s{i}", s, r) for i, (s, r) in enumerate(items)]
    shuffled = sites[:]
    rnd.shuffle(shuffled)
    assert library_hash(sites) == library_hash(shuffled)
    if len(sites) > 1:
        assert library_hash(sites) != library_hash(sites[1:])


def test_plan_pool_drops_unplaceable_sites():
    pools = {"x": Pool("x", "binding_sites", (Site("long", "A" * 40, "R"), Site("bad", "CCTTGACACC", "R"),
                                               Site("rcbad", "CCTGTCAACC", "R"), Site("ok", "ACGTACGT", "R")))}
    plan = PlanSpec(name="t", quota=1, include_inputs=("x",), sequence_length=30, forbid_kmers=("TTGACA",))
    sites, dropped = plan_pool(plan, pools)
    assert [s.id for s in sites] == ["ok"]
    assert dropped == {"longer than sequence_length": 1, "contains a forbidden k-mer": 2}


# -- preflight -------------------------------------------------------------------------------

def test_demo_preflight_passes_with_notes(demo):
    cfg, plans, pools = demo
    warnings = preflight(cfg, plans=plans, pools=pools)
    assert any("forbidden k-mer" in w for w in warnings)


@pytest.mark.parametrize("edit, exc, match", [
    (lambda r: r["generation"].update(sequence_length=25), ConfigError, "promoter 'sigma70' needs at least 28 bp"),
    (lambda r: r["generation"]["plans"][1]["fixed_elements"]["promoter_constraints"][0].update(upstream_pos=[95, 99]),
     ConfigError, "cannot be placed"),
    (lambda r: r["generation"]["plans"][0]["regulator_constraints"]["groups"][0].update(members=["lexa", "cpxr"]),
     ConfigError, "regulator group 'stress' has no members in the plan's inputs"),
    (lambda r: r["generation"]["plans"][0]["regulator_constraints"]["groups"][0].update(members=["LexA", "Nope"], min_required=2),
     ConfigError, "needs 2 member"),
    (lambda r: r["generation"]["plans"][0]["regulator_constraints"].update(min_total_sites=13), ConfigError, "min_total_sites is 13"),
    (lambda r: r["generation"]["plans"][0]["regulator_constraints"].update(min_count_by_regulator={"LexA": 100}),
     ConfigError, "min_count_by_regulator asks 100"),
    (lambda r: r["generation"]["sampling"].update(cover_all_regulators=True, library_size=4), ConfigError, "cover_all_regulators"),
    (lambda r: r["inputs"][0].update(path="inputs/missing.csv"), InputError, "missing.csv not found"),
])
def test_preflight_catches_before_solving(demo_workspace, edit, exc, match):
    cfg = load_config(demo_workspace("demo_sites", edit=edit))
    with pytest.raises(exc, match=match):
        preflight(cfg)


def test_sequence_length_shorter_than_every_site_says_so(write_config, tmp_path):
    """Issue 11 item 7: not "group has no members" but the length, the shortest site and the fix."""
    (tmp_path / "s.csv").write_text("tf,tfbs\nLexA,TACTGTATATATATACAGTA\nLexA,TACTGTATAAAAACACAGTA\nCpxR,GTAAAGTAAAGTAAAG\n")
    cfg = load_config(write_config({
        "schema_version": 1, "run": {"id": "t"}, "inputs": [{"name": "s", "type": "binding_sites", "path": "s.csv"}],
        "generation": {"sequence_length": 12, "plans": [{"name": "p", "sequences": 2, "include_inputs": ["s"],
                       "regulator_constraints": {"groups": [{"name": "stress", "members": ["LexA", "CpxR"],
                                                             "min_required": 1}]}}]}}))
    with pytest.raises(ConfigError) as err:
        preflight(cfg)
    msg = str(err.value) + " " + (err.value.hint or "")
    assert "has no members" not in msg
    assert "sequence_length is 12 bp" in msg and "CpxR (shortest site 16 bp)" in msg and "LexA (shortest site 20 bp)" in msg
    assert "at least 16" in msg


def test_unreachable_quota(write_config, tmp_path):
    (tmp_path / "s.csv").write_text("tf,tfbs\nR,ACGT\n")
    cfg = load_config(write_config({
        "schema_version": 1, "run": {"id": "t"}, "inputs": [{"name": "s", "type": "binding_sites", "path": "s.csv"}],
        "generation": {"sequence_length": 13, "plans": [{"name": "p", "sequences": 20, "include_inputs": ["s"],
                       "fixed_elements": {"promoter_constraints": [{"upstream": "TTGACA", "downstream": "TATAAT", "spacer": [0, 0]}]}}]}}))
    with pytest.raises(ConfigError, match="quota 20 is unreachable: at most 8 distinct"):
        preflight(cfg)
