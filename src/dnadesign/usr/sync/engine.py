"""diff / pull / push: compare two copies of a dataset and merge them by union.

Protocol (both directions):
1. ONE remote inventory call (manifest, snapshots, events we lack, meta.md, file lists).
2. The plan: `manifest.union(local, remote)`; the data files the destination lacks; snapshots,
   meta.md, auxiliary files and event lines to bring over.
3. rsync moves only those files (straight into place: data files are immutable and invisible until a
   manifest lists them; snapshots and auxiliary files go to `.usr-sync/in/` first).
4. Verify what arrived (sha256 by default, or size), and only then switch the destination's
   manifest atomically under its lock (`flock .usr.lock` on the remote, in one call that also
   checks the remote manifest did not move meanwhile; if it did, re-union and retry).
5. Append the event lines the destination lacks (by event_id), then one `pull`/`push` event.

A run killed at any step leaves both sides valid (old manifest, maybe some unreferenced files);
rerunning the same command finds those files present and completes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...core import events as ev
from ...core.atomic import atomic_write_bytes
from ...core.errors import ConflictError, IntegrityError, LockTimeoutError, NotFoundError, RemoteError
from ...core.ids import sha256_bytes, sha256_file
from ...core.locks import FileLock
from ..layout import DatasetPaths
from ..manifest import FileEntry, Manifest, union
from . import scripts
from .remotes import RemoteProfile
from .ssh import Connection
from .state import SYNC_DIR, Events, SideState, check_relpath, is_sync_event, local_state, remote_state

TOMBSTONE_NS = "usr"
LOCK_WAIT_S = 120
MAX_COMMIT_RETRIES = 5


@dataclass
class SyncOptions:
    verify: str = "hash"                 # hash | size
    verify_sidecars: bool = True
    verify_derived_hashes: bool = True
    primary_only: bool = False
    skip_snapshots: bool = False


# ---------------------------------------------------------------------------------------------
# merging rules
# ---------------------------------------------------------------------------------------------
def content_key(man: Manifest | None) -> tuple | None:
    """A manifest's content without its `updated_at` stamp (two copies with the same files compare equal)."""
    if man is None:
        return None
    ent = lambda es: tuple(sorted((e.file, e.sha256, e.rows, e.bytes) for e in es))  # noqa: E731
    return (man.dataset, man.created_at, tuple(sorted(man.bio_types)), tuple(sorted(man.columns.items())), bool(man.dedupe_on_read),
            ent(man.parts), tuple(sorted((ns, ent(es)) for ns, es in man.overlays.items() if es)))


def _clone(m: Manifest) -> Manifest:
    return Manifest(m.dataset, m.created_at, m.updated_at, parts=list(m.parts), overlays={k: list(v) for k, v in m.overlays.items()},
                    columns=dict(m.columns), bio_types=list(m.bio_types), dedupe_on_read=m.dedupe_on_read)


def merge_manifests(dest: Manifest | None, src: Manifest, primary_only: bool) -> Manifest:
    if dest is None:
        m = _clone(src)
        if primary_only:
            m.overlays = {}
            m.columns = {}
        return m
    if primary_only:
        u = union(dest, Manifest(src.dataset, src.created_at, src.updated_at, parts=src.parts, bio_types=src.bio_types,
                                 dedupe_on_read=src.dedupe_on_read))
        u.overlays, u.columns = dest.overlays, dest.columns
        return u
    return union(dest, src)


def merge_meta(a: bytes | None, b: bytes | None) -> bytes | None:
    """meta.md merge (symmetric): if one side's lines (with repeats) all appear in the other, keep the other.

    Otherwise keep the common leading lines, then the remaining lines of the side whose remainder
    sorts first, then the other side's lines it lacks (order kept, repeats counted). Same lines in a
    different order: the copy that sorts first. Both sides converge after pull + push and nothing
    either side wrote is dropped.
    """
    from collections import Counter

    if a is None or b is None:
        return a if b is None else b
    if a == b:
        return a
    la, lb = a.decode(errors="replace").splitlines(), b.decode(errors="replace").splitlines()
    ca, cb = Counter(la), Counter(lb)
    if ca == cb:
        return min(a, b)
    if not (cb - ca):
        return a
    if not (ca - cb):
        return b
    i = 0
    while i < min(len(la), len(lb)) and la[i] == lb[i]:
        i += 1
    ra, rb = la[i:], lb[i:]
    first, second = (ra, rb) if (ra, rb) == min((ra, rb), (rb, ra)) else (rb, ra)
    budget = Counter(first)
    extra = []
    for x in second:
        if budget[x] > 0:
            budget[x] -= 1
        else:
            extra.append(x)
    return ("\n".join(la[:i] + first + extra) + "\n").encode()


def _entries(man: Manifest | None, primary_only: bool) -> dict[str, dict[str, FileEntry]]:
    """Manifest files grouped: 'primary', 'tombstones', 'derived/<ns>'."""
    out: dict[str, dict[str, FileEntry]] = {"primary": {}}
    if man is None:
        return out
    out["primary"] = {e.file: e for e in man.parts}
    if not primary_only:
        for ns, es in man.overlays.items():
            key = "tombstones" if ns == TOMBSTONE_NS else f"derived/{ns}"
            out.setdefault(key, {}).update({e.file: e for e in es})
    return out


def _aux_winner(lv: tuple[int, int, str] | None, rv: tuple[int, int, str] | None) -> str | None:
    """Which side's auxiliary file wins: the only copy, else the newer mtime (ties: none moves)."""
    if lv is None and rv is None:
        return None
    if lv is None:
        return "remote"
    if rv is None:
        return "local"
    if lv[2] == rv[2]:
        return None
    if rv[1] > lv[1]:
        return "remote"
    if lv[1] > rv[1]:
        return "local"
    return "remote" if rv[2] > lv[2] else "local"  # same mtime, different content: deterministic pick


@dataclass
class Diff:
    dataset: str
    remote: str
    local: SideState
    remote_state: SideState
    opts: SyncOptions
    groups: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # group -> local_only/remote_only
    manifest_pull: bool = False
    manifest_push: bool = False
    snapshots: dict[str, list[str]] = field(default_factory=dict)
    meta_pull: bool = False
    meta_push: bool = False
    events: dict[str, int] = field(default_factory=dict)
    aux: dict[str, list[str]] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)

    @property
    def to_pull(self) -> bool:
        return (self.manifest_pull or self.meta_pull or bool(self.snapshots.get("remote_only")) or self.events.get("remote_only", 0) > 0
                or bool(self.aux.get("pull")))

    @property
    def to_push(self) -> bool:
        return (self.manifest_push or self.meta_push or bool(self.snapshots.get("local_only")) or self.events.get("local_only", 0) > 0
                or bool(self.aux.get("push")))

    @property
    def status(self) -> str:
        return "differs" if (self.to_pull or self.to_push or self.conflicts) else "up-to-date"

    def as_dict(self) -> dict[str, Any]:
        lm, rm = self.local.manifest, self.remote_state.manifest
        side = lambda s, m: {"exists": m is not None, "parts": len(m.parts) if m else 0, "rows": m.rows if m else 0,  # noqa: E731
                             "bytes": m.bytes if m else 0, "overlays": m.namespaces() if m else [], "snapshots": len(s.snapshots),
                             "events": s.events.count(), "dir": s.dir}
        return {
            "dataset": self.dataset, "remote": self.remote, "status": self.status,
            "pull_needed": self.to_pull, "push_needed": self.to_push,
            "local": side(self.local, lm), "remote_side": side(self.remote_state, rm),
            "changes": {
                **{g: v for g, v in self.groups.items()},
                "manifest": {"pull": self.manifest_pull, "push": self.manifest_push},
                "snapshots": self.snapshots, "meta.md": {"pull": self.meta_pull, "push": self.meta_push},
                ".events.log": self.events, "_auxiliary": self.aux,
            },
            "conflicts": self.conflicts,
            "verify": {"primary": self.opts.verify, "sidecars": "strict" if self.opts.verify_sidecars else "off",
                       "derived_hashes": "on" if self.opts.verify_derived_hashes else "off"},
        }


def compute_diff(dataset_id: str, local: SideState, remote: SideState, opts: SyncOptions) -> Diff:
    d = Diff(dataset_id, remote.where, local, remote, opts)
    lm, rm = local.manifest, remote.manifest
    lg, rg = _entries(lm, opts.primary_only), _entries(rm, opts.primary_only)
    for g in sorted(set(lg) | set(rg)):
        a, b = lg.get(g, {}), rg.get(g, {})
        lo, ro = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        for f in sorted(set(a) & set(b)):
            if a[f].sha256 != b[f].sha256:
                d.conflicts.append(f"{f}: different content on the two sides")
        if lo or ro or g == "primary":
            d.groups[g] = {"local_only": lo, "remote_only": ro}
    try:
        if rm is not None:
            d.manifest_pull = content_key(merge_manifests(lm, rm, opts.primary_only)) != content_key(lm)
        if lm is not None:
            d.manifest_push = content_key(merge_manifests(rm, lm, opts.primary_only)) != content_key(rm)
    except ConflictError as exc:
        d.conflicts.append(exc.message)
    if opts.primary_only:
        return d
    if not opts.skip_snapshots:
        ls_, rs_ = local.snapshots, remote.snapshots
        d.snapshots = {"local_only": sorted(set(ls_) - set(rs_)), "remote_only": sorted(set(rs_) - set(ls_)),
                       "conflicts": sorted(n for n in set(ls_) & set(rs_) if ls_[n] != rs_[n])}
        d.conflicts += [f"_snapshots/{n}: same name, different content (kept as is on both sides)" for n in d.snapshots["conflicts"]]
    merged_meta = merge_meta(local.meta, remote.meta)
    d.meta_pull = merged_meta != local.meta and remote.meta is not None
    d.meta_push = merged_meta != remote.meta and local.meta is not None
    lk, rk = local.events.keys, remote.events.keys
    lonly = [raw for k, raw in local.events.lines if k not in rk]
    ronly = [raw for k, raw in remote.events.lines if k not in lk]
    d.events = {"local": local.events.count(), "remote": remote.events.count(),
                "local_only": sum(1 for r in lonly if not is_sync_event(r)), "remote_only": sum(1 for r in ronly if not is_sync_event(r)),
                "sync_only_local": sum(1 for r in lonly if is_sync_event(r)), "sync_only_remote": sum(1 for r in ronly if is_sync_event(r))}
    pull_aux, push_aux = [], []
    for rel in sorted(set(local.aux) | set(remote.aux)):
        w = _aux_winner(local.aux.get(rel), remote.aux.get(rel))
        if w == "remote":
            pull_aux.append(rel)
        elif w == "local":
            push_aux.append(rel)
    d.aux = {"pull": pull_aux, "push": push_aux, "local_files": len(local.aux), "remote_files": len(remote.aux)}  # type: ignore[dict-item]
    return d


# ---------------------------------------------------------------------------------------------
# audit
# ---------------------------------------------------------------------------------------------
@dataclass
class Audit:
    action: str
    state: str
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
        derived_changed = any(g != "primary" and (v["remote_only"] if way == "pull" else v["local_only"]) for g, v in d.groups.items())
        return {
            "action": self.action, "transfer_state": self.state, "dataset": self.dataset, "remote": self.remote,
            "verify": {"primary": self.opts.verify, "sidecars": "strict" if self.opts.verify_sidecars else "off",
                       "derived_hashes": "on" if self.opts.verify_derived_hashes else "off"},
            "primary": {"changed": bool(d.groups.get("primary", {}).get("remote_only" if way == "pull" else "local_only")),
                        "files": self.primary_files, "rows_added": self.rows_added},
            "meta.md": {"changed": d.meta_pull if way == "pull" else d.meta_push},
            ".events.log": {"local": self.events_local, "remote": self.events_remote, "merged": self.events_merged,
                            "changed": (d.events.get("remote_only", 0) if way == "pull" else d.events.get("local_only", 0)) > 0},
            "_snapshots": {"changed": bool(d.snapshots.get("remote_only" if way == "pull" else "local_only")),
                           "transferred": self.snapshots_moved, "conflicts": d.snapshots.get("conflicts", [])},
            "_derived": {"changed": derived_changed, "files": self.derived_files},
            "_auxiliary": {"changed": bool(d.aux.get(way)), "transferred": self.aux_moved},
            "transfer": {"files": self.files_transferred, "new_file_bytes": self.new_file_bytes, "wire_bytes": self.wire_bytes,
                         "inventory_bytes": self.inventory_bytes, "ssh_calls": self.ssh_calls, "seconds": round(self.seconds, 3),
                         "commit_retries": self.retries},
            "conflicts": d.conflicts,
        }

    def render(self) -> str:
        a = self.as_dict()
        yn = lambda b: "changed" if b else "unchanged"  # noqa: E731
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
            f"Transfer   : {t['files']} file(s), {_human(t['new_file_bytes'])} new data, {_human(t['wire_bytes'])} over rsync, "
            f"{t['ssh_calls']} remote call(s), {t['seconds']:.2f} s",
        ]
        for c in self.diff.conflicts:
            lines.append(f"CONFLICT   : {c}")
        return "\n".join(lines)


def _human(n: int) -> str:
    x = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if x < 1024 or unit == "GB":
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1024
    return f"{n} B"


# ---------------------------------------------------------------------------------------------
# operations
# ---------------------------------------------------------------------------------------------
class Session:
    """One diff/pull/push: a connection and both sides' state."""

    def __init__(self, root: Path, dataset_id: str, profile: RemoteProfile, opts: SyncOptions):
        self.paths = DatasetPaths(root, dataset_id)
        self.dataset_id = dataset_id
        self.profile = profile
        self.opts = opts
        self.conn = Connection(profile)
        self.t0 = time.monotonic()

    def inspect(self) -> Diff:
        self.local = local_state(self.paths)
        self.remote = remote_state(self.conn, self.dataset_id, self.local, self.paths.events_log)
        if self.local.manifest is None and self.remote.manifest is None:
            raise NotFoundError(f"dataset {self.dataset_id} exists neither under {self.paths.root} nor on remote {self.profile.name}",
                                hint=f"check the id and --root; the remote copy would be {self.profile.base_dir}/{self.dataset_id}")
        return compute_diff(self.dataset_id, self.local, self.remote, self.opts)

    def audit(self, action: str, state: str, d: Diff) -> Audit:
        a = Audit(action, state, self.dataset_id, self.profile.name, self.opts, d)
        a.events_local, a.events_remote = d.events.get("local", 0), d.events.get("remote", 0)
        a.ssh_calls = self.conn.calls
        a.inventory_bytes = self.conn.bytes_in
        a.seconds = time.monotonic() - self.t0
        return a


def _check_conflicts(d: Diff) -> None:
    hard = [c for c in d.conflicts if not c.startswith("_snapshots/")]
    if hard:
        raise ConflictError(f"{d.dataset}: {hard[0]}", hint="run `usr validate` on both sides; one copy is corrupted or was edited by hand")


def _needed_files(man: Manifest, snaps: list[Manifest]) -> dict[str, FileEntry]:
    need = {e.file: e for e in man.all_files()}
    for s in snaps:
        for e in s.all_files():
            need.setdefault(e.file, e)
    return need


def _verify_kind(entry: FileEntry, opts: SyncOptions) -> str:
    if opts.verify == "size":
        return "size"
    if entry.file.startswith("records/"):
        return "hash"
    return "hash" if opts.verify_derived_hashes else "size"


def diff(root: Path, dataset_id: str, profile: RemoteProfile, opts: SyncOptions) -> tuple[Diff, Session]:
    s = Session(root, dataset_id, profile, opts)
    return s.inspect(), s


def _gate(s: Session, d: Diff, action: str, pending: bool, dry_run: bool,
          confirm: Callable[[Diff], bool] | None) -> Audit | None:
    """Stop before transferring: an audit for NO-OP / DRY-RUN, KeyboardInterrupt if the user declines."""
    _check_conflicts(d)
    if not pending:
        return s.audit(action, "NO-OP", d)
    if dry_run:
        return s.audit(action, "DRY-RUN", d)
    if confirm is not None and not confirm(d):
        raise KeyboardInterrupt
    return None


def pull(root: Path, dataset_id: str, profile: RemoteProfile, opts: SyncOptions, *, dry_run: bool = False,
         confirm: Callable[[Diff], bool] | None = None, progress: Callable[[int, int], None] | None = None) -> Audit:
    s = Session(root, dataset_id, profile, opts)
    d = s.inspect()
    if s.remote.manifest is None:
        raise NotFoundError(f"dataset {dataset_id} does not exist on remote {profile.name} ({profile.base_dir}/{dataset_id})",
                            hint=f"push it first with `usr push {dataset_id} {profile.name}`, or check base_dir with `usr remotes show {profile.name}`")
    stop = _gate(s, d, "pull", bool(d.to_pull), dry_run, confirm)
    if stop is not None:
        return stop
    paths, local, remote = s.paths, s.local, s.remote
    paths.dir.mkdir(parents=True, exist_ok=True)
    staging = paths.dir / SYNC_DIR / "in"
    snaps_in = [] if opts.skip_snapshots or opts.primary_only else d.snapshots.get("remote_only", [])
    aux_in = [] if opts.primary_only else list(d.aux.get("pull", []))
    audit = s.audit("pull", "TRANSFERRED", d)
    # 1. small files first (snapshots + auxiliary) into staging; snapshots tell which data files they need
    small = [f"_snapshots/{n}" for n in snaps_in] + aux_in
    if small:
        staging.mkdir(parents=True, exist_ok=True)
        audit.wire_bytes += s.conn.rsync(small, remote.dir, str(staging), pull=True)
    snap_mans: list[Manifest] = []
    for n in snaps_in:
        p = staging / "_snapshots" / n
        if sha256_file(p) != remote.snapshots[n]:
            p.unlink(missing_ok=True)
            raise IntegrityError(f"snapshot {n} changed or was damaged in transit", hint="rerun the same command")
        m = Manifest.load(p)
        for e in m.all_files():
            check_relpath(e.file, f"snapshot {n}")
        snap_mans.append(m)
    # 2. data files the local side lacks, straight into place (unreferenced until the manifest switch)
    target = merge_manifests(local.manifest, remote.manifest, opts.primary_only)
    need = _needed_files(target, snap_mans)
    have_refs = {e.file for e in (local.manifest.all_files() if local.manifest else [])}
    new_refs = {f: e for f, e in need.items() if f not in have_refs}
    fetch = []
    for f, e in sorted(new_refs.items()):
        if local.files.get(f) == e.bytes:
            continue  # left by an interrupted run; verified below
        if f not in remote.files:
            if f in {x.file for x in target.all_files()}:
                raise IntegrityError(f"remote {profile.name} lists {f} in its manifest but the file is missing there",
                                     hint="run `usr validate` on the remote")
            continue  # only an old snapshot names it; the snapshot is still copied
        fetch.append(f)
    audit.wire_bytes += s.conn.rsync(fetch, remote.dir, str(paths.dir), pull=True, progress=progress)
    audit.files_transferred = len(fetch) + len(small)
    audit.new_file_bytes = sum(need[f].bytes for f in fetch)
    # 3. verify every newly referenced file
    for f, e in sorted(new_refs.items()):
        p = paths.file(f)
        if not p.exists():
            continue
        bad = p.stat().st_size != e.bytes or (_verify_kind(e, opts) == "hash" and sha256_file(p) != e.sha256)
        if bad:
            p.unlink()
            raise IntegrityError(f"{f} from remote {profile.name} does not match its manifest ({_verify_kind(e, opts)} check); the copy was removed",
                                 hint="rerun the same command; if it fails again the remote file is corrupt (run `usr validate` there)")
    # 4. commit under the local lock: manifest (re-read and re-unioned), snapshots, aux, meta.md
    with FileLock(paths.lock, timeout=LOCK_WAIT_S, what=f"dataset {dataset_id} lock"):
        cur = Manifest.load(paths.manifest) if paths.manifest.exists() else None
        new = merge_manifests(cur, remote.manifest, opts.primary_only)
        if content_key(new) != content_key(cur):  # a concurrent local append is kept: `cur` was re-read under the lock
            atomic_write_bytes(paths.manifest, new.to_json())
        cur_files = {e.file for e in (cur.all_files() if cur else [])}
        audit.primary_files = len({e.file for e in new.parts} - cur_files)
        audit.rows_added = sum(e.rows for e in new.parts if e.file not in cur_files)
        audit.derived_files = len({e.file for e in new.all_files()} - cur_files) - audit.primary_files
        for n in snaps_in:
            dst = paths.snapshots_dir / n
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.exists():
                os.replace(staging / "_snapshots" / n, dst)
                audit.snapshots_moved.append(n)
        for rel in aux_in:
            src = staging / rel
            if src.exists():
                dst = paths.file(rel)
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
                audit.aux_moved.append(rel)
        if not opts.primary_only:
            cur_meta = paths.meta.read_bytes() if paths.meta.exists() else None
            merged = merge_meta(cur_meta, remote.meta)
            if merged is not None and merged != cur_meta:
                atomic_write_bytes(paths.meta, merged)
    # 5. events: the remote lines we lack, then our own pull event
    if not opts.primary_only:
        audit.events_merged = append_missing(paths.events_log, [raw for _, raw in remote.events.lines])
    man = Manifest.load(paths.manifest)
    event = ev.make_event("pull", dataset_id, ev.Actor.current("usr"),
                          args={"sync": True, "remote": profile.name, "verify": opts.verify},
                          metrics={"files": audit.files_transferred, "bytes": audit.new_file_bytes, "rows_added": audit.rows_added},
                          fingerprint={"rows": man.rows, "manifest": man.digest()})
    ev.append_event(paths.events_log, event)
    # 6. sidecar check: the local copy now holds everything the remote had
    if opts.verify_sidecars and not opts.primary_only:
        after = local_state(paths, hash_aux=True)
        missing_ev = remote.events.keys - after.events.keys
        missing_snaps = [n for n in snaps_in if after.snapshots.get(n) != remote.snapshots[n]]
        bad_aux = [r for r in aux_in if after.aux.get(r, (0, 0, ""))[2] != remote.aux[r][2]]
        if missing_ev or missing_snaps or bad_aux:
            raise IntegrityError(f"after pull the local copy still lacks {len(missing_ev)} event(s), {len(missing_snaps)} snapshot(s), "
                                 f"{len(bad_aux)} auxiliary file(s) of the remote", hint="rerun the same command")
        audit.events_local = after.events.count()
    else:
        audit.events_local = local_state(paths, hash_aux=False).events.count()
    audit.events_remote = remote.events.count()
    audit.ssh_calls = s.conn.calls
    audit.inventory_bytes = s.conn.bytes_in
    audit.seconds = time.monotonic() - s.t0
    return audit


def append_missing(log: Path, lines: list[bytes]) -> int:
    """Append the raw event lines whose event_id the log lacks (under the events lock); returns how many."""
    if not lines:
        return 0
    with FileLock(ev.lock_path_for(log), timeout=LOCK_WAIT_S, what="event log lock"):
        have = Events.parse(log.read_bytes()).keys if log.exists() else set()
        from .state import event_key

        todo, seen = [], set(have)
        for raw in lines:
            k = event_key(raw)
            if k not in seen:
                seen.add(k)
                todo.append(raw if raw.endswith(b"\n") else raw + b"\n")
        if not todo:
            return 0
        ev.write_lines_locked(log, b"".join(todo))
    return len(todo)


def push(root: Path, dataset_id: str, profile: RemoteProfile, opts: SyncOptions, *, dry_run: bool = False,
         confirm: Callable[[Diff], bool] | None = None, progress: Callable[[int, int], None] | None = None) -> Audit:
    s = Session(root, dataset_id, profile, opts)
    d = s.inspect()
    local, remote, paths = s.local, s.remote, s.paths
    if local.manifest is None:
        raise NotFoundError(f"dataset {dataset_id} does not exist under {paths.root}",
                            hint=f"pull it first with `usr pull {dataset_id} {profile.name}`, or check --root")
    if remote.base is None:
        raise RemoteError(f"base_dir {profile.base_dir} does not exist on remote {profile.name}",
                          hint=f"create it there (mkdir -p {profile.base_dir}) or fix it with `usr remotes add {profile.name} --force ...`")
    stop = _gate(s, d, "push", bool(d.to_push), dry_run, confirm)
    if stop is not None:
        return stop
    audit = s.audit("push", "TRANSFERRED", d)
    remote_dir = remote.dir or f"{remote.base}/{dataset_id}"
    snaps_out = [] if opts.skip_snapshots or opts.primary_only else d.snapshots.get("local_only", [])
    aux_out = [] if opts.primary_only else list(d.aux.get("push", []))
    snap_mans = [Manifest.load(paths.snapshots_dir / n) for n in snaps_out]
    for n, m in zip(snaps_out, snap_mans, strict=True):
        for e in m.all_files():
            check_relpath(e.file, f"snapshot {n}")
    if not remote.dir and remote.base is not None:
        from .state import _REMOTE_DIR

        if not _REMOTE_DIR.match(remote.base):
            raise RemoteError(f"{profile.name}: base_dir resolves to {remote.base!r}, which has characters sync will not pass to a shell")
    target = merge_manifests(remote.manifest, local.manifest, opts.primary_only)
    need = _needed_files(target, snap_mans)
    have_refs = {e.file for e in (remote.manifest.all_files() if remote.manifest else [])}
    target_files = {x.file for x in target.all_files()}
    new_refs = {f: e for f, e in need.items() if f not in have_refs}
    missing_local = [f for f, e in new_refs.items() if not paths.file(f).exists() and remote.files.get(f) != e.bytes]
    if any(f in target_files for f in missing_local):
        first = next(f for f in missing_local if f in target_files)
        raise IntegrityError(f"{first} is listed in the local manifest but missing on disk", hint="run `usr validate` locally")
    new_refs = {f: e for f, e in new_refs.items() if f not in missing_local}
    send = sorted(f for f, e in new_refs.items() if remote.files.get(f) != e.bytes)
    mkdir = f"mkdir -p '{remote_dir}' && rsync"
    audit.wire_bytes += s.conn.rsync(send, str(paths.dir), remote_dir, pull=False, rsync_path=mkdir, progress=progress)
    small = [f"_snapshots/{n}" for n in snaps_out] + aux_out
    audit.wire_bytes += s.conn.rsync(small, str(paths.dir), f"{remote_dir}/{SYNC_DIR}/in", pull=False,
                                     rsync_path=f"mkdir -p '{remote_dir}/{SYNC_DIR}/in' && rsync")
    audit.files_transferred = len(send) + len(small)
    audit.new_file_bytes = sum(need[f].bytes for f in send)
    # events the remote lacks + our push event (the same line goes to both logs)
    rk = remote.events.keys
    ev_lines = [] if opts.primary_only else [raw for k, raw in local.events.lines if k not in rk]
    rows_before = remote.manifest.rows if remote.manifest else 0
    expected = remote.manifest_sha
    remote_man = remote.manifest
    meta = None if opts.primary_only else merge_meta(remote.meta, local.meta)
    if meta is not None and meta == remote.meta:
        meta = None
    if meta is not None and not meta.endswith(b"\n"):
        meta += b"\n"
    for _attempt in range(MAX_COMMIT_RETRIES):
        target = merge_manifests(remote_man, local.manifest, opts.primary_only)
        man_bytes = target.to_json() if content_key(target) != content_key(remote_man) else None
        rows_added = target.rows - (remote_man.rows if remote_man else 0)
        event = ev.make_event("push", dataset_id, ev.Actor.current("usr"),
                              args={"sync": True, "remote": profile.name, "verify": opts.verify},
                              metrics={"files": audit.files_transferred, "bytes": audit.new_file_bytes, "rows_added": rows_added},
                              fingerprint={"rows": target.rows, "manifest": sha256_bytes(man_bytes) if man_bytes else expected})
        push_line = ev.encode_event(event)
        verify_hash = [(f, e.sha256) for f, e in sorted(new_refs.items()) if _verify_kind(e, opts) == "hash"]
        verify_size = [(f, e.bytes) for f, e in sorted(new_refs.items()) if _verify_kind(e, opts) == "size"]
        script = scripts.commit_script(verify_hash=verify_hash, verify_size=verify_size, manifest=man_bytes, meta=meta,
                                       events=b"".join(ev_lines) + push_line, snapshot_moves=snaps_out, aux_moves=aux_out)
        res = s.conn.run_script(script, [profile.base_dir, dataset_id, expected, str(LOCK_WAIT_S)], check=False)
        out = res.stdout
        if res.rc == 0 and b"USR-COMMIT-OK" in out:
            break
        if res.rc == 65:
            bad = [x for x in out.decode(errors="replace").splitlines()[1:] if x.strip()]
            raise IntegrityError(f"{len(bad)} uploaded file(s) on remote {profile.name} do not match the manifest (first: {bad[0] if bad else '?'}); "
                                 "they were removed there", hint="rerun the same command to upload them again")
        if res.rc == 66:
            raw = out.split(b"USR-MANIFEST-MOVED\n", 1)[1] if b"USR-MANIFEST-MOVED\n" in out else b""
            remote_man = Manifest.from_json(raw, where=f"{profile.name} manifest") if raw.strip() else None
            expected = sha256_bytes(raw) if raw.strip() else "-"
            audit.retries += 1
            new_refs = {f: e for f, e in new_refs.items() if not (remote_man and f in {x.file for x in remote_man.all_files()})}
            continue
        if res.rc == 75:
            raise LockTimeoutError(f"the dataset lock on remote {profile.name} stayed busy for {LOCK_WAIT_S}s "
                                   f"({out.decode(errors='replace').strip().splitlines()[-1] if out.strip() else 'holder unknown'})",
                                   hint="wait for the remote writer (e.g. a running `dense run`) to finish, then rerun")
        raise RemoteError(f"commit on remote {profile.name} failed with exit {res.rc} ({(res.stderr or out.decode(errors='replace')).strip()[-300:]})",
                          hint=f"run `usr remotes doctor --remote {profile.name}`, then rerun the same command")
    else:
        raise ConflictError(f"remote {profile.name} kept changing its manifest during push ({MAX_COMMIT_RETRIES} attempts)",
                            hint="rerun when the remote writer is idle")
    append_missing(paths.events_log, [push_line])
    audit.primary_files = len({e.file for e in target.parts} - have_refs)
    audit.rows_added = target.rows - rows_before
    audit.derived_files = len({e.file for e in target.all_files()} - have_refs) - audit.primary_files
    audit.snapshots_moved = list(snaps_out)
    audit.aux_moved = list(aux_out)
    audit.events_merged = len(ev_lines)
    audit.events_local = local.events.count() + 1
    audit.events_remote = remote.events.count() + len(ev_lines) + 1
    if opts.verify_sidecars and not opts.primary_only:
        after = remote_state(s.conn, dataset_id, local_state(paths, hash_aux=False), paths.events_log)
        missing_ev = local.events.keys - after.events.keys
        missing_snaps = [n for n in snaps_out if after.snapshots.get(n) != local.snapshots[n]]
        bad_aux = [r for r in aux_out if after.aux.get(r, (0, 0, ""))[2] != local.aux[r][2]]
        if missing_ev or missing_snaps or bad_aux or content_key(after.manifest) is None:
            raise IntegrityError(f"after push remote {profile.name} still lacks {len(missing_ev)} event(s), {len(missing_snaps)} snapshot(s), "
                                 f"{len(bad_aux)} auxiliary file(s)", hint="rerun the same command")
        audit.events_remote = after.events.count()
    audit.ssh_calls = s.conn.calls
    audit.inventory_bytes = s.conn.bytes_in
    audit.seconds = time.monotonic() - s.t0
    return audit
