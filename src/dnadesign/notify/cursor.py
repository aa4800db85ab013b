"""The watcher's checkpoint: which file (device, inode, first-line fingerprint) and how far it was handled.

The cursor file also carries the throttle and roll-up state, so offset and "what was already sent"
advance together in one atomic write (temp + fsync + rename + directory fsync).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_write_json
from ..core.errors import ConfigError
from ..core.timeutil import utc_now_iso

CURSOR_VERSION = 1
HEAD_BYTES = 4096


@dataclass(frozen=True)
class FileId:
    """Identity of an events file: device, inode and a hash of its first complete line (None if none yet)."""

    dev: int
    ino: int
    head: str | None

    def same_file(self, other: FileId) -> bool:
        """Same inode and, when both are known, the same first line."""
        if (self.dev, self.ino) != (other.dev, other.ino):
            return False
        return self.head is None or other.head is None or self.head == other.head


def head_hash_fd(fd: int) -> str | None:
    """sha256 of the first line (up to 4 KiB) of an open file, or None while it has no newline."""
    data = os.pread(fd, HEAD_BYTES, 0)
    nl = data.find(b"\n")
    if nl < 0:
        return hashlib.sha256(data).hexdigest()[:32] if len(data) >= HEAD_BYTES else None
    return hashlib.sha256(data[:nl]).hexdigest()[:32]


def file_id_fd(fd: int) -> FileId:
    """Identity of an open file."""
    st = os.fstat(fd)
    return FileId(st.st_dev, st.st_ino, head_hash_fd(fd))


def file_id_path(path: str | Path) -> FileId | None:
    """Identity of the file now at `path`, or None when it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # missing, or unreadable for now (permissions, stale handle)
        return None
    try:
        return file_id_fd(fd)
    except OSError:
        return None
    finally:
        os.close(fd)


@dataclass
class CursorState:
    """Everything a watcher persists: file identity, offset of the last fully handled line, and sender state."""

    events: str
    file: FileId | None = None
    offset: int = 0
    throttle: dict[str, Any] = field(default_factory=dict)
    rollup: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "cursor_version": CURSOR_VERSION,
            "events": self.events,
            "dev": self.file.dev if self.file else None,
            "ino": self.file.ino if self.file else None,
            "head": self.file.head if self.file else None,
            "offset": self.offset,
            "updated": utc_now_iso(),
            "throttle": self.throttle,
            "rollup": self.rollup,
        }


def load_cursor(path: str | Path) -> CursorState | None:
    """Read a cursor file; None when it does not exist. A damaged cursor is an error with a fix, never a silent replay."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cursor {path} is unreadable ({type(exc).__name__})",
                          hint="move it aside and restart with --from-end (skip history) or --from-start (replay)") from None
    if not isinstance(data, dict) or data.get("cursor_version") != CURSOR_VERSION or not isinstance(data.get("offset"), int):
        raise ConfigError(f"cursor {path} is not a version {CURSOR_VERSION} notify cursor",
                          hint="move it aside and restart with --from-end or --from-start")
    fid = FileId(int(data["dev"]), int(data["ino"]), data.get("head")) if data.get("ino") is not None else None
    return CursorState(events=str(data.get("events", "")), file=fid, offset=int(data["offset"]),
                       throttle=dict(data.get("throttle") or {}), rollup=dict(data.get("rollup") or {}))


def save_cursor(path: str | Path, state: CursorState) -> None:
    """Persist atomically (a crash leaves the old or the new cursor, never an empty one)."""
    atomic_write_json(path, state.to_json(), mode=0o600)
