"""The pure part of sync: merge rules, the diff of two sides, and the transfer plan.

Everything here is a function of two `SideState`s (and the options); nothing reads a file or
runs a command, so the rules can be property-tested and the engine only executes plans.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...core.errors import ConflictError, IntegrityError, NotFoundError
from ..manifest import FileEntry, Manifest, union
from .side import FileCheck
from .state import SideState

TOMBSTONE_NS = "usr"


@dataclass(frozen=True)
class SyncOptions:
    """What to move and how to check it (the CLI flags of diff/pull/push)."""

    verify: str = "hash"                 # hash | size
    verify_sidecars: bool = True
    verify_derived_hashes: bool = True
    primary_only: bool = False
    skip_snapshots: bool = False
    bwlimit: str | None = None           # rsync --bwlimit value (KB/s, or with a K/M/G suffix)


# ---------------------------------------------------------------------------------------------
# merge rules
# ---------------------------------------------------------------------------------------------
def content_key(man: Manifest | None) -> tuple | None:
    """A manifest's content without its `updated_at` stamp (two copies with the same files compare equal)."""
    if man is None:
        return None

    def ent(es: list[FileEntry]) -> tuple:
        return tuple(sorted((e.file, e.sha256, e.rows, e.bytes) for e in es))

    return (man.dataset, man.created_at, tuple(sorted(man.bio_types)), tuple(sorted(man.columns.items())), bool(man.dedupe_on_read),
            ent(man.parts), tuple(sorted((ns, ent(es)) for ns, es in man.overlays.items() if es)))


def _clone(m: Manifest) -> Manifest:
    return Manifest(m.dataset, m.created_at, m.updated_at, parts=list(m.parts), overlays={k: list(v) for k, v in m.overlays.items()},
                    columns=dict(m.columns), bio_types=list(m.bio_types), dedupe_on_read=m.dedupe_on_read)


def merge_manifests(dest: Manifest | None, src: Manifest, primary_only: bool) -> Manifest:
    """The destination's manifest after merging `src` into it (union; base parts only with `primary_only`)."""
    # With `primary_only` the column types come along: base parts carry derived columns too (values
    # written with their records, or folded in by compaction), and reads and `validate` need their types.
    if dest is None:
        m = _clone(src)
        if primary_only:
            m.overlays = {}
        return m
    if primary_only:
        u = union(dest, Manifest(src.dataset, src.created_at, src.updated_at, parts=src.parts, bio_types=src.bio_types,
                                 columns=dict(src.columns), dedupe_on_read=src.dedupe_on_read))
        u.overlays = dest.overlays
        return u
    return union(dest, src)


def merge_meta(a: bytes | None, b: bytes | None) -> bytes | None:
    """meta.md merge (symmetric): if one side's lines (with repeats) all appear in the other, keep the other.

    Otherwise keep the common leading lines, then the remaining lines of the side whose remainder
    sorts first, then the other side's lines it lacks (order kept, repeats counted). Same lines in a
    different order: the copy that sorts first. Both sides converge after pull + push and nothing
    either side wrote is dropped.
    """
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


def aux_winner(lv: tuple[int, int, str] | None, rv: tuple[int, int, str] | None) -> str | None:
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


def verify_kind(entry: FileEntry, opts: SyncOptions) -> str:
    """How a newly named file is checked: sha256 ("hash") or byte size ("size")."""
    if opts.verify == "size":
        return "size"
    if entry.file.startswith("records/"):
        return "hash"
    return "hash" if opts.verify_derived_hashes else "size"


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


# ---------------------------------------------------------------------------------------------
# the diff
# ---------------------------------------------------------------------------------------------
@dataclass
class Diff:
    """What differs between the two sides, and which way it would move."""

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
    aux: dict[str, Any] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)
    from_checkpoint: bool = False        # both event logs were read from this remote's checkpoint (only their tails)

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
        def side(s: SideState) -> dict[str, Any]:
            m = s.manifest
            return {"exists": m is not None, "parts": len(m.parts) if m else 0, "rows": m.rows if m else 0,
                    "bytes": m.bytes if m else 0, "overlays": m.namespaces() if m else [], "snapshots": len(s.snapshots),
                    "events": s.events.count, "dir": s.dir}

        lv, rv = self.local.events, self.remote_state.events
        return {
            "dataset": self.dataset, "remote": self.remote, "status": self.status,
            "pull_needed": self.to_pull, "push_needed": self.to_push,
            "local": side(self.local), "remote_side": side(self.remote_state),
            "changes": {
                **dict(self.groups.items()),
                "manifest": {"pull": self.manifest_pull, "push": self.manifest_push},
                "snapshots": self.snapshots, "meta.md": {"pull": self.meta_pull, "push": self.meta_push},
                ".events.log": {**self.events, "read_bytes": {"local": lv.read_bytes, "remote": rv.read_bytes},
                                "from_checkpoint": self.from_checkpoint},
                "_auxiliary": self.aux,
            },
            "conflicts": self.conflicts,
            "verify": {"primary": self.opts.verify, "sidecars": "strict" if self.opts.verify_sidecars else "off",
                       "derived_hashes": "on" if self.opts.verify_derived_hashes else "off"},
        }


def compute_diff(dataset_id: str, local: SideState, remote: SideState, opts: SyncOptions) -> Diff:
    """Compare two sides (pure): changed file groups, manifests, snapshots, meta.md, events, auxiliary files."""
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
    lk, rk = local.events.lines, remote.events.lines
    lonly = [ln for k, ln in lk.items() if k not in rk]
    ronly = [ln for k, ln in rk.items() if k not in lk]
    d.events = {"local": local.events.count, "remote": remote.events.count,
                "local_only": sum(1 for ln in lonly if not ln.sync), "remote_only": sum(1 for ln in ronly if not ln.sync),
                "sync_only_local": sum(1 for ln in lonly if ln.sync), "sync_only_remote": sum(1 for ln in ronly if ln.sync)}
    pull_aux, push_aux = [], []
    for rel in sorted(set(local.aux) | set(remote.aux)):
        w = aux_winner(local.aux.get(rel), remote.aux.get(rel))
        if w == "remote":
            pull_aux.append(rel)
        elif w == "local":
            push_aux.append(rel)
    d.aux = {"pull": pull_aux, "push": push_aux, "local_files": len(local.aux), "remote_files": len(remote.aux)}
    return d


# ---------------------------------------------------------------------------------------------
# the plan
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """What one transfer does to the destination (computed, never executed, here)."""

    target: Manifest                              # the destination's manifest after the commit
    write_manifest: bool                          # False: content unchanged, keep the file as is
    copy: tuple[FileEntry, ...]                   # data files to copy into the destination's staging
    checks: tuple[FileCheck, ...]                 # every newly named data file, checked at the commit
    snapshots: tuple[tuple[str, str], ...]        # (name.json, sha256) to install where absent
    aux: tuple[tuple[str, str], ...]              # (relpath, sha256) auxiliary files to replace
    meta: bytes | None                            # the new meta.md, None = unchanged
    events: tuple[str, ...]                       # keys of source lines the destination lacks, in source order
    expect_manifest: str                          # the destination's manifest/meta hashes the plan assumes
    expect_meta: str

    @property
    def empty(self) -> bool:
        return not (self.write_manifest or self.copy or self.checks or self.snapshots or self.aux or self.meta is not None or self.events)


def snapshots_to_send(src: SideState, dst: SideState, opts: SyncOptions) -> list[str]:
    """Snapshot names the source has and the destination lacks (none with --primary-only/--skip-snapshots)."""
    if opts.primary_only or opts.skip_snapshots:
        return []
    return sorted(set(src.snapshots) - set(dst.snapshots))


def make_plan(src: SideState, dst: SideState, opts: SyncOptions, snapshot_manifests: Mapping[str, Manifest] | None = None,
              src_is_local: bool = True) -> Plan:
    """The transfer from `src` to `dst` (pure).

    The destination's manifest becomes the union of both; every data file that union or an incoming
    snapshot names and the destination's manifest does not is copied (unless an unreferenced copy of
    the right size already sits in the destination, left by an interrupted run) and checked at the
    commit. Snapshots the destination lacks, auxiliary files whose newer copy is the source's, the
    merged meta.md and the source's event lines the destination lacks come along. `src_is_local`
    orients the auxiliary-file rule (which side is "local").
    """
    if src.manifest is None:
        raise NotFoundError(f"the {src.where} copy has no manifest, so there is nothing to send from it")
    target = merge_manifests(dst.manifest, src.manifest, opts.primary_only)
    snaps = snapshots_to_send(src, dst, opts)
    need: dict[str, FileEntry] = {e.file: e for e in target.all_files()}
    for name in snaps:
        for e in (snapshot_manifests or {}).get(name, Manifest(target.dataset, "")).all_files():
            need.setdefault(e.file, e)
    have = {e.file for e in dst.manifest.all_files()} if dst.manifest else set()
    named = {e.file for e in target.all_files()}
    copy, checks = [], []
    for f, e in sorted(need.items()):
        if f in have:
            continue
        if f not in src.files:
            if f in named:
                raise IntegrityError(f"{src.where} lists {f} in its manifest but the file is missing there",
                                     hint=f"run `usr validate` on the {src.where} copy")
            continue  # only an old snapshot names it and the source no longer has it: the snapshot still moves
        if dst.files.get(f) != e.bytes:
            copy.append(e)
        kind = verify_kind(e, opts)
        checks.append(FileCheck(f, kind, e.sha256 if kind == "hash" else str(e.bytes)))
    src_side = "local" if src_is_local else "remote"
    aux = []
    if not opts.primary_only:
        for rel in sorted(src.aux):
            lv, rv = (src.aux.get(rel), dst.aux.get(rel)) if src_is_local else (dst.aux.get(rel), src.aux.get(rel))
            if aux_winner(lv, rv) == src_side:
                aux.append((rel, src.aux[rel][2]))
    meta = None
    if not opts.primary_only:
        merged = merge_meta(dst.meta, src.meta)
        meta = merged if merged is not None and merged != dst.meta else None
    events: tuple[str, ...] = ()
    if not opts.primary_only:
        dk = dst.events.lines
        events = tuple(ln.key for ln in sorted(src.events.lines.values(), key=lambda ln: ln.start) if ln.key not in dk)
    return Plan(target=target, write_manifest=content_key(target) != content_key(dst.manifest), copy=tuple(copy),
                checks=tuple(checks), snapshots=tuple((n, src.snapshots[n]) for n in snaps), aux=tuple(aux), meta=meta,
                events=events, expect_manifest=dst.manifest_sha, expect_meta=dst.meta_sha)
