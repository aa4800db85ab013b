"""Per-remote sync checkpoints: where each side's event log was when the two were last compared.

Stored in the local dataset at `.usr-sync/checkpoints/<remote>.json` (never synced). A checkpoint
holds both sides' `LogMark`s and the *pending* lines of each side (lines before its mark that the
other side's prefix lacked), so the next diff reads only what was appended since, on both sides:

    candidates(side) = pending(side) + tail(side after its mark)
    only on A        = candidates(A) - candidates(B)     (by event id)

This is exact because a log never holds the same event twice (sync appends only the lines the
destination lacks) and lines are never rewritten. A checkpoint that cannot be read, that belongs to
another remote location, or whose mark no longer matches a log is ignored: that sync reads both logs
in full once and writes a fresh checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ...core.atomic import atomic_write_bytes
from .eventlog import EventLine, EventView, LogMark, settle

CHECKPOINT_DIR = ".usr-sync/checkpoints"
FORMAT = "usr-sync-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """Both sides' marks and pending lines after one comparison."""

    remote_key: str
    local: LogMark
    remote: LogMark
    local_pending: list[EventLine] = field(default_factory=list)
    remote_pending: list[EventLine] = field(default_factory=list)

    def to_json(self) -> bytes:
        doc = {"format": FORMAT, "version": VERSION, "remote_key": self.remote_key,
               "local": self.local.as_list(), "remote": self.remote.as_list(),
               "local_pending": [p.as_list() for p in self.local_pending],
               "remote_pending": [p.as_list() for p in self.remote_pending]}
        return (json.dumps(doc, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Checkpoint:
        """Parse a checkpoint; raises ValueError when it is not one this version wrote."""
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
            raise ValueError("not a sync checkpoint of this version")
        key = doc.get("remote_key")
        if not isinstance(key, str):
            raise ValueError("remote_key missing")
        return cls(key, LogMark.from_list(doc.get("local")), LogMark.from_list(doc.get("remote")),
                   [EventLine.from_list(v) for v in doc.get("local_pending", [])],
                   [EventLine.from_list(v) for v in doc.get("remote_pending", [])])


def between(remote_key: str, local: EventView, remote: EventView) -> Checkpoint:
    """The checkpoint two views describe (both must be read from the same previous checkpoint, or both in full)."""
    lp, rp = settle(local, remote)
    return Checkpoint(remote_key, local.mark, remote.mark, lp, rp)


def path_for(dataset_dir: Path, remote_name: str) -> Path:
    return dataset_dir / CHECKPOINT_DIR / f"{remote_name}.json"


def load(dataset_dir: Path, remote_name: str, remote_key: str) -> Checkpoint | None:
    """The stored checkpoint for this remote location, or None (absent, unreadable, or for another location)."""
    try:
        cp = Checkpoint.from_json(path_for(dataset_dir, remote_name).read_bytes())
    except (OSError, ValueError):
        return None
    return cp if cp.remote_key == remote_key else None


def save(dataset_dir: Path, remote_name: str, cp: Checkpoint) -> bool:
    """Write the checkpoint atomically; False when the dataset directory is absent or not writable (it is a cache)."""
    if not dataset_dir.is_dir():
        return False
    path = path_for(dataset_dir, remote_name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, cp.to_json())
    except OSError:
        return False
    return True


def forget(dataset_dir: Path, remote_name: str) -> None:
    """Drop a checkpoint (the next sync reads both logs in full)."""
    path_for(dataset_dir, remote_name).unlink(missing_ok=True)
