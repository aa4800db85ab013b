"""CP-SAT plumbing of the enumeration: solver parameters, budgets and solution callbacks.

``solver_for`` sets the parameters every solve shares (probing and symmetry off, presolve off on
large models, one worker on small ones, limits on the chosen clock); ``run`` stops a solve on CPU time under
``clock="cpu"``. The callbacks stop a search at a target, on a stall, or collect many distinct
placement sets in one search.
"""

from __future__ import annotations

import threading
import time

from ortools.sat.python import cp_model

from .budget import CPU_WALL_BACKSTOP, DTIME_PER_S, CpuWatch
from .model import PositionalModel
from .types import SolverOptions

COLLECT_PATIENCE_S = 0.3  # stop collecting when no new placement set came for this long
PRESOLVE_MAX_PLACEMENTS = 30_000  # larger models are solved without CP-SAT's presolve
ONE_WORKER_MAX_PLACEMENTS = 3_000  # models up to this size are solved on one CP-SAT worker


class StallWatch(cp_model.CpSolverSolutionCallback):
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


class StopAtTarget(cp_model.CpSolverSolutionCallback):
    """Stop the search at the first solution whose site count reaches ``target``."""

    def __init__(self, sites_expr, target: int):
        super().__init__()
        self._expr = sites_expr
        self._target = target

    def on_solution_callback(self) -> None:
        if self.value(self._expr) >= self._target:
            self.stop_search()


class Collect(cp_model.CpSolverSolutionCallback):
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


def solver_for(options: SolverOptions, limit_s: float, placements: int = 0) -> cp_model.CpSolver:
    s = cp_model.CpSolver()
    p = s.parameters
    if placements > PRESOLVE_MAX_PLACEMENTS:
        # Measured on a 200-site PWM pool at L=120 (41k literals): presolve alone ran past a 4 s
        # CPU limit (it does not stop in time) and found nothing; without it the hinted layout
        # is returned at once and the LP gives a bound (21).
        p.cp_model_presolve = False
    # Probing and symmetry detection cost seconds on 20k-placement models and, measured, did
    # not help the bound (which comes from the core packing at-most-ones).
    p.cp_model_probing_level = 0
    p.symmetry_level = 0
    # Small models (the demo's 10-site libraries at L=100: ~1,700 placements) are solved as fast
    # on one worker as on two; the second worker only doubled their CPU (measured on the demo's
    # libraries: a failing diverse-mode global solve 1.6 -> 0.7 CPU-s, same solutions).
    p.num_workers = 1 if 0 < placements <= ONE_WORKER_MAX_PLACEMENTS else max(1, options.workers)
    p.random_seed = options.seed
    if options.deterministic:
        p.max_deterministic_time = max(0.01, limit_s) * DTIME_PER_S  # about limit_s seconds of work
    elif options.clock == "cpu":
        p.max_time_in_seconds = max(0.01, limit_s) * CPU_WALL_BACKSTOP  # the CpuWatch stops it first
    else:
        p.max_time_in_seconds = max(0.01, limit_s)
    return s


def run(solver: cp_model.CpSolver, model: cp_model.CpModel, options: SolverOptions, limit_s: float, callback=None):
    """``solver.solve``, stopped after ``limit_s`` CPU seconds under ``clock="cpu"``."""
    cpu = options.clock == "cpu" and not options.deterministic
    with CpuWatch(solver, max(0.01, limit_s) if cpu else None, options.cancel):
        return solver.solve(model, callback) if callback is not None else solver.solve(model)
