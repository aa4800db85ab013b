"""The interface both sides of a sync implement, and the commit request/result they exchange.

Two implementations: `LocalSide` (a dataset directory on a filesystem this machine mounts: the
local copy, or a remote that is a path such as an NFS or project mount) and `SshSide` (a dataset
under a remote base_dir, driven by POSIX sh scripts over an injectable transport). The engine only
talks to this interface, so pull and push are one routine with the two sides swapped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .eventlog import EventLine, EventView, LogMark
from .state import SideState


@dataclass(frozen=True)
class Endpoint:
    """Where rsync finds a side's dataset directory."""

    path: str                      # absolute dataset dir, as the host owning it sees it
    host: str | None = None        # `user@host` for a remote side, None for this machine
    rsh: str | None = None         # rsync -e value for a remote side

    def spec(self, sub: str = "") -> str:
        p = self.path.rstrip("/") + ("/" + sub.strip("/") if sub else "") + "/"
        return f"{self.host}:{p}" if self.host else p


@dataclass(frozen=True)
class FileCheck:
    """A data file the new manifest (or a snapshot) names that the destination did not have."""

    file: str
    kind: str                      # "hash" or "size"
    expected: str                  # sha256 hex, or the byte size as text


@dataclass(frozen=True)
class CommitRequest:
    """Everything the destination does under its dataset lock, in one step.

    The commit proceeds only if the destination's manifest and meta.md still have the hashes the
    plan was made against; then staged data files move from `.usr-sync/in/` into place, every file
    in `data` is checked (exists, sha256 or size), staged snapshots (installed only if absent) and
    auxiliary files are checked and moved in, meta.md and the manifest are replaced atomically, and
    `events` (newline-terminated lines) are appended under the events lock, skipping lines whose
    event_id was appended after byte `events_seen` meanwhile.
    """

    expect_manifest: str
    expect_meta: str
    manifest: bytes | None
    meta: bytes | None
    data: tuple[FileCheck, ...] = ()
    snapshots: tuple[tuple[str, str], ...] = ()   # (name.json, sha256)
    aux: tuple[tuple[str, str], ...] = ()         # (relpath, sha256)
    events: bytes = b""
    events_seen: int = 0
    lock_wait: int = 120


@dataclass(frozen=True)
class CommitResult:
    """What a commit did: `ok`, `moved` (with the current manifest/meta), `verify_failed` or `lock_timeout`."""

    status: str
    manifest: bytes | None = None
    meta: bytes | None = None
    missing: tuple[str, ...] = ()
    bad: tuple[str, ...] = ()
    holder: str = ""
    events_appended: int = 0
    detail: str = field(default="", compare=False)


class Side(Protocol):
    """One copy of a dataset, local or remote."""

    name: str       # "local" or the remote profile name
    label: str      # where it is, for messages (a path, or host:path)

    def inventory(self, mark: LogMark, pending: Sequence[EventLine], same_prefix: EventView | None = None) -> SideState:
        """Manifest, meta, snapshots, data files, auxiliary files and the events after `mark` (full if it does not match).

        Without a mark, `same_prefix` (the other copy's log read from byte 0) spares reading the bytes
        both logs share; a log shorter than it comes back unread as `EventView.prefix_of_other`.
        """
        ...

    def read_all_events(self, size: int) -> EventView:
        """This side's log from byte 0 (up to `size` bytes where the side cannot read more consistently)."""
        ...

    def event_lines(self, lines: Sequence[EventLine]) -> dict[str, bytes]:
        """The raw bytes of the given lines of this side's log (pending lines are remembered without them)."""
        ...

    def endpoint(self) -> Endpoint:
        """The rsync location of the dataset directory."""
        ...

    def prepare_staging(self) -> None:
        """Make sure the staging directory exists (the remote creates it on the fly)."""
        ...

    def commit(self, req: CommitRequest) -> CommitResult:
        """Apply a commit request under the dataset lock (see CommitRequest)."""
        ...

    def remote_calls(self) -> tuple[int, int]:
        """(remote commands run, bytes received from them) so far: (0, 0) for a filesystem side."""
        ...
