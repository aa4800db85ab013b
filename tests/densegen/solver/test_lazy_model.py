"""The CP-SAT model is built only when a solve needs it (``model.PositionalModel``, lazy).

Real RegulonDB libraries drawn by `dense run` on the demo workspace (``test_first_layouts``)
and the benchmark's 100-site library: the first solution proven without CP-SAT leaves the model
unbuilt, a model built after solutions were recorded is the model an eager build makes (same
proto), and the solutions are the same sequences, in the same order, as with the eager build.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import pytest

from dnadesign.densegen.solver import Problem, PromoterConstraint, SolverOptions, check_solution, solve
from dnadesign.densegen.solver import enumerate as enumeration
from dnadesign.densegen.solver.model import PositionalModel

from .test_bound import lib100
from .test_first_layouts import LIB_A, LIB_B, SIGMA70, demo_problem, library

SIGMA70_WIDE = PromoterConstraint("sigma70", "TTGACA", "TATAAT", 16, 18)


class Recording(PositionalModel):
    """The real model class, remembering its instances and when each was built."""

    instances: ClassVar[list[Recording]] = []

    def __init__(self, *args, **kwargs) -> None:
        self.built_after: int | None = None
        self.recorded = 0
        Recording.instances.append(self)
        super().__init__(*args, **kwargs)

    def forbid_sequence(self, seq: str) -> None:
        self.recorded += 1  # one per recorded solution
        super().forbid_sequence(seq)

    def _build(self) -> None:
        self.built_after = self.recorded
        super()._build()


@pytest.fixture
def recording(monkeypatch):
    Recording.instances = []
    monkeypatch.setattr(enumeration, "PositionalModel", Recording)
    return Recording.instances


def sequences(problem: Problem, options: SolverOptions, n: int) -> list[str]:
    out = []
    for sol in solve(problem, options, n):
        assert check_solution(problem, sol) == []
        out.append(sol.sequence)
    return out


@pytest.mark.parametrize("rows,promoters", [(LIB_A, ()), (LIB_B, ()), (LIB_A, (SIGMA70,))])
def test_first_solution_proven_without_cpsat_builds_no_model(recording, rows, promoters):
    problem = demo_problem(rows, promoters)
    first = next(solve(problem, SolverOptions(time_limit_s=10, seed=1, workers=1), 1))
    assert first.optimal and check_solution(problem, first) == []
    (pm,) = recording
    assert not pm.built, "the first solution was proven without CP-SAT, yet the model was built"
    assert pm.placements and all(p.literal is None for p in pm.placements)


@pytest.mark.parametrize("mode", ["optimal", "diverse"])
@pytest.mark.parametrize("rows,promoters", [(LIB_A, ()), (LIB_B, (SIGMA70,))])
def test_same_sequences_as_the_eager_model(recording, monkeypatch, mode, rows, promoters):
    problem = demo_problem(rows, promoters)
    options = SolverOptions(time_limit_s=5, seed=1, workers=1, deterministic=True, mode=mode)
    lazy = sequences(problem, options, 10)
    (pm,) = recording
    # the enumeration went on into CP-SAT searches: the model was built after solutions were recorded
    assert pm.built and pm.built_after is not None and pm.built_after >= 1
    monkeypatch.setattr(enumeration, "PositionalModel", functools.partial(PositionalModel, lazy=False))
    eager = sequences(problem, options, 10)
    assert len(lazy) == 10
    assert lazy == eager


def test_same_sequences_on_the_100_site_library(recording, monkeypatch):
    problem = Problem(lib100(), 120, promoters=(SIGMA70_WIDE,))
    options = SolverOptions(time_limit_s=3, seed=2, workers=1, deterministic=True)
    lazy = sequences(problem, options, 6)
    monkeypatch.setattr(enumeration, "PositionalModel", functools.partial(PositionalModel, lazy=False))
    assert lazy == sequences(problem, options, 6)


@pytest.mark.parametrize("problem", [demo_problem(LIB_A), Problem(library(LIB_A), 100)], ids=["demo", "shift-invariant"])
def test_changes_before_the_build_make_the_eager_model(problem):
    """No-goods, the cleared objective and the released left packing, made before the build,
    give the same CP-SAT model (proto) as the same changes on an eagerly built model."""
    eager, lazy = PositionalModel(problem), PositionalModel(problem, lazy=True)
    first = next(solve(problem, SolverOptions(time_limit_s=10, seed=1, workers=1), 1))
    for pm in (eager, lazy):
        index = {(p.site_id, p.start, p.sequence): p for p in pm.placements}
        chosen = [index[(p.site_id, p.offset, p.sequence)] for p in first.placements if not p.fixed]
        pm.forbid_placements(chosen)
        pm.forbid_sequence(first.sequence)
        pm.forbid_site_set(sorted({p.site_index for p in chosen}))
        pm.clear_objective()
        pm.release_left_packing()
    assert eager.built and not lazy.built
    if problem.forbid_kmers == ():  # shift-invariant: the left packing was on, and is released
        assert eager.left_packing_on is None and eager.covered
    assert str(lazy.model.proto) == str(eager.model.proto)  # first use of the model builds it (text form: the proto has no ==)
    assert lazy.built and len(lazy.model.proto.constraints) > len(PositionalModel(problem).model.proto.constraints)
