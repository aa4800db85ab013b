"""Property tests: random libraries through the engine, every solution through the checker."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnadesign.densegen.solver import (
    InfeasibleProblemError,
    NoSolutionFoundError,
    Problem,
    PromoterConstraint,
    Site,
    SolverOptions,
    check_solution,
    solve,
)

dna = st.text(alphabet="ACGT", min_size=4, max_size=9)


@st.composite
def problems(draw):
    seqs = draw(st.lists(dna, min_size=2, max_size=7))
    regs = draw(st.lists(st.sampled_from(["R1", "R2", "R3"]), min_size=len(seqs), max_size=len(seqs)))
    sites = tuple(Site(f"s{i}", s, r) for i, (s, r) in enumerate(zip(seqs, regs)))
    length = draw(st.integers(16, 40))
    promoters = ()
    if draw(st.booleans()) and length >= 24:
        promoters = (PromoterConstraint("p", "TTGA", "TATA", 3, 6),)
    forbid = tuple(draw(st.lists(st.text(alphabet="ACGT", min_size=4, max_size=5), max_size=1)))
    gc = draw(st.sampled_from([(None, None), (0.3, 0.7), (0.4, 0.6)]))
    return Problem(
        sites,
        length,
        strands=draw(st.sampled_from(["single", "double"])),
        promoters=promoters,
        forbid_kmers=forbid,
        gc_min=gc[0],
        gc_max=gc[1],
        min_total_sites=draw(st.integers(0, 1)),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.sampled_from(["optimal", "diverse"]))
def test_every_solution_passes_the_checker(problem, mode):
    opts = SolverOptions(time_limit_s=2.0, seed=0, workers=1, mode=mode, deterministic=True)
    try:
        sols = list(solve(problem, opts, 3))
    except (InfeasibleProblemError, NoSolutionFoundError):
        return
    assert sols
    assert len({s.sequence for s in sols}) == len(sols)
    for s in sols:
        assert check_solution(problem, s) == []
    if mode == "diverse":
        assert len({s.site_ids for s in sols}) == len(sols)
