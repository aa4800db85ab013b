"""Enumerate many distinct solutions from one model, best first.

Strategy (see docs/solver.md for the measurements behind it):

1. Optimise once, hinted with a greedy layout: best solution and a proven bound ``U`` (sites).
2. Keep the same ``CpModel``; after each solution add no-goods (its exact placement set and its
   exact sequence; in diverse mode also its site set and a distance to recent site sets).
3. Optimal mode: candidate layouts (block slides, strand flips, swaps, random reorderings and
   flips of the blocks between fixed promoter elements, for the last solution and then for
   earlier ones, then the other beam layouts) are screened in Python: every item must be a
   model placement, the independent checker (``check.py``) must accept the sequence, and the
   no-goods and the level must hold. That is exactly what the model requires, so a candidate
   passing the screen is a model solution; it costs about a millisecond instead of a CP-SAT
   check. Its no-goods are added to the model as for any solution.
   When candidates run out, a global CP-SAT search at the level follows; on models up to
   ``COLLECT_MAX_PLACEMENTS`` placements it enumerates and hands over every new placement set
   it meets (instead of one solve per solution). The level drops by one site when CP-SAT proves
   it empty or the search times out (after ``TOP_LEVEL_LIMIT_S`` while the level is above the
   beam's site count). Diverse mode validates its candidates with CP-SAT as before.
4. ``optimal`` is set when a solution's site count reaches the best proven bound of the model it
   was found in (no-goods only remove solutions, so earlier bounds stay valid).
"""

from __future__ import annotations

import itertools
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace

from ortools.sat.python import cp_model

from .bound import Relaxation, relax
from .budget import CLOCKS, CPU_WALL_BACKSTOP, Budget, CpuWatch, clock_of
from .check import check_solution
from .heuristics import Layout, greedy_layouts, neighbour_layouts
from .model import PositionalModel
from .precheck import precheck
from .types import InfeasibleProblemError, NoSolutionFoundError, Placement, Problem, Solution, SolverOptions

EXTRA_SITES = 4  # extra library sites allowed in a diverse-mode neighbourhood solve
MAX_FAILURES = 3  # failed neighbourhoods in a row before a global solve
NEIGHBOUR_LIMIT_S = 1.0  # time cap of one neighbour / neighbourhood solve
COLLECT_MAX_PLACEMENTS = 6000  # global solves collect many solutions on models up to this size
COLLECT_LIMIT_S = 3.0
TOP_LEVEL_LIMIT_S = 1.5  # optimal mode: cap of a global solve above the beam's site count
COLLECT_PATIENCE_S = 0.3  # stop collecting when no new placement set came for this long
MAX_NEIGHBOUR_TRIES = 8  # candidates validated by CP-SAT per solution before a global solve
MAX_FAST_TRIES = 2000  # candidates screened in Python (checker + no-goods) per solution
DIVERSE_GLOBAL_LIMIT_S = 2.0  # diverse mode: cap of a global solve before the level drops
MAX_DEFERRED = 5000  # candidates kept for lower levels
STEER_TRIES = 1  # diverse mode: steered relaxation layouts per round (the densest valid one wins)
MAX_STEER_FAILURES = 5  # ... rounds in a row without a valid one before the CP-SAT route takes over
BOUND_LIMIT_S = 1.5  # wall-clock cap of the path bound (bound.py) before the first solve
BOUND_SHARE = 0.15  # ... and at most this share of the per-solve time limit
BOUND_ITERATIONS = 40  # its iteration cap in deterministic mode (no wall clock there)


class _StallWatch(cp_model.CpSolverSolutionCallback):
    """Stop an optimising solve when the incumbent has not improved for ``stall_s`` seconds, or
    at once when its site count reaches ``target`` (a bound proven elsewhere)."""

    def __init__(self, stall_s: float | None, sites_expr=None, target: int | None = None, clock=time.monotonic):
        super().__init__()
        self._clock = clock
        self._stall = stall_s
        self._expr = sites_expr
        self._target = target
        self._last: float | None = None  # the clock starts at the first solution
        self._done = threading.Event()

    def on_solution_callback(self) -> None:
        self._last = self._clock()
        if self._target is not None and self.value(self._expr) >= self._target:
            self.stop_search()

    def watch(self, solver: cp_model.CpSolver) -> threading.Thread | None:
        if not self._stall:
            return None

        def loop() -> None:
            while not self._done.wait(0.05):
                if self._last is not None and self._clock() - self._last > self._stall:
                    solver.stop_search()
                    return

        t = threading.Thread(target=loop, daemon=True)
        t.start()
        return t

    def finish(self) -> None:
        self._done.set()


class _StopAtTarget(cp_model.CpSolverSolutionCallback):
    """Stop the search at the first solution whose site count reaches ``target``."""

    def __init__(self, sites_expr, target: int):
        super().__init__()
        self._expr = sites_expr
        self._target = target

    def on_solution_callback(self) -> None:
        if self.value(self._expr) >= self._target:
            self.stop_search()


class _Collect(cp_model.CpSolverSolutionCallback):
    """Collect solutions with distinct library placement sets; stop after ``want``."""

    def __init__(self, pm: PositionalModel, want: int):
        super().__init__()
        self._pm = pm
        self._want = want
        self._keys: set[frozenset] = set()
        self.found: list = []
        self._last = time.monotonic()

    def on_solution_callback(self) -> None:
        pm = self._pm
        chosen = [p for p in pm.placements if self.boolean_value(p.literal)]
        key = frozenset((p.site_index, p.start, p.sequence) for p in chosen)
        now = time.monotonic()
        if key in self._keys:
            if now - self._last > COLLECT_PATIENCE_S:
                self.stop_search()  # only variants of known sets lately: hand over what we have
            return
        self._keys.add(key)
        self._last = now
        seq, placements, chosen = pm.decode(self.value)
        self.found.append((seq, placements, chosen, pm.objective_to_float(self.value(pm.objective_expr))))
        if len(self.found) >= self._want:
            self.stop_search()


def _solver(options: SolverOptions, limit_s: float) -> cp_model.CpSolver:
    s = cp_model.CpSolver()
    p = s.parameters
    # Probing and symmetry detection cost seconds on 20k-placement models and, measured, did
    # not help the bound (which comes from the core packing at-most-ones).
    p.cp_model_probing_level = 0
    p.symmetry_level = 0
    p.num_workers = max(1, options.workers)
    p.random_seed = options.seed
    if options.deterministic:
        p.max_deterministic_time = max(0.01, limit_s)
    elif options.clock == "cpu":
        p.max_time_in_seconds = max(0.01, limit_s) * CPU_WALL_BACKSTOP  # the CpuWatch stops it first
    else:
        p.max_time_in_seconds = max(0.01, limit_s)
    return s


def _run(solver: cp_model.CpSolver, model: cp_model.CpModel, options: SolverOptions, limit_s: float, callback=None):
    """``solver.solve``, stopped after ``limit_s`` CPU seconds under ``clock="cpu"``."""
    cpu = options.clock == "cpu" and not options.deterministic
    with CpuWatch(solver, max(0.01, limit_s) if cpu else None):
        return solver.solve(model, callback) if callback is not None else solver.solve(model)


def solve(problem: Problem, options: SolverOptions | None = None, n_solutions: int = 1) -> Iterator[Solution]:
    """Yield up to ``n_solutions`` distinct sequences for ``problem``, best first.

    Raises ``InfeasibleProblemError`` (from the precheck, or proven by CP-SAT on the first solve)
    and ``NoSolutionFoundError`` when the first solve finds nothing within ``time_limit_s``.
    Stops early, without error, when the run budget is spent or no further solution exists at
    or above the allowed level.
    """
    options = options or SolverOptions()
    if options.mode not in ("optimal", "diverse"):
        raise InfeasibleProblemError(f"unknown mode {options.mode!r}", hint="use 'optimal' or 'diverse'")
    if options.clock not in CLOCKS:
        raise InfeasibleProblemError(f"unknown clock {options.clock!r}", hint="use 'wall' or 'cpu'")
    if n_solutions <= 0:
        return
    precheck(problem)
    clock = clock_of(options.clock)
    run = Budget(clock, options.run_time_limit_s or None)
    first_budget = Budget(clock, min(options.time_limit_s, run.left()))  # setup, beam, bound, CP-SAT

    def remaining() -> float:
        return run.left()

    # 1. Beam layout, then the path relaxation, inside the first solution's budget.
    layouts = greedy_layouts(problem, options.seed, stop=lambda: first_budget.left() < 0.5 * options.time_limit_s)
    start = layouts[0]
    beam_sites = len(start.library_sites)
    alternatives = iter(layouts[1:])
    relaxation, _spent = _relax(problem, options, beam_sites, first_budget)
    path_bound = relaxation.bound if not problem.weighted else None  # it bounds sites, not weighted value
    if relaxation.layouts:
        # Layouts from the relaxation beat the beam: start from the best, keep the rest.
        alternatives = iter(relaxation.layouts[1:] + layouts)
        start = relaxation.layouts[0]
    start_sites = len(start.library_sites)
    pm = PositionalModel(problem)
    start_value = sum(pm.site_weights[si] for si in start.library_sites)  # == start_sites unweighted
    m = pm.model
    diverse = options.mode == "diverse"
    rng = random.Random(options.seed)
    scale = pm.bias_scale

    def sol_sites(s: cp_model.CpSolver) -> int:
        return int(s.value(pm.n_sites_expr))

    seen_seq: set[str] = set()
    usage: Counter[int] = Counter()
    recent_sets: list[list[int]] = []
    emitted = 0

    emitted_sets: list[frozenset] = []  # library placement keys of every emitted solution
    emitted_site_sets: set[frozenset[int]] = set()  # library site sets of every emitted solution

    def accept(value, solve_time: float, optimal: bool, bound: float | None):
        seq, placements, chosen = pm.decode(value)
        obj = pm.objective_to_float(value(pm.objective_expr))
        return record(Solution(seq, placements, obj, optimal, solve_time, bound, emitted), chosen)

    weighted_bound: list[float] = []  # under weights: the first solve's bound, valid for every later one

    def record(sol: Solution, chosen):
        if weighted_bound:  # later levels count sites; report the bound in weighted value instead
            sol = replace(sol, bound=weighted_bound[0], optimal=sol.objective >= weighted_bound[0] - 1e-9)
        seq = sol.sequence
        emitted_sets.append(frozenset((p.site_index, p.start, p.sequence) for p in chosen if not p.fixed))
        pm.forbid_placements(chosen)
        pm.forbid_sequence(seq)
        sites = sorted({p.site_index for p in chosen if not p.fixed})
        emitted_site_sets.add(frozenset(sites))
        if diverse:
            pm.forbid_site_set(sites)
        for si in sites:
            usage[si] += 1
        recent_sets.append(sites)
        return sol, Layout(seq, pm.layout_items(chosen)), sites

    lib_index = {(p.site_index, p.start, p.sequence): p for p in pm.placements}
    prom_index = {(p.site_id, p.start): p for p in pm.promoter_placements}

    def screen(cand: Layout, target: int, optimal_at: int):
        """Validate a complete candidate without CP-SAT: every item must be a model placement,
        the independent checker must accept it, and it must respect the no-goods and the level
        (the model constraints are exactly these, so CP-SAT would return this assignment)."""
        ts = time.monotonic()
        chosen = []
        for si, _st, start, sq, f in cand.items:
            p = lib_index.get((si, start, sq)) if si >= 0 else prom_index.get((f, start))
            if p is None:
                return None
            chosen.append(p)
        keys = frozenset((p.site_index, p.start, p.sequence) for p in chosen if not p.fixed)
        n = len(keys)
        if n < target or cand.sequence in seen_seq or any(prev <= keys for prev in emitted_sets):
            return None
        if diverse and not _new_site_set({k[0] for k in keys}, emitted_sets, recent_sets):
            return None
        chosen.sort(key=lambda p: (p.start, p.fixed is False, p.site_id))
        placements = tuple(Placement(p.site_id, p.regulator, p.start, p.strand, p.sequence, p.fixed) for p in chosen)
        obj_int = sum(pm.placement_value(p) for p in chosen)
        sol = Solution(cand.sequence, placements, pm.objective_to_float(obj_int), n >= optimal_at,
                       time.monotonic() - ts, float(optimal_at), emitted)
        if check_solution(problem, sol):
            return None
        return sol, chosen

    if path_bound is not None and start_sites >= path_bound and not problem.side_biases:
        # The beam layout reaches the proven bound: if the independent checker accepts it, it is
        # an optimal model solution and CP-SAT has nothing to add (no tie-break to optimise).
        first = screen(start, path_bound, path_bound)
    else:
        first = None
    if first is not None and path_bound is not None:  # (first is only set with a path bound)
        sol, layout, last_sites = record(*first)
        bound_value = float(path_bound * scale)
    else:
        limit = first_budget.left()
        found = _optimise(pm, options, start, path_bound, limit, clock) if limit > 0 else None
        if found is not None and found[0].value(pm.value_expr) >= start_value:
            solver, proven, bound_value, dt = found
            sol, layout, last_sites = accept(solver.value, dt, proven, bound_value / scale)
        else:
            # The limit came first (or CP-SAT's incumbent is worse than a layout we hold): never
            # drop a checked layout. The best one that passes the screen is the first solution.
            trivial = float(scale * sum(pm.site_weights) + scale - 1)  # every site placed, at its weight
            bound_value = found[2] if found is not None else trivial
            if path_bound is not None:
                bound_value = min(bound_value, float((path_bound + 1) * scale - 1))
            at = math.floor(bound_value / scale + 1e-9)
            best = None
            for option in [start, *relaxation.layouts[:8], *layouts[:8]]:
                got = screen(option, 0, at)
                if got is not None and (best is None or _value(got[0]) > _value(best[0])):
                    best = got
            if found is not None and (best is None or _value(best[0]) <= found[0].value(pm.value_expr)):
                solver, proven, bound_value, dt = found
                sol, layout, last_sites = accept(solver.value, dt, proven, bound_value / scale)
            elif best is None:
                raise NoSolutionFoundError(
                    f"no solution found within {options.time_limit_s:g} s ({options.clock} clock)",
                    hint="raise the time limit or simplify the constraints",
                )
            else:
                sol, layout, last_sites = record(*best)
    bound_sites = math.floor(bound_value / scale + 1e-9)
    if problem.weighted:
        weighted_bound.append(bound_value / scale)
    seen_seq.add(sol.sequence)
    emitted = 1
    yield sol
    level = first_level = sol.n_sites

    def moves(lay: Layout) -> Iterator[Layout]:
        """Candidates near a solution: relaxation variants (another site set), then symmetry
        moves (same sites: rearrangements, kept for after the new site sets)."""
        return itertools.chain(relaxation.variants(lay, rng), neighbour_layouts(problem, lay, rng))

    # 2. Feasibility solves at decreasing levels.
    min_level = max(problem.min_total_sites, math.ceil(options.min_objective_fraction * level))
    if diverse:
        min_level = max(min_level, 1)  # distinct site sets need at least one site
    m.clear_objective()
    pm.release_left_packing()
    temp: list[int] = []  # constraints replaced every round
    failures = 0
    neighbours = None if diverse else moves(layout)
    tries = 0
    diverse_tries = 0
    n_lib = len(problem.sites)
    fast_tries = 0
    steer_failures = 0
    deferred: list[Layout] = []  # candidates with fewer sites than the current level
    pending: list = []  # partly consumed neighbour streams of earlier solutions
    repeats: list[Layout] = []  # candidates whose site set was emitted: after the new site sets
    collect_ok = not options.deterministic  # its patience is wall-clock based
    while emitted < n_solutions and level >= min_level:
        if remaining() <= 0:
            return
        for idx in temp:
            m.proto.constraints[idx].clear_linear()  # an emptied constraint is ignored
        temp.clear()
        temp.append(m.add(pm.n_sites_expr >= level).index)
        target = level
        kind = "global"
        cand = None
        if not diverse:
            # Optimal mode: screen neighbours and beam alternatives in Python first (ms each).
            hit = None
            while hit is None and fast_tries < MAX_FAST_TRIES:
                cand = _take_deferred(deferred, level)
                if cand is None:
                    cand = next(neighbours, None) if neighbours is not None else None
                while cand is None and pending:
                    # Neighbours of earlier solutions, most recent first.
                    neighbours = pending.pop()
                    cand = next(neighbours, None)
                if cand is None:
                    cand = next(alternatives, None)
                repeat_ok = False
                if cand is None and repeats:
                    cand, repeat_ok = repeats.pop(0), True
                if cand is None:
                    break
                if len(cand.library_sites) < level:
                    if len(deferred) < MAX_DEFERRED:
                        deferred.append(cand)  # kept for the levels below
                    continue
                if not repeat_ok and frozenset(cand.library_sites) in emitted_site_sets:
                    if len(repeats) < MAX_DEFERRED:
                        repeats.append(cand)  # a rearrangement: users value new site sets first
                    continue
                fast_tries += 1
                hit = screen(cand, level, bound_sites)
            cand = None
            if hit is not None:
                sol, layout, last_sites = record(*hit)
                fast_tries = 0
                tries = 0
                seen_seq.add(sol.sequence)
                emitted += 1
                if neighbours is not None:
                    pending.append(neighbours)
                neighbours = moves(layout)
                yield sol
                continue
        if diverse and steer_failures < MAX_STEER_FAILURES:
            # Relaxation layouts steered away from a third of the last sites and from used ones,
            # screened in Python against the diverse rules too; the densest of a few wins.
            floor = max(min_level, first_level - max(1, first_level // 5))
            hit = None
            for _ in range(STEER_TRIES):
                drop = set(rng.sample(last_sites, max(1, len(last_sites) // 3))) if last_sites else set()
                cand = relaxation.steered(drop, usage, at_least=floor)
                if cand is None and usage:
                    cand = relaxation.steered(drop, {}, at_least=floor)  # the bans alone
                got = screen(cand, floor, bound_sites) if cand is not None else None
                if got is not None and (hit is None or got[0].n_sites > hit[0].n_sites):
                    hit = got
            if hit is not None:
                steer_failures = 0
                sol, layout, last_sites = record(*hit)
                seen_seq.add(sol.sequence)
                emitted += 1
                yield sol
                continue
            steer_failures += 1
        if neighbours is not None and tries < MAX_NEIGHBOUR_TRIES and diverse:
            cand = next(neighbours, None)
            while cand is not None and cand.sequence in seen_seq:
                cand = next(neighbours, None)
        if cand is None and diverse:
            # Other dense layouts from the beam (new orders, orientations and site choices).
            cand = next(alternatives, None)
            while cand is not None and (cand.sequence in seen_seq or len(cand.items) - len(problem.promoters) * 2 < level):
                cand = next(alternatives, None)
        if cand is None and diverse and diverse_tries < MAX_FAILURES:
            # A fresh beam layout that avoids a third of the last sites and the most used ones.
            diverse_tries += 1
            cand = _diverse_layout(problem, last_sites, usage, rng)
            n_cand = len(cand.items) - len(problem.promoters) * 2 if cand is not None else -1
            if cand is not None and cand.sequence not in seen_seq and max(min_level, first_level - max(1, first_level // 5)) <= n_cand < level:
                # Diverse mode accepts up to a fifth fewer sites than the first optimum
                # (at least one) for a new site set.
                target = n_cand
                for idx in temp:
                    m.proto.constraints[idx].clear_linear()
                temp.clear()
                temp.append(m.add(pm.n_sites_expr >= target).index)
            elif cand is not None and (cand.sequence in seen_seq or n_cand < level):
                cand = None
        if diverse:
            temp.extend(_distance_constraints(pm, recent_sets[-3:]))
        if cand is not None:
            kind = "neighbour"
            tries += 1
            pm.set_hint(cand.sequence, cand.items)
        else:
            pm.set_hint(layout.sequence, layout.items)
            if diverse and failures < MAX_FAILURES and n_lib > len(last_sites) + EXTRA_SITES:
                kind = "neighbourhood"
                temp.append(_neighbourhood(pm, last_sites, usage, rng, failures))
        limit = options.time_limit_s if kind == "global" else min(options.time_limit_s, NEIGHBOUR_LIMIT_S)
        if diverse and kind == "global":
            limit = min(limit, DIVERSE_GLOBAL_LIMIT_S)
        elif kind == "global" and level > beam_sites:
            # The first solve beat the beam: this level has few known layouts; a short search
            # for more, then the level below, where beam layouts and their moves exist.
            limit = min(limit, TOP_LEVEL_LIMIT_S)
        limit = min(limit, remaining())
        solver = _solver(options, limit)
        if kind == "neighbour":
            # Validate the complete candidate against every constraint: presolve fixes all
            # variables to the hint, so this is a model check, not a search.
            solver.parameters.fix_variables_to_their_hinted_value = True
        if kind == "global" and not diverse and collect_ok and len(pm.placements) <= COLLECT_MAX_PLACEMENTS:
            # One search that hands over every new placement set it meets, instead of one
            # solve per solution (small models; gap-base variants of a set are skipped).
            coll = _Collect(pm, n_solutions - emitted)
            collect_limit = min(limit, COLLECT_LIMIT_S, remaining())
            solver = _solver(options, collect_limit)
            solver.parameters.enumerate_all_solutions = True
            ts = time.monotonic()
            status = _run(solver, m, options, collect_limit, coll)
            dt = time.monotonic() - ts
            got = 0
            for seq, placements, chosen, obj in coll.found:
                keys = frozenset((p.site_index, p.start, p.sequence) for p in chosen if not p.fixed)
                if seq in seen_seq or len(keys) < target or any(prev <= keys for prev in emitted_sets):
                    continue
                sol, layout, last_sites = record(
                    Solution(seq, placements, obj, len(keys) >= bound_sites, dt, float(bound_sites), emitted), chosen
                )
                seen_seq.add(seq)
                emitted += 1
                got += 1
                if neighbours is not None:
                    pending.append(neighbours)
                neighbours = moves(layout)
                yield sol
                if emitted >= n_solutions:
                    return
            if got:
                tries = fast_tries = 0
            elif status == cp_model.INFEASIBLE:
                level -= 1
                bound_sites = min(bound_sites, level)
            else:
                collect_ok = False  # fall back to ordinary solves
            continue
        ts = time.monotonic()
        status = _run(solver, m, options, limit, _StopAtTarget(pm.n_sites_expr, target))
        dt = time.monotonic() - ts
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            sol, layout, last_sites = accept(solver.value, dt, sol_sites(solver) >= bound_sites, float(bound_sites))
            if sol.sequence in seen_seq:
                continue
            failures = 0
            tries = 0
            fast_tries = 0
            diverse_tries = 0
            steer_failures = 0  # a new solution: steer away from it again
            seen_seq.add(sol.sequence)
            emitted += 1
            if not diverse:
                if neighbours is not None:
                    pending.append(neighbours)
                neighbours = moves(layout)
            yield sol
        elif kind == "neighbourhood":
            failures += 1
        elif kind == "neighbour":
            pass  # candidate rejected by the model; try the next one
        elif status == cp_model.INFEASIBLE and diverse and recent_sets:
            recent_sets.clear()  # distance too strict: keep only the exact no-goods
        elif status == cp_model.INFEASIBLE:
            level -= 1
            failures = 0
            bound_sites = min(bound_sites, level)
        else:  # global solve timed out without a solution at this level
            if diverse and recent_sets:
                recent_sets.clear()
                continue
            level -= 1
            failures = 0


def _optimise(pm: PositionalModel, options: SolverOptions, start: Layout, path_bound: int | None, limit: float, clock):
    """The first, optimising CP-SAT solve, hinted with ``start``: (solver, proven, bound, seconds),
    or None when the limit came before any solution (the caller falls back to checked layouts).

    It stops at ``path_bound`` (when no side-bias tie-break is left to optimise), after
    ``stall_time_s`` without improvement, or at ``limit`` (on the options' clock). The bound is
    the smaller of CP-SAT's and the path bound, in objective units.
    """
    problem, m, scale = pm.problem, pm.model, pm.bias_scale
    pm.set_hint(start.sequence, start.items)
    solver = _solver(options, limit)
    ts = time.monotonic()
    stop_at = path_bound if path_bound is not None and not problem.side_biases else None
    watch = _StallWatch(None if options.deterministic else options.stall_time_s, pm.n_sites_expr, stop_at, clock)
    watch.watch(solver)
    try:
        status = _run(solver, m, options, limit, watch)
    finally:
        watch.finish()
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


def _new_site_set(sites: set[int], emitted_sets: list[frozenset], recent_sets: list[list[int]]) -> bool:
    """Diverse mode's rules, as the model states them: no superset of an emitted site set, and
    at most two thirds of the sites of each of the last three solutions."""
    if any({k[0] for k in prev} <= sites for prev in emitted_sets):
        return False
    return all(len(sites & set(prev)) <= (2 * len(prev)) // 3 for prev in recent_sets[-3:] if len(prev) >= 2)


def _take_deferred(deferred: list[Layout], level: int) -> Layout | None:
    """A deferred candidate that reaches ``level`` (the level dropped since it was set aside)."""
    for i, cand in enumerate(deferred):
        if len(cand.library_sites) >= level:
            return deferred.pop(i)
    return None


def _relax(problem: Problem, options: SolverOptions, known: int, budget: Budget) -> tuple[Relaxation, float]:
    """The path relaxation (bound.py): its site bound and better layouts, and the seconds spent.

    CP-SAT's own bound (core packing) is loose on large libraries. This one stops the first
    solve as soon as it is reached, skips that solve when a known layout reaches it, and enters
    the reported bound; it is not added to the model (measured: an extra linear bound slows
    CP-SAT's own proofs on small libraries). Deterministic runs cap the subgradient by
    iterations only, so the bound (and hence the search) is reproducible.
    """
    t0 = time.monotonic()
    if options.deterministic:
        out = relax(problem, known=known, time_budget_s=None, max_iterations=BOUND_ITERATIONS, seed=options.seed)
    else:
        share = min(BOUND_LIMIT_S, BOUND_SHARE * options.time_limit_s, max(0.0, budget.left()))
        out = relax(problem, known=known, time_budget_s=share, max_iterations=10_000, seed=options.seed, clock=budget.clock)
    if out.bound is not None and out.bound < problem.min_total_sites:
        raise InfeasibleProblemError(
            f"at most {out.bound} library sites fit in {problem.length} bp with these overlaps, "
            f"but min_total_sites is {problem.min_total_sites}",
            hint="lower min_total_sites, lengthen the sequence or add shorter / more overlapping sites",
        )
    return out, time.monotonic() - t0


def _diverse_layout(problem: Problem, last_sites: list[int], usage: Counter, rng: random.Random) -> Layout | None:
    """Beam layout without a random quarter of the last sites and without the most used sites."""
    if not last_sites:
        return None
    drop = set(rng.sample(last_sites, max(1, len(last_sites) // 4)))
    if usage:
        top = max(usage.values())
        drop |= {i for i, c in usage.items() if c == top and c > 1}
    layouts = greedy_layouts(problem, rng.randrange(1 << 30), frozenset(drop))
    return layouts[0] if layouts else None


def _neighbourhood(pm: PositionalModel, last_sites: list[int], usage: Counter, rng: random.Random, failures: int) -> int:
    """Diverse mode: allow only the last sites minus a third plus the least-used others."""
    n_lib = len(pm.problem.sites)
    last = set(last_sites)
    others = [i for i in range(n_lib) if i not in last]
    rng.shuffle(others)
    others.sort(key=lambda i: usage[i])
    keep = last | set(others[: EXTRA_SITES * (1 + failures)])
    if last_sites:
        keep -= set(rng.sample(last_sites, max(1, len(last_sites) // 3)))
    banned = [pm.used[i] for i in range(n_lib) if i not in keep]
    return pm.model.add(sum(banned) == 0).index


def _distance_constraints(pm: PositionalModel, sets: list[list[int]]) -> list[int]:
    """Diverse mode: share at most two thirds of the sites of each recent solution."""
    out = []
    for sites in sets:
        if len(sites) >= 2:
            out.append(pm.model.add(sum(pm.used[i] for i in sites) <= (2 * len(sites)) // 3).index)
    return out
