"""Enumerate many distinct solutions from one model, best first.

1. The first solution (this module): a beam layout, then the path relaxation (``bound.py``), which
   may replace it with a denser layout and gives a bound; a start layout at the bound that passes
   the screen is the first solution, otherwise one optimising CP-SAT solve hinted with it. When
   the limit comes first the best checked layout held is returned, never dropped.
2. Then the policy of the mode (``policies.py``) lists its candidate sources (``sources.py``) in
   order; they share one ``EnumState`` (``state.py``): the model with the no-goods of every
   emitted solution, the emitted sets, the level and the bound.
3. ``optimal`` is set when a solution's site count reaches the best proven bound (no-goods only
   remove solutions, so earlier bounds stay valid).

``solve`` returns an ``Enumeration``: an iterator of solutions whose ``end_reason`` tells, once
it has ended, why (``"requested"``, ``"budget"`` or ``"exhausted"``). See docs/solver.md.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Generator, Iterator

from ortools.sat.python import cp_model

from .bound import Relaxation, relax, site_values
from .budget import CLOCKS, EXPANSION_S, PLACEMENT_S, Budget, charge_cpsat, solve_clock
from .cpsat import StallWatch, solver_for
from .cpsat import run as _run
from .drafts import make_valid
from .first_layouts import best_held, regulator_minimums, searched
from .heuristics import Layout, greedy_layouts
from .model import PositionalModel
from .policies import REQUESTED, DiversePolicy, OptimalPolicy
from .precheck import precheck
from .state import EnumState, Recorded
from .types import InfeasibleProblemError, NoSolutionFoundError, Problem, Solution, SolverOptions

BOUND_LIMIT_S = 1.5  # wall-clock cap of the path bound (bound.py) before the first solve
BOUND_SHARE = 0.15  # ... and at most this share of the per-solve time limit
BOUND_ITERATIONS = 40  # its iteration cap in deterministic mode (no wall clock there)
BEAM_RESERVE = 0.5  # the beam stops once less than this share of time_limit_s is left ...
SEEDED_BEAM_RESERVE = 0.9  # ... or this share when seed layouts are given
EAGER_FIXES = 8  # beam layouts made rule-valid before the first solve (the fallback screens this many)
HELD_RESERVE = 0.7  # favoured relaxation runs stop once less than this share of time_limit_s is left
SEARCH_RESERVE = 0.1  # the local search (large libraries, first layout unproven) stops once less than this share is left
FIRST_RESERVE = 0.04  # share of time_limit_s kept back from the first CP-SAT solve (it overruns its stop)


class Enumeration(Iterator[Solution]):
    """The solutions of one solve, best first. Once it has ended, ``end_reason`` says why:
    ``"requested"`` (``n_solutions`` reached), ``"budget"`` (``run_time_limit_s`` spent) or
    ``"exhausted"`` (no source has a further solution at or above the allowed level)."""

    def __init__(self, gen: Generator[Solution, None, str | None]):
        self._gen = gen
        self.end_reason: str | None = None

    def __iter__(self) -> Enumeration:
        return self

    def __next__(self) -> Solution:
        try:
            return next(self._gen)
        except StopIteration as stop:
            if self.end_reason is None:
                self.end_reason = stop.value or REQUESTED
            raise

    def close(self) -> None:
        """Stop the enumeration early (frees the model)."""
        self._gen.close()


def solve(problem: Problem, options: SolverOptions | None = None, n_solutions: int = 1, seeds: tuple[Layout, ...] = ()) -> Enumeration:
    """Up to ``n_solutions`` distinct sequences for ``problem``, best first (lazily).

    Raises (on the first ``next``) ``InfeasibleProblemError`` (from the precheck, or proven by
    CP-SAT on the first solve) and ``NoSolutionFoundError`` when nothing passes the checks within
    ``time_limit_s``. Ends early, without error, when the run budget is spent or no further
    solution exists at or above the allowed level (see ``Enumeration.end_reason``). ``seeds``:
    layouts found before the call (``pool.py``: the search over the full library), held like the
    beam's (the densest one starts when it beats the beam).
    """
    return Enumeration(_solve(problem, options or SolverOptions(), n_solutions, seeds))


def _solve(problem: Problem, options: SolverOptions, n_solutions: int, seeds: tuple[Layout, ...] = ()) -> Generator[Solution, None, str | None]:
    if options.mode not in ("optimal", "diverse"):
        raise InfeasibleProblemError(f"unknown mode {options.mode!r}", hint="use 'optimal' or 'diverse'")
    if options.clock not in CLOCKS:
        raise InfeasibleProblemError(f"unknown clock {options.clock!r}", hint="use 'wall' or 'cpu'")
    if n_solutions <= 0:
        return REQUESTED
    precheck(problem)
    clock = solve_clock(options.deterministic, options.clock)  # counts work when deterministic (budget.py)
    run_budget = Budget(clock, options.run_time_limit_s or None)
    first_budget = Budget(clock, min(options.time_limit_s, run_budget.left()))  # setup, beam, bound, CP-SAT

    # Beam layout, then the path relaxation, inside the first solution's budget.
    # With seeds (denser than the beam on large libraries) the beam only supplies alternatives.
    beam_reserve = SEEDED_BEAM_RESERVE if seeds else BEAM_RESERVE
    layouts = greedy_layouts(problem, options.seed, stop=lambda: first_budget.left() < beam_reserve * options.time_limit_s,
                             work=lambda n: first_budget.charge(n * EXPANSION_S))
    # The beam knows the promoter and k-mers; every other rule repairs its layouts (drafts.py):
    # the first few now (the fallback screens them), the rest when an enumeration source asks.
    fix_rng = random.Random(options.seed)
    later = (make_valid(problem, lay, fix_rng) for lay in layouts[EAGER_FIXES:])
    layouts = [make_valid(problem, lay, fix_rng) for lay in layouts[:EAGER_FIXES]]
    start = layouts[0]
    alternatives: Iterator[Layout] = itertools.chain(layouts[1:], later)
    beam_sites = len(start.library_sites)
    if seeds:
        values = site_values(problem)
        for seed_layout in seeds:
            if sum(values[si] for si in seed_layout.library_sites) > sum(values[si] for si in start.library_sites):
                alternatives, start = itertools.chain([start], alternatives), seed_layout
    relaxation, _spent = _relax(problem, options, len(start.library_sites), first_budget)
    if relaxation.layouts:
        # Layouts from the relaxation beat the beam: start from the best, keep the rest.
        alternatives = itertools.chain(relaxation.layouts[1:], layouts, later)
        start = relaxation.layouts[0]
    pm = PositionalModel(problem, lazy=True)  # the CP-SAT model is built when a solve needs it
    first_budget.charge(len(pm.placements) * PLACEMENT_S)  # counted budgets: the model's build
    st = EnumState(problem, options, pm, relaxation, random.Random(options.seed), run_budget, beam_sites, alternatives)
    recorded, bound_value = _first(st, start, layouts, first_budget, clock, search=not seeds)
    sol = st.emit(recorded)
    st.bound_sites = math.floor(bound_value / pm.bias_scale + 1e-9)
    if problem.weighted:
        st.weighted_bound = bound_value / pm.bias_scale  # later solutions report it (see EnumState.record)
    yield sol
    st.level = st.first_level = sol.n_sites
    st.min_level = max(problem.min_total_sites, math.ceil(options.min_objective_fraction * st.level))
    if st.diverse:
        st.min_level = max(st.min_level, 1)  # distinct site sets need at least one site
    pm.clear_objective()
    pm.release_left_packing()
    policy = DiversePolicy(st) if st.diverse else OptimalPolicy(st)
    return (yield from policy.run(st, n_solutions))


def _first(st: EnumState, start: Layout, layouts: list[Layout], first_budget: Budget, clock, search: bool = True) -> tuple[Recorded, float]:
    """The first solution (recorded, not yet emitted) and the bound value (objective units).
    ``search``: run the local search (``first_layouts.searched``) when no held layout reaches
    the bound (off when the caller seeded the solve with its own search)."""
    problem, options, pm, relaxation = st.problem, st.options, st.pm, st.relaxation
    scale = pm.bias_scale
    path_bound = relaxation.bound if not problem.weighted else None  # a site count (stops CP-SAT at it)
    value_bound = relaxation.bound  # the site value (weighted under weights): caps the reported bound

    def capped(bound_value: float) -> float:
        """The smaller of a bound and the path bound (< value_bound + 1), objective units."""
        return bound_value if value_bound is None else min(bound_value, float((value_bound + 1) * scale - 1))

    start_value = sum(pm.site_weights[si] for si in start.library_sites)  # == start_sites unweighted
    if path_bound is not None and not problem.side_biases:
        # A held layout at the proven bound that the independent checker accepts is an optimal
        # model solution and CP-SAT has nothing to add (no tie-break to optimise); otherwise
        # CP-SAT starts from the best checked layout (first_layouts.py).
        held = best_held(st, [start, *relaxation.layouts, *layouts], path_bound, first_budget, HELD_RESERVE * options.time_limit_s)
        if held is not None and held[0].n_sites < path_bound and first_budget.left() > HELD_RESERVE * options.time_limit_s:
            # Below the plain bound: the bound with the regulator minimums priced in may prove it.
            tighter = relaxation.required_bound(regulator_minimums(problem), known=held[0].n_sites)
            if tighter is not None and tighter < path_bound:
                path_bound = value_bound = tighter
                held = best_held(st, [held[2]], path_bound, first_budget, math.inf)  # re-marked against it
        if search:
            held = searched(st, held, path_bound, first_budget, SEARCH_RESERVE * options.time_limit_s)
        if held is not None:
            if held[0].n_sites >= path_bound:
                return st.record(held[0], held[1]), float(path_bound * scale)
            start, start_value = held[2], sum(pm.site_weights[si] for si in held[2].library_sites)
    reserve = FIRST_RESERVE * options.time_limit_s  # CP-SAT stops a little late
    # The model's build (seconds on a large pool) comes out of CP-SAT's limit, not on top of it;
    # with no room for it, the held layouts answer (counted budgets charged it already).
    if not first_budget.counted and not pm.built and first_budget.left() - reserve > len(pm.placements) * PLACEMENT_S:
        pm.build()
    limit = first_budget.left() - reserve if pm.built or first_budget.counted else 0.0
    found = _optimise(pm, options, start, path_bound, limit, clock) if limit > 0 else None
    if found is not None and found[0].value(pm.value_expr) >= start_value:
        solver, proven, bound_value, dt = found
        bound_value = capped(bound_value)
        # At the (weighted) path bound with no tie-break left to optimise: proven optimal.
        proven = proven or (not problem.side_biases and solver.value(pm.value_expr) >= math.floor(bound_value / scale + 1e-9))
        return st.accept(solver.value, dt, proven, bound_value / scale), bound_value
    # The limit came first (or CP-SAT's incumbent is worse than a layout we hold): never drop a
    # checked layout. The best one that passes the screen is the first solution.
    trivial = float(scale * sum(pm.site_weights) + scale - 1)  # every site placed, at its weight
    bound_value = capped(found[2] if found is not None else trivial)
    at = math.floor(bound_value / scale + 1e-9)
    best = None
    for option in [start, *relaxation.layouts[:8], *layouts[:8]]:
        got = st.screen(option, 0, at)
        if got is not None and (best is None or _value(got[0]) > _value(best[0])):
            best = got
    if found is not None and (best is None or _value(best[0]) <= found[0].value(pm.value_expr)):
        solver, proven, _bound, dt = found
        proven = proven or (not problem.side_biases and solver.value(pm.value_expr) >= at)
        return st.accept(solver.value, dt, proven, bound_value / scale), bound_value
    if best is None:
        raise NoSolutionFoundError(
            f"no solution found within {options.time_limit_s:g} s ({options.clock} clock)",
            hint="raise the time limit or simplify the constraints",
        )
    return st.record(*best), bound_value


def _optimise(pm: PositionalModel, options: SolverOptions, start: Layout, path_bound: int | None, limit: float, clock):
    """The first, optimising CP-SAT solve, hinted with ``start``: (solver, proven, bound, seconds),
    or None when the limit came before any solution (the caller falls back to checked layouts).

    It stops at ``path_bound`` (when no side-bias tie-break is left to optimise), after
    ``stall_time_s`` without improvement, or at ``limit`` (on the options' clock). The bound is
    the smaller of CP-SAT's and the path bound, in objective units.
    """
    problem, m, scale = pm.problem, pm.model, pm.bias_scale
    pm.set_hint(start.sequence, start.items)
    solver = solver_for(options, limit, len(pm.placements))
    ts = time.monotonic()
    stop_at = path_bound if path_bound is not None and not problem.side_biases else None
    watch = StallWatch(None if options.deterministic else options.stall_time_s, pm.n_sites_expr, stop_at, clock)
    watch.watch(solver)
    try:
        status = _run(solver, m, options, limit, watch)
    finally:
        watch.finish()
    charge_cpsat(clock, solver)  # counted budgets: CP-SAT's deterministic time
    if status == cp_model.INFEASIBLE:
        raise InfeasibleProblemError(
            "CP-SAT proved the constraints cannot all hold together",
            hint="relax promoter windows, GC bounds, forbidden k-mers or regulator minimums",
        )
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    bound_value = solver.best_objective_bound
    if path_bound is not None:
        bound_value = min(bound_value, float((path_bound + 1) * scale - 1))  # < path_bound + 1 sites
    reached = stop_at is not None and solver.value(pm.n_sites_expr) >= stop_at
    return solver, status == cp_model.OPTIMAL or reached, bound_value, time.monotonic() - ts


def _value(sol: Solution) -> int:
    """Site value of a solution (its site count unless a weights rule applies)."""
    return math.floor(sol.objective + 1e-9)


def _relax(problem: Problem, options: SolverOptions, known: int, budget: Budget) -> tuple[Relaxation, float]:
    """The path relaxation (bound.py): its site bound and better layouts, and the seconds spent.

    CP-SAT's own bound (core packing) is loose on large libraries. This one stops the first
    solve as soon as it is reached, skips that solve when a known layout reaches it, and enters
    the reported bound; it is not added to the model (measured: an extra linear bound slows
    CP-SAT's own proofs on small libraries). Deterministic runs cap the subgradient by
    iterations only, so the bound (and hence the search) is reproducible.
    """
    t0 = time.monotonic()
    share = min(BOUND_LIMIT_S, BOUND_SHARE * options.time_limit_s, max(0.0, budget.left()))
    if budget.counted:
        out = relax(problem, known=known, time_budget_s=None, max_iterations=BOUND_ITERATIONS, seed=options.seed)
        budget.charge(share)  # its nominal share: the iteration cap does about that much work
    else:
        out = relax(problem, known=known, time_budget_s=share, max_iterations=10_000, seed=options.seed, clock=budget.clock,
                    cancel=options.cancel)
    if out.bound is not None and out.bound < problem.min_total_sites:
        raise InfeasibleProblemError(
            f"at most {out.bound} library sites fit in {problem.length} bp with these overlaps, "
            f"but min_total_sites is {problem.min_total_sites}",
            hint="lower min_total_sites, lengthen the sequence or add shorter / more overlapping sites",
        )
    return out, time.monotonic() - t0
