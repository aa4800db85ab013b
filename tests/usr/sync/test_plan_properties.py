"""Property tests for the pure parts of sync: the transfer plan, and event-log checkpoints.

The plan is applied to in-memory side states by `apply` (what a commit does); the checkpoint logic is
driven through random histories of two event logs held as bytes, and every checkpoint-based diff is
compared with a diff of the full logs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnadesign.core.errors import ConflictError, IntegrityError
from dnadesign.usr.manifest import FileEntry, Manifest
from dnadesign.usr.sync import checkpoint
from dnadesign.usr.sync.eventlog import (
    EMPTY_MARK,
    WINDOW,
    EventLine,
    EventView,
    LogMark,
    MarkMismatch,
    build_view,
    event_key,
    rebased,
)
from dnadesign.usr.sync.local_side import prefix_view, read_lines, read_log
from dnadesign.usr.sync.plan import SyncOptions, content_key, make_plan
from dnadesign.usr.sync.state import SideState

DS = "demo/one"


def entry(name: str, variant: int = 0) -> FileEntry:
    h = hashlib.sha256(f"{name}:{variant}".encode()).hexdigest()
    return FileEntry(name, h, 10 + len(name), 100 + len(name))


PARTS = [f"records/part-{i}.parquet" for i in range(8)]
OVERLAYS = [f"_derived/infer/part-{i}.parquet" for i in range(4)]
SNAPS = ["s1.json", "s2.json", "s3.json"]
EVENTS = [(f"e{i:02d}", i % 5 == 0) for i in range(16)]  # (event_id, is a sync event)


def event_line(key: str, sync: bool, pad: int = 0) -> bytes:
    obj = {"event_id": key, "action": "pull" if sync else "append", "args": {"sync": True} if sync else {}, "pad": "x" * pad}
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def view_of_keys(keys: list[tuple[str, bool]]) -> EventView:
    data = b"".join(event_line(k, s) for k, s in keys)
    return build_view(b"", b"", data, EMPTY_MARK, ())


@st.composite
def side(draw, where: str) -> SideState:
    parts = draw(st.sets(st.sampled_from(PARTS)))
    overlays = draw(st.sets(st.sampled_from(OVERLAYS)))
    man = None
    if parts or overlays or draw(st.booleans()):
        man = Manifest(DS, "2026-01-01T00:00:00Z", parts=[entry(p) for p in sorted(parts)],
                       overlays={"infer": [entry(o) for o in sorted(overlays)]} if overlays else {},
                       columns={"infer__score": "double"} if overlays else {}, bio_types=["dna"])
    snaps = draw(st.sets(st.sampled_from(SNAPS)))
    extra = draw(st.sets(st.sampled_from(PARTS + OVERLAYS)))  # leftovers of interrupted runs
    files = {f: entry(f).bytes for f in extra}
    if man is not None:
        files.update({e.file: e.bytes for e in man.all_files()})
    keys = draw(st.lists(st.sampled_from(EVENTS), unique_by=lambda x: x[0], max_size=10))
    meta_lines = draw(st.lists(st.sampled_from(["# demo", "- a", "- b", "- c"]), max_size=4))
    aux = draw(st.dictionaries(st.sampled_from(["_artifacts/a.txt", "_artifacts/b.txt"]),
                               st.tuples(st.just(5), st.integers(1, 3), st.sampled_from(["1" * 64, "2" * 64]))))
    raw = man.to_json() if man is not None else None
    return SideState(where, exists=True, dir=f"/{where}", base="/", manifest=man, manifest_raw=raw,
                     meta=("\n".join(meta_lines) + "\n").encode() if meta_lines else None, events=view_of_keys(keys),
                     snapshots={s: hashlib.sha256(s.encode()).hexdigest() for s in snaps}, files=files, aux=aux)


def snapshot_manifests() -> dict[str, Manifest]:
    """s1 names a part no manifest may name any more (compacted away); the others name regular parts."""
    return {"s1.json": Manifest(DS, "2026", parts=[entry("records/part-old.parquet")]),
            "s2.json": Manifest(DS, "2026", parts=[entry(PARTS[0])]), "s3.json": Manifest(DS, "2026")}


def apply(src: SideState, dst: SideState, plan) -> SideState:
    """What the destination holds after the commit of `plan` (in memory)."""
    man = plan.target if plan.write_manifest else dst.manifest
    files = dict(dst.files)
    files.update({c.file: int(entry(c.file).bytes) for c in plan.checks})
    snaps = dict(dst.snapshots)
    for n, h in plan.snapshots:
        snaps.setdefault(n, h)
    aux = dict(dst.aux)
    aux.update({r: src.aux[r] for r, _ in plan.aux})
    keys = [(k, ln.sync) for k, ln in sorted(dst.events.lines.items(), key=lambda kv: kv[1].start)]
    keys += [(k, src.events.lines[k].sync) for k in plan.events]
    return dataclasses.replace(dst, manifest=man, manifest_raw=man.to_json() if man else None, files=files, snapshots=snaps, aux=aux,
                               meta=plan.meta if plan.meta is not None else dst.meta, events=view_of_keys(keys))


def plan_or_conflict(src: SideState, dst: SideState, opts: SyncOptions, src_is_local: bool):
    try:
        return make_plan(src, dst, opts, snapshot_manifests(), src_is_local=src_is_local)
    except ConflictError:
        return None


@settings(max_examples=300, deadline=None)
@given(side("local"), side("remote"), st.booleans())
def test_pull_then_push_converges_loses_nothing_and_is_idempotent(local, remote, primary_only):
    opts = SyncOptions(primary_only=primary_only)
    if remote.manifest is None or local.manifest is None:
        return
    p1 = plan_or_conflict(remote, local, opts, src_is_local=False)
    if p1 is None:
        return
    # only what the destination lacks moves
    have = {e.file for e in local.manifest.all_files()}
    assert not {e.file for e in p1.copy} & have
    assert {e.file for e in p1.copy} <= set(remote.files)
    assert not set(p1.events) & set(local.events.lines)
    assert not {n for n, _ in p1.snapshots} & set(local.snapshots)
    local2 = apply(remote, local, p1)
    assert local2.manifest is not None
    # nothing either side had is lost
    assert have | {e.file for e in remote.manifest.parts} <= {e.file for e in local2.manifest.all_files()}
    if primary_only:
        assert not p1.events and p1.meta is None and not p1.snapshots and not p1.aux
        assert local2.manifest.overlays == local.manifest.overlays
        return
    assert {e.file for e in remote.manifest.all_files()} <= {e.file for e in local2.manifest.all_files()}
    assert set(remote.events.lines) <= set(local2.events.lines)
    # every file the new manifest names is on disk at the destination after the commit
    assert {e.file for e in local2.manifest.all_files()} <= set(local2.files)
    p2 = make_plan(local2, remote, opts, snapshot_manifests(), src_is_local=True)
    remote2 = apply(local2, remote, p2)
    assert content_key(local2.manifest) == content_key(remote2.manifest)
    assert set(local2.events.lines) == set(remote2.events.lines)
    assert local2.meta == remote2.meta
    assert set(local2.snapshots) == set(remote2.snapshots)
    assert {r: v[2] for r, v in local2.aux.items()} == {r: v[2] for r, v in remote2.aux.items()}  # same content (mtimes may differ)
    # converged: nothing left to move either way
    assert make_plan(remote2, local2, opts, snapshot_manifests(), src_is_local=False).empty
    assert make_plan(local2, remote2, opts, snapshot_manifests(), src_is_local=True).empty


@settings(max_examples=200, deadline=None)
@given(side("x"))
def test_a_side_against_itself_plans_nothing(s):
    if s.manifest is None:
        return
    assert make_plan(s, s, SyncOptions(), snapshot_manifests()).empty


@settings(max_examples=200, deadline=None)
@given(side("local"), side("remote"), st.sampled_from(PARTS))
def test_same_name_different_content_is_a_conflict(local, remote, name):
    if local.manifest is None or remote.manifest is None:
        return
    local.manifest.parts = [e for e in local.manifest.parts if e.file != name] + [entry(name, 0)]
    remote.manifest.parts = [e for e in remote.manifest.parts if e.file != name] + [entry(name, 1)]
    remote.files[name] = entry(name, 1).bytes
    with pytest.raises(ConflictError):
        make_plan(remote, local, SyncOptions(), snapshot_manifests(), src_is_local=False)


@settings(max_examples=100, deadline=None)
@given(side("local"), side("remote"))
def test_a_source_missing_a_file_its_manifest_names_is_an_integrity_error(local, remote):
    if remote.manifest is None or local.manifest is None or not remote.manifest.parts:
        return
    gone = remote.manifest.parts[0].file
    if gone in {e.file for e in local.manifest.all_files()}:
        return
    remote.files.pop(gone, None)
    try:
        make_plan(remote, local, SyncOptions(), snapshot_manifests(), src_is_local=False)
    except ConflictError:
        return
    except IntegrityError as exc:
        assert gone in exc.message
        return
    raise AssertionError("a manifest naming a missing file must not be planned")


# -- event-log checkpoints --------------------------------------------------------------------------
def read(data: bytes, mark: LogMark, pending) -> EventView:
    """What `local_side.read_log` does, on bytes."""
    if 0 < mark.size <= len(data):
        head = data[: min(WINDOW, mark.size)]
        lead = data[max(0, mark.size - WINDOW): mark.size]
        try:
            return build_view(head, lead, data[mark.size:], mark, pending)
        except MarkMismatch:
            pass
    v = build_view(b"", b"", data, EMPTY_MARK, ())
    v.reset = mark.size > 0
    return v


def keys_of(data: bytes) -> set[str]:
    return set(build_view(b"", b"", data, EMPTY_MARK, ()).lines)


class Pair:
    """Two logs (real files) and the checkpoint the engine keeps for them, driven like `engine.Session`."""

    def __init__(self, d: Path) -> None:
        self.path = {"L": d / "L.log", "R": d / "R.log"}
        for p in self.path.values():
            p.write_bytes(b"")
        self.cp: checkpoint.Checkpoint | None = None
        self.n = 0

    def data(self, side: str) -> bytes:
        return self.path[side].read_bytes()

    def append(self, side: str, data: bytes) -> None:
        with open(self.path[side], "ab") as fh:
            fh.write(data)

    def write(self, side: str, sync: bool = False, pad: int = 300) -> str:
        self.n += 1
        key = f"{side}{self.n:04d}"
        self.append(side, event_line(key, sync, pad))
        return key

    def inspect(self):
        cp = self.cp
        lv = read_log(self.path["L"], cp.local if cp else EMPTY_MARK, cp.local_pending if cp else [])
        rmark, rpend = (cp.remote, cp.remote_pending) if cp and not lv.reset else (EMPTY_MARK, [])
        rv = read_log(self.path["R"], rmark, rpend, lv if rmark.size == 0 and lv.from_start else None)
        if rv.prefix_of_other is not None:
            rv = prefix_view(self.path["L"], lv, *rv.prefix_of_other) or read_log(self.path["R"], EMPTY_MARK, [])
        if rv.reset and not lv.from_start:
            lv = read_log(self.path["L"], EMPTY_MARK, [])
        self.cp = checkpoint.between("k", lv, rv)
        # the checkpoint-based diff equals the diff of the full logs
        kl, kr = keys_of(self.data("L")), keys_of(self.data("R"))
        assert set(lv.lines) - set(rv.lines) == kl - kr
        assert set(rv.lines) - set(lv.lines) == kr - kl
        assert lv.count == len(kl) and rv.count == len(kr)
        assert lv.mark == read(self.data("L"), EMPTY_MARK, []).mark  # the marks are where a full read ends
        assert rv.mark == read(self.data("R"), EMPTY_MARK, []).mark
        return lv, rv

    def transfer(self, direction: str) -> None:
        lv, rv = self.inspect()
        assert self.cp is not None
        base = self.cp
        src, dst = ("R", "L") if direction == "pull" else ("L", "R")
        sv, dv = (rv, lv) if direction == "pull" else (lv, rv)
        todo = [ln for ln in sorted(sv.lines.values(), key=lambda ln: ln.start) if ln.key not in dv.lines]
        raws = read_lines(self.path[src], todo)  # what Side.event_lines returns
        payload = [raws[ln.key] for ln in todo] + [event_line(f"{direction}{self.n}", True)]
        self.n += 1
        # the commit: skip lines appended after the inventory (none here), append
        seen = {event_key(r[:-1]) for r in self.data(dst)[dv.mark.size:].splitlines(keepends=True) if r.strip()}
        self.append(dst, b"".join(r for r in payload if event_key(r[:-1]) not in seen))
        if direction == "push":
            self.append("L", payload[-1])
        dmark, dpend = (base.local, base.local_pending) if direction == "pull" else (base.remote, base.remote_pending)
        smark, spend = (base.remote, base.remote_pending) if direction == "pull" else (base.local, base.local_pending)
        after = read_log(self.path[dst], dmark, dpend)
        src_view = rebased(smark, spend, sv.count)
        assert set(src_view.lines) <= set(after.lines)  # every source event arrived
        if not after.reset:
            lv2, rv2 = (after, src_view) if direction == "pull" else (src_view, after)
            self.cp = checkpoint.between("k", lv2, rv2)

    def replace(self, side: str) -> None:
        lines = self.data(side).splitlines(keepends=True)
        self.path[side].write_bytes(b"".join(lines[1:] + lines[:1]))

    def copy(self, src: str, dst: str) -> None:
        """The other log becomes a byte copy of this one (as after a push to an empty copy)."""
        self.path[dst].write_bytes(self.data(src))


OPS = st.lists(st.sampled_from(["L", "R", "Lsync", "diff", "pull", "push", "replaceL", "replaceR", "torn", "forget", "copyLR",
                                "copyRL"]), max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS)
def test_checkpoint_diffs_equal_full_diffs_and_logs_never_duplicate(ops):
    with tempfile.TemporaryDirectory() as tmp:
        pair = Pair(Path(tmp))
        pair.write("L")
        pair.write("R")
        for op in ops:
            if op in ("L", "R"):
                pair.write(op)
            elif op == "Lsync":
                pair.write("L", sync=True)
            elif op == "diff":
                pair.inspect()
            elif op in ("pull", "push"):
                pair.transfer(op)
            elif op.startswith("replace"):
                pair.replace(op[-1])
            elif op == "forget":
                pair.cp = None  # no checkpoint: the logs' shared prefix is found by hashing, or both are read
            elif op.startswith("copy"):
                pair.copy(op[-2], op[-1])
            elif op == "torn":
                pair.n += 1
                pair.append("R", b'{"event_id":"half%d' % pair.n)  # a writer mid-line: not an event yet
                pair.inspect()
                pair.append("R", b'-done"}\n')
            for name in ("L", "R"):
                ids = [json.loads(x)["event_id"] for x in pair.data(name).splitlines() if x.strip()]
                assert len(ids) == len(set(ids)), f"{name} holds an event twice"
        pair.transfer("pull")
        pair.transfer("push")
        assert keys_of(pair.data("L")) >= keys_of(pair.data("R"))
        lv, rv = pair.inspect()
        assert not {k for k, ln in lv.lines.items() if k not in rv.lines and not ln.sync}


def test_without_a_checkpoint_the_shared_prefix_is_not_read_twice(tmp_path):
    """No checkpoint: a remote log that extends ours (or that ours extends) is matched by hash, not re-read."""
    pair = Pair(tmp_path)
    for _ in range(40):
        pair.write("L")
    pair.copy("L", "R")
    pair.write("R")
    lv = read_log(pair.path["L"], EMPTY_MARK, [])
    rv = read_log(pair.path["R"], EMPTY_MARK, [], lv)
    assert rv.read_bytes == len(pair.data("R")) - len(pair.data("L")) and rv.count == 41 and rv.mark == read(pair.data("R"), EMPTY_MARK, []).mark
    pair.write("L")
    pair.write("L")
    lv = read_log(pair.path["L"], EMPTY_MARK, [])
    pair.copy("L", "R")
    pair.write("L")
    lv = read_log(pair.path["L"], EMPTY_MARK, [])
    short = read_log(pair.path["R"], EMPTY_MARK, [], lv)
    assert short.prefix_of_other is not None and not short.lines
    rv = prefix_view(pair.path["L"], lv, *short.prefix_of_other)
    assert rv is not None and rv.count == lv.count - 1 and rv.mark == read(pair.data("R"), EMPTY_MARK, []).mark


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 600), min_size=1, max_size=40), st.integers(0, 39))
def test_a_mark_read_from_any_point_equals_a_full_read(pads, cut):
    data = b"".join(event_line(f"e{i}", False, p) for i, p in enumerate(pads))
    lines = data.splitlines(keepends=True)
    prefix = b"".join(lines[: min(cut, len(lines))])
    first = build_view(b"", b"", prefix, EMPTY_MARK, ())
    again = read(data, first.mark, [])
    full = build_view(b"", b"", data, EMPTY_MARK, ())
    assert again.mark == full.mark and again.count == full.count and not again.reset
    assert set(again.lines) == set(full.lines) - set(first.lines)
    assert again.read_bytes <= 2 * WINDOW + len(data) - len(prefix)


def test_pending_lines_are_remembered_without_their_bytes():
    cp = checkpoint.Checkpoint("k", LogMark(10, 1), EMPTY_MARK, [EventLine("a", 0, 10, False, b"x" * 9 + b"\n")], [])
    back = checkpoint.Checkpoint.from_json(cp.to_json())
    assert back.local_pending == [EventLine("a", 0, 10, False)] and back.local_pending[0].raw is None
    with pytest.raises(ValueError):
        checkpoint.Checkpoint.from_json(b'{"format": "usr-sync-checkpoint", "version": 1, "remote_key": "k", "local": [1]}')
