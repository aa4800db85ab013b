"""Each rule of solver/constraints on real CP-SAT with real RegulonDB sites (tests/data/tfbs_small.csv):
a problem whose outcome the rule changes (and every emitted solution passes the checker), the
checker rejecting a layout that breaks the rule, and the precheck refusing an impossible rule
with its one-line reason."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnadesign.densegen.solver import (
    InfeasibleProblemError,
    NoSolutionFoundError,
    Problem,
    PromoterConstraint,
    Site,
    Solution,
    SolverOptions,
    check_solution,
    precheck,
    solve,
)
from dnadesign.densegen.solver.constraints import (
    GcContent,
    MaxHomopolymer,
    Pin,
    RegulatorCount,
    RegulatorWeights,
    Spacing,
    forbidden_rule,
)
from dnadesign.densegen.solver.constraints.enzymes import parse_enzymes
from dnadesign.densegen.solver.constraints.homopolymer import longest_run
from dnadesign.densegen.solver.constraints.iupac import both_strands, matches
from dnadesign.densegen.solver.constraints.spacing import gap

from .conftest import load_sites

SITES = load_sites(12)  # GadW GalS GadE Cra Lrp PutA DnaA Fis ArcA ArcA NarL Fis
OPTS = SolverOptions(time_limit_s=5.0, seed=1, deterministic=True)


@cache
def run(problem: Problem, n: int = 1) -> tuple[Solution, ...]:
    """Solve; every emitted solution must pass the independent checker."""
    sols = tuple(solve(problem, OPTS, n))
    assert sols, "no solution"
    for s in sols:
        assert check_solution(problem, s) == [], s
    return sols


def base(length: int = 50) -> Problem:
    return Problem(SITES, length)


def with_rules(problem: Problem, *rules) -> Problem:
    return replace(problem, rules=problem.rules + tuple(rules))


def refused(problem: Problem) -> str:
    with pytest.raises(InfeasibleProblemError) as err:
        precheck(problem)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


# -- forbidden IUPAC patterns ----------------------------------------------------------------

def test_iupac_pattern_changes_the_design_and_is_checked():
    sol0 = run(base())[0]
    assert "t8" in sol0.site_ids  # ArcA AATATAATGAACAAT
    pattern = "TAATGNNC"  # matches inside that ArcA site
    prob = with_rules(base(), forbidden_rule(patterns=(pattern,)))
    for sol in run(prob, 3):
        assert "t8" not in sol.site_ids
        assert not any(matches(sol.sequence, p) for p in both_strands((pattern,)))
    errors = check_solution(prob, sol0)
    assert any(e.startswith("forbidden pattern TAATGNNC") for e in errors), errors


def test_iupac_pattern_precheck_reasons():
    assert "not upper-case DNA with IUPAC codes" in refused(with_rules(base(), forbidden_rule(patterns=("GCXNGC",))))
    narl_gone = replace(with_rules(base(), forbidden_rule(patterns=("ATGNGTA",))), min_count_by_regulator={"NarL": 1})
    assert refused(narl_gone) == "min_count_by_regulator asks 1 site(s) of 'NarL' but the library has 0 placeable"


# -- restriction enzymes ------------------------------------------------------------------------

def test_enzyme_sites_from_biopython_change_the_design():
    enzymes = parse_enzymes(["SspI", "TaqI"], "forbid_enzymes")
    assert enzymes == [("SspI", "AATATT"), ("TaqI", "TCGA")]
    plain = run(base(60), 2)
    assert {"t1", "t3"} & (plain[0].site_ids | plain[1].site_ids)  # GalS (SspI) or Cra (TaqI) is used
    prob = with_rules(base(60), forbidden_rule(enzymes=tuple(enzymes)))
    for sol in run(prob, 3):
        assert not {"t1", "t3"} & sol.site_ids
        assert not matches(sol.sequence, "AATATT") and not matches(sol.sequence, "TCGA")
    errors = [e for s in plain for e in check_solution(prob, s)]
    assert any(e.startswith(("forbidden site of SspI (AATATT)", "forbidden site of TaqI (TCGA)")) for e in errors), errors


def test_enzyme_names_are_checked_against_rebase():
    with pytest.raises(ValueError, match=r"forbid_enzymes\[0\]: 'BsaJ1' is not a restriction enzyme .*did you mean 'BsaJI'"):
        parse_enzymes(["BsaJ1"], "forbid_enzymes")
    assert parse_enzymes(["BsaI", "EcoRI"], "x") == [("BsaI", "GGTCTC"), ("EcoRI", "GAATTC")]
    cra = replace(with_rules(base(), forbidden_rule(enzymes=(("TaqI", "TCGA"),))), min_count_by_regulator={"Cra": 1})
    assert refused(cra) == "min_count_by_regulator asks 1 site(s) of 'Cra' but the library has 0 placeable"


# -- GC in sliding windows ----------------------------------------------------------------------

def _window_gc(seq: str, w: int) -> list[float]:
    return [sum(c in "GC" for c in seq[i : i + w]) / w for i in range(len(seq) - w + 1)]


def test_gc_windows_change_the_design():
    sol0 = run(base())[0]
    rule = GcContent(0.2, 0.7, window=10)
    assert min(_window_gc(sol0.sequence, 10)) < 0.2  # the AT-rich Lrp/ArcA run
    prob = with_rules(base(), rule)
    for sol in run(prob, 3):
        assert min(_window_gc(sol.sequence, 10)) >= 0.2 and max(_window_gc(sol.sequence, 10)) <= 0.7
    errors = check_solution(prob, sol0)
    assert errors and all(e.startswith("GC window 10 at ") and "below 0.2" in e for e in errors), errors


def test_gc_window_precheck_reasons():
    assert refused(with_rules(base(), GcContent(0.3, 0.45, window=4))) == (
        "gc_windows: no GC count of a 4-base window lies in [0.3, 0.45]")
    assert "window 80 must be between 1 and the sequence length 50" in refused(with_rules(base(), GcContent(0.3, None, 80)))
    prom = PromoterConstraint("sigma70", "TTGACA", "TATAAT", 15, 17)
    at_rich = replace(with_rules(base(), GcContent(0.2, None, window=6)), promoters=(prom,))
    assert "promoter 'sigma70' element TATAAT has a 6-base window with GC outside [0.2, None]" in refused(at_rich)


# -- homopolymer runs ---------------------------------------------------------------------------

def test_max_homopolymer_changes_the_design():
    sol0 = run(base())[0]
    assert longest_run(sol0.sequence)[0] == 4 and "t4" in sol0.site_ids  # Lrp AGTTTTCATAAT
    prob = with_rules(base(), MaxHomopolymer(3))
    for sol in run(prob, 3):
        assert longest_run(sol.sequence)[0] <= 3
        assert "t4" not in sol.site_ids
    assert any(e.startswith("homopolymer Tx4 at ") for e in check_solution(prob, sol0))


def test_max_homopolymer_precheck_reason():
    prom = PromoterConstraint("sigma70", "TTGACA", "TATAAT", 15, 17)
    msg = refused(replace(with_rules(base(), MaxHomopolymer(1)), promoters=(prom,)))
    assert msg == "max_homopolymer 1: promoter 'sigma70' element TTGACA has a run of 2 T at 0"


# -- maximum count per regulator ----------------------------------------------------------------

def test_max_count_per_regulator_changes_the_design():
    prob0 = with_rules(base(60), RegulatorWeights((("ArcA", 3),)))  # ArcA sites are worth placing twice
    sol0 = run(prob0)[0]
    assert sum(p.regulator == "ArcA" for p in sol0.library_placements) == 2
    prob = with_rules(prob0, RegulatorCount("ArcA", 0, 1))
    for sol in run(prob, 3):
        assert sum(p.regulator == "ArcA" for p in sol.library_placements) == 1
    assert "regulator ArcA: 2 site(s) > max_count_by_regulator 1" in check_solution(prob, sol0)


def test_max_count_precheck_reason():
    prob = with_rules(replace(base(), min_count_by_regulator={"ArcA": 2}), RegulatorCount("ArcA", 0, 1))
    assert refused(prob) == (
        "max_count_by_regulator allows 1 site(s) of 'ArcA' but min_count_by_regulator or pins ask 2")


# -- pinned sites -------------------------------------------------------------------------------

def test_pin_moves_a_site_into_its_window():
    sol0 = run(base())[0]
    narl0 = [p.offset for p in sol0.library_placements if p.regulator == "NarL"]
    assert narl0 and all(o > 10 for o in narl0)
    prob = with_rules(base(), Pin("NarL", 0, 5))
    for sol in run(prob, 3):
        starts = [p.offset for p in sol.library_placements if p.regulator == "NarL"]
        assert starts and all(0 <= o <= 5 for o in starts)
    assert any(e.startswith("pin 'NarL' in [0, 5]: site t10 starts at ") for e in check_solution(prob, sol0))
    gadw = with_rules(base(), Pin("GadW", 30, 30))  # a 20-bp site the plain optimum never places
    sol = run(gadw)[0]
    assert [p.offset for p in sol.library_placements if p.regulator == "GadW"] == [30]


def test_pin_precheck_reason():
    msg = refused(with_rules(base(), Pin("NarL", 45, 48)))
    assert msg.startswith("pin 'NarL' in [45, 48]: its sites (7 bp) cannot start there in a 50-bp sequence")
    assert refused(with_rules(base(), Pin("LexA", 0, 3))) == "pin 'LexA' in [0, 3]: the library has no site of it"


# -- spacing between two regulators -------------------------------------------------------------

def test_spacing_changes_the_design():
    sol0 = run(base())[0]
    put = next(p for p in sol0.library_placements if p.regulator == "PutA")
    narl = next(p for p in sol0.library_placements if p.regulator == "NarL")
    assert gap(put.offset, put.end, narl.offset, narl.end) > 10
    rule = Spacing("PutA", "NarL", None, 10)
    prob = with_rules(replace(base(), min_count_by_regulator={"PutA": 1, "NarL": 1}), rule)
    for sol in run(prob, 3):
        for x in sol.library_placements:
            for y in sol.library_placements:
                if x.regulator == "PutA" and y.regulator == "NarL":
                    assert gap(x.offset, x.end, y.offset, y.end) <= 10
    assert any(e.startswith("spacing PutA-NarL [-inf, 10]: t5@0 and t10@35 are") for e in check_solution(prob, sol0))
    apart = with_rules(replace(base(), min_count_by_regulator={"PutA": 1, "NarL": 1}), Spacing("PutA", "NarL", 30, None))
    for sol in run(apart):
        x = next(p for p in sol.library_placements if p.regulator == "PutA")
        y = next(p for p in sol.library_placements if p.regulator == "NarL")
        assert gap(x.offset, x.end, y.offset, y.end) >= 30


def test_spacing_precheck_reason():
    prob = with_rules(replace(base(), min_count_by_regulator={"PutA": 1, "NarL": 1}), Spacing("PutA", "NarL", 40, None))
    assert refused(prob) == ("spacing PutA-NarL [40, inf]: both regulators are required but their shortest sites "
                             "(6 and 7 bp) 40 bases apart need 53 bp, above the sequence length 50")
    assert "min_gap 5 is above max_gap 2" in refused(with_rules(base(), Spacing("PutA", "NarL", 5, 2)))


# -- per-regulator weights ----------------------------------------------------------------------

def test_weights_let_long_sites_win():
    sol0 = run(base())[0]
    assert not {"GadW", "GadE"} & set(sol0.regulators)  # 20-bp sites never win on count alone
    rule = RegulatorWeights((("GadE", 5), ("GadW", 5)))
    prob = with_rules(base(), rule)
    sols = run(prob, 3)
    best = sols[0]
    assert {"GadW", "GadE"} & set(best.regulators)
    value = sum(5 if p.regulator in ("GadW", "GadE") else 1 for p in best.library_placements)
    assert best.objective == value > sol0.objective
    assert best.bound is not None and best.bound >= value
    assert all(s.objective <= best.objective for s in sols)
    small = run(with_rules(base(), RegulatorWeights((("GadW", 2),))))[0]  # the worked example of docs/constraints.md
    assert "GadW" in small.regulators and small.n_sites == 5 and small.objective == 6.0 and small.optimal
    # the unweighted checker rejects the weighted claim, and vice versa
    errors = check_solution(base(), best)
    assert any(e.startswith(f"objective {best.objective} does not match the value") for e in errors), errors


def test_weights_precheck_reason():
    assert refused(with_rules(base(), RegulatorWeights((("GadW", 0),)))) == "weights[GadW] must be an integer from 1 to 1000, got 0"


def test_rules_keep_problems_hashable_and_results_reproducible():
    prob = with_rules(base(), MaxHomopolymer(3), GcContent(0.2, 0.8, window=12), Pin("NarL", 0, 20))
    assert hash(prob) == hash(with_rules(base(), MaxHomopolymer(3), GcContent(0.2, 0.8, window=12), Pin("NarL", 0, 20)))
    a = [s.sequence for s in solve(prob, OPTS, 2)]
    b = [s.sequence for s in solve(prob, OPTS, 2)]
    assert a == b


# -- property: random rules, every emitted solution passes the checker -------------------------

@st.composite
def ruled_problems(draw):
    seqs = draw(st.lists(st.text(alphabet="ACGT", min_size=4, max_size=9), min_size=2, max_size=6))
    regs = draw(st.lists(st.sampled_from(["R1", "R2", "R3"]), min_size=len(seqs), max_size=len(seqs)))
    sites = tuple(Site(f"s{i}", s, r) for i, (s, r) in enumerate(zip(seqs, regs, strict=True)))
    length = draw(st.integers(16, 36))
    pool = [
        forbidden_rule(patterns=(draw(st.text(alphabet="ACGTRYN", min_size=3, max_size=5)).replace("N", "A", 1),)),
        GcContent(0.2, 0.8, draw(st.integers(4, 10))),
        MaxHomopolymer(draw(st.integers(2, 4))),
        RegulatorCount("R1", 0, draw(st.integers(0, 2))),
        Pin("R2", lo := draw(st.integers(0, 10)), lo + draw(st.integers(0, 8))),
        Spacing("R1", "R3", draw(st.sampled_from([None, -2, 0])), draw(st.sampled_from([None, 3, 8]))),
        RegulatorWeights((("R3", draw(st.integers(1, 4))),)),
    ]
    chosen = draw(st.lists(st.sampled_from(range(len(pool))), min_size=1, max_size=3, unique=True))
    return Problem(sites, length, strands=draw(st.sampled_from(["single", "double"])),
                   rules=tuple(pool[i] for i in sorted(chosen)))


def solutions_or_none(problem: Problem, mode: str) -> list[Solution]:
    """Up to 3 solutions in ``mode``; [] when the problem is infeasible or nothing came in time."""
    try:
        return list(solve(problem, SolverOptions(time_limit_s=2.0, seed=0, workers=1, mode=mode, deterministic=True), 3))
    except (InfeasibleProblemError, NoSolutionFoundError):
        return []


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ruled_problems(), st.sampled_from(["optimal", "diverse"]))
def test_random_rules_every_solution_passes_the_checker(problem, mode):
    sols = solutions_or_none(problem, mode)
    assert len({s.sequence for s in sols}) == len(sols)
    for s in sols:
        assert check_solution(problem, s) == [], (problem.rules, s)
        assert s.bound is None or s.objective <= s.bound + 1e-6
