"""`LocalSide`: a dataset directory on a filesystem this machine mounts.

It is the local copy of every sync, and also serves remotes that are a path (an NFS or project
mount): the same inventory, the same staged commit under the same `.usr.lock` the store uses.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from ...core import events as ev
from ...core.atomic import atomic_write_bytes, fsync_dir
from ...core.errors import LockTimeoutError, RemoteError
from ...core.ids import sha256_bytes, sha256_file
from ...core.locks import FileLock
from ..layout import DERIVED_DIR, RECORDS_DIR, DatasetPaths
from ..manifest import Manifest
from .eventlog import (
    EMPTY_MARK,
    WINDOW,
    EventLine,
    EventView,
    LogMark,
    MarkMismatch,
    build_view,
    check_mark,
    complete_prefix,
    cut_lines,
    event_key,
    extend_view,
    last_line_end,
    spans_to_read,
    truncated_view,
)
from .side import CommitRequest, CommitResult, Endpoint
from .state import (
    NEVER_SYNCED_TOP,
    PARTIAL_DIR,
    SNAPSHOT_FILE,
    STAGING_DIR,
    SideState,
    check_relpath,
    is_aux,
    safe_relpath,
)


def _matches(path: Path, kind: str, expected: str) -> bool:
    """A file's sha256 (kind "hash") or byte size (kind "size") is the expected one."""
    return (sha256_file(path) if kind == "hash" else str(path.stat().st_size)) == expected


def _pread(fh, start: int, length: int) -> bytes:
    return os.pread(fh.fileno(), length, start) if length > 0 else b""


def _sha_range(fh, start: int, length: int) -> str:
    h = hashlib.sha256()
    pos, end = start, start + length
    while pos < end:
        block = os.pread(fh.fileno(), min(1 << 20, end - pos), pos)
        if not block:
            break
        h.update(block)
        pos += len(block)
    return h.hexdigest()


def read_log(log: Path, mark: LogMark, pending: Sequence[EventLine], same_prefix: EventView | None = None) -> EventView:
    """The view of a local event log from `mark` (from byte 0 when the mark no longer matches).

    Without a mark, `same_prefix` (the other copy's log, read from byte 0) is tried first: when this log
    starts with exactly those bytes only the rest is parsed; when this log is shorter, only its size and
    sha256 are returned (`prefix_of_other`) for the caller to check against the other copy.
    """
    if not log.exists():
        return EventView(reset=mark.size > 0)
    with open(log, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if 0 < mark.size <= size:
            head = _pread(fh, 0, min(WINDOW, mark.size))
            lead_start = max(0, mark.size - WINDOW)
            lead = _pread(fh, lead_start, mark.size - lead_start)
            try:
                check_mark(mark, head, lead)
                view = build_view(head, lead, _pread(fh, mark.size, size - mark.size), mark, pending)
                view.buffer = b""  # raws are re-read from the file when needed
                return view
            except MarkMismatch:
                pass
        elif mark.size == 0 and same_prefix is not None and same_prefix.prefix_sha and same_prefix.mark.size > 0:
            other = same_prefix.mark.size
            if size >= other and _sha_range(fh, 0, other) == same_prefix.prefix_sha:
                view = extend_view(same_prefix, _pread(fh, other, size - other))
                view.buffer = b""
                return view
            if size < other:
                return EventView(prefix_of_other=(size, _sha_range(fh, 0, size)))
        data = _pread(fh, 0, size)
    complete = complete_prefix(data)
    view = build_view(b"", b"", complete, EMPTY_MARK, (), prefix_sha=sha256_bytes(complete))
    view.buffer = b""
    view.reset = mark.size > 0
    return view


def prefix_view(log: Path, base: EventView, size: int, sha: str) -> EventView | None:
    """The view of another copy's log that is exactly the first `size` bytes of this log (`base`: this log read from 0)."""
    if not log.exists() or not base.from_start:
        return None
    with open(log, "rb") as fh:
        if os.fstat(fh.fileno()).st_size < size or _sha_range(fh, 0, size) != sha:
            return None
        end = last_line_end(base, size)
        head = _pread(fh, 0, min(WINDOW, end))
        lead = _pread(fh, max(0, end - WINDOW), min(WINDOW, end))
    return truncated_view(base, end, head, lead)


def read_lines(log: Path, lines: Sequence[EventLine]) -> dict[str, bytes]:
    """Raw bytes of the given lines of a local log (MarkMismatch if one is no longer where it was)."""
    if not lines:
        return {}
    chunks = {}
    with open(log, "rb") as fh:
        for s, e in spans_to_read(lines):
            chunks[(s, e)] = _pread(fh, s, e - s)
    return cut_lines(lines, chunks)


class LocalSide:
    """A dataset under a root on this machine (`name` "local", or a path remote's profile name)."""

    def __init__(self, root: Path, dataset_id: str, *, name: str = "local", mounted_remote: bool = False):
        self.paths = DatasetPaths(root, dataset_id)
        self.name = name
        self.label = str(self.paths.dir)
        self.mounted_remote = mounted_remote

    # -- reading ------------------------------------------------------------------------------
    def inventory(self, mark: LogMark, pending: Sequence[EventLine], same_prefix: EventView | None = None) -> SideState:
        """Manifest, meta, snapshots (sha256), data files, auxiliary files (sha256) and events after `mark` (see `read_log`)."""
        p = self.paths
        st = SideState(self.name, dir=str(p.dir))
        if p.root.is_dir():
            st.base = str(p.root.resolve())
        if not p.dir.is_dir():
            return st
        if self.mounted_remote and st.base is not None and not str(p.dir.resolve()).startswith(st.base.rstrip("/") + "/"):
            raise RemoteError(f"{self.name}: the dataset directory resolves to {p.dir.resolve()}, outside base_dir {st.base}",
                              hint="a symlink may point elsewhere; sync only writes below base_dir, fix the layout")
        st.exists = True
        if p.manifest.exists():
            st.manifest_raw = p.manifest.read_bytes()
            st.manifest = Manifest.from_json(st.manifest_raw, where=str(p.manifest))
            for e in st.manifest.all_files():
                check_relpath(e.file, f"the manifest {p.manifest}")
        if p.meta.exists():
            st.meta = p.meta.read_bytes()
        st.events = read_log(p.events_log, mark, pending, same_prefix)
        if p.snapshots_dir.is_dir():
            for f in p.snapshots_dir.iterdir():
                if f.is_file() and SNAPSHOT_FILE.match(f.name):
                    st.snapshots[f.name] = sha256_file(f)
        d = p.dir
        for sub in (RECORDS_DIR, DERIVED_DIR):
            for dirpath, dirnames, filenames in os.walk(d / sub):
                dirnames[:] = [x for x in dirnames if x != PARTIAL_DIR]
                for fn in filenames:
                    if fn.endswith(".parquet") and not fn.startswith("."):
                        full = os.path.join(dirpath, fn)
                        st.files[os.path.relpath(full, d).replace(os.sep, "/")] = os.stat(full).st_size
        for dirpath, dirnames, filenames in os.walk(d):
            rel_dir = os.path.relpath(dirpath, d).replace(os.sep, "/")
            if rel_dir == ".":
                dirnames[:] = [x for x in dirnames if x not in NEVER_SYNCED_TOP]
            dirnames[:] = [x for x in dirnames if x != PARTIAL_DIR]
            for fn in filenames:
                rel = fn if rel_dir == "." else f"{rel_dir}/{fn}"
                full = os.path.join(dirpath, fn)
                if not is_aux(rel) or os.path.islink(full):
                    continue
                if not safe_relpath(rel):
                    st.skipped.append(rel)
                    continue
                s = os.stat(full)
                st.aux[rel] = (s.st_size, int(s.st_mtime), sha256_file(full))
        return st

    def read_events(self, mark: LogMark, pending: Sequence[EventLine]) -> EventView:
        """Only the event view (see `read_log`)."""
        return read_log(self.paths.events_log, mark, pending)

    def read_all_events(self, size: int) -> EventView:
        """This log read from byte 0 (`size` is ignored: a local read sees the whole file)."""
        return read_log(self.paths.events_log, EMPTY_MARK, ())

    def prefix_view(self, base: EventView, size: int, sha: str) -> EventView | None:
        """See `prefix_view` (module function): another copy's log that is a prefix of this one."""
        return prefix_view(self.paths.events_log, base, size, sha)

    def event_lines(self, lines: Sequence[EventLine]) -> dict[str, bytes]:
        return read_lines(self.paths.events_log, lines)

    def endpoint(self) -> Endpoint:
        return Endpoint(str(self.paths.dir))

    def prepare_staging(self) -> None:
        (self.paths.dir / STAGING_DIR).mkdir(parents=True, exist_ok=True)

    def remote_calls(self) -> tuple[int, int]:
        return (0, 0)

    # -- the commit ----------------------------------------------------------------------------
    def commit(self, req: CommitRequest) -> CommitResult:
        """Apply `req` under `.usr.lock` and `.events.lock` (the store's own locks), as the remote script does.

        Staged data files are hashed before the locks are taken (a long hash must not block the
        writers of this dataset); under the locks a staged file is trusted only if it is still the
        very file that was hashed (same inode, size and mtime), and every other named file is hashed there.
        """
        p = self.paths
        p.dir.mkdir(parents=True, exist_ok=True)
        staging = p.dir / STAGING_DIR
        staging.mkdir(parents=True, exist_ok=True)
        trusted: dict[str, tuple[int, int, int]] = {}
        bad: list[str] = []
        for c in req.data:
            staged = staging / c.file
            try:
                st = staged.stat()
                ok = _matches(staged, c.kind, c.expected)
            except FileNotFoundError:  # not staged, or a concurrent sync's commit moved it in: checked under the lock
                continue
            if ok:
                trusted[c.file] = (st.st_ino, st.st_size, st.st_mtime_ns)
            else:
                bad.append(c.file)
                staged.unlink(missing_ok=True)
        if bad:
            return CommitResult("verify_failed", bad=tuple(bad))
        try:
            lock = FileLock(p.lock, timeout=req.lock_wait, what=f"dataset {p.dataset_id} lock").acquire()
        except LockTimeoutError as exc:
            return CommitResult("lock_timeout", holder=exc.message)
        try:
            try:
                evlock = FileLock(ev.lock_path_for(p.events_log), timeout=req.lock_wait, what="event log lock").acquire()
            except LockTimeoutError as exc:
                return CommitResult("lock_timeout", holder=exc.message)
            try:
                return self._commit_locked(req, staging, trusted)
            finally:
                evlock.release()
        finally:
            lock.release()

    def _commit_locked(self, req: CommitRequest, staging: Path, trusted: dict[str, tuple[int, int, int]]) -> CommitResult:
        p = self.paths
        cur = p.manifest.read_bytes() if p.manifest.exists() else None
        cur_meta = p.meta.read_bytes() if p.meta.exists() else None
        if (sha256_bytes(cur) if cur is not None else "-") != req.expect_manifest or \
                (sha256_bytes(cur_meta) if cur_meta is not None else "-") != req.expect_meta:
            return CommitResult("moved", manifest=cur, meta=cur_meta)
        missing: list[str] = []
        bad: list[str] = []

        def check_staged(rel: str, sha: str) -> None:
            s = staging / rel
            if not s.is_file():
                missing.append(rel)
            elif sha256_file(s) != sha:
                bad.append(rel)
                s.unlink()

        for name, sha in req.snapshots:
            if not (p.snapshots_dir / name).exists():
                check_staged(f"_snapshots/{name}", sha)
        for rel, sha in req.aux:
            check_staged(rel, sha)
        touched: set[Path] = set()
        for c in req.data:
            target = p.file(c.file)
            staged = staging / c.file
            known = False
            if staged.is_file():
                st = staged.stat()
                known = trusted.get(c.file) == (st.st_ino, st.st_size, st.st_mtime_ns)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, target)
                touched.add(target.parent)
            if not target.is_file():
                missing.append(c.file)
            elif not known and not _matches(target, c.kind, c.expected):
                bad.append(c.file)
                target.unlink()
        if missing or bad:
            return CommitResult("verify_failed", missing=tuple(missing), bad=tuple(bad))
        for name, _ in req.snapshots:
            dst = p.snapshots_dir / name
            if not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / "_snapshots" / name, dst)
                touched.add(dst.parent)
        for rel, _ in req.aux:
            dst = p.file(rel)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, dst)
            touched.add(dst.parent)
        for d in touched:  # the moved-in files are durable before the manifest names them
            fsync_dir(d)
        if req.meta is not None:
            atomic_write_bytes(p.meta, req.meta)
        if req.manifest is not None:
            atomic_write_bytes(p.manifest, req.manifest)
        return CommitResult("ok", events_appended=self._append_events(req.events, req.events_seen))

    def _append_events(self, payload: bytes, seen: int) -> int:
        """Append lines (caller holds the events lock), skipping any whose key was appended after byte `seen`."""
        lines = [ln + b"\n" for ln in payload.split(b"\n") if ln.strip()]
        if not lines:
            return 0
        log = self.paths.events_log
        have: set[str] = set()
        if log.exists():
            with open(log, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size > seen:
                    have = {event_key(raw) for raw in _pread(fh, seen, size - seen).split(b"\n") if raw.strip()}
        todo = []
        for raw in lines:
            k = event_key(raw[:-1])
            if k not in have:
                have.add(k)
                todo.append(raw)
        if todo:
            ev.write_lines_locked(log, b"".join(todo))
        return len(todo)
