"""Rule-aware start layouts (solver/drafts.py, issue 14): the beam and the relaxation know the
promoter and k-mers; every other rule repairs their layouts or judges the free bases through its
own module. Real sites (the benchmark's 100-site RegulonDB library), real CP-SAT, the
independent checker against the full problem."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from dnadesign.densegen.solver import Problem, PromoterConstraint, SolverOptions, check_solution, solve
from dnadesign.densegen.solver.constraints import GcContent, MaxHomopolymer, Pin, RegulatorCount, Spacing, forbidden_rule
from dnadesign.densegen.solver.drafts import Draft, layout_rules, make_valid
from dnadesign.densegen.solver.heuristics import greedy_layouts
from dnadesign.densegen.solver.path_layouts import layout_solution

from .test_bound import lib100

SIGMA70 = PromoterConstraint("sigma70", "TTGACA", "TATAAT", 16, 18, (20, 80))


def legacy(length: int = 200) -> Problem:
    """The constraints_overhead benchmark's problem: sigma70, its hexamers forbidden, GC 0.3-0.6."""
    return Problem(lib100(), length, promoters=(SIGMA70,), forbid_kmers=("TTGACA", "TATAAT"), gc_min=0.3, gc_max=0.6)


def regs() -> list[str]:
    return sorted({s.regulator for s in lib100()})


RULES = {
    "pin": lambda: Pin(regs()[1], 100, 180),
    "gc_windows": lambda: GcContent(0.2, 0.8, 20),
    "homopolymer": lambda: MaxHomopolymer(3),
    "patterns": lambda: forbidden_rule(patterns=("GCNNNNNNNGC",), enzymes=(("EcoRI", "GAATTC"),)),
    "max_count": lambda: RegulatorCount(regs()[0], 0, 1),
    "spacing": lambda: Spacing(regs()[2], regs()[3], 0, 10),
}


@pytest.mark.parametrize("name", sorted(RULES))
def test_repaired_beam_layouts_pass_the_checker(name):
    """The beam's own layout breaks the rule (the checker says so); after ``make_valid`` the
    same layout passes the full checker and keeps most of its sites."""
    problem = replace(legacy(), rules=(RULES[name](),))
    raw = greedy_layouts(problem, 1)[0]
    if name in ("pin", "gc_windows", "homopolymer"):  # the raw beam layout is known to break these
        assert check_solution(problem, layout_solution(problem, raw)) != []
    fixed = make_valid(problem, raw, random.Random(1))
    assert check_solution(problem, layout_solution(problem, fixed)) == []
    assert len(fixed.library_sites) >= len(raw.library_sites) // 2  # (max_homopolymer 3 refuses many sites outright)


def test_layout_rules_only_where_a_rule_acts():
    """Problems without such rules keep their layouts unchanged (same object, no repair)."""
    plain = Problem(lib100(), 120)
    assert layout_rules(plain)[1:] == ([], [])
    lay = greedy_layouts(plain, 0)[0]
    assert make_valid(plain, lay, random.Random(0)) is lay
    assert layout_rules(replace(plain, rules=(RegulatorCount("LexA", 1),)))[1:] == ([], [])  # a minimum: nothing to repair


def test_pin_repair_places_a_site_in_its_window():
    problem = replace(legacy(), rules=(Pin(regs()[1], 150, 150),))
    fixed = make_valid(problem, greedy_layouts(problem, 3)[0], random.Random(3))
    mine = [t for t in fixed.items if t[0] >= 0 and problem.sites[t[0]].regulator == regs()[1]]
    assert mine and all(t[2] == 150 for t in mine)
    assert check_solution(problem, layout_solution(problem, fixed)) == []


def test_gc_window_judge_sees_partial_windows():
    """``bases_ok`` refuses a base only when no choice of the free bases can save a window."""
    problem = Problem(lib100()[:3], 10, rules=(GcContent(0.4, 0.6, 5),))
    rule = problem.rules[0]
    draft = Draft(problem, [])
    draft.bases[:3] = list("GGG")
    assert rule.bases_ok(problem, draft, 2)  # 3 GC of 5 with two free: still 2..3 reachable
    draft.bases[3] = "C"
    assert not rule.bases_ok(problem, draft, 3)  # 4 GC in the first window: above 3


@pytest.mark.parametrize("name", ["pin", "gc_windows"])
def test_first_solution_with_pin_or_gc_windows_on_100_sites(name):
    """Before the repairs, these found no first solution within 4 s (bench/constraints_overhead.py):
    CP-SAT alone finds nothing on the 35k-placement model and every start layout broke the rule."""
    problem = replace(legacy(), rules=(RULES[name](),))
    sol = next(iter(solve(problem, SolverOptions(time_limit_s=4, seed=1, deterministic=True), 1)))
    assert check_solution(problem, sol) == []
    assert sol.n_sites >= 12
