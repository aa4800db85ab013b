"""Run state, run manifest and effective config under `<workspace>/outputs/meta/`.

- `run_state.json`: rewritten atomically at every checkpoint (what a crashed run got to).
- `run_manifest.json`: rewritten at the end of each session; keeps the list of sessions.
- `effective_config.json`: the resolved config of the latest session, including the quotas after
  `--extend-quota`, so later resumes keep them without editing the YAML.

These files describe the run; they are not the source of truth for what was written. Resume
counts committed rows in the sinks (see `pipeline.committed_counts`).
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


@dataclass
class PlanState:
    """Counters for one plan. `generated` is the committed total (all sessions)."""

    name: str
    quota: int
    generated: int = 0
    accepted_session: int = 0
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

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["plans"] = [asdict(p) | {"percent": p.percent} for p in self.plans.values()]
        d["generated"] = self.generated
        d["quota"] = self.quota
        d["percent"] = self.percent
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
