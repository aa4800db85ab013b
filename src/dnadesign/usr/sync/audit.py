"""The audit summary printed after every pull/push (and written by `--audit-json-out`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .plan import Diff, SyncOptions


def human_bytes(n: int) -> str:
    x = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if x < 1024 or unit == "GB":
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1024
    return f"{n} B"


@dataclass
class Audit:
    """What one diff/pull/push found and did."""

    action: str
    state: str                      # TRANSFERRED | NO-OP | DRY-RUN | DIFF-ONLY
    dataset: str
    remote: str
    opts: SyncOptions
    diff: Diff
    files_transferred: int = 0
    new_file_bytes: int = 0
    wire_bytes: int = 0
    inventory_bytes: int = 0
    rows_added: int = 0
    events_merged: int = 0
    events_local: int = 0
    events_remote: int = 0
    snapshots_moved: list[str] = field(default_factory=list)
    aux_moved: list[str] = field(default_factory=list)
    derived_files: int = 0
    primary_files: int = 0
    ssh_calls: int = 0
    seconds: float = 0.0
    retries: int = 0

    def as_dict(self) -> dict[str, Any]:
        d = self.diff
        way = "pull" if self.action in ("pull", "diff") else "push"
        side = "remote_only" if way == "pull" else "local_only"
        derived_changed = any(g != "primary" and v[side] for g, v in d.groups.items())
        return {
            "action": self.action, "transfer_state": self.state, "dataset": self.dataset, "remote": self.remote,
            "verify": {"primary": self.opts.verify, "sidecars": "strict" if self.opts.verify_sidecars else "off",
                       "derived_hashes": "on" if self.opts.verify_derived_hashes else "off"},
            "primary": {"changed": bool(d.groups.get("primary", {}).get(side)), "files": self.primary_files, "rows_added": self.rows_added},
            "meta.md": {"changed": d.meta_pull if way == "pull" else d.meta_push},
            ".events.log": {"local": self.events_local, "remote": self.events_remote, "merged": self.events_merged,
                            "changed": d.events.get(side, 0) > 0},
            "_snapshots": {"changed": bool(d.snapshots.get(side)), "transferred": self.snapshots_moved,
                           "conflicts": d.snapshots.get("conflicts", [])},
            "_derived": {"changed": derived_changed, "files": self.derived_files},
            "_auxiliary": {"changed": bool(d.aux.get(way)), "transferred": self.aux_moved},
            "transfer": {"files": self.files_transferred, "new_file_bytes": self.new_file_bytes, "wire_bytes": self.wire_bytes,
                         "inventory_bytes": self.inventory_bytes, "ssh_calls": self.ssh_calls, "seconds": round(self.seconds, 3),
                         "commit_retries": self.retries},
            "conflicts": d.conflicts,
        }

    def render(self) -> str:
        a = self.as_dict()

        def yn(b: bool) -> str:
            return "changed" if b else "unchanged"

        t = a["transfer"]
        lines = [
            f"{self.action.upper()} audit: {self.state}",
            f"Dataset    : {self.dataset}  (remote {self.remote})",
            f"Verify     : primary={a['verify']['primary']} sidecars={a['verify']['sidecars']} derived_hashes={a['verify']['derived_hashes']}",
            f"Primary    : {yn(a['primary']['changed'])}  files={self.primary_files} rows_added={self.rows_added}",
            f"meta.md    : {yn(a['meta.md']['changed'])}",
            f".events.log: local={self.events_local} remote={self.events_remote} merged={self.events_merged}",
            f"_snapshots : {yn(a['_snapshots']['changed'])}  transferred={len(self.snapshots_moved)} conflicts={len(a['_snapshots']['conflicts'])}",
            f"_derived   : {yn(a['_derived']['changed'])}  files={self.derived_files}",
            f"_auxiliary : {yn(a['_auxiliary']['changed'])}  files={len(self.aux_moved)}",
            f"Transfer   : {t['files']} file(s), {human_bytes(t['new_file_bytes'])} new data, {human_bytes(t['wire_bytes'])} over rsync, "
            f"{t['ssh_calls']} remote call(s), {t['seconds']:.2f} s",
        ]
        for c in self.diff.conflicts:
            lines.append(f"CONFLICT   : {c}")
        return "\n".join(lines)
