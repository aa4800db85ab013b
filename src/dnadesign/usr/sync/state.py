"""What one side of a sync holds (`SideState`), and the path rules both sides share.

No data file is hashed for a diff: manifests already carry sha256. Snapshots and auxiliary files
are small and are hashed by their owner (Python locally, `sha256sum` on an SSH remote).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ...core.errors import IntegrityError
from ...core.ids import sha256_bytes
from ..layout import (
    DATASET_LOCK,
    DERIVED_DIR,
    EVENTS_LOCK,
    EVENTS_LOG,
    INDEX_DIR,
    MANIFEST,
    META,
    RECORDS_DIR,
    SNAPSHOTS_DIR,
)
from ..manifest import Manifest
from .eventlog import EventView

SYNC_DIR = ".usr-sync"            # sync's own files in a dataset: checkpoints, staging, commit temp files
STAGING_DIR = f"{SYNC_DIR}/in"    # incoming files wait here (outside the live tree) until the commit moves them in
PARTIAL_DIR = ".usr-partial"      # rsync --partial-dir (relative to each destination directory)
_SAFE_REL = re.compile(r"^[A-Za-z0-9_@+][A-Za-z0-9_.@+=,-]*$")
REMOTE_DIR = re.compile(r"^/[A-Za-z0-9_./+@:=,-]*$")
SNAPSHOT_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.json$")
NEVER_SYNCED_TOP = (RECORDS_DIR, DERIVED_DIR, SNAPSHOTS_DIR, INDEX_DIR, SYNC_DIR)
NEVER_SYNCED_FILES = (MANIFEST, META, EVENTS_LOG, EVENTS_LOCK, DATASET_LOCK)


def safe_relpath(rel: str) -> bool:
    """A relative path that stays inside the dataset dir and is safe to pass to a shell quoted."""
    if not rel or rel.startswith("/") or "\n" in rel:
        return False
    parts = rel.split("/")
    return all(_SAFE_REL.match(p) and p not in (".", "..") for p in parts)


def check_relpath(rel: str, where: str) -> str:
    """`rel` if safe (see `safe_relpath`), else an IntegrityError naming `where` it came from."""
    if not safe_relpath(rel):
        raise IntegrityError(f"{where} names an unsafe path {rel!r}", hint="inspect that manifest; sync refuses paths outside the dataset")
    return rel


def is_aux(rel: str) -> bool:
    """An auxiliary file: anything in a dataset dir that is not data, manifest, events, locks or sync's own."""
    if rel.split("/", 1)[0] in NEVER_SYNCED_TOP or rel in NEVER_SYNCED_FILES:
        return False
    name = rel.rsplit("/", 1)[-1]
    return not (PARTIAL_DIR in rel.split("/") or (name.startswith(".") and name.endswith(".tmp")))


@dataclass
class SideState:
    """One side of a sync, as read by one inventory."""

    where: str                                   # "local" or the remote name
    exists: bool = False
    dir: str = ""                                # absolute dataset dir (remote: as resolved by the remote)
    base: str | None = None                      # remote base_dir resolved (None if missing)
    manifest: Manifest | None = None
    manifest_raw: bytes | None = None
    meta: bytes | None = None
    events: EventView = field(default_factory=EventView)
    snapshots: dict[str, str] = field(default_factory=dict)   # file name (x.json) -> sha256
    files: dict[str, int] = field(default_factory=dict)       # data files present: relpath -> size
    aux: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # relpath -> (size, mtime, sha256)
    tools: set[str] = field(default_factory=set)
    skipped: list[str] = field(default_factory=list)          # unsafe names ignored

    @property
    def manifest_sha(self) -> str:
        return sha256_bytes(self.manifest_raw) if self.manifest_raw is not None else "-"

    @property
    def meta_sha(self) -> str:
        return sha256_bytes(self.meta) if self.meta is not None else "-"
