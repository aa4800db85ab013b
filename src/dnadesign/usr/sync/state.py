"""What one side of a sync holds: manifest, data files, snapshots, meta.md, events, auxiliary files.

The local side is read from disk; the remote side comes from ONE inventory call (see
`scripts.INVENTORY`). No data file is hashed for a diff: manifests already carry sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ...core.errors import IntegrityError, RemoteError
from ...core.ids import sha256_bytes, sha256_file
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
    DatasetPaths,
)
from ..manifest import Manifest
from . import scripts
from .ssh import Connection

SYNC_DIR = ".usr-sync"          # staging for incoming snapshots/aux files and commit temp files
PARTIAL_DIR = ".usr-partial"    # rsync --partial-dir (relative to each destination directory)
SYNC_ACTIONS = ("pull", "push")
_SAFE_REL = re.compile(r"^[A-Za-z0-9_@+][A-Za-z0-9_.@+=,-]*$")
_REMOTE_DIR = re.compile(r"^/[A-Za-z0-9_./+@:=,-]*$")
_SNAPSHOT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.json$")


def safe_relpath(rel: str) -> bool:
    """A relative path that stays inside the dataset dir and is safe to pass to a shell quoted."""
    if not rel or rel.startswith("/") or "\n" in rel:
        return False
    parts = rel.split("/")
    return all(_SAFE_REL.match(p) and p not in (".", "..") for p in parts)


def check_relpath(rel: str, where: str) -> str:
    if not safe_relpath(rel):
        raise IntegrityError(f"{where} names an unsafe path {rel!r}", hint="inspect that manifest; sync refuses paths outside the dataset")
    return rel


@dataclass
class Events:
    """An events log as ordered (key, raw line) pairs of complete lines; key = event_id."""

    lines: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def keys(self) -> set[str]:
        return {k for k, _ in self.lines}

    def count(self) -> int:
        return len(self.lines)

    @classmethod
    def parse(cls, data: bytes) -> Events:
        out = []
        seen = set()
        complete = data[: data.rfind(b"\n") + 1] if b"\n" in data else b""
        for raw in complete.split(b"\n"):
            if not raw.strip():
                continue
            key = event_key(raw)
            if key in seen:
                continue
            seen.add(key)
            out.append((key, raw + b"\n"))
        return cls(out)


def event_key(raw: bytes) -> str:
    try:
        obj = json.loads(raw)
        if isinstance(obj, dict) and isinstance(obj.get("event_id"), str) and obj["event_id"]:
            return obj["event_id"]
    except (ValueError, UnicodeDecodeError):
        pass
    return "line:" + hashlib.sha1(raw.strip()).hexdigest()


def is_sync_event(raw: bytes) -> bool:
    try:
        obj = json.loads(raw)
        return isinstance(obj, dict) and obj.get("action") in SYNC_ACTIONS and (obj.get("args") or {}).get("sync") is True
    except (ValueError, UnicodeDecodeError):
        return False


@dataclass
class SideState:
    """One side of a sync."""

    where: str                                   # "local" or the remote name
    exists: bool = False
    dir: str = ""                                # absolute dataset dir (remote: as resolved by the remote)
    base: str | None = None                      # remote base_dir resolved (None if missing)
    manifest: Manifest | None = None
    manifest_raw: bytes | None = None
    meta: bytes | None = None
    events: Events = field(default_factory=Events)
    events_size: int = 0
    events_sha: str | None = None
    snapshots: dict[str, str] = field(default_factory=dict)   # file name (x.json) -> sha256
    files: dict[str, int] = field(default_factory=dict)       # data files present: relpath -> size
    aux: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # relpath -> (size, mtime, sha256)
    tools: set[str] = field(default_factory=set)
    skipped: list[str] = field(default_factory=list)          # unsafe names ignored

    @property
    def manifest_sha(self) -> str:
        return sha256_bytes(self.manifest_raw) if self.manifest_raw is not None else "-"


def _is_aux(rel: str) -> bool:
    top = rel.split("/", 1)[0]
    if top in (RECORDS_DIR, DERIVED_DIR, SNAPSHOTS_DIR, INDEX_DIR, SYNC_DIR):
        return False
    if rel in (MANIFEST, META, EVENTS_LOG, EVENTS_LOCK, DATASET_LOCK):
        return False
    name = rel.rsplit("/", 1)[-1]
    if PARTIAL_DIR in rel.split("/") or (name.startswith(".") and name.endswith(".tmp")):
        return False
    return True


def local_state(paths: DatasetPaths, *, hash_aux: bool = True) -> SideState:
    st = SideState("local", dir=str(paths.dir))
    d = paths.dir
    if not d.is_dir():
        return st
    st.exists = True
    if paths.manifest.exists():
        st.manifest_raw = paths.manifest.read_bytes()
        st.manifest = Manifest.from_json(st.manifest_raw, where=str(paths.manifest))
        for e in st.manifest.all_files():
            check_relpath(e.file, f"the local manifest {paths.manifest}")
    if paths.meta.exists():
        st.meta = paths.meta.read_bytes()
    if paths.events_log.exists():
        data = paths.events_log.read_bytes()
        st.events = Events.parse(data)
        st.events_size = len(data)
    snap_dir = paths.snapshots_dir
    if snap_dir.is_dir():
        for p in snap_dir.iterdir():
            if p.is_file() and _SNAPSHOT.match(p.name):
                st.snapshots[p.name] = sha256_file(p)
    for sub in (RECORDS_DIR, DERIVED_DIR):
        base = d / sub
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [x for x in dirnames if x != PARTIAL_DIR]
            for fn in filenames:
                if fn.endswith(".parquet") and not fn.startswith("."):
                    full = os.path.join(dirpath, fn)
                    st.files[os.path.relpath(full, d).replace(os.sep, "/")] = os.stat(full).st_size
    for dirpath, dirnames, filenames in os.walk(d):
        rel_dir = os.path.relpath(dirpath, d).replace(os.sep, "/")
        if rel_dir == ".":
            dirnames[:] = [x for x in dirnames if x not in (RECORDS_DIR, DERIVED_DIR, SNAPSHOTS_DIR, INDEX_DIR, SYNC_DIR)]
        dirnames[:] = [x for x in dirnames if x != PARTIAL_DIR]
        for fn in filenames:
            rel = fn if rel_dir == "." else f"{rel_dir}/{fn}"
            full = os.path.join(dirpath, fn)
            if not _is_aux(rel) or os.path.islink(full):
                continue
            if not safe_relpath(rel):
                st.skipped.append(rel)
                continue
            s = os.stat(full)
            st.aux[rel] = (s.st_size, int(s.st_mtime), sha256_file(full) if hash_aux else "")
    return st


def complete_prefix(data: bytes) -> bytes:
    return data[: data.rfind(b"\n") + 1] if b"\n" in data else b""


def remote_state(conn: Connection, dataset_id: str, local: SideState, local_log: Path | None) -> SideState:
    """ONE ssh call: the remote's manifest, meta.md, events (only the part we lack), snapshots, file lists."""
    prof = conn.profile
    local_data = local_log.read_bytes() if local_log is not None and local_log.exists() else b""
    prefix = complete_prefix(local_data)
    tok = scripts.token()
    res = conn.run_script(scripts.INVENTORY, [prof.base_dir, dataset_id, str(len(prefix)), sha256_bytes(prefix), tok])
    sec = scripts.parse_sections(res.stdout, tok)
    st = SideState(prof.name)
    st.tools = set(sec.get("tools", b"").decode().split())
    st.base = sec["base"].decode() if "base" in sec else None
    if "absent" in sec or "dir" not in sec:
        return st
    st.exists = True
    st.dir = sec["dir"].decode()
    if not _REMOTE_DIR.match(st.dir) or st.base is None or not st.dir.startswith(st.base.rstrip("/") + "/"):
        raise RemoteError(f"{prof.name}: the dataset directory resolves to {st.dir!r}, outside base_dir {st.base!r}",
                          hint="a symlink may point elsewhere; sync only writes below base_dir, fix the remote layout")
    if "manifest" in sec:
        st.manifest_raw = sec["manifest"]
        st.manifest = Manifest.from_json(st.manifest_raw, where=f"{prof.name}:{st.dir}/{MANIFEST}")
        for e in st.manifest.all_files():
            check_relpath(e.file, f"the manifest on {prof.name}")
    if "meta" in sec:
        st.meta = sec["meta"]
    if "events_size" in sec:
        st.events_size = int(sec["events_size"] or 0)
        st.events_sha = sec.get("events_sha", b"").decode() or None
        if "events_full" in sec:
            st.events = Events.parse(sec["events_full"])
        elif "events_tail" in sec:
            st.events = Events.parse(prefix + sec["events_tail"])
        elif st.events_size <= len(prefix) and sha256_bytes(prefix[: st.events_size]) == st.events_sha:
            st.events = Events.parse(prefix[: st.events_size])
        else:  # diverged and shorter than ours: fetch it (rare; a second call over the same connection)
            tok2 = scripts.token()
            r2 = conn.run_script(scripts.EVENTS_FETCH, [prof.base_dir, dataset_id, str(st.events_size), "-", tok2])
            st.events = Events.parse(scripts.parse_sections(r2.stdout, tok2).get("events_full", b""))
    for line in sec.get("snapshots", b"").decode().splitlines():
        h, _, path = line.partition("  ")
        name = path.strip().removeprefix("_snapshots/")
        if _SNAPSHOT.match(name) and len(h) == 64:
            st.snapshots[name] = h
        elif name:
            st.skipped.append(path)
    for line in sec.get("files", b"").decode().splitlines():
        size, _, path = line.partition(" ")
        if safe_relpath(path) and size.isdigit():
            st.files[path] = int(size)
    stats: dict[str, tuple[int, int]] = {}
    for line in sec.get("aux_stat", b"").decode().splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0].isdigit():
            stats[parts[2].removeprefix("./")] = (int(parts[0]), int(parts[1]) if parts[1].isdigit() else 0)
    for line in sec.get("aux_sha", b"").decode().splitlines():
        h, _, path = line.partition("  ")
        rel = path.strip().removeprefix("./")
        if rel in stats and safe_relpath(rel) and len(h) == 64:
            st.aux[rel] = (*stats[rel], h)
        elif rel:
            st.skipped.append(rel)
    return st
