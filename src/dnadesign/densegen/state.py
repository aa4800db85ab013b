"""Run state, run manifest and effective config under `<workspace>/outputs/meta/`.

- `run_state.json`: rewritten atomically at every checkpoint (what a crashed run got to).
- `run_manifest.json`: rewritten at the end of each session; keeps the list of sessions.
- `effective_config.json`: the resolved config of the latest session, including the quotas after
  `--extend-quota`, so later resumes keep them without editing the YAML.
- `events.jsonl`: DenseGen's diagnostics (see `telemetry.py`).

In array mode each task keeps its own `run_state.json`, `run_manifest.json` and `events.jsonl` in
`outputs/meta/tasks/task-NNNN/`; `effective_config.json` stays at the run level.

These files describe the run; they are not the source of truth for what was written. Resume
counts committed rows in the sinks (see `outputs.RunOutputs.plan_counts`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_write_json
from ..core.timeutil import utc_now_iso

STATE_FILE = "run_state.json"
MANIFEST_FILE = "run_manifest.json"
EFFECTIVE_FILE = "effective_config.json"
EVENTS_FILE = "events.jsonl"
LOCK_FILE = "run.lock"
TASKS_DIR = "tasks"


@dataclass
class PlanState:
    """Counters for one plan.

    `generated` is what counts towards the quota: rows committed by every writer (all sessions, all
    array tasks; as last seen) plus this session's rows accepted but not committed yet.
    """

    name: str
    quota: int
    generated: int = 0
    accepted_session: int = 0
    committed_session: int = 0  # rows this session committed
    over_quota: int = 0  # accepted rows dropped at commit: the quota was met by another writer first
    libraries: int = 0
    solves: int = 0
    duplicates: int = 0
    rejected: int = 0
    infeasible: int = 0
    no_solution: int = 0
    stalled_libraries: int = 0
    solve_time_s: float = 0.0

    @property
    def done(self) -> bool:
        return self.generated >= self.quota

    @property
    def percent(self) -> float:
        return 100.0 if self.quota <= 0 else round(100.0 * min(self.generated, self.quota) / self.quota, 1)


@dataclass
class RunState:
    run_id: str
    config_path: str
    config_sha256: str
    session: int
    status: str = "running"  # running | completed | failed | interrupted
    started_at: str = field(default_factory=utc_now_iso)
    updated_at: str = field(default_factory=utc_now_iso)
    plans: dict[str, PlanState] = field(default_factory=dict)
    workers: int = 1
    host: str = ""
    pid: int = 0
    reason: str | None = None
    task: dict | None = None  # array mode: {"task", "count", "index", "source"} of this session
    committed_before: int = 0  # rows this workspace (or array task) committed in earlier sessions
    last_event: dict | None = None  # the latest diagnostics event of the session: {"event", "ts"}

    @property
    def committed_total(self) -> int:
        """Rows this workspace (or array task) committed over all its sessions."""
        return self.committed_before + sum(p.committed_session for p in self.plans.values())

    @property
    def generated(self) -> int:
        return sum(p.generated for p in self.plans.values())

    @property
    def quota(self) -> int:
        return sum(p.quota for p in self.plans.values())

    @property
    def percent(self) -> float:
        q = self.quota
        return 100.0 if q <= 0 else round(100.0 * sum(min(p.generated, p.quota) for p in self.plans.values()) / q, 1)

    def metrics(self, plan: str | None = None) -> dict[str, Any]:
        """Progress figures for health and job events (`plan`: the plan in progress by default)."""
        if plan is None:
            plan = next((p.name for p in self.plans.values() if not p.done), next(iter(self.plans), None))
        out: dict[str, Any] = {
            "generated": self.generated, "quota": self.quota, "percent": self.percent, "plan": plan,
            "plans": {p.name: {"generated": p.generated, "quota": p.quota} for p in self.plans.values()},
            "session": self.session, "workers": self.workers}
        if self.task:
            out["task"] = self.task.get("task")
        return out

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["plans"] = [asdict(p) | {"percent": p.percent} for p in self.plans.values()]
        d["generated"] = self.generated
        d["quota"] = self.quota
        d["percent"] = self.percent
        d["committed_total"] = self.committed_total
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunState:
        plans = {}
        for p in d.get("plans", []):
            p = {k: v for k, v in p.items() if k in PlanState.__dataclass_fields__}
            plans[p["name"]] = PlanState(**p)
        kw = {k: v for k, v in d.items() if k in cls.__dataclass_fields__ and k != "plans"}
        return cls(plans=plans, **kw)


class MetaDir:
    """The `outputs/meta` directory of a workspace."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def state_path(self) -> Path:
        return self.path / STATE_FILE

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_FILE

    @property
    def effective_path(self) -> Path:
        return self.path / EFFECTIVE_FILE

    @property
    def events_path(self) -> Path:
        return self.path / EVENTS_FILE

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_FILE

    @property
    def tasks_dir(self) -> Path:
        return self.path / TASKS_DIR

    def task(self, label: str) -> MetaDir:
        """The state directory of one array task (`tasks/<label>`)."""
        return MetaDir(self.tasks_dir / label)

    def task_dirs(self) -> list[MetaDir]:
        """Every array task's state directory, sorted by label."""
        if not self.tasks_dir.is_dir():
            return []
        return [MetaDir(p) for p in sorted(self.tasks_dir.iterdir()) if p.is_dir()]

    def read_json(self, path: Path) -> dict | None:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def load_state(self) -> RunState | None:
        d = self.read_json(self.state_path)
        return RunState.from_dict(d) if d else None

    def save_state(self, state: RunState) -> None:
        state.updated_at = utc_now_iso()
        atomic_write_json(self.state_path, state.as_dict())

    def load_manifest(self) -> dict | None:
        return self.read_json(self.manifest_path)

    def save_manifest(self, doc: dict) -> None:
        atomic_write_json(self.manifest_path, doc)

    def load_effective(self) -> dict | None:
        return self.read_json(self.effective_path)

    def save_effective(self, doc: dict) -> None:
        atomic_write_json(self.effective_path, doc)
