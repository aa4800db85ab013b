"""diff / pull / push: compare two copies of a dataset and merge them by union.

One routine moves data in both directions (`Session.transfer`); pull and push only choose which
side is the source. Both sides sit behind the `Side` interface (`LocalSide` for this machine and
path remotes, `SshSide` for SSH remotes, its transport injectable).

1. Inventory: ONE call per side: manifest, meta.md, snapshots, data and auxiliary files, and the
   event lines appended since this remote's checkpoint (`checkpoint.py`); a no-op costs the same
   whatever the length of `.events.log`.
2. The plan (`plan.make_plan`, pure): the union of the manifests; the data files, snapshots,
   auxiliary files, meta.md lines and event lines the destination lacks.
3. rsync copies those files into the destination's staging directory `.usr-sync/in/`, outside the
   live tree, so a concurrent `usr compact` or `gc` there cannot remove them.
4. The commit (`Side.commit`, under the destination's `.usr.lock` and `.events.lock`): if the
   destination's manifest or meta.md moved since the inventory, re-plan and retry; else move the
   staged files in, check that every newly named file exists and matches its sha256 (or size),
   install snapshots and auxiliary files, replace meta.md and the manifest, and append the missing
   event lines plus one `pull`/`push` event. A file found missing at that point (e.g. compacted away
   there) is copied again and the commit retried; one that fails its hash is removed and reported.
5. With --verify-sidecars the destination is read again (only what the commit appended) to check
   that every event, snapshot and auxiliary file arrived; the checkpoint then moves forward.

A run killed at any step leaves both sides valid (the old manifest, maybe staged or unreferenced
files); rerunning the same command reuses what already arrived and completes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ...core import events as ev
from ...core.errors import ConflictError, IntegrityError, LockTimeoutError, NotFoundError, RemoteError, UsageError
from ...core.ids import sha256_bytes
from ..manifest import Manifest
from . import checkpoint
from .audit import Audit
from .checkpoint import Checkpoint
from .eventlog import EMPTY_MARK, MarkMismatch, rebased
from .local_side import LocalSide
from .plan import Diff, Plan, SyncOptions, compute_diff, make_plan, snapshots_to_send
from .remotes import RemoteProfile
from .rsync import rsync_files
from .side import CommitRequest, Side
from .ssh_side import SshSide
from .state import STAGING_DIR, SideState, check_relpath

LOCK_WAIT_S = 120
MAX_COMMIT_ATTEMPTS = 6

__all__ = ["Audit", "Diff", "Session", "SyncHooks", "SyncOptions", "diff", "pull", "push", "remote_key", "side_for"]


@dataclass
class SyncHooks:
    """Fault-injection points (tests): `before_commit(attempt)` runs between the transfer and each commit attempt."""

    before_commit: Callable[[int], None] | None = None


def side_for(profile: RemoteProfile, dataset_id: str) -> Side:
    """The remote side a profile describes: a mounted path or an SSH host."""
    if profile.type == "path":
        return LocalSide(Path(os.path.expanduser(profile.base_dir)), dataset_id, name=profile.name, mounted_remote=True)
    return SshSide(profile, dataset_id)


def remote_key(profile: RemoteProfile) -> str:
    """What a checkpoint belongs to: the remote's location (changing host or base_dir invalidates it)."""
    if profile.type == "path":
        return "path:" + str(Path(os.path.expanduser(profile.base_dir)).resolve())
    return f"ssh:{profile.destination}:{profile.port or ''}:{profile.base_dir}"


class Session:
    """One diff/pull/push of one dataset with one remote."""

    def __init__(self, root: Path, dataset_id: str, profile: RemoteProfile, opts: SyncOptions, *, remote: Side | None = None,
                 hooks: SyncHooks | None = None):
        self.dataset_id = dataset_id
        self.profile = profile
        self.opts = opts
        self.hooks = hooks or SyncHooks()
        self.local = LocalSide(root, dataset_id)
        self.remote: Side = remote if remote is not None else side_for(profile, dataset_id)
        if isinstance(self.remote, LocalSide) and self.remote.paths.dir.resolve() == self.local.paths.dir.resolve():
            raise UsageError(f"remote {profile.name} is this very dataset directory ({self.local.paths.dir})",
                             hint="point the remote at another root, or use --root for a different local root")
        self.key = remote_key(profile)
        self.t0 = time.monotonic()
        self.checkpoint_used = False
        self.base: Checkpoint | None = None

    # -- step 1: both inventories ------------------------------------------------------------
    def inspect(self) -> Diff:
        """Read both sides (from the checkpoint when it still matches), save the new checkpoint, diff them."""
        cp = checkpoint.load(self.local.paths.dir, self.profile.name, self.key)
        lmark, lpend = (cp.local, cp.local_pending) if cp else (EMPTY_MARK, [])
        rmark, rpend = (cp.remote, cp.remote_pending) if cp else (EMPTY_MARK, [])
        self.local_state = self.local.inventory(lmark, lpend)
        lv = self.local_state.events
        if lv.reset:  # the local log changed under the checkpoint: read both in full
            rmark, rpend = EMPTY_MARK, []
        same = lv if rmark.size == 0 and lv.from_start else None  # no checkpoint: spare the bytes both logs share
        self.remote_state = self.remote.inventory(rmark, rpend, same)
        other = self.remote_state.events.prefix_of_other
        if other is not None:  # the remote log is shorter than ours: is it exactly our first bytes?
            self.remote_state.events = self.local.prefix_view(lv, *other) or self.remote.read_all_events(other[0])
        if self.remote_state.events.reset and not lv.from_start:
            self.local_state.events = self.local.read_events(EMPTY_MARK, [])
        self.checkpoint_used = cp is not None and not (self.local_state.events.reset or self.remote_state.events.reset)
        self.base = checkpoint.between(self.key, self.local_state.events, self.remote_state.events)
        checkpoint.save(self.local.paths.dir, self.profile.name, self.base)
        if self.local_state.manifest is None and self.remote_state.manifest is None:
            raise NotFoundError(f"dataset {self.dataset_id} exists neither under {self.local.paths.root} nor on remote {self.profile.name}",
                                hint=f"check the id and --root; the remote copy would be {self.remote.label}")
        d = compute_diff(self.dataset_id, self.local_state, self.remote_state, self.opts)
        d.from_checkpoint = self.checkpoint_used
        return d

    def audit(self, action: str, state: str, d: Diff) -> Audit:
        """An audit of what was found so far (NO-OP, DRY-RUN and DIFF-ONLY stop here)."""
        a = Audit(action, state, self.dataset_id, self.profile.name, self.opts, d)
        a.events_local, a.events_remote = d.events.get("local", 0), d.events.get("remote", 0)
        return self.finish(a)

    def finish(self, a: Audit) -> Audit:
        a.ssh_calls, a.inventory_bytes = self.remote.remote_calls()
        a.seconds = time.monotonic() - self.t0
        return a

    # -- steps 2-5: one transfer routine for both directions ---------------------------------
    def transfer(self, action: str, d: Diff, progress: Callable[[int, int], None] | None = None) -> Audit:
        """Move what `d` says the destination lacks (pull: remote -> local; push: local -> remote)."""
        pull = action == "pull"
        src, dst = (self.remote, self.local) if pull else (self.local, self.remote)
        S, D = (self.remote_state, self.local_state) if pull else (self.local_state, self.remote_state)
        opts = self.opts
        audit = Audit(action, "TRANSFERRED", self.dataset_id, self.profile.name, opts, d)
        # small files first: snapshots tell which data files they need
        first = make_plan(S, D, opts, {}, src_is_local=not pull)
        small = [f"_snapshots/{n}" for n, _ in first.snapshots] + [r for r, _ in first.aux]
        audit.wire_bytes += self._copy(src, dst, small)
        snaps = self._snapshot_manifests(snapshots_to_send(S, D, opts), src, dst, S)
        plan = make_plan(S, D, opts, snaps, src_is_local=not pull)
        copied = {e.file for e in plan.copy}
        audit.wire_bytes += self._copy(src, dst, [e.file for e in plan.copy], progress)
        audit.files_transferred = len(plan.copy) + len(small)
        audit.new_file_bytes = sum(e.bytes for e in plan.copy)
        raws = self._event_raws(src, S, plan)
        sync_event = ev.make_event(action, self.dataset_id, ev.Actor.current("usr"),
                                   args={"sync": True, "remote": self.profile.name, "verify": opts.verify})
        appended = 0
        for attempt in range(1, MAX_COMMIT_ATTEMPTS + 1):
            man_bytes = plan.target.to_json() if plan.write_manifest else None
            sync_event["metrics"] = {"files": audit.files_transferred, "bytes": audit.new_file_bytes,
                                     "rows_added": plan.target.rows - (D.manifest.rows if D.manifest else 0)}
            sync_event["fingerprint"] = {"rows": plan.target.rows, "manifest": sha256_bytes(man_bytes) if man_bytes else D.manifest_sha}
            payload = b"".join(raws[k] for k in plan.events) + ev.encode_event(sync_event)
            req = CommitRequest(plan.expect_manifest, plan.expect_meta, man_bytes, plan.meta, plan.checks, plan.snapshots, plan.aux,
                                payload, D.events.mark.size, LOCK_WAIT_S)
            if self.hooks.before_commit is not None:
                self.hooks.before_commit(attempt)
            res = dst.commit(req)
            if res.status == "ok":
                appended = res.events_appended
                break
            audit.retries += 1
            if res.status == "moved":  # a writer there committed meanwhile: merge with what is there now
                cur = Manifest.from_json(res.manifest, where=f"{dst.label}/manifest.json") if res.manifest else None
                D = replace(D, manifest=cur, manifest_raw=res.manifest, meta=res.meta)
                plan = make_plan(S, D, opts, snaps, src_is_local=not pull)
                extra = [e.file for e in plan.copy if e.file not in copied]
                audit.wire_bytes += self._copy(src, dst, extra)
                copied |= set(extra)
                continue
            if res.status == "verify_failed":
                self._check_verify_failure(res.bad, res.missing, src, dst, S, plan)
                audit.wire_bytes += self._copy(src, dst, list(res.missing))  # removed there meanwhile: copy again
                continue
            if res.status == "lock_timeout":
                raise LockTimeoutError(f"the dataset lock on {self._where(dst)} stayed busy for {LOCK_WAIT_S}s ({res.holder or 'holder unknown'})",
                                       hint="wait for the writer there (e.g. a running `dense run`) to finish, then rerun")
            raise RemoteError(f"the commit on {self._where(dst)} failed ({res.detail})",
                              hint=f"run `usr remotes doctor --remote {self.profile.name}`, then rerun the same command")
        else:
            raise ConflictError(f"{self._where(dst)} kept changing during {action} ({MAX_COMMIT_ATTEMPTS} commit attempts: its manifest "
                                "moved or files it needs vanished each time); nothing was committed",
                                hint="rerun when the writer there (e.g. `dense run` or `usr compact`) is idle")
        if not pull:  # the push event goes to both logs
            ev.append_event(self.local.paths.events_log, sync_event)
        have = {e.file for e in D.manifest.all_files()} if D.manifest else set()
        audit.primary_files = len({e.file for e in plan.target.parts} - have)
        audit.rows_added = plan.target.rows - (D.manifest.rows if D.manifest else 0)
        audit.derived_files = len({e.file for e in plan.target.all_files()} - have) - audit.primary_files
        audit.snapshots_moved = [n for n, _ in plan.snapshots]
        audit.aux_moved = [r for r, _ in plan.aux]
        audit.events_merged = max(0, appended - 1)
        if pull:
            audit.events_local, audit.events_remote = D.events.count + appended, S.events.count
        else:
            audit.events_local, audit.events_remote = S.events.count + 1, D.events.count + appended
        if opts.verify_sidecars:
            self._verify_after(action, dst, S, plan, audit)
        return self.finish(audit)

    # -- helpers ------------------------------------------------------------------------------
    def _where(self, side: Side) -> str:
        return "this machine" if side is self.local else f"remote {self.profile.name}"

    def _copy(self, src: Side, dst: Side, files: Sequence[str], progress: Callable[[int, int], None] | None = None) -> int:
        if not files:
            return 0
        dst.prepare_staging()
        return rsync_files(list(files), src.endpoint(), dst.endpoint(), dst_sub=STAGING_DIR, bwlimit=self.opts.bwlimit,
                           progress=progress, on_failure=self._rsync_failure)

    def _rsync_failure(self, rc: int, err: str) -> Exception:
        transport = getattr(self.remote, "transport", None)
        if transport is not None:
            return transport.rsync_failure(rc, err)
        return RemoteError(f"copying between this machine and {self.remote.label} failed (rsync exit {rc}: {err.strip()[-300:]})",
                           hint="both copies are still valid; check the mount, then rerun the same command")

    def _snapshot_manifests(self, names: list[str], src: Side, dst: Side, S: SideState) -> dict[str, Manifest]:
        out = {}
        for n in names:
            path = src.paths.snapshots_dir / n if isinstance(src, LocalSide) else \
                dst.paths.dir / STAGING_DIR / "_snapshots" / n if isinstance(dst, LocalSide) else None
            if path is None:
                raise RemoteError("a snapshot can only move between this machine and a remote")
            try:
                data = path.read_bytes()
            except OSError:
                raise IntegrityError(f"snapshot {n} did not arrive", hint="rerun the same command") from None
            if sha256_bytes(data) != S.snapshots[n]:
                if not isinstance(src, LocalSide):
                    path.unlink(missing_ok=True)
                raise IntegrityError(f"snapshot {n} changed or was damaged in transit", hint="rerun the same command")
            man = Manifest.from_json(data, where=f"snapshot {n}")
            for e in man.all_files():
                check_relpath(e.file, f"snapshot {n}")
            out[n] = man
        return out

    def _event_raws(self, src: Side, S: SideState, plan: Plan) -> dict[str, bytes]:
        lines = S.events.lines
        raws: dict[str, bytes | None] = {k: S.events.raw(lines[k]) for k in plan.events}
        todo = [lines[k] for k, v in raws.items() if v is None]
        if todo:
            try:
                raws.update(src.event_lines(todo))
            except MarkMismatch:
                checkpoint.forget(self.local.paths.dir, self.profile.name)
                raise IntegrityError(f"the event log on {self._where(src)} changed since the last sync",
                                     hint="rerun the same command (it reads both logs in full once)") from None
        return {k: v for k, v in raws.items() if v is not None}

    def _check_verify_failure(self, bad: Sequence[str], missing: Sequence[str], src: Side, dst: Side, S: SideState, plan: Plan) -> None:
        if bad:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise IntegrityError(f"{bad[0]}{more} copied from {self._where(src)} does not match its manifest; the copy was removed",
                                 hint="rerun the same command; if it fails again the source file is corrupt (run `usr validate` there)")
        gone = [f for f in missing if not (f in S.files or f in S.aux or f.startswith("_snapshots/"))]
        if gone:
            raise IntegrityError(f"{gone[0]} is named by the new manifest but is missing on both sides",
                                 hint=f"run `usr validate` on {self._where(src)}")

    def _verify_after(self, action: str, dst: Side, S: SideState, plan: Plan, audit: Audit) -> None:
        """Read the destination again (from the checkpoint: only what was appended) and check everything arrived."""
        assert self.base is not None
        pull = action == "pull"
        base = self.base
        dmark, dpend = (base.local, base.local_pending) if pull else (base.remote, base.remote_pending)
        smark, spend = (base.remote, base.remote_pending) if pull else (base.local, base.local_pending)
        after = dst.inventory(dmark, dpend)
        src_view = rebased(smark, spend, S.events.count)  # what the source had that the destination lacked
        missing_ev = [] if self.opts.primary_only else [k for k in src_view.lines if k not in after.events.lines]
        missing_snaps = [n for n, h in plan.snapshots if after.snapshots.get(n) != h]
        bad_aux = [r for r, h in plan.aux if after.aux.get(r, (0, 0, ""))[2] != h]
        if missing_ev or missing_snaps or bad_aux or after.manifest is None:
            raise IntegrityError(f"after {action} {self._where(dst)} still lacks {len(missing_ev)} event(s), {len(missing_snaps)} snapshot(s), "
                                 f"{len(bad_aux)} auxiliary file(s)", hint="rerun the same command")
        if not after.events.reset:  # both views are relative to the same checkpoint: move it forward
            lv, rv = (after.events, src_view) if pull else (src_view, after.events)
            checkpoint.save(self.local.paths.dir, self.profile.name, checkpoint.between(self.key, lv, rv))
        if pull:
            audit.events_local = after.events.count
        else:
            audit.events_remote = after.events.count


# ---------------------------------------------------------------------------------------------
# the operations the CLI calls
# ---------------------------------------------------------------------------------------------
def diff(root: Path, dataset_id: str, profile: RemoteProfile, opts: SyncOptions, *, remote: Side | None = None) -> tuple[Diff, Session]:
    """Compare the two copies (nothing changes except this remote's checkpoint)."""
    s = Session(root, dataset_id, profile, opts, remote=remote)
    return s.inspect(), s


def _gate(s: Session, d: Diff, action: str, pending: bool, dry_run: bool, confirm: Callable[[Diff], bool] | None) -> Audit | None:
    """Stop before transferring: an audit for NO-OP / DRY-RUN, KeyboardInterrupt if the user declines."""
    hard = [c for c in d.conflicts if not c.startswith("_snapshots/")]
    if hard:
        raise ConflictError(f"{d.dataset}: {hard[0]}", hint="run `usr validate` on both sides; one copy is corrupted or was edited by hand")
    if not pending:
        return s.audit(action, "NO-OP", d)
    if dry_run:
        return s.audit(action, "DRY-RUN", d)
    if confirm is not None and not confirm(d):
        raise KeyboardInterrupt
    return None


def _run(action: str, root: Path, dataset_id: str, profile: RemoteProfile, opts: SyncOptions, dry_run: bool,
         confirm: Callable[[Diff], bool] | None, progress: Callable[[int, int], None] | None, remote: Side | None,
         hooks: SyncHooks | None) -> Audit:
    s = Session(root, dataset_id, profile, opts, remote=remote, hooks=hooks)
    d = s.inspect()
    if action == "pull" and s.remote_state.manifest is None:
        raise NotFoundError(f"dataset {dataset_id} does not exist on remote {profile.name} ({s.remote.label})",
                            hint=f"push it first with `usr push {dataset_id} {profile.name}`, or check base_dir with `usr remotes show {profile.name}`")
    if action == "push":
        if s.local_state.manifest is None:
            raise NotFoundError(f"dataset {dataset_id} does not exist under {s.local.paths.root}",
                                hint=f"pull it first with `usr pull {dataset_id} {profile.name}`, or check --root")
        if s.remote_state.base is None:
            raise RemoteError(f"base_dir {profile.base_dir} does not exist on remote {profile.name}",
                              hint=f"create it there (mkdir -p {profile.base_dir}) or fix it with `usr remotes add {profile.name} --force ...`")
    stop = _gate(s, d, action, d.to_pull if action == "pull" else d.to_push, dry_run, confirm)
    if stop is not None:
        return stop
    return s.transfer(action, d, progress)


def pull(root: Path, dataset_id: str, profile: RemoteProfile, opts: SyncOptions, *, dry_run: bool = False,
         confirm: Callable[[Diff], bool] | None = None, progress: Callable[[int, int], None] | None = None,
         remote: Side | None = None, hooks: SyncHooks | None = None) -> Audit:
    """Bring the remote's new files, snapshots, notes and events here; merge by union."""
    return _run("pull", root, dataset_id, profile, opts, dry_run, confirm, progress, remote, hooks)


def push(root: Path, dataset_id: str, profile: RemoteProfile, opts: SyncOptions, *, dry_run: bool = False,
         confirm: Callable[[Diff], bool] | None = None, progress: Callable[[int, int], None] | None = None,
         remote: Side | None = None, hooks: SyncHooks | None = None) -> Audit:
    """Send local new files, snapshots, notes and events to the remote; merge by union."""
    return _run("push", root, dataset_id, profile, opts, dry_run, confirm, progress, remote, hooks)

