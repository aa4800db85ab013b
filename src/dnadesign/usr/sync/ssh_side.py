"""`SshSide`: a dataset under a remote base_dir, driven by the sh scripts in `scripts.py`.

The transport is injectable (`ssh.Connection` by default; `transport.LocalShell` runs the same
scripts on this machine), so the protocol can be exercised, and faults injected, without an sshd.
An inventory is ONE remote call; a commit is ONE remote call.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...core.errors import RemoteError
from ..manifest import Manifest
from . import scripts
from .eventlog import (
    EMPTY_MARK,
    EventLine,
    EventView,
    LogMark,
    MarkMismatch,
    build_view,
    cut_lines,
    event_key,
    extend_view,
    spans_to_read,
)
from .remotes import RemoteProfile
from .side import CommitRequest, CommitResult, Endpoint
from .state import REMOTE_DIR, SNAPSHOT_FILE, SideState, check_relpath, safe_relpath
from .transport import Transport


class SshSide:
    """The copy of `dataset_id` on an SSH remote."""

    def __init__(self, profile: RemoteProfile, dataset_id: str, transport: Transport | None = None):
        if transport is None:
            from .ssh import Connection

            transport = Connection(profile)
        self.profile = profile
        self.dataset_id = dataset_id
        self.transport = transport
        self.name = profile.name
        self.label = f"{profile.location}/{dataset_id}"
        self._dir: str | None = None
        self._base: str | None = None

    # -- reading ------------------------------------------------------------------------------
    def inventory(self, mark: LogMark, pending: Sequence[EventLine], same_prefix: EventView | None = None) -> SideState:
        """ONE remote call: manifest, meta.md, snapshots, file lists, auxiliary files, and the events after `mark`.

        Without a mark, `same_prefix` (this machine's log read from byte 0) lets the remote send only what
        follows those exact bytes, or only its size and sha256 when its log is shorter.
        """
        prof = self.profile
        tok = scripts.token()
        use_prefix = mark.size == 0 and same_prefix is not None and bool(same_prefix.prefix_sha) and same_prefix.mark.size > 0
        if use_prefix:
            assert same_prefix is not None and same_prefix.prefix_sha is not None
            args = scripts.inventory_args(tok, prof.base_dir, self.dataset_id, same_prefix.mark.size, "-", "-", same_prefix.prefix_sha)
        else:
            args = scripts.inventory_args(tok, prof.base_dir, self.dataset_id, mark.size, mark.head_sha, mark.lead_sha)
        res = self.transport.run_script(scripts.INVENTORY, args)
        sec = scripts.parse_sections(res.stdout, tok)
        st = SideState(prof.name)
        st.tools = set(sec.get("tools", b"").decode().split())
        st.base = sec["base"].decode() if "base" in sec else None
        self._base = st.base
        if "absent" in sec or "dir" not in sec:
            st.events = EventView(reset=mark.size > 0)
            return st
        st.exists = True
        st.dir = sec["dir"].decode()
        if not REMOTE_DIR.match(st.dir) or st.base is None or not st.dir.startswith(st.base.rstrip("/") + "/"):
            raise RemoteError(f"{prof.name}: the dataset directory resolves to {st.dir!r}, outside base_dir {st.base!r}",
                              hint="a symlink may point elsewhere; sync only writes below base_dir, fix the remote layout")
        self._dir = st.dir
        if "manifest" in sec:
            st.manifest_raw = sec["manifest"]
            st.manifest = Manifest.from_json(st.manifest_raw, where=f"{prof.name}:{st.dir}/manifest.json")
            for e in st.manifest.all_files():
                check_relpath(e.file, f"the manifest on {prof.name}")
        if "meta" in sec:
            st.meta = sec["meta"]
        st.events = self._events(sec, mark, pending, same_prefix if use_prefix else None)
        for line in sec.get("snapshots", b"").decode().splitlines():
            h, _, path = line.partition("  ")
            name = path.strip().removeprefix("_snapshots/")
            if SNAPSHOT_FILE.match(name) and len(h) == 64:
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

    def _events(self, sec: dict[str, bytes], mark: LogMark, pending: Sequence[EventLine], same_prefix: EventView | None) -> EventView:
        if "events_whole_sha" in sec:  # shorter than ours: maybe a prefix of it (the engine checks)
            return EventView(prefix_of_other=(int(sec.get("events_size", b"0") or 0), sec["events_whole_sha"].decode()))
        if "events_from" not in sec:  # no log there
            return EventView(reset=mark.size > 0)
        start = int(sec["events_from"] or 0)
        tail = sec.get("events_tail", b"")
        if sec.get("events_mode") == b"prefix":
            if start > 0 and same_prefix is not None and start == same_prefix.mark.size:
                return extend_view(same_prefix, tail)
            return build_view(b"", b"", tail, EMPTY_MARK, ())
        if start > 0 and start == mark.size:
            try:
                return build_view(sec.get("events_head", b""), sec.get("events_lead", b""), tail, mark, pending)
            except MarkMismatch:
                raise RemoteError(f"{self.name}: the event log changed while it was read", hint="rerun the same command") from None
        view = build_view(b"", b"", tail, EMPTY_MARK, ())
        view.reset = mark.size > 0
        return view

    def read_all_events(self, size: int) -> EventView:
        """The remote log's first `size` bytes, read from byte 0 (one remote call)."""
        tok = scripts.token()
        res = self.transport.run_script(scripts.spans_script([(0, size)]), [tok, self.profile.base_dir, self.dataset_id])
        return build_view(b"", b"", scripts.parse_sections(res.stdout, tok).get(f"span 0 {size}", b""), EMPTY_MARK, ())

    def prefix_view(self, base: EventView, size: int, sha: str) -> EventView | None:
        """Only this machine's files can be checked against (the engine asks the local side)."""
        return None

    def event_lines(self, lines: Sequence[EventLine]) -> dict[str, bytes]:
        if not lines:
            return {}
        spans = spans_to_read(lines)
        tok = scripts.token()
        res = self.transport.run_script(scripts.spans_script(spans), [tok, self.profile.base_dir, self.dataset_id])
        sec = scripts.parse_sections(res.stdout, tok)
        chunks = {(s, e): sec.get(f"span {s} {e}", b"") for s, e in spans}
        return cut_lines(lines, chunks)

    # -- transfer and commit -------------------------------------------------------------------
    def endpoint(self) -> Endpoint:
        path = self._dir or (f"{self._base.rstrip('/')}/{self.dataset_id}" if self._base else None)
        if path is None:
            raise RemoteError(f"base_dir {self.profile.base_dir} does not exist on remote {self.name}",
                              hint=f"create it there (mkdir -p {self.profile.base_dir}) or fix the profile with `usr remotes add {self.name} --force ...`")
        if not REMOTE_DIR.match(path):
            raise RemoteError(f"{self.name}: base_dir resolves to {path!r}, which has characters sync will not pass to a shell")
        host, rsh = self.transport.rsync_host()
        self.transport.calls += 1  # each endpoint is handed to one rsync run
        return Endpoint(path, host, rsh)

    def prepare_staging(self) -> None:
        """Nothing to do: rsync creates the remote staging directory (`--rsync-path mkdir -p ...`)."""

    def commit(self, req: CommitRequest) -> CommitResult:
        """ONE remote call: see `scripts.commit_script`; its sections become a CommitResult."""
        keys = [ln for ln in req.events.split(b"\n") if ln.strip()]
        tok = scripts.token()
        res = self.transport.run_script(scripts.commit_script(req, [event_key(k) for k in keys]),
                                        scripts.commit_args(tok, self.profile.base_dir, self.dataset_id, req), check=False)
        sec = scripts.parse_sections(res.stdout, tok)
        status = sec.get("status", b"").decode()
        if status == "ok":
            return CommitResult("ok", events_appended=int(sec.get("events_appended", b"0") or 0))
        if status == "moved":
            return CommitResult("moved", manifest=sec.get("manifest"), meta=sec.get("meta"))
        if status == "verify_failed":
            return CommitResult("verify_failed", missing=tuple(sec.get("missing", b"").decode().split()),
                                bad=tuple(sec.get("bad", b"").decode().split()))
        if status == "lock_timeout":
            return CommitResult("lock_timeout", holder=sec.get("holder", b"").decode(errors="replace").strip())
        detail = sec.get("detail", b"").decode(errors="replace") or res.stderr.strip()[-300:] or f"exit {res.rc}"
        return CommitResult("error", detail=detail)

    def remote_calls(self) -> tuple[int, int]:
        return (self.transport.calls, self.transport.bytes_in)
