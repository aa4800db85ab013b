"""The USR dataset store: create, append, overlays, tombstones, snapshots, materialize, compact.

Every mutation follows one protocol, under the dataset lock:
1. write new immutable Parquet files (temp + fsync + rename),
2. atomically replace `manifest.json` to list them (the commit point),
3. append the event line to `.events.log`.
A process killed before step 2 leaves only unreferenced files (removed by `gc`); the dataset
stays valid, with or without the batch, never half of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..core import events as ev
from ..core.atomic import atomic_write_text, atomic_write_with
from ..core.errors import ConflictError, InputError, NotFoundError
from ..core.ids import sha256_file
from ..core.locks import FileLock
from ..core.timeutil import compact_stamp, utc_now, utc_now_iso
from . import index as idx
from .layout import DERIVED_DIR, RECORDS_DIR, DatasetPaths, resolve_root
from .manifest import FileEntry, Manifest
from .schema import RECORD_FIELDS, RECORD_SCHEMA, check_derived_name, check_namespace

LOCK_TIMEOUT_S = 600.0
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
    return f"{subdir}/part-{compact_stamp()}-{uuid.uuid4().hex[:8]}.parquet"


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
        ds.paths.dir.mkdir(parents=True, exist_ok=True)
        with ds.lock():
            if ds.exists():
                if exist_ok:
                    return ds
                raise ConflictError(f"dataset {dataset_id} already exists at {ds.dir}",
                                    hint="choose another id, or append to it with `usr import`")
            now = utc_now_iso()
            man = Manifest(dataset=dataset_id, created_at=now)
            if not ds.paths.meta.exists():
                atomic_write_text(ds.paths.meta, f"# {dataset_id}\n\n- created_at: {now}\n- source: {source}\n- notes: {notes}\n\n## Log\n\n")
            digest = man.save(ds.paths.manifest)
            ds._event("init", man, digest, args={"source": source})
        return ds

    def lock(self, timeout: float | None = LOCK_TIMEOUT_S) -> FileLock:
        return FileLock(self.paths.lock, timeout=timeout, what=f"dataset {self.id} lock")

    def manifest(self) -> Manifest:
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
    def _write_part(self, relpath: str, table: pa.Table, metadata: Mapping[str, str] | None = None) -> FileEntry:
        path = self.paths.file(relpath)
        meta = {b"usr:dataset": self.id.encode()}
        actor = self._actor(None)
        meta[b"usr:run_id"] = actor.run_id.encode()
        meta[b"usr:correlation_id"] = actor.correlation_id.encode()
        for k, v in (metadata or {}).items():
            meta[k.encode()] = v.encode()
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
        atomic_write_with(path, lambda p: pq.write_table(table, p, compression="zstd"))
        return FileEntry(relpath, sha256_file(path), table.num_rows, path.stat().st_size)

    # -- ids --------------------------------------------------------------------------------
    def _present_mask(self, man: Manifest, ids: list[str]) -> np.ndarray:
        """For each id (any order), whether the dataset already has it."""
        if not ids:
            return np.zeros(0, dtype=bool)
        q = np.array([bytes.fromhex(i) for i in ids], dtype=idx.DIGEST)
        order = np.argsort(q)
        sorted_q = q[order]
        found = np.zeros(len(ids), dtype=bool)
        for part in man.parts:
            hit = idx.contains(idx.load_index(self.paths.index_dir, self.dir, part.file), sorted_q)
            found[order[hit]] = True
        return found

    def has_ids(self, ids: Iterable[str]) -> set[str]:
        """The subset of `ids` present in the dataset (tombstoned ones included)."""
        ids = list(ids)
        mask = self._present_mask(self.manifest(), ids)
        return {i for i, m in zip(ids, mask) if m}

    def locate(self, record_id: str) -> FileEntry | None:
        """The base part holding `record_id`, found through the id index."""
        man = self.manifest()
        q = np.array([bytes.fromhex(record_id)], dtype=idx.DIGEST)
        for part in man.parts:
            if idx.contains(idx.load_index(self.paths.index_dir, self.dir, part.file), q)[0]:
                return part
        return None

    # -- appends ----------------------------------------------------------------------------
    def append(self, records: pa.Table, *, on_conflict: str = "error", overlays: Mapping[str, pa.Table] | None = None,
               actor: ev.Actor | None = None, event_args: Mapping[str, Any] | None = None, note: str | None = None) -> AppendResult:
        """Append validated records (see `schema.make_records`) in one commit.

        `on_conflict="error"` rejects ids already stored; `"ignore"` skips them. `overlays` maps a
        namespace to a table keyed by `id` whose rows are committed together with the records.
        """
        if on_conflict not in ("error", "ignore"):
            raise InputError(f"on_conflict must be 'error' or 'ignore', not {on_conflict!r}")
        records = _conform_records(records)
        ids = records.column("id").to_pylist()
        if len(set(ids)) != len(ids):
            raise InputError("the batch contains duplicate ids", hint="deduplicate the input before appending")
        with self.lock():
            man = self.manifest()
            present = self._present_mask(man, ids)
            if present.any() and on_conflict == "error":
                first = ids[int(np.argmax(present))]
                raise ConflictError(f"{int(present.sum())} record(s) already exist in {self.id} (first id {first})",
                                    hint="use --on-conflict ignore to skip existing records")
            keep = ~present
            new = records.filter(pa.array(keep)) if present.any() else records
            new_ids = [i for i, k in zip(ids, keep) if k]
            if new.num_rows == 0:
                return AppendResult(0, len(ids), [])
            entry = self._write_part(_new_file(RECORDS_DIR), new)
            idx.write_index(self.paths.index_dir, entry.file, new_ids)
            man.parts.append(entry)
            man.bio_types = sorted(set(man.bio_types) | set(new.column("bio_type").unique().to_pylist()))
            written = {}
            for ns, table in (overlays or {}).items():
                table = table.filter(pc.is_in(table.column("id"), pa.array(new_ids)))
                written[ns] = self._stage_overlay(man, ns, table, known_ids=set(new_ids))
            digest = man.save(self.paths.manifest)
            if note:
                self._note(note)
            self._event("append", man, digest, args=event_args,
                        metrics={"rows_added": new.num_rows, "rows_skipped": int(present.sum()), **{f"overlay_rows_{k}": v for k, v in written.items()}},
                        actor=actor)
        return AppendResult(new.num_rows, int(present.sum()), new_ids)

    # -- overlays ---------------------------------------------------------------------------
    def _stage_overlay(self, man: Manifest, namespace: str, table: pa.Table, *, known_ids: set[str] | None = None,
                       allow_reserved: bool = False) -> int:
        """Validate an overlay table against the manifest's column types and write its part."""
        check_namespace(namespace, allow_reserved=allow_reserved)
        if "id" not in table.column_names:
            raise InputError(f"overlay for {namespace} has no id column")
        ids = table.column("id").to_pylist()
        if len(set(ids)) != len(ids):
            raise InputError(f"overlay for {namespace} has duplicate ids", hint="keep one row per record")
        if known_ids is None:
            missing_mask = ~self._present_mask(man, ids)
            if missing_mask.any():
                first = ids[int(np.argmax(missing_mask))]
                raise InputError(f"{int(missing_mask.sum())} key(s) are not records of {self.id} (first: {first})",
                                 hint="attach only to existing records, or pass --allow-missing to drop them")
        arrays, names = [table.column("id")], ["id"]
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
        entry = self._write_part(_new_file(f"{DERIVED_DIR}/{namespace}"), out, {"usr:namespace": namespace})
        man.overlays.setdefault(namespace, []).append(entry)
        return out.num_rows

    def write_overlay(self, namespace: str, table: pa.Table, *, allow_missing: bool = False, actor: ev.Actor | None = None,
                      action: str = "attach", event_args: Mapping[str, Any] | None = None, note: str | None = None) -> dict[str, int]:
        """Write one overlay part keyed by `id`; newest value wins per id and column on read.

        Returns `{"rows": attached, "dropped": keys that are not records}`.
        """
        with self.lock():
            man = self.manifest()
            dropped = 0
            if allow_missing and table.num_rows:
                mask = self._present_mask(man, table.column("id").to_pylist())
                dropped = int((~mask).sum())
                table = table.filter(pa.array(mask))
            if table.num_rows == 0:
                return {"rows": 0, "dropped": dropped}
            rows = self._stage_overlay(man, namespace, table, allow_reserved=(namespace == TOMBSTONE_NS and action in ("delete", "restore")))
            digest = man.save(self.paths.manifest)
            if note:
                self._note(note)
            self._event(action, man, digest, args={"namespace": namespace, **(event_args or {})},
                        metrics={"rows": rows, "dropped": dropped}, actor=actor)
        return {"rows": rows, "dropped": dropped}

    # -- tombstones -------------------------------------------------------------------------
    def delete(self, ids: Iterable[str], *, reason: str = "", allow_missing: bool = False, actor: ev.Actor | None = None) -> int:
        """Hide records (tombstones in the `usr` overlay); data stays and `restore` brings them back."""
        return self._tombstone(list(ids), True, reason, allow_missing, actor)

    def restore(self, ids: Iterable[str], *, allow_missing: bool = False, actor: ev.Actor | None = None) -> int:
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
        """Fold overlays into new base parts (tombstones stay an overlay); old files remain for snapshots."""
        from .query import scan

        with self.lock():
            man = self.manifest()
            chosen = [ns for ns in (namespaces or man.namespaces()) if ns != TOMBSTONE_NS]
            unknown = [ns for ns in chosen if ns not in man.overlays]
            if unknown:
                raise NotFoundError(f"{self.id} has no overlay namespace {unknown[0]}", hint="see `usr info` for its namespaces")
            if not chosen:
                return {"namespaces": [], "rows": man.rows}
            frame = scan(self, man, include_deleted=True, namespaces=chosen).collect()
            table = frame.to_arrow()
            table = _conform_records(table, extra_ok=True)
            entry = self._write_part(_new_file(RECORDS_DIR), table)
            idx.write_index(self.paths.index_dir, entry.file, table.column("id").to_pylist())
            man.parts = [entry]
            man.dedupe_on_read = False
            for ns in chosen:
                man.overlays.pop(ns, None)
            digest = man.save(self.paths.manifest)
            self._note(f"materialize {','.join(chosen)}")
            self._event("materialize", man, digest, args={"namespaces": chosen}, metrics={"rows": table.num_rows}, actor=actor)
        return {"namespaces": chosen, "rows": table.num_rows}

    def compact(self, *, target_rows: int = 2_000_000, actor: ev.Actor | None = None) -> dict[str, int]:
        """Merge small base parts and each namespace's overlay parts; then remove unreferenced files."""
        from .query import base_frame, overlay_frame

        with self.lock():
            man = self.manifest()
            before = len(man.all_files())
            if len(man.parts) > 1 or man.dedupe_on_read:
                table = base_frame(self, man).collect().to_arrow()
                table = _conform_records(table, extra_ok=True)
                new_parts = []
                for start in range(0, max(table.num_rows, 1), target_rows):
                    chunk = table.slice(start, target_rows)
                    entry = self._write_part(_new_file(RECORDS_DIR), chunk)
                    idx.write_index(self.paths.index_dir, entry.file, chunk.column("id").to_pylist())
                    new_parts.append(entry)
                man.parts = new_parts
                man.dedupe_on_read = False
            for ns, entries in list(man.overlays.items()):
                if len(entries) > 1:
                    table = overlay_frame(self, entries).collect().to_arrow()
                    man.overlays[ns] = [self._write_part(_new_file(f"{DERIVED_DIR}/{ns}"), table, {"usr:namespace": ns})]
            digest = man.save(self.paths.manifest)
            removed = self._gc(man)
            self._event("compact", man, digest, metrics={"files_before": before, "files_after": len(man.all_files()), "files_removed": removed}, actor=actor)
        return {"files_before": before, "files_after": len(man.all_files()), "files_removed": removed}

    def referenced_files(self, man: Manifest | None = None) -> set[str]:
        """Files named by the current manifest or any snapshot."""
        man = man or self.manifest()
        refs = {e.file for e in man.all_files()}
        for p in self.paths.snapshots_dir.glob("*.json"):
            refs |= {e.file for e in Manifest.load(p).all_files()}
        return refs

    def _gc(self, man: Manifest) -> int:
        refs = self.referenced_files(man)
        removed = 0
        for sub in (RECORDS_DIR, DERIVED_DIR):
            base = self.dir / sub
            if not base.exists():
                continue
            for p in base.rglob("*.parquet"):
                rel = p.relative_to(self.dir).as_posix()
                if rel not in refs:
                    p.unlink()
                    idx.index_path(self.paths.index_dir, rel).unlink(missing_ok=True)
                    removed += 1
            for p in base.rglob(".*.tmp"):
                p.unlink()
        return removed

    def gc(self) -> int:
        """Remove files no manifest or snapshot names (left by crashed writers or compaction)."""
        with self.lock():
            return self._gc(self.manifest())

    # -- reads (delegated) ------------------------------------------------------------------
    def scan(self, *, include_deleted: bool = False, namespaces: list[str] | None = None) -> pl.LazyFrame:
        """All records with overlays joined (newest value wins) and tombstoned rows hidden."""
        from .query import scan

        return scan(self, self.manifest(), include_deleted=include_deleted, namespaces=namespaces)


def check_snapshot_name(name: str) -> str:
    import re

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
    simple = {"string": pa.string(), "large_string": pa.large_string(), "bool": pa.bool_(), "double": pa.float64(),
              "float": pa.float32(), "int64": pa.int64(), "int32": pa.int32(), "int16": pa.int16(), "int8": pa.int8(),
              "uint64": pa.uint64(), "uint32": pa.uint32(), "uint8": pa.uint8(), "timestamp[us, tz=UTC]": pa.timestamp("us", tz="UTC")}
    if text in simple:
        return simple[text]
    raise ConflictError(f"cannot convert values to the recorded type {text}")
