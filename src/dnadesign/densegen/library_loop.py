"""The library loop: sample a library per plan, solve it, hand each solution to the acceptor.

Up to `k` libraries are solved at once, each in its own worker thread (CP-SAT releases the GIL)
with `workers // k` CP-SAT workers; `k = 1` is the serial run, through the same code. This thread
is the only writer: it samples libraries (samplers are not thread-safe), accepts solutions in
arrival order and commits checkpoints. A worker computes its next solution only when this thread
asks for it, so nothing is solved ahead of need; when a plan's quota is met, or a stop is
requested, the libraries still solving are cancelled (an abandoned solve finishes in its daemon
thread; the process is about to flush and exit).

A library whose next solution is not coming ends early: once it has produced a first solution,
each further accepted solution must arrive within `next_solution_budget(time to first)` of the
previous one (or of the first); otherwise the loop cancels it (the CP-SAT search in progress is
stopped through `SolverOptions.cancel`), records why (`library_done.ended_by = "early_end"`, the
libraries table) and samples a new library. A library whose iterator ends (`exhausted`), reaches
`solutions_per_library`, or whose plan is met ends as well; `ended_by` names which.

On an oversubscribed node a first solve can reach its wall-clock `time_limit_s` having had a
fraction of a CPU; after one such library the session's limits count CPU seconds instead
(`solver_clock` event; see `after_no_solution`), so libraries stop failing for want of CPU.

Stall accounting stops a plan whose quota looks unreachable (`runtime.max_stalled_libraries`
consecutive libraries with nothing new) and a session with too many failed solutions
(`runtime.max_failed_solutions`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from ..core.errors import DnadesignError
from .acceptance import Acceptor, LibraryTask, binding_sites
from .library import LibrarySampler, library_hash
from .plans import PlanSpec
from .progress import RunProgress
from .settings import RunSettings, SeedStream
from .signals import StopFlag
from .solver import InfeasibleProblemError, NoSolutionFoundError, SolverOptions, solve
from .state import RunState
from .telemetry import TELEMETRY_ERRORS, Diagnostics

POLL_S = 0.05
# A library's next accepted solution must come within max(EARLY_END_MIN_S, EARLY_END_FACTOR x the
# time its first solution took), counted from its last accepted solution (or its first). Measured on
# demo_sites (diverse mode): further solutions come in ~0.01-0.3 s or, when the library has no easy
# new site set left, after 2.7-5 s; a new library's first solution costs 0.05-1.6 s. Waiting half
# the time to first gave the most accepted sequences per CPU second at the same density.
EARLY_END_FACTOR = 0.5
EARLY_END_MIN_S = 0.25


# A first solve that ends without a solution while the process got less than this share of its
# CPUs (per worker) switches the session's solver limits to CPU seconds.
STARVED_SHARE = 0.5


# The solver's own reasons for ending an enumeration -> `ended_by`.
SOLVER_END_REASONS = {"requested": "solutions_per_library", "budget": "run_time_limit", "exhausted": "exhausted"}


def next_solution_budget(time_to_first_s: float) -> float:
    """Seconds a library may take to bring its next accepted solution before it is ended early."""
    return max(EARLY_END_MIN_S, EARLY_END_FACTOR * max(0.0, time_to_first_s))


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
    want: int = 1
    why: str | None = None  # the solver's reason for ending, when it gives one
    last_accepted: float | None = None  # monotonic time of the first solution, then of each accepted one

    def overdue(self, now: float) -> bool:
        """Whether the next accepted solution is later than its budget (only after a first solution)."""
        first = self.task.time_to_first_s
        if first is None or self.last_accepted is None or self.cancel.is_set():
            return False
        return now - self.last_accepted > next_solution_budget(first)


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
        self.clock: str | None = None  # "cpu" once the node is seen oversubscribed (see after_no_solution)
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

    def options(self, plan: str, index: int, cancel: threading.Event | None = None) -> SolverOptions:
        """Solver options of library `index` of `plan`: the config's, this library's seed, the time left.

        Setting `cancel` ends the library's solve (its CP-SAT search is stopped).
        """
        s = self.settings
        remaining = None if self.deadline is None else max(0.5, self.deadline - time.monotonic())
        limits = [x for x in (s.run_time_limit_s, remaining) if x is not None]
        base = self.base_options(self.seeds.solve(plan, index), self.workers_per_library)
        return dataclasses.replace(base, time_limit_s=min(s.time_limit_s, remaining) if remaining else s.time_limit_s,
                                   run_time_limit_s=min(limits) if limits else None, cancel=cancel,
                                   clock=self.clock or base.clock)

    def after_no_solution(self, task: LibraryTask) -> None:
        """Switch the solver's limits to CPU seconds when a library found nothing because the node is oversubscribed.

        A first solve that reaches its wall-clock limit while this process got less than half
        the CPU its workers could use was starved, not unlucky: the next libraries would fail the
        same way and waste their CPU. With `clock="cpu"` the same limits count computation, so a
        limit that finds a solution on an idle node finds it here too, only later. Applies only to
        the default wall clock (not to `deterministic` or an explicit CPU clock).
        """
        if self.clock is not None:
            return
        probe = self.base_options(0, self.workers_per_library)
        if probe.clock != "wall" or probe.deterministic:
            return
        wall = time.monotonic() - task.t0
        cpu = time.process_time() - task.cpu0
        share = cpu / wall if wall > 0 else 0.0
        if share < STARVED_SHARE * self.settings.workers:
            self.clock = "cpu"
            self.diag.emit("solver_clock", clock="cpu", plan=task.plan.name, library=task.index,
                           cpu_share=round(share, 3), workers=self.settings.workers,
                           reason=f"a first solve reached its wall-clock limit with {share:.2f} CPUs of "
                                  f"{self.settings.workers}: the node is oversubscribed")

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
                           problem=plan.build_problem(library), t0=time.monotonic(), cpu0=time.process_time())
        ps.libraries += 1
        self.diag.emit("library", plan=name, index=task.index, hash=task.lhash, size=len(library),
                       regulators=sorted({s.regulator for s in library if s.id not in sampler.filler}))
        return task

    def record_library(self, task: LibraryTask, outcome: str, ended_by: str, reason: str | None = None) -> None:
        """The library's `library_done` diagnostics line and its row of the libraries table."""
        total = round(time.monotonic() - task.t0, 4)
        status = "ok" if outcome == "ok" else outcome.split(":", 1)[0].replace(" ", "_")
        if reason is None and outcome != "ok":
            reason = outcome.split(":", 1)[-1].strip()
        first = None if task.time_to_first_s is None else round(task.time_to_first_s, 4)
        sites = [s for s in task.library if s.id not in task.sampler.filler]  # background filler is no binding site
        self.diag.emit("library_done", plan=task.plan.name, index=task.index, accepted=task.accepted, outcome=outcome,
                       ended_by=ended_by, solutions=task.solutions, time_to_first_s=first, elapsed_s=total,
                       **({"reason": reason} if reason else {}))
        self.acceptor.tables.add_library(
            plan=task.plan.name, library_index=task.index, library_hash=task.lhash, sampled_sites=len(sites),
            regulators=sorted({s.regulator for s in sites}), status=status, ended_by=ended_by, reason=reason,
            bound=task.bound, best_sites=task.best_sites, time_to_first_s=first, total_s=total,
            cpu_to_first_s=None if task.cpu_to_first_s is None else round(task.cpu_to_first_s, 4),
            cpu_s=round(time.process_time() - task.cpu0, 4),
            solutions=task.solutions, accepted=task.accepted, started_at=task.started_at)

    def finish_library(self, task: LibraryTask, outcome: str, ended_by: str, reason: str | None = None) -> None:
        """Record a library's outcome, then stall accounting and a checkpoint when due."""
        ps = self.state.plans[task.plan.name]
        if outcome.startswith("infeasible"):
            ps.infeasible += 1
        elif outcome.startswith("no solution"):
            ps.no_solution += 1
            self.after_no_solution(task)
        self.record_library(task, outcome, ended_by, reason)
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
                except StopIteration as end:
                    # why the solver ended: its iterator's `end_reason`, or its generator's return value
                    why = getattr(solutions, "end_reason", None) or end.value
                    item.why = None if why is None else str(why)[:300]
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
        item = _Inflight(task, threading.Event(), threading.Semaphore(1), want)
        tid, self._next_id = self._next_id, self._next_id + 1
        self._inflight[tid] = item
        threading.Thread(target=self._worker, args=(tid, item, self.options(name, task.index, item.cancel), want),
                         name=f"dense-solve-{tid}", daemon=True).start()

    @staticmethod
    def _cancel(item: _Inflight) -> None:
        if not item.cancel.is_set():
            item.cancel.set()
            item.demand.release()

    def _cancel_done_plans(self) -> None:
        """Cancel the libraries of plans that are met; they are recorded (`quota_met`) and dropped."""
        for tid, item in list(self._inflight.items()):
            if self.state.plans[item.task.plan.name].done:
                self._cancel(item)
                self._inflight.pop(tid)
                self.record_library(item.task, "ok", "quota_met")

    def _end_overdue(self) -> None:
        """End the libraries whose next accepted solution is overdue (see the module docstring)."""
        now = time.monotonic()
        for tid, item in list(self._inflight.items()):
            if item.overdue(now):
                first = item.task.time_to_first_s or 0.0
                self._cancel(item)
                self._inflight.pop(tid)
                self.finish_library(item.task, "ok", "early_end",
                                    f"no new accepted solution within {next_solution_budget(first):.2f} s "
                                    f"(the first took {first:.2f} s)")

    # -- the loop -----------------------------------------------------------------------------
    def run(self) -> None:
        """Run until done, stopped or out of time; abandons what is still solving when it stops."""
        state = self.state
        try:
            while not self.stop.requested:
                self.acceptor.refresh()
                self._cancel_done_plans()
                self._end_overdue()
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
            for item in self._inflight.values():  # stopping: cancel what is still solving
                self._cancel(item)
            for item in self._inflight.values():
                ended = ("stopped" if self.stop.requested else
                         "quota_met" if self.state.plans[item.task.plan.name].done else "run_failed")
                with contextlib.suppress(*TELEMETRY_ERRORS):  # never hide the error that ended the loop
                    self.record_library(item.task, "ok", ended)
            self._inflight.clear()

    def _handle(self, tid: int, item: _Inflight, kind: str, value: Any) -> None:
        if kind == "sol":
            task = item.task
            if not item.cancel.is_set():
                now = time.monotonic()
                task.solutions += 1
                first = task.time_to_first_s is None
                if first:
                    task.time_to_first_s = now - task.t0
                    task.cpu_to_first_s = time.process_time() - task.cpu0
                task.best_sites = max(task.best_sites or 0, binding_sites(value, task.sampler.filler))
                if value.bound is not None:
                    task.bound = float(value.bound)
                accepted = self.acceptor.consider(task, value)
                self.progress.update()
                if self.acceptor.due():
                    self.acceptor.flush()
                if self.state.plans[task.plan.name].done or self.stop.requested:
                    self._cancel(item)
                    self._cancel_done_plans()
                    return
                if first or accepted:  # the budget for the next one starts when it is asked for
                    item.last_accepted = time.monotonic()
            item.demand.release()  # ask for the next one (a cancelled worker wakes up and leaves)
            return
        if kind == "error":
            raise value
        self._inflight.pop(tid)
        task = item.task
        why = item.why if value == "ok" else None
        if value.startswith("infeasible"):
            ended_by = "infeasible"
        elif value.startswith("no solution"):
            ended_by = "no_solution"
        elif why in SOLVER_END_REASONS:
            ended_by, why = SOLVER_END_REASONS[why], (None if why == "requested" else why)
        else:
            ended_by = "solutions_per_library" if task.solutions >= item.want else "exhausted"
        self.finish_library(task, value, ended_by, why)
