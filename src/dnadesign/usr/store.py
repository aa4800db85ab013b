"""The USR dataset store: create, append, overlays, tombstones, snapshots, materialize, compact.

Every mutation follows one protocol, under the dataset lock:
1. write new immutable Parquet files (temp + fsync + rename),
2. atomically replace `manifest.json` to list them (the commit point),
3. append the event line to `.events.log`.
A process killed before step 2 leaves only unreferenced files (removed by `gc`); the dataset
stays valid, with or without the batch, never half of it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from ..core import events as ev
from ..core.atomic import atomic_write_text, atomic_write_with
from ..core.errors import ConflictError, InputError, LockTimeoutError, NotFoundError
from ..core.locks import FileLock, pid_alive
from ..core.timeutil import compact_stamp, utc_now, utc_now_iso
from . import compact as cp
from . import index as idx
from . import parts as pt
from . import query
from .arrowtypes import parse_type, same_type
from .keys import id_keys
from .layout import DERIVED_DIR, RECORDS_DIR, DatasetPaths, resolve_root
from .manifest import FileEntry, Manifest
from .schema import RECORD_FIELDS, RECORD_SCHEMA, check_derived_name, check_namespace

LOCK_TIMEOUT_S = 600.0
STAGING = "staging"  # under _index/: local only, never synced, not seen by gc or validate as data
OWNER = ".owner"
STALE_STAGING_S = 24 * 3600
EXACT_CHECK_ROWS = 256  # overlay writes up to this size confirm every key against the stored ids
AUTO_FOLD_MIN_ROWS = 65_536  # an overlay write folds into the base once this many overlay rows are worth it
FOLD_LOCK = ".fold.lock"  # under _index/ (local): held while an overlay write folds
TOMBSTONE_NS = "usr"
TOMBSTONE_COLUMNS = {"usr__deleted": "bool", "usr__deleted_at": "timestamp[us, tz=UTC]", "usr__deleted_reason": "string"}


@dataclass(frozen=True)
class AppendResult:
    added: int
    skipped: int
    ids: list[str]


@dataclass(frozen=True)
class SnapshotInfo:
    name: str
    created_at: str
    rows: int
    files: int


def _new_file(subdir: str) -> str:
    return pt.new_name(subdir)



class Dataset:
    """One USR dataset under a root. Reads take no lock; writes hold `.usr.lock`."""

    def __init__(self, root: str | Path | None, dataset_id: str, actor: ev.Actor | None = None):
        self.paths = DatasetPaths(resolve_root(root), dataset_id)
        self.actor = actor

    # -- opening ----------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.paths.dataset_id

    @property
    def dir(self) -> Path:
        return self.paths.dir

    @property
    def events_path(self) -> Path:
        return self.paths.events_log

    def exists(self) -> bool:
        return self.paths.manifest.exists()

    @classmethod
    def open(cls, root: str | Path | None, dataset_id: str, actor: ev.Actor | None = None) -> Dataset:
        ds = cls(root, dataset_id, actor)
        ds.paths.require()
        return ds

    @classmethod
    def create(cls, root: str | Path | None, dataset_id: str, *, source: str = "", notes: str = "",
               actor: ev.Actor | None = None, exist_ok: bool = False) -> Dataset:
        """Create an empty dataset (or open it when `exist_ok` and it exists)."""
        ds = cls(root, dataset_id, actor)
        made = _make_dirs(ds.paths.dir)
        try:
            ds._create(dataset_id, source, notes, exist_ok)
        except BaseException:
            if not ds.exists():
                for d in reversed(made):
                    shutil.rmtree(d, ignore_errors=True)
            raise
        return ds

    def _create(self, dataset_id: str, source: str, notes: str, exist_ok: bool) -> None:
        ds = self
        with ds.lock():
            if ds.exists():
                if exist_ok:
                    return
                raise ConflictError(f"dataset {dataset_id} already exists at {ds.dir}",
                                    hint="choose another id, or append to it with `usr import`")
            now = utc_now_iso()
            man = Manifest(dataset=dataset_id, created_at=now)
            if not ds.paths.meta.exists():
                atomic_write_text(ds.paths.meta, f"# {dataset_id}\n\n- created_at: {now}\n- source: {source}\n- notes: {notes}\n\n## Log\n\n")
            digest = man.save(ds.paths.manifest)
            ds._event("init", man, digest, args={"source": source})

    def lock(self, timeout: float | None = LOCK_TIMEOUT_S) -> FileLock:
        """The dataset's write lock (`.usr.lock`); readers never take it."""
        return FileLock(self.paths.lock, timeout=timeout, what=f"dataset {self.id} lock")

    def manifest(self) -> Manifest:
        """The current manifest (read fresh each call)."""
        self.paths.require()
        return Manifest.load(self.paths.manifest)

    def _actor(self, actor: ev.Actor | None) -> ev.Actor:
        if actor is not None:
            return actor
        if self.actor is None:
            self.actor = ev.Actor.current("usr")
        return self.actor

    # -- events and notes -------------------------------------------------------------------
    def _event(self, action: str, man: Manifest, digest: str, *, args: Mapping[str, Any] | None = None,
               metrics: Mapping[str, Any] | None = None, actor: ev.Actor | None = None) -> None:
        event = ev.make_event(action, self.id, self._actor(actor), args=args, metrics=metrics,
                              fingerprint={"rows": man.rows, "manifest": digest})
        ev.append_event(self.paths.events_log, event)

    def log_event(self, action: str, *, args: Mapping[str, Any] | None = None, metrics: Mapping[str, Any] | None = None,
                  job: Mapping[str, Any] | None = None, actor: ev.Actor | None = None) -> dict[str, Any]:
        """Append a custom event (e.g. `densegen_health`) with the current fingerprint; returns it."""
        man = self.manifest()
        event = ev.make_event(action, self.id, self._actor(actor), args=args, metrics=metrics,
                              fingerprint={"rows": man.rows, "manifest": man.digest()}, job=job)
        ev.append_event(self.paths.events_log, event)
        return event

    def add_note(self, text: str) -> None:
        """Append one line to meta.md (the human changelog), under the dataset lock."""
        with self.lock():
            self._note(text)

    def _note(self, text: str) -> None:
        meta = self.paths.meta
        old = meta.read_text() if meta.exists() else f"# {self.id}\n\n## Log\n\n"
        atomic_write_text(meta, old + f"- {utc_now_iso()}: {text}\n")

    # -- writing files ------------------------------------------------------------------------
    def _part_metadata(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        actor = self._actor(None)
        return {"usr:dataset": self.id, "usr:run_id": actor.run_id, "usr:correlation_id": actor.correlation_id, **(extra or {})}

    def _write(self, relpath: str, table: pa.Table, metadata: Mapping[str, str] | None = None) -> pt.Written:
        return pt.write_table(self.dir, relpath, table, self._part_metadata(metadata))

    def _write_part(self, relpath: str, table: pa.Table, metadata: Mapping[str, str] | None = None) -> FileEntry:
        """Write one immutable part file (not yet listed in the manifest); returns its entry."""
        return self._write(relpath, table, metadata).entry

    def _add_run(self, group: str, written: pt.Written) -> None:
        """Index a new part (a cache: if it cannot be written, the next read indexes the part)."""
        with contextlib.suppress(OSError):
            idx.add_run(self.paths.index_dir, group, [(written.run_part, written.index_entries)])

    def _maintain_index(self, man: Manifest, groups: Iterable[str]) -> None:
        """Tier-merge the id index runs of `groups` (a cache: failures here never fail the write)."""
        for group in groups:
            ns = group[3:] if group.startswith("ov.") else None
            entries = man.overlays.get(ns, []) if ns else man.parts
            with contextlib.suppress(OSError):
                idx.maintain(self.paths.index_dir, group, entries)
        with contextlib.suppress(OSError):
            idx.remove_legacy(self.paths.index_dir)

    # -- ids --------------------------------------------------------------------------------
    def _present_mask(self, man: Manifest, ids: Any, *, exact: bool = True) -> np.ndarray:
        """For each id (any order), whether the dataset already has it.

        Candidates come from the id index (48-bit keys); with `exact` they are confirmed against the
        stored ids of their row groups. Without it a foreign id passes as present with probability
        rows / 2^48 (used for bulk overlay writes, where confirming would read every row group).
        """
        arr = _id_array(ids)
        if len(arr) == 0 or not man.parts:
            return np.zeros(len(arr), dtype=bool)
        gi = idx.GroupIndex(self.dir, self.paths.index_dir, idx.BASE_GROUP, man.parts)
        keys, _ = id_keys(arr)
        if exact:
            return idx.contains_exact(self.dir, gi, arr, keys)
        return gi.may_contain(keys)

    def has_ids(self, ids: Iterable[str]) -> set[str]:
        """The subset of `ids` present in the dataset (tombstoned ones included)."""
        ids = list(ids)
        mask = self._present_mask(self.manifest(), ids)
        return {i for i, m in zip(ids, mask, strict=True) if m}

    def locate(self, record_id: str) -> FileEntry | None:
        """The base part holding `record_id` (the first, if a merge left two copies), via the id index."""
        man = self.manifest()
        arr = pa.array([record_id], pa.string())
        gi = idx.GroupIndex(self.dir, self.paths.index_dir, idx.BASE_GROUP, man.parts)
        hits = gi.lookup(id_keys(arr)[0])
        real = idx.confirm(self.dir, man.parts, hits, arr)
        return man.parts[int(hits.pos[real][0])] if real.any() else None

    # -- appends ----------------------------------------------------------------------------
    def append(self, records: pa.Table, *, on_conflict: str = "error", overlays: Mapping[str, pa.Table] | None = None,
               actor: ev.Actor | None = None, event_args: Mapping[str, Any] | None = None, note: str | None = None) -> AppendResult:
        """Append validated records (see `schema.make_records`) in one commit.

        `on_conflict="error"` rejects ids already stored; `"ignore"` skips them. `overlays` maps a
        namespace to a table keyed by `id` whose rows are committed together with the records.
        Cost: O(rows appended x log rows stored), whatever the dataset size.
        """
        if on_conflict not in ("error", "ignore"):
            raise InputError(f"on_conflict must be 'error' or 'ignore', not {on_conflict!r}")
        records = _conform_records(records)
        id_col = records.column("id")
        if records.num_rows and pc.count_distinct(id_col).as_py() != records.num_rows:
            raise InputError("the batch contains duplicate ids", hint="deduplicate the input before appending")
        with self.lock():
            man = self.manifest()
            present = self._present_mask(man, id_col)
            n_present = int(present.sum())
            if n_present and on_conflict == "error":
                first = id_col[int(np.argmax(present))].as_py()
                raise ConflictError(f"{n_present} record(s) already exist in {self.id} (first id {first})",
                                    hint="use --on-conflict ignore to skip existing records")
            new = records.filter(pa.array(~present)) if n_present else records
            if new.num_rows == 0:
                return AppendResult(0, len(present), [])
            new_ids = new.column("id").combine_chunks()
            new, counts = self._fold_overlays(man, new, new_ids, overlays or {})
            written = self._write(_new_file(RECORDS_DIR), new)
            self._add_run(idx.BASE_GROUP, written)
            man.parts.append(written.entry)
            man.bio_types = sorted(set(man.bio_types) | set(new.column("bio_type").unique().to_pylist()))
            digest = man.save(self.paths.manifest)
            if note:
                self._note(note)
            self._event("append", man, digest, args=event_args,
                        metrics={"rows_added": new.num_rows, "rows_skipped": n_present, **{f"overlay_rows_{k}": v for k, v in counts.items()}},
                        actor=actor)
            self._maintain_index(man, [idx.BASE_GROUP])
        return AppendResult(new.num_rows, n_present, new_ids.to_pylist())

    def _fold_overlays(self, man: Manifest, new: pa.Table, new_ids: pa.Array,
                       overlays: Mapping[str, pa.Table]) -> tuple[pa.Table, dict[str, int]]:
        """Derived values written with the records go into the same part, as base columns.

        Reads treat a base value as the oldest layer (any later overlay value wins), which is exactly
        what a value written together with its record is; storing it in the record's part instead of
        a separate overlay part keeps each id stored once and the part count halved.
        """
        counts: dict[str, int] = {}
        for ns, table in overlays.items():
            check_namespace(ns)
            if "id" not in table.column_names:
                raise InputError(f"overlay for {ns} has no id column")
            table = table.filter(pc.is_in(table.column("id").cast(pa.string()), value_set=new_ids.cast(pa.string())))
            if table.num_rows and pc.count_distinct(table.column("id")).as_py() != table.num_rows:
                raise InputError(f"overlay for {ns} has duplicate ids", hint="keep one row per record")
            value_cols = [c for c in table.column_names if c != "id"]
            if not value_cols:
                raise InputError(f"overlay for {ns} has no columns besides id")
            at = pc.index_in(new_ids.cast(pa.string()), value_set=table.column("id").combine_chunks().cast(pa.string()))
            for name in value_cols:
                col = check_derived_name(name, ns)
                if col in new.column_names:
                    raise InputError(f"column {col} is given twice", hint="pass each derived column once")
                arr = _enforce_type(col, table.column(name), man.columns.get(col))
                man.columns.setdefault(col, str(arr.type))
                new = new.append_column(col, arr.combine_chunks().take(at))
            counts[ns] = table.num_rows
        return new, counts

    # -- overlays ---------------------------------------------------------------------------
    def _stage_overlay(self, man: Manifest, namespace: str, table: pa.Table, *, allow_reserved: bool = False,
                       keys_checked: bool = False) -> int:
        """Validate an overlay table against the manifest's column types and write its part (+ index run)."""
        check_namespace(namespace, allow_reserved=allow_reserved)
        if "id" not in table.column_names:
            raise InputError(f"overlay for {namespace} has no id column")
        id_col = table.column("id")
        if not (pa.types.is_string(id_col.type) or pa.types.is_large_string(id_col.type) or pa.types.is_string_view(id_col.type)):
            raise InputError(f"overlay for {namespace}: the id column holds {id_col.type}, not text", hint="ids are 40-character sha1 hex")
        id_col = id_col.cast(pa.string())
        if table.num_rows and pc.count_distinct(id_col).as_py() != table.num_rows:
            raise InputError(f"overlay for {namespace} has duplicate ids", hint="keep one row per record")
        # every key must be a record (exactly for small writes; see _present_mask)
        _, well_formed = id_keys(id_col)
        missing_mask = ~well_formed
        if not keys_checked:
            missing_mask |= ~self._present_mask(man, id_col, exact=table.num_rows <= EXACT_CHECK_ROWS)
        if missing_mask.any():
            first = id_col[int(np.argmax(missing_mask))].as_py()
            raise InputError(f"{int(missing_mask.sum())} key(s) are not records of {self.id} (first: {first})",
                             hint="attach only to existing records, or pass --allow-missing to drop them")
        arrays, names = [id_col], ["id"]
        for name in table.column_names:
            if name == "id":
                continue
            col = check_derived_name(name, namespace)
            arr = table.column(name)
            recorded = man.columns.get(col)
            arr = _enforce_type(col, arr, recorded)
            man.columns.setdefault(col, str(arr.type))
            arrays.append(arr)
            names.append(col)
        if len(names) == 1:
            raise InputError(f"overlay for {namespace} has no columns besides id")
        out = pa.table(arrays, names=names)
        written = self._write(_new_file(f"{DERIVED_DIR}/{namespace}"), out, {"usr:namespace": namespace})
        self._add_run(idx.overlay_group(namespace), written)
        man.overlays.setdefault(namespace, []).append(written.entry)
        return out.num_rows

    def write_overlay(self, namespace: str, table: pa.Table, *, allow_missing: bool = False, actor: ev.Actor | None = None,
                      action: str = "attach", event_args: Mapping[str, Any] | None = None, note: str | None = None,
                      fold: bool = True) -> dict[str, int]:
        """Write one overlay part keyed by `id`; newest value wins per id and column on read.

        Returns `{"rows": attached, "dropped": keys that are not records, "folded_rows": base rows
        rewritten}`. Checking the keys costs O(rows x log dataset rows) through the id index, not a
        read of the dataset. After the commit, with `fold`, base parts that now carry many overlay
        rows get them folded in (`fold_overlays`: bounded, amortised, a separate commit; if another
        rewrite wins the race the overlay stays as written and nothing is lost).
        """
        with self.lock():
            man = self.manifest()
            dropped = 0
            if allow_missing and table.num_rows:
                id_col = table.column("id")
                _, well_formed = id_keys(id_col)
                mask = self._present_mask(man, id_col, exact=table.num_rows <= EXACT_CHECK_ROWS) & well_formed
                dropped = int((~mask).sum())
                table = table.filter(pa.array(mask))
            if table.num_rows == 0:
                return {"rows": 0, "dropped": dropped, "folded_rows": 0}
            rows = self._stage_overlay(man, namespace, table, allow_reserved=(namespace == TOMBSTONE_NS and action in ("delete", "restore")),
                                       keys_checked=allow_missing)
            digest = man.save(self.paths.manifest)
            if note:
                self._note(note)
            self._event(action, man, digest, args={"namespace": namespace, **(event_args or {})},
                        metrics={"rows": rows, "dropped": dropped}, actor=actor)
            self._maintain_index(man, [idx.overlay_group(namespace)])
        folded = 0
        if fold:  # one fold at a time: concurrent overlay writers leave it to the one folding already
            with contextlib.suppress(ConflictError, LockTimeoutError), \
                    FileLock(self.paths.index_dir / FOLD_LOCK, timeout=0, what=f"dataset {self.id} fold"):
                folded = self.fold_overlays(actor=actor)["rows_rewritten"]
        return {"rows": rows, "dropped": dropped, "folded_rows": folded}

    # -- tombstones -------------------------------------------------------------------------
    def delete(self, ids: Iterable[str], *, reason: str = "", allow_missing: bool = False, actor: ev.Actor | None = None) -> int:
        """Hide records (tombstones in the `usr` overlay); data stays and `restore` brings them back."""
        return self._tombstone(list(ids), True, reason, allow_missing, actor)

    def restore(self, ids: Iterable[str], *, allow_missing: bool = False, actor: ev.Actor | None = None) -> int:
        """Un-hide tombstoned records; returns how many were written."""
        return self._tombstone(list(ids), False, "", allow_missing, actor)

    def _tombstone(self, ids: list[str], deleted: bool, reason: str, allow_missing: bool, actor: ev.Actor | None) -> int:
        ids = list(dict.fromkeys(ids))
        table = pa.table({
            "id": pa.array(ids, pa.string()),
            "usr__deleted": pa.array([deleted] * len(ids), pa.bool_()),
            "usr__deleted_at": pa.array([utc_now()] * len(ids), pa.timestamp("us", tz="UTC")),
            "usr__deleted_reason": pa.array([reason] * len(ids), pa.string()),
        })
        action = "delete" if deleted else "restore"
        res = self.write_overlay(TOMBSTONE_NS, table, allow_missing=allow_missing, actor=actor, action=action,
                                 event_args={"kind": "records", "reason": reason}, note=f"{action} {len(ids)} record(s)")
        return res["rows"]

    # -- snapshots --------------------------------------------------------------------------
    def snapshot(self, name: str | None = None, *, actor: ev.Actor | None = None) -> SnapshotInfo:
        """Save the current manifest under `_snapshots/` (no data is copied)."""
        name = name or f"snap-{compact_stamp()}"
        check_snapshot_name(name)
        with self.lock():
            man = self.manifest()
            path = self.paths.snapshots_dir / f"{name}.json"
            if path.exists():
                raise ConflictError(f"snapshot {name} already exists in {self.id}", hint="choose another --name")
            atomic_write_with(path, lambda p: p.write_bytes(man.to_json()))
            self._note(f"snapshot {name}")
            self._event("snapshot", man, man.digest(), args={"op": "create", "name": name}, actor=actor)
        return SnapshotInfo(name, utc_now_iso(), man.rows, len(man.all_files()))

    def snapshots(self) -> list[SnapshotInfo]:
        """Saved snapshots, by name."""
        out = []
        for p in sorted(self.paths.snapshots_dir.glob("*.json")):
            man = Manifest.load(p)
            out.append(SnapshotInfo(p.stem, man.updated_at, man.rows, len(man.all_files())))
        return out

    def restore_snapshot(self, name: str, *, actor: ev.Actor | None = None) -> Manifest:
        """Make a snapshot the current state again (files it names must still exist)."""
        check_snapshot_name(name)
        path = self.paths.snapshots_dir / f"{name}.json"
        if not path.exists():
            raise NotFoundError(f"snapshot {name} not found in {self.id}", hint="list them with `usr snapshot list`")
        with self.lock():
            snap = Manifest.load(path)
            missing = [e.file for e in snap.all_files() if not self.paths.file(e.file).exists()]
            if missing:
                raise NotFoundError(f"snapshot {name} names {len(missing)} missing file(s), e.g. {missing[0]}")
            digest = snap.save(self.paths.manifest)
            self._note(f"restore snapshot {name}")
            self._event("restore", snap, digest, args={"kind": "snapshot", "name": name}, actor=actor)
        return snap

    # -- maintenance ------------------------------------------------------------------------
    def materialize(self, namespaces: list[str] | None = None, *, actor: ev.Actor | None = None) -> dict[str, Any]:
        """Fold overlays into new base parts, streaming (tombstones stay an overlay); old files remain for snapshots."""
        with self.lock():
            man = self.manifest()
            chosen = [ns for ns in (namespaces or man.namespaces()) if ns != TOMBSTONE_NS]
            unknown = [ns for ns in chosen if ns not in man.derived_namespaces()]
            if unknown:
                raise NotFoundError(f"{self.id} has no overlay namespace {unknown[0]}", hint="see `usr info` for its namespaces")
            chosen = [ns for ns in chosen if ns in man.overlays]  # the others are already in the base
            if not chosen:
                return {"namespaces": [], "rows": man.rows}
            res = cp.rewrite(self.paths, man, metadata=self._part_metadata(), fold=chosen, every_part=True)
            cp.save_index(self.paths, res)
            new = res.manifest
            digest = new.save(self.paths.manifest)
            self._note(f"materialize {','.join(chosen)}")
            self._event("materialize", new, digest, args={"namespaces": chosen}, metrics={"rows": new.rows}, actor=actor)
            self._maintain_index(new, [idx.BASE_GROUP, *(idx.overlay_group(ns) for ns in man.namespaces())])
        return {"namespaces": chosen, "rows": new.rows}

    def compact(self, *, target_rows: int = cp.TARGET_ROWS, actor: ev.Actor | None = None) -> dict[str, int]:
        """Tiered, streaming compaction: merge small parts (folding their overlay values into them),
        leave big ones; then remove unreferenced files, stale index runs and leftover temp files.

        The new parts are written without the lock, into `_index/staging/` (invisible to readers,
        `gc` and sync); the lock is held only to commit: writers appending meanwhile wait seconds,
        not the length of the rewrite, and what they added stays (see `compact.rebase`).
        """
        return self._rewrite_and_commit(actor, gc=True, target_rows=target_rows)

    def fold_overlays(self, *, min_rows: int = AUTO_FOLD_MIN_ROWS, actor: ev.Actor | None = None) -> dict[str, int]:
        """Fold overlay values into the base parts that carry many of them (at least
        `compact.FOLD_FRACTION` of their rows), once those parts hold `min_rows` overlay rows.

        This is what `write_overlay` runs after its commit, so a dataset as users hold it stores
        each id about once (an overlay row repeats its 40-character id and its index entry). The
        same protocol as `compact` (written aside, committed under the lock, rebased on what others
        added meanwhile); small parts are not merged and files other than the retired ones stay.
        Returns the rewrite's figures (`parts_rewritten` 0 when nothing was worth folding).
        """
        man = self.manifest()
        if not man.parts or sum(e.rows for es in man.overlays.values() for e in es) < min_rows:
            return {"parts_rewritten": 0, "rows_rewritten": 0, "overlay_parts_rewritten": 0}
        return self._rewrite_and_commit(actor, gc=False, merge_small=False, min_pending=min_rows)

    def _rewrite_and_commit(self, actor: ev.Actor | None, *, gc: bool, **plan: Any) -> dict[str, int]:
        """Run `compact.rewrite(**plan)` into a staging directory without the lock, then rebase and
        commit it under the lock. `gc` also removes every unreferenced file (`usr compact`);
        otherwise only the files this rewrite retired go (and only if no snapshot names them)."""
        start = self.manifest()
        before = len(start.all_files())
        stage = self.paths.index_dir / STAGING / uuid.uuid4().hex[:12]
        stage.mkdir(parents=True)
        (stage / OWNER).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": utc_now_iso()}))
        try:
            res = cp.rewrite(self.paths, start, metadata=self._part_metadata(), stage=stage, **plan)
            if not res.changed and not gc:
                return {"files_before": before, "files_after": before, "files_removed": 0, **res.stats}
            with self.lock():
                current = self.manifest()
                new = cp.rebase(res, start, current) if res.changed else current
                digest = current.digest()
                if res.changed:
                    pt.publish(self.dir, res.written())
                    cp.save_index(self.paths, res)
                    digest = new.save(self.paths.manifest)
                removed = self._gc(new) if gc else self._drop_retired(new, res.retired)
                self._maintain_index(new, [idx.BASE_GROUP, *(idx.overlay_group(ns) for ns in new.namespaces())])
                stats = {"files_before": before, "files_after": len(new.all_files()), "files_removed": removed, **res.stats}
                if res.changed or removed:
                    self._event("compact", new, digest, args=None if gc else {"auto": "fold"}, metrics=stats, actor=actor)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        return stats

    def _drop_retired(self, man: Manifest, retired: Iterable[FileEntry]) -> int:
        """Delete the files a rewrite retired (those no snapshot names) and their index runs."""
        refs = self.referenced_files(man)
        removed = 0
        for e in retired:
            if e.file not in refs:
                self.paths.file(e.file).unlink(missing_ok=True)
                removed += 1
        with contextlib.suppress(OSError):
            idx.clean(self.paths.index_dir, {(e.file, e.sha256) for e in man.all_files()})
        return removed

    def referenced_files(self, man: Manifest | None = None) -> set[str]:
        """Files named by the current manifest or any snapshot."""
        man = man or self.manifest()
        refs = {e.file for e in man.all_files()}
        for p in self.paths.snapshots_dir.glob("*.json"):
            refs |= {e.file for e in Manifest.load(p).all_files()}
        return refs

    def leftover_files(self, man: Manifest | None = None) -> tuple[list[str], list[str]]:
        """(data files no manifest or snapshot names, temp files of interrupted writes), relative paths."""
        refs = self.referenced_files(man)
        orphans, temps = [], []
        for sub in (RECORDS_DIR, DERIVED_DIR):
            base = self.dir / sub
            if not base.exists():
                continue
            for p in sorted(base.rglob("*.parquet")):
                rel = p.relative_to(self.dir).as_posix()
                if rel not in refs:
                    orphans.append(rel)
            temps += [p.relative_to(self.dir).as_posix() for p in sorted(base.rglob(".*.tmp"))]
        temps += [p.relative_to(self.dir).as_posix() for p in sorted(self.dir.glob(".*.tmp"))]
        if self.paths.snapshots_dir.exists():
            temps += [p.relative_to(self.dir).as_posix() for p in sorted(self.paths.snapshots_dir.glob(".*.tmp"))]
        return orphans, temps

    def _gc(self, man: Manifest) -> int:
        orphans, temps = self.leftover_files(man)
        for rel in [*orphans, *temps]:
            self.paths.file(rel).unlink(missing_ok=True)
        for d in self.stale_staging():
            shutil.rmtree(d, ignore_errors=True)
        keep = {(e.file, e.sha256) for e in man.all_files()}
        idx.clean(self.paths.index_dir, keep)
        idx.remove_legacy(self.paths.index_dir)
        return len(orphans) + len(temps)

    def stale_staging(self) -> list[Path]:
        """Staging directories of rewrites that died: their process is gone (same host), or they
        are older than a day (another host). A running rewrite's directory is never listed."""
        staging = self.paths.index_dir / STAGING
        out: list[Path] = []
        if not staging.is_dir():
            return out
        host = socket.gethostname()
        for d in sorted(staging.iterdir()):
            try:
                owner = json.loads((d / OWNER).read_text())
                alive = owner.get("host") != host or pid_alive(int(owner.get("pid", 0)))
            except (OSError, ValueError):
                alive = False
            with contextlib.suppress(OSError):
                if not alive or time.time() - d.stat().st_mtime > STALE_STAGING_S:
                    out.append(d)
        return out

    def gc(self) -> int:
        """Remove files no manifest or snapshot names, and temp files left by interrupted writes."""
        with self.lock():
            return self._gc(self.manifest())

    # -- reads (delegated) ------------------------------------------------------------------
    def scan(self, *, include_deleted: bool = False, namespaces: list[str] | None = None) -> pl.LazyFrame:
        """All records with overlays joined (newest value wins) and tombstoned rows hidden, streaming."""
        return query.scan(self, self.manifest(), include_deleted=include_deleted, namespaces=namespaces)


def check_snapshot_name(name: str) -> str:
    """`name` if it is a safe snapshot name, else InputError."""
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", name or ""):
        raise InputError(f"invalid snapshot name {name!r}", hint="use letters, digits, '_', '.', '-'")
    return name


def _conform_records(table: pa.Table, *, extra_ok: bool = False) -> pa.Table:
    """Check a record table has the record fields with the right types (cast where lossless)."""
    missing = [f for f in RECORD_FIELDS if f not in table.column_names]
    if missing:
        raise InputError(f"records are missing column(s) {', '.join(missing)}", hint="build them with usr.schema.make_records")
    cols, names = [], []
    for f in RECORD_SCHEMA:
        cols.append(table.column(f.name).cast(f.type))
        names.append(f.name)
    if extra_ok:
        for name in table.column_names:
            if name not in RECORD_FIELDS:
                cols.append(table.column(name))
                names.append(name)
    elif len(table.column_names) != len(RECORD_FIELDS):
        extra = [c for c in table.column_names if c not in RECORD_FIELDS]
        raise InputError(f"records carry extra column(s) {', '.join(extra)}", hint="write derived columns as an overlay (usr attach)")
    return pa.table(cols, names=names)


def _enforce_type(column: str, arr: pa.ChunkedArray, recorded: str | None) -> pa.ChunkedArray:
    if pa.types.is_null(arr.type) and recorded is None:
        raise InputError(f"column {column} has only empty values; its type cannot be recorded", hint="attach it when it has values")
    if recorded is None or str(arr.type) == recorded:
        return arr
    if not pa.types.is_null(arr.type) and same_type(arr.type, recorded):
        try:
            return arr.cast(parse_type(recorded))  # same logical type, other spelling: store the recorded one
        except (ValueError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return arr
    if pa.types.is_null(arr.type):
        return arr.cast(_type_from_string(recorded))
    target = _type_from_string(recorded)
    widen = (pa.types.is_integer(arr.type) and (pa.types.is_floating(target) or pa.types.is_integer(target))) or (
        pa.types.is_floating(arr.type) and pa.types.is_floating(target)) or (
        pa.types.is_large_string(arr.type) and pa.types.is_string(target))
    if widen:
        try:
            return arr.cast(target, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    raise ConflictError(f"column {column} was recorded as {recorded} but the new values are {arr.type}",
                        hint=f"convert the values to {recorded}, or attach under a new column name")


def _type_from_string(text: str) -> pa.DataType:
    try:
        return parse_type(text)
    except ValueError:
        raise ConflictError(f"cannot convert values to the recorded type {text}") from None


def _id_array(ids: Any) -> pa.Array:
    if isinstance(ids, pa.ChunkedArray):
        return ids.combine_chunks() if ids.num_chunks != 1 else ids.chunk(0)
    if isinstance(ids, pa.Array):
        return ids
    return pa.array(list(ids), pa.string())


def _make_dirs(path: Path) -> list[Path]:
    """mkdir -p that returns the directories it created (outermost first), for cleanup on failure."""
    made = []
    for d in reversed([path, *path.parents]):
        if not d.exists():
            made.append(d)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        for d in reversed(made):
            shutil.rmtree(d, ignore_errors=True)
        raise InputError(f"cannot create dataset directory {path}: {exc.strerror or exc}",
                         hint="check the --root path and its permissions") from None
    return made
