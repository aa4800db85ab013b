"""The settings of one `dense run` session, derived once from the validated config and the flags.

Everything the run loop needs is a typed field here, read from the config model (whose defaults
are the only defaults) or from a command-line override; nothing downstream reads the config by
string path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.scheduler import allocated_cpus
from .config import LoadedConfig, SamplingConfig
from .shard import Shard
from .signals import StopFlag

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass
class RunOptions:
    """What the command line (or a library caller) asks of one session, on top of the config."""

    fresh: bool = False
    resume: bool | None = None  # None: resume when outputs exist
    extend_quota: int = 0
    workers: int | None = None
    progress: str | None = None
    max_seconds: float | None = None
    # (level, message) for the user: level is INFO, WARNING or DEBUG; the CLI filters by logging.level.
    on_note: Callable[[str, str], None] | None = None
    # Given by a caller that already routes signals (the CLI does, before any library starts threads).
    stop: StopFlag | None = None
    # Libraries solved at once (threads); each gets workers // parallel_libraries CP-SAT workers.
    parallel_libraries: int = 1
    shard: Shard | None = None  # array mode: this session is one task of N sharing the run


@dataclass(frozen=True)
class RunSettings:
    """Typed settings of a session (config values, command-line overrides applied)."""

    run_id: str
    seed: int
    round_robin: bool
    checkpoint_every: int
    checkpoint_interval_s: float
    max_stalled_libraries: int
    max_failed_solutions: int | None
    health_interval_s: float
    max_seconds: float | None
    solutions_per_library: int
    workers: int
    parallel_libraries: int
    time_limit_s: float
    run_time_limit_s: float | None
    strategy: str
    sampling: SamplingConfig
    progress: str
    summary_interval_s: float
    log_level: str
    fasta: Path | None
    shard: Shard | None
    extend_quota: int

    @classmethod
    def derive(cls, cfg: LoadedConfig, options: RunOptions) -> RunSettings:
        """The settings for `cfg` with the command-line `options` applied."""
        m = cfg.model
        rt, sv, lg = m.runtime, m.solver, m.logging
        return cls(
            run_id=cfg.run_id,
            seed=rt.seed,
            round_robin=rt.round_robin,
            checkpoint_every=rt.checkpoint_every,
            checkpoint_interval_s=rt.checkpoint_interval_s,
            max_stalled_libraries=rt.max_stalled_libraries,
            max_failed_solutions=rt.max_failed_solutions,
            health_interval_s=rt.health_interval_s,
            max_seconds=options.max_seconds or rt.max_seconds,
            solutions_per_library=sv.solutions_per_library,
            workers=allocated_cpus(options.workers or sv.workers),
            parallel_libraries=max(1, int(options.parallel_libraries or 1)),
            time_limit_s=sv.time_limit_s,
            run_time_limit_s=sv.run_time_limit_s,
            strategy=sv.strategy,
            sampling=m.generation.sampling,
            progress=options.progress or lg.progress,
            summary_interval_s=lg.summary_interval_s,
            log_level=lg.level,
            fasta=cfg.resolve(m.postprocess.fasta) if m.postprocess.fasta else None,
            shard=options.shard,
            extend_quota=int(options.extend_quota or 0),
        )


def derive_seed(base: int, label: str) -> int:
    """A stable 31-bit seed for `label` (so sampling and solving are reproducible per session)."""
    return int.from_bytes(hashlib.sha256(f"{base}:{label}".encode()).digest()[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class SeedStream:
    """The seeds of one session: a function of the run seed, the array task (if any) and the session.

    Reproducible per (seed, task, session); different across tasks, so N copies of one config never
    repeat each other's libraries; different across sessions, so a resume never replays them.
    """

    run_seed: int
    session: int
    task: str | None = None  # the shard label in array mode

    def _label(self, kind: str, *parts: object) -> str:
        scope = f"{self.task}:" if self.task else ""
        return ":".join([kind, *map(str, parts[:1]), f"{scope}{self.session}", *map(str, parts[1:])])

    def library(self, plan: str) -> int:
        """Seed of the library sampler of `plan`."""
        return derive_seed(self.run_seed, self._label("library", plan))

    def solve(self, plan: str, index: int) -> int:
        """CP-SAT seed of library `index` of `plan`."""
        return derive_seed(self.run_seed, self._label("solve", plan, index))
