"""The orienteering local search over the full library (``solver/path_search.py``).

Real RegulonDB binding sites (``../shared/data/regulondb_tfbs.csv``), drawn as the scale
benchmark draws them (``bench/solver_scale.py``: distinct 6-30 bp sequences, seeded shuffle).
The search runs by rounds (no clock), so the figures are reproducible.
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from dnadesign.densegen.solver import (
    Problem,
    PromoterConstraint,
    RegulatorGroup,
    Site,
    SolverOptions,
    check_solution,
    solve,
)
from dnadesign.densegen.solver import path_search as ps
from dnadesign.densegen.solver.bound import site_values
from dnadesign.densegen.solver.constraints.weights import RegulatorWeights
from dnadesign.densegen.solver.heuristics import Layout
from dnadesign.densegen.solver.path_layouts import Piece, realise

from .regulondb import regulondb


@pytest.fixture(scope="module")
def big() -> Problem:
    return Problem(regulondb(1000, 1000), 200)


@pytest.fixture(scope="module")
def big_lib(big):
    lib = ps.library(big, site_values(big))
    assert lib is not None
    return lib


def _sites(lay: Layout) -> int:
    return len(lay.library_sites)


def test_layouts_pass_the_checker_and_beat_the_pool_route(big):
    """1000 sites, L=200: the pool + CP-SAT route's first solution had 48 sites (bench, commit
    0825cff); 30 rounds of the search give more, and every layout passes the checker against
    the full library."""
    found = ps.layouts(big, site_values(big), [], lambda: False, seed=0, rounds=300)
    assert found
    for lay in found:
        sol = ps.layout_solution_valued(big, lay, site_values(big))
        assert check_solution(big, sol) == []
        assert len(lay.sequence) == big.length
    assert _sites(found[0]) >= 51
    assert [_sites(lay) for lay in found] == sorted((_sites(lay) for lay in found), reverse=True)


def test_perturbation_beats_insertion_alone(big, big_lib):
    """Cheapest insertion then the shortening moves stop at 50 sites; the perturbation rounds
    (ruin and recreate) get past it."""
    start = ps._Path(big_lib, [])
    ps.improve(big_lib, start, big.length, lambda: False)
    best = ps.search(big_lib, big.length, [], random.Random(0), lambda: False, rounds=300)[0]
    assert best.cost <= big.length
    assert best.value > start.value


def test_improve_raises_a_weak_start(big, big_lib):
    """A weak start (the first 10 items of the library end to end) becomes a dense path: the
    moves keep it within L, never lose value, and the realised layout passes the checker."""
    weak = ps._Path(big_lib, list(range(0, 20, 2)))
    assert weak.cost <= big.length
    before = weak.value
    ps.improve(big_lib, weak, big.length, lambda: False)
    assert weak.cost <= big.length
    assert weak.value >= before + 25
    assert len({int(big_lib.site[k]) for k in weak.items}) == len(weak.items)  # each site once
    chain = [Piece(int(big_lib.site[k]), big_lib.strand[k], big_lib.seqs[k], tuple(int(s) for s in big_lib.inside[k]))
             for k in weak.items]
    lay = realise(big, [chain], [], random.Random(0))
    assert lay is not None and _sites(lay) >= weak.value
    assert check_solution(big, ps.layout_solution_valued(big, lay, site_values(big))) == []


def test_each_move_shortens_or_adds_value(big, big_lib):
    """Random paths: every shortening move ends shorter at equal or higher value (the path's
    cost is recomputed from the overlaps, not trusted)."""
    rng = random.Random(3)
    for _ in range(15):
        items = rng.sample(range(0, big_lib.n, 2), 12)
        path = ps._Path(big_lib, items)
        before = path.score()
        if ps._shorten_once(big_lib, path):
            assert path.score() > before
            again = ps._Path(big_lib, path.items)
            assert (again.value, again.cost) == (path.value, path.cost)


def test_strand_flip_reverses_overlaps(big_lib):
    """The reversal move relies on ov(a, b) == ov(rc(b), rc(a)) for every pair."""
    n = big_lib.n
    ov = big_lib.ov[:n, :n]
    flip = big_lib.flip
    assert (flip >= 0).all()
    assert np.array_equal(ov, ov[np.ix_(flip, flip)].T)


def test_weighted_value_is_searched_and_checked(big):
    regs = sorted({s.regulator for s in big.sites})
    weighted = dataclasses.replace(big, rules=(RegulatorWeights(tuple((r, 1 + k % 3) for k, r in enumerate(regs) if k % 3)),))
    values = site_values(weighted)
    found = ps.layouts(weighted, values, [], lambda: False, seed=0, rounds=10)
    assert found
    plain_best = ps.layouts(big, site_values(big), [], lambda: False, seed=0, rounds=10)[0]
    for lay in found:
        assert check_solution(weighted, ps.layout_solution_valued(weighted, lay, values)) == []
    value = sum(values[si] for si in found[0].library_sites)
    assert value > sum(values[si] for si in plain_best.library_sites)  # it chases value, not count


def test_promoter_problems_are_not_searched(big):
    prom = dataclasses.replace(big, promoters=(PromoterConstraint("sigma70", "TTGACA", "TATAAT", 16, 18),))
    assert ps.layouts(prom, site_values(prom), [], lambda: False, rounds=2) == []


def test_sites_across_a_junction_are_added():
    """A site that spans the junction of two placed sites is placed too (it costs nothing)."""
    sites = (Site("a", "ACGTTGCA", "X"), Site("b", "GGATCCTT", "Y"), Site("c", "GCAGGA", "Z"))
    problem = Problem(sites, 16, strands="single")
    lay = Layout("ACGTTGCAGGATCCTT", ((0, "+", 0, "ACGTTGCA", ""), (1, "+", 8, "GGATCCTT", "")))
    got = ps._spanning(problem, lay)
    assert sorted(got.library_sites) == [0, 1, 2]
    assert check_solution(problem, ps.layout_solution_valued(problem, got, [1, 1, 1])) == []


def test_pooled_solve_starts_from_the_search(big):
    """The pool route (1000 sites) returns the search's density, checked against the full library."""
    sol = next(solve(big, SolverOptions(time_limit_s=10, seed=0, workers=1, deterministic=True), 1))
    assert check_solution(big, sol) == []
    assert sol.n_sites >= 51
    assert sol.bound is not None and sol.n_sites <= sol.bound


def test_regulator_minimums_are_kept_on_every_path(big):
    """A regulator minimum pins that many of its sites on the path: the layouts hold them and
    pass the checker (the rule is the checker's, not the search's)."""
    ruled = dataclasses.replace(big, min_count_by_regulator={"Fis": 3, "ArcA": 2})
    found = ps.layouts(ruled, site_values(ruled), [], lambda: False, seed=0, rounds=10)
    assert found
    for lay in found:
        regs = [ruled.sites[si].regulator for si in lay.library_sites]
        assert regs.count("Fis") >= 3 and regs.count("ArcA") >= 2
        assert check_solution(ruled, ps.layout_solution_valued(ruled, lay, site_values(ruled))) == []
    assert _sites(found[0]) >= 42


def test_pooled_solve_with_a_regulator_minimum(big):
    """1000 sites with a regulator minimum: before the search the pool route found nothing in
    10 s (NoSolutionFoundError); now the first solution holds the minimum and is checked."""
    ruled = dataclasses.replace(big, min_count_by_regulator={"Fis": 3})
    sol = next(solve(ruled, SolverOptions(time_limit_s=10, seed=0, workers=1, deterministic=True), 1))
    assert check_solution(ruled, sol) == []
    assert sum(p.regulator == "Fis" for p in sol.placements) >= 3
    assert sol.n_sites >= 45


def test_unproven_first_layout_of_a_whole_library_is_searched():
    """200 sites, L=120 (solved whole, not pooled): the held layouts stop below the path bound;
    the search (first_layouts.searched) reaches it, so the first solution is proven optimal
    (before: 18 sites under a bound of 19 after 10 CPU seconds; CPU clock, so load does not
    change the budget)."""
    problem = Problem(regulondb(200, 1200), 120)
    sol = next(solve(problem, SolverOptions(time_limit_s=10, seed=0, workers=1, clock="cpu"), 1))
    assert check_solution(problem, sol) == []
    assert sol.bound is not None and sol.n_sites == int(sol.bound)
    assert sol.optimal


def test_groups_are_kept_on_every_path(big):
    """A group (3 of 4 regulators) pins the best site of its 3 cheapest members: every layout
    holds 3 of them and passes the checker (the pool route found nothing in 10 s before)."""
    members = ("Fis", "ArcA", "Lrp", "IHF")
    grouped = dataclasses.replace(big, groups=(RegulatorGroup("g", members, 3),))
    found = ps.layouts(grouped, site_values(grouped), [], lambda: False, seed=0, rounds=10)
    assert found
    for lay in found:
        assert len({grouped.sites[si].regulator for si in lay.library_sites} & set(members)) >= 3
        assert check_solution(grouped, ps.layout_solution_valued(grouped, lay, site_values(grouped))) == []
    assert _sites(found[0]) >= 45


def _plain(lib, items: list[int]) -> tuple[int, float, list[int]]:
    """Length, value and per-site coverage of ``items``, recomputed with numpy (no kernel)."""
    path = ps._Path(lib, items)
    cover = np.zeros(len(lib.value), dtype=np.int64)
    for k in items:
        cover[lib.site[k]] += 1
        cover[lib.inside[k]] += 1
    return path.cost, path.value, cover.tolist()


def _assert_consistent(lib, state) -> None:
    cost, value, cover = _plain(lib, state.items())
    assert int(state.P[1]) == cost
    assert float(state.val[0]) == pytest.approx(value)
    assert state.cnt.tolist() == cover
    placed = np.zeros(len(lib.value), dtype=np.int64)
    np.add.at(placed, lib.site[state.items()], 1)
    assert state.pcnt.tolist() == placed.tolist()


def test_kernel_moves_keep_length_and_value_consistent(big, big_lib):
    """Every compiled move (add, drop, noisy insertion, reversal, run move, exchange, ruin) leaves the
    path's length, value and coverage counts equal to a plain recomputation from its items;
    insertions stay within L and the shortening moves never lose (value, -length)."""
    from dnadesign.densegen.solver import path_kernels as pk

    L = big.length
    klib = ps._kernel_library(big_lib)
    cap = ps._capacity(big_lib, L)
    w = ps._Scratch(big_lib.n)
    krng = np.array([12345], dtype=np.uint64)
    rng = random.Random(7)
    moved = {"reverse": 0, "segment": 0, "exchange": 0}
    for _ in range(25):
        st = ps._State(big_lib, [], cap)
        for x in rng.sample(range(big_lib.n), 40):  # a random path of distinct sites within L
            if st.pcnt[big_lib.site[x]] == 0 and st.P[1] + big_lib.length[x] <= L:
                pk.add(klib, *st.args(), x, rng.randint(0, int(st.P[0])))
                _assert_consistent(big_lib, st)
        pk.drop(klib, *st.args(), rng.randrange(int(st.P[0])))
        _assert_consistent(big_lib, st)
        pk.insert_greedy(klib, *st.args(), L, 0.35, krng, w.gain, w.best, w.bestp)
        _assert_consistent(big_lib, st)
        assert st.P[1] <= L
        before = st.score()
        if pk.reverse_once(klib, st.P):
            moved["reverse"] += 1
            _assert_consistent(big_lib, st)
            assert st.score() > before
        before = st.score()
        if pk.move_segment_once(klib, st.P, 3):
            moved["segment"] += 1
            _assert_consistent(big_lib, st)
            assert st.score() > before
        before = st.score()
        if pk.exchange_once(klib, *st.args(), w.gain, w.top3, w.top3p):
            moved["exchange"] += 1
            _assert_consistent(big_lib, st)
            assert st.score() > before
        pk._perturb(klib, *st.args(), krng, 2, 8)
        _assert_consistent(big_lib, st)
        pk.improve(klib, *st.args(), L, krng, w.gain, w.best, w.bestp, w.top3, w.top3p)
        _assert_consistent(big_lib, st)
        assert st.P[1] <= L
        assert len({int(big_lib.site[k]) for k in st.items()}) == int(st.P[0])  # each site once
    assert min(moved.values()) > 0  # every move was exercised


def test_rounds_do_not_depend_on_how_they_are_chunked(big, big_lib):
    """The search runs its rounds in compiled chunks between polls of ``stop()``: 120 rounds in one
    call and in chunks of 7 give the same best paths (the kernel's random state is carried)."""
    one = ps.search(big_lib, big.length, [], random.Random(5), lambda: False, rounds=120)
    calls = iter(range(10**6))
    chunked_stop = lambda: next(calls) < 0  # noqa: E731  (never stops; polled between chunks)
    old = ps.CHUNK_S
    try:
        ps.CHUNK_S = 0.0  # chunks stay at their first size
        two = ps.search(big_lib, big.length, [], random.Random(5), chunked_stop, rounds=120)
    finally:
        ps.CHUNK_S = old
    assert [p.items for p in one] == [p.items for p in two]
    assert one[0].cost <= big.length


def test_rounds_raise_a_weak_start(big, big_lib):
    """The compiled rounds alone, from a weak path (the first 10 even items end to end, 12 sites,
    not improved first): ruin and recreate reach 51 sites or more in 300 rounds, within L, with
    length and value equal to a plain recomputation."""
    from dnadesign.densegen.solver import path_kernels as pk

    L = big.length
    klib = ps._kernel_library(big_lib)
    cap = ps._capacity(big_lib, L)
    weak = list(range(0, 20, 2))
    cur, top, trial = (ps._State(big_lib, weak, cap) for _ in range(3))
    assert top.val[0] <= 12 and top.P[1] <= L  # 10 placed, 2 carried
    keep = 4
    pool, pool_val = np.zeros((keep, cap + 2), dtype=np.int64), np.zeros(keep)
    pool_key, pool_used = np.zeros(keep, dtype=np.uint64), np.zeros(keep, dtype=np.bool_)
    ints = np.zeros(2, dtype=np.int64)
    params = (ps.NOISE, ps.WORSE_ACCEPT, float(ps.RESTART_AFTER), float(ps.MIN_SEGMENT), float(ps.MAX_SEGMENT), np.inf)
    done = pk.rounds(klib, L, cur.args(), top.args(), trial.args(), ints, np.array([99], dtype=np.uint64), params,
                     pool, pool_val, pool_key, pool_used, 300)
    assert done == 300 and ints[1] == 300
    assert top.val[0] >= 51 and top.P[1] <= L
    _assert_consistent(big_lib, top)
    best = int(np.argmax(pool_val))
    assert pool_val[best] == top.val[0]
