"""The library loop: sample a library per plan, solve it, hand each solution to the acceptor.

Up to `k` libraries are solved at once, each in its own worker thread (CP-SAT releases the GIL)
with `workers // k` CP-SAT workers; `k = 1` is the serial run, through the same code. This thread
is the only writer: it samples libraries (samplers are not thread-safe), accepts solutions in
arrival order and commits checkpoints. A worker computes its next solution only when this thread
asks for it, so nothing is solved ahead of need; when a plan's quota is met, or a stop is
requested, the libraries still solving are cancelled (an abandoned solve finishes in its daemon
thread; the process is about to flush and exit).

Stall accounting stops a plan whose quota looks unreachable (`runtime.max_stalled_libraries`
consecutive libraries with nothing new) and a session with too many failed solutions
(`runtime.max_failed_solutions`).
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from ..core.errors import DnadesignError
from .acceptance import Acceptor, LibraryTask
from .library import LibrarySampler, library_hash
from .plans import PlanSpec
from .progress import RunProgress
from .settings import RunSettings, SeedStream
from .signals import StopFlag
from .solver import InfeasibleProblemError, NoSolutionFoundError, SolverOptions, solve
from .state import RunState
from .telemetry import Diagnostics

POLL_S = 0.1


class QuotaUnreachableError(DnadesignError):
    """A plan stopped making progress: its quota cannot be met with these inputs and constraints."""


class StallGuard:
    """Counts libraries that brought nothing new; raises when a quota looks unreachable."""

    def __init__(self, state: RunState, settings: RunSettings, diag: Diagnostics):
        self.state = state
        self.settings = settings
        self.diag = diag
        self.stalls = dict.fromkeys(state.plans, 0)

    def after_library(self, name: str, accepted: int) -> None:
        """Account one finished library of plan `name` that accepted `accepted` rows."""
        state = self.state
        if accepted or state.plans[name].done:
            self.stalls[name] = 0
        else:
            self.stalls[name] += 1
            state.plans[name].stalled_libraries += 1
            if self.stalls[name] >= self.settings.max_stalled_libraries:
                ps = state.plans[name]
                self.diag.emit("quota_unreachable", plan=name, generated=ps.generated, quota=ps.quota,
                               stalled_libraries=self.stalls[name])
                raise QuotaUnreachableError(
                    f"plan {name} made no progress in {self.stalls[name]} consecutive libraries "
                    f"({ps.generated}/{ps.quota} sequences; {ps.duplicates} duplicates, {ps.infeasible} infeasible, "
                    f"{ps.no_solution} timed out), so its quota looks unreachable",
                    hint="lower the plan's quota, widen its inputs or relax its constraints "
                         "(or raise runtime.max_stalled_libraries); the sequences written so far are kept",
                )
        limit = self.settings.max_failed_solutions
        if limit:
            failed = sum(p.duplicates + p.rejected + p.infeasible + p.no_solution for p in state.plans.values())
            if failed >= limit:
                self.diag.emit("max_failed_solutions", failed=failed, limit=limit)
                raise QuotaUnreachableError(
                    f"this session reached runtime.max_failed_solutions={limit} "
                    f"({state.generated}/{state.quota} sequences written)",
                    hint="raise runtime.max_failed_solutions, relax the plan constraints or widen the inputs; "
                         "`dense run` resumes from what is saved")


@dataclasses.dataclass
class _Inflight:
    task: LibraryTask
    cancel: threading.Event
    demand: threading.Semaphore


class LibraryLoop:
    """Solve libraries until every plan is done, a stop is requested or the time budget ends."""

    def __init__(self, *, state: RunState, plans: dict[str, PlanSpec], samplers: dict[str, LibrarySampler],
                 acceptor: Acceptor, settings: RunSettings, seeds: SeedStream, stop: StopFlag, diag: Diagnostics,
                 progress: RunProgress, base_options: Callable[[int, int], SolverOptions]):
        self.state = state
        self.plans = plans
        self.samplers = samplers
        self.acceptor = acceptor
        self.settings = settings
        self.seeds = seeds
        self.stop = stop
        self.diag = diag
        self.progress = progress
        self.base_options = base_options  # (seed, workers) -> the config's SolverOptions
        self.stalls = StallGuard(state, settings, diag)
        self.deadline = None if not settings.max_seconds else time.monotonic() + float(settings.max_seconds)
        self.k = max(1, settings.parallel_libraries)
        self.workers_per_library = max(1, settings.workers // self.k)
        self._events: queue.Queue = queue.Queue()
        self._inflight: dict[int, _Inflight] = {}
        self._next_id = 0
        self._turn = 0
        shard = settings.shard
        self._offset = (shard.index - 1) if shard is not None else 0

    # -- helpers ------------------------------------------------------------------------------
    def deadline_passed(self) -> bool:
        """Request a stop when the run's time budget is over; True when a stop is requested."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.stop.request(f"runtime budget of {self.settings.max_seconds:g} s reached")
        return self.stop.requested

    def options(self, plan: str, index: int) -> SolverOptions:
        """Solver options of library `index` of `plan`: the config's, this library's seed, the time left."""
        s = self.settings
        remaining = None if self.deadline is None else max(0.5, self.deadline - time.monotonic())
        limits = [x for x in (s.run_time_limit_s, remaining) if x is not None]
        base = self.base_options(self.seeds.solve(plan, index), self.workers_per_library)
        return dataclasses.replace(base, time_limit_s=min(s.time_limit_s, remaining) if remaining else s.time_limit_s,
                                   run_time_limit_s=min(limits) if limits else None)

    def pick(self, active: list[str]) -> str:
        """The plan to sample next: in order (an array task starts at its own offset) or round-robin."""
        if self.settings.round_robin:
            name = active[(self._turn + self._offset) % len(active)]
            self._turn += 1
            return name
        return active[self._offset % len(active)]

    def start_library(self, name: str) -> LibraryTask:
        """Sample the next library of plan `name` and build its problem."""
        plan, sampler = self.plans[name], self.samplers[name]
        ps = self.state.plans[name]
        library = tuple(sampler.next())
        task = LibraryTask(plan=plan, sampler=sampler, index=ps.libraries, library=library, lhash=library_hash(library),
                           problem=plan.build_problem(library), t0=time.monotonic())
        ps.libraries += 1
        self.diag.emit("library", plan=name, index=task.index, hash=task.lhash, size=len(library),
                       regulators=sorted({s.regulator for s in library}))
        return task

    def finish_library(self, task: LibraryTask, outcome: str) -> None:
        """Record a library's outcome, then stall accounting and a checkpoint when due."""
        ps = self.state.plans[task.plan.name]
        if outcome.startswith("infeasible"):
            ps.infeasible += 1
        elif outcome.startswith("no solution"):
            ps.no_solution += 1
        self.diag.emit("library_done", plan=task.plan.name, index=task.index, accepted=task.accepted, outcome=outcome,
                       elapsed_s=round(time.monotonic() - task.t0, 4))
        self.stalls.after_library(task.plan.name, task.accepted)
        self.acceptor.maybe_flush()
        self.progress.update()

    # -- threads ------------------------------------------------------------------------------
    def _worker(self, tid: int, item: _Inflight, options: SolverOptions, want: int) -> None:
        events = self._events
        try:
            solutions = iter(solve(item.task.problem, options, n_solutions=want))
            while True:
                item.demand.acquire()  # the next solution only when asked for
                if item.cancel.is_set():
                    break
                try:
                    sol = next(solutions)
                except StopIteration:
                    break
                events.put(("sol", tid, sol))
            events.put(("done", tid, "ok"))
        except InfeasibleProblemError as exc:
            events.put(("done", tid, f"infeasible: {exc.message}"))
        except NoSolutionFoundError as exc:
            events.put(("done", tid, f"no solution: {exc.message}"))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the writer thread
            events.put(("error", tid, exc))

    def _launch(self, name: str) -> None:
        ps = self.state.plans[name]
        want = min(self.settings.solutions_per_library, max(1, ps.quota - ps.generated))
        task = self.start_library(name)
        item = _Inflight(task, threading.Event(), threading.Semaphore(1))
        tid, self._next_id = self._next_id, self._next_id + 1
        self._inflight[tid] = item
        threading.Thread(target=self._worker, args=(tid, item, self.options(name, task.index), want),
                         name=f"dense-solve-{tid}", daemon=True).start()

    def _cancel_done_plans(self) -> None:
        for item in self._inflight.values():
            if self.state.plans[item.task.plan.name].done and not item.cancel.is_set():
                item.cancel.set()
                item.demand.release()

    # -- the loop -----------------------------------------------------------------------------
    def run(self) -> None:
        """Run until done, stopped or out of time; abandons what is still solving when it stops."""
        state = self.state
        try:
            while not self.stop.requested:
                self.acceptor.refresh()
                self._cancel_done_plans()
                active = [n for n, ps in state.plans.items() if not ps.done]
                if not active and not self._inflight:
                    if self.acceptor.pending:  # done only once committed: another writer may have stored a row first
                        self.acceptor.flush()
                        continue
                    break
                while active and len(self._inflight) < self.k and not self.deadline_passed():
                    self._launch(self.pick(active))
                if not self._inflight:
                    break
                try:
                    kind, tid, value = self._events.get(timeout=POLL_S)
                except queue.Empty:
                    self.deadline_passed()
                    continue
                item = self._inflight.get(tid)
                if item is None:
                    continue
                self._handle(tid, item, kind, value)
        finally:
            for item in self._inflight.values():  # stopping: abandon what is still solving
                item.cancel.set()
                item.demand.release()

    def _handle(self, tid: int, item: _Inflight, kind: str, value: Any) -> None:
        if kind == "sol":
            if not item.cancel.is_set():
                self.acceptor.consider(item.task, value)
                self.progress.update()
                if self.acceptor.due():
                    self.acceptor.flush()
                if self.state.plans[item.task.plan.name].done or self.stop.requested:
                    item.cancel.set()
                    self._cancel_done_plans()
            item.demand.release()  # ask for the next one (a cancelled worker wakes up and leaves)
            return
        if kind == "error":
            raise value
        self._inflight.pop(tid)
        self.finish_library(item.task, value)
