"""Acceptance and flushing: solutions become pending rows, pending rows become committed batches.

A solution is accepted when its sequence is new (not accepted this session, not stored by any
writer) and the independent checker finds no problem. Accepted rows wait in `pending` until a
checkpoint commits them through `RunOutputs.commit`, which enforces the quotas at commit time.
What counts towards a plan's quota is `committed (all writers, as last seen) + pending (ours)`, so
a task stops accepting for a plan as soon as the plan looks full, and learns from every commit
(and from a cheap refresh between libraries) what the other writers have committed.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from ..core.errors import DnadesignError
from ..core.ids import record_id
from ..core.timeutil import utc_now
from .library import LibrarySampler
from .outputs import SINK_ERRORS, CommitResult, RunOutputs, SinkWriteError
from .plans import PlanSpec
from .settings import RunSettings
from .sinks import Accepted, build_table
from .solver import Problem, Site, Solution, check_solution
from .state import MetaDir, RunState
from .tables import RunTables
from .telemetry import Diagnostics, Health

# At most this often, re-read what other writers committed (array tasks: often, a single session: now
# and then, for workspaces sharing a dataset); commits always count exactly, under the lock.
REFRESH_INTERVAL_S = {"array": 1.0, "single": 5.0}


def binding_sites(sol: Solution, filler: frozenset[str]) -> int:
    """Library binding sites placed in `sol`: fixed promoter elements and background filler excluded."""
    return sum(1 for p in sol.library_placements if p.site_id not in filler)


class FlushFailedError(DnadesignError):
    """A sink could not commit a batch; what was committed earlier stays valid."""


@dataclass
class LibraryTask:
    """One sampled library being solved, and what came of it."""

    plan: PlanSpec
    sampler: LibrarySampler
    index: int
    library: tuple[Site, ...]
    lhash: str
    problem: Problem
    t0: float
    accepted: int = 0
    solutions: int = 0  # handed to the acceptor
    time_to_first_s: float | None = None
    cpu0: float = 0.0  # process CPU seconds (all threads) when the library started
    cpu_to_first_s: float | None = None
    best_sites: int | None = None
    bound: float | None = None
    started_at: datetime = field(default_factory=utc_now)
    extra: dict[str, Any] = field(default_factory=dict)


class Acceptor:
    """Pending rows of a session and the policy that commits them."""

    def __init__(self, *, state: RunState, outputs: RunOutputs, settings: RunSettings, diag: Diagnostics,
                 health: Health, meta: MetaDir):
        self.state = state
        self.outputs = outputs
        self.settings = settings
        self.diag = diag
        self.health = health
        self.meta = meta
        self.pending: list[Accepted] = []
        self.seen: set[str] = set()
        self.committed: dict[str, int] = {name: ps.generated for name, ps in state.plans.items()}
        self._last_flush = time.monotonic()
        self._last_refresh = time.monotonic()
        label = (state.task or {}).get("label")
        self.tables = RunTables(outputs.cfg.outputs_dir, run_id=state.run_id, session=state.session, task=label)

    # -- counters -------------------------------------------------------------------------------
    @property
    def quotas(self) -> dict[str, int]:
        return {name: ps.quota for name, ps in self.state.plans.items()}

    def _sync_generated(self) -> None:
        pending = Counter(r.plan for r in self.pending)
        for name, ps in self.state.plans.items():
            ps.generated = int(self.committed.get(name, 0)) + pending.get(name, 0)

    def refresh(self, *, force: bool = False) -> None:
        """Re-read what every writer committed (rate-limited; reads only new part files)."""
        now = time.monotonic()
        interval = REFRESH_INTERVAL_S["single" if self.settings.shard is None else "array"]
        if not force and now - self._last_refresh < interval:
            return
        self._last_refresh = now
        try:
            counts = self.outputs.plan_counts()
        except (OSError, DnadesignError, pa.ArrowException):  # a read racing a compaction: try again later
            return
        for name in self.state.plans:
            self.committed[name] = max(int(counts.get(name, 0)), 0)
        self._sync_generated()

    # -- acceptance -----------------------------------------------------------------------------
    def _attempt(self, task: LibraryTask, sol: Solution, outcome: str, reason: str | None = None,
                 rid: str | None = None) -> None:
        self.tables.add_attempt(plan=task.plan.name, library_index=task.index, attempt=task.solutions - 1,
                                outcome=outcome, reason=reason, n_sites=binding_sites(sol, task.sampler.filler),
                                optimal=bool(sol.optimal),
                                bound=None if sol.bound is None else float(sol.bound),
                                solve_time_s=float(sol.solve_time_s), record_id=rid,
                                at_s=round(time.monotonic() - task.t0, 4))

    def consider(self, task: LibraryTask, sol: Solution) -> bool:
        """Deduplicate, verify and accept one solution; True when it was accepted.

        Every call adds a row to the attempts table (accepted, or rejected and why).
        """
        plan = task.plan
        ps = self.state.plans[plan.name]
        ps.solves += 1
        ps.solve_time_s += sol.solve_time_s
        if ps.done:  # a parallel library (or another writer) finished the plan first
            self._attempt(task, sol, "plan_done", "the plan's quota was met first")
            return False
        rid = record_id("dna", sol.sequence)
        if rid in self.seen or self.outputs.known_ids([rid]):
            ps.duplicates += 1
            self.diag.emit("duplicate", plan=plan.name, id=rid, library=task.index)
            self._attempt(task, sol, "duplicate", "the sequence is already accepted or stored")
            return False
        problems = check_solution(task.problem, sol)
        if problems:
            ps.rejected += 1
            self.diag.emit("rejected", plan=plan.name, library=task.index, problems=list(problems)[:5])
            self._attempt(task, sol, "rejected", "; ".join(list(problems)[:5]))
            return False
        self.seen.add(rid)
        filler = task.sampler.filler
        sites = tuple(p for p in sol.placements if p.site_id not in filler)
        fill = tuple(p for p in sol.placements if p.site_id in filler)
        task.sampler.observe([p.site_id for p in sites if not getattr(p, "fixed", False)])
        self.pending.append(Accepted(
            plan=plan.name, sequence=sol.sequence, placements=sites, filler=fill, objective=sol.objective,
            bound=sol.bound, optimal=bool(sol.optimal), solve_time_s=float(sol.solve_time_s), library_hash=task.lhash,
            library_index=task.index, library_size=len(task.library), accepted_at=utc_now(), session=self.state.session))
        ps.generated += 1
        ps.accepted_session += 1
        task.accepted += 1
        self._attempt(task, sol, "accepted", rid=rid)
        self.diag.emit("accepted", plan=plan.name, id=rid, library=task.index, n_sites=binding_sites(sol, filler),
                       filler=len(fill),
                       length=len(sol.sequence), optimal=bool(sol.optimal), solve_time_s=round(sol.solve_time_s, 4))
        return True

    # -- flushing -------------------------------------------------------------------------------
    def threshold(self) -> int:
        """Pending rows that trigger a commit: `checkpoint_every`, smaller near the end of an array run.

        With N tasks sharing the quota, each commits at least every ceil(remaining / N) rows, so
        the pending rows of all tasks together rarely exceed what is left and little work is dropped.
        """
        every = self.settings.checkpoint_every
        shard = self.settings.shard
        if shard is None or shard.count <= 1:
            return every
        remaining = sum(max(0, q - self.committed.get(n, 0)) for n, q in self.quotas.items())
        return max(1, min(every, math.ceil(remaining / shard.count)))

    def due(self) -> bool:
        """Whether the pending rows should be committed now."""
        if not self.pending:
            return False
        return (len(self.pending) >= self.threshold()
                or time.monotonic() - self._last_flush >= self.settings.checkpoint_interval_s)

    def metrics(self, plan: str | None = None) -> dict[str, Any]:
        """Progress figures for health events and job events."""
        return self.state.metrics(plan)

    def maybe_flush(self) -> CommitResult | None:
        """Commit when `due()`; else a rate-limited `running` health event."""
        if self.due():
            return self.flush()
        self.health.maybe_running(self.metrics())
        return None

    def flush(self) -> CommitResult | None:
        """Commit pending rows within quota (USR first), then record the state."""
        self._last_flush = time.monotonic()
        if not self.pending:
            return None
        rows = list(self.pending)
        table = build_table(rows, run_id=self.settings.run_id)
        try:
            res = self.outputs.commit(table, self.quotas, event_args={"run_id": self.settings.run_id,
                                                                      "plans": sorted({r.plan for r in rows})})
        except SINK_ERRORS as exc:
            sink = exc.sink if isinstance(exc, SinkWriteError) else "outputs"
            cause = exc.cause if isinstance(exc, SinkWriteError) else exc
            self.diag.emit("flush_failed", sink=sink, rows=len(rows), error=str(cause)[:500])
            self.health.flush_failed(f"{sink}: {cause}", self.metrics() | {"rows": len(rows)})
            raise FlushFailedError(f"could not write {len(rows)} sequence(s) to the {sink} output ({cause})",
                                   hint="check disk space and permissions, then `dense run` to resume") from exc
        self.pending.clear()
        for name, ps in self.state.plans.items():
            ps.committed_session += res.added.get(name, 0)
            ps.over_quota += res.over_quota.get(name, 0)
            ps.duplicates += res.duplicates_by_plan.get(name, 0)
            self.committed[name] = int(res.committed.get(name, 0))
        self._last_refresh = time.monotonic()
        self._sync_generated()
        self.diag.emit("checkpoint", rows=res.rows, accepted=len(rows), over_quota=sum(res.over_quota.values()),
                       duplicates=res.duplicates, generated=self.state.generated, quota=self.state.quota)
        self.diag.sync()
        self.save_state()
        self.write_tables(force=False)
        self.health.maybe_running(self.metrics(rows[-1].plan))
        return res

    def write_tables(self, *, force: bool = True) -> None:
        """Rewrite this session's analysis tables (rate-limited unless `force`); a failure is only noted."""
        try:
            self.tables.write() if force else self.tables.maybe_write()
        except (OSError, pa.ArrowException) as exc:
            self.diag.emit("tables_failed", error=str(exc)[:300])

    def save_state(self) -> None:
        """Write the session's run_state.json (with the latest diagnostics event)."""
        self.state.last_event = self.diag.last
        self.meta.save_state(self.state)


__all__ = ["Acceptor", "FlushFailedError", "LibraryTask"]
