"""Compaction and materialization: rewrite parts as a stream, tiered, folding overlays into the base.

`usr compact` is tiered: it merges runs of consecutive *small* base parts (and big parts that carry
many overlay rows) into parts of about `target_rows`, and leaves big parts alone. While a part is
rewritten, the overlay values of its records are folded into it (the columns become base columns
and the overlay rows are retired): a read then needs no join, and the dataset stops storing every
id twice. Overlay rows of parts left alone are carried into merged overlay parts (newest value per
id and column). `usr materialize` is the same rewrite over every part, folding chosen namespaces.

Order is kept: an output part is named after the first part it replaces (`parts.successor_names`),
so `head` and exports read records in the same order after compaction. Each output entry records,
on one carrier entry, which files it retired (`FileEntry.replaces`), so a sync union with a copy
that still lists them does not revive them.

Everything streams: base batches of `reader.BATCH_ROWS` rows, overlay values fetched per batch
through the id index; memory does not grow with the dataset.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..core.errors import ConflictError
from . import index as idx
from . import parts as pt
from .keys import id_keys
from .layout import DERIVED_DIR, RECORDS_DIR, DatasetPaths
from .manifest import FileEntry, Manifest
from .reader import DatasetReader, Selection, namespace_of
from .schema import RECORD_FIELDS, RECORD_SCHEMA

TARGET_ROWS = 2_000_000
FOLD_FRACTION = 0.1  # a big part is rewritten when this share of its rows has overlay values to fold


@dataclass
class Rewrite:
    """The outcome: the new manifest (not saved yet) and what changed."""

    manifest: Manifest
    changed: bool
    base_written: list[pt.Written] = field(default_factory=list)
    overlay_written: dict[str, list[pt.Written]] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    retired: list[FileEntry] = field(default_factory=list)

    def written(self) -> list[pt.Written]:
        return [*self.base_written, *(w for ws in self.overlay_written.values() for w in ws)]


def _consecutive(flags: Sequence[bool]) -> list[list[int]]:
    groups: list[list[int]] = []
    for i, f in enumerate(flags):
        if f:
            if groups and groups[-1][-1] == i - 1:
                groups[-1].append(i)
            else:
                groups.append([i])
    return groups


def pending_overlay_rows(rd: DatasetReader, namespaces: Sequence[str], samples: int = 200_000) -> np.ndarray:
    """Estimated overlay rows (of `namespaces`) keyed to each base part, from the id indexes alone
    (a sample of the overlay keys, read in chunks, looked up in the base index)."""
    counts = np.zeros(len(rd.man.parts), np.float64)
    if not rd.man.parts:
        return counts
    base = rd.base_index()
    for ns in namespaces:
        for run, live in rd.overlay_index(ns).runs:
            step = max(1, run.n // samples)
            picked = []
            for chunk in run.chunks():
                ords = (chunk & idx.RG_MASK).astype(np.int64)
                chunk = chunk[live[np.searchsorted(run.rg_start, ords, "right") - 1] >= 0]
                picked.append(chunk[::step])
            if picked:
                hits = base.lookup(np.concatenate(picked) & idx.KEY_MASK)
                counts += np.bincount(hits.pos, minlength=len(counts)) * step
    return counts


def rewrite(paths: DatasetPaths, man: Manifest, *, metadata: Mapping[str, str], target_rows: int = TARGET_ROWS,
            fold: Sequence[str] | None = None, every_part: bool = False, fold_fraction: float = FOLD_FRACTION,
            stage: Path | None = None, merge_small: bool = True, min_pending: int = 0) -> Rewrite:
    """Plan and write the new parts of a rewrite of `man`; returns the manifest it leads to.

    `fold=None` folds every overlay namespace; a list folds only those. `every_part` rewrites all
    base parts (materialize); otherwise small parts and overlay-heavy parts are chosen (tiered).
    `merge_small=False` chooses only overlay-heavy parts (the fold after an overlay write), and
    nothing is rewritten unless the chosen parts carry at least `min_pending` overlay rows.
    With `stage`, the new parts are written there (see `parts.publish`), so the rewrite can run
    without the dataset lock and be committed with `rebase` + `parts.publish` under it.
    """
    rd = DatasetReader(paths, man)
    fold_ns = [ns for ns in man.namespaces() if fold is None or ns in fold]
    n = len(man.parts)
    small = max(1, target_rows // 2)
    if every_part or man.dedupe_on_read:
        chosen = [True] * n
        pending = np.zeros(n)
    else:
        pending = pending_overlay_rows(rd, fold_ns) if fold_ns else np.zeros(n)
        chosen = [(merge_small and e.rows < small) or (pending[i] >= fold_fraction * max(e.rows, 1) and pending[i] > 0)
                  for i, e in enumerate(man.parts)]
        if pending[np.flatnonzero(chosen)].sum() < min_pending:
            chosen = [False] * n
    groups = [g for g in _consecutive(chosen)
              if every_part or man.dedupe_on_read or len(g) > 1 or pending[g[0]] > 0]
    out = Rewrite(man.copy(), False, stats={"parts_rewritten": 0, "rows_rewritten": 0, "overlay_parts_rewritten": 0})
    track = {ns: np.zeros(rd.overlay_rows(ns), bool) for ns in fold_ns}
    retired: list[FileEntry] = []
    new_parts: list[pt.Written] = []
    if groups:
        present = _base_columns(rd, [man.parts[i] for g in groups for i in g])
        derived = [c for c in sorted(rd.derived_types()) if c in present or namespace_of(c) in fold_ns]
        schema = pa.schema([*RECORD_SCHEMA, *[pa.field(c, rd.derived_types()[c]) for c in derived]])
        sel = Selection(tuple(schema.names), None, True)
        token = uuid.uuid4().hex[:8]
        for g in groups:
            entries = [man.parts[i] for i in g]
            tables = rd.arrow_batches(sel, parts=entries, join=fold_ns, track=track)
            prev = man.parts[g[0] - 1].file if g[0] > 0 else None
            nxt = man.parts[g[-1] + 1].file if g[-1] + 1 < n else None
            names = pt.successor_names(entries[0].file, prev, nxt, token)
            new_parts += _write_rolling(paths.dir, names, schema, tables, metadata, target_rows, stage)
            retired += entries
            out.stats["parts_rewritten"] += len(entries)
            out.stats["rows_rewritten"] += sum(e.rows for e in entries)
    if man.dedupe_on_read and groups:
        out.manifest.dedupe_on_read = False
    keep = [e for e in man.parts if e not in retired]
    out.manifest.parts = sorted([*keep, *(w.entry for w in new_parts)], key=lambda e: e.file)
    out.base_written = new_parts
    for ns in man.namespaces():
        entries = man.overlays[ns]
        done = track.get(ns)
        if ns not in fold_ns:
            continue
        written, gone = _carry_overlay(rd, ns, entries, done, small if merge_small else 0, metadata, stage)
        if gone:
            out.overlay_written[ns] = written
            retired += gone
            out.stats["overlay_parts_rewritten"] += len(gone)
            left = [e for e in entries if e not in gone] + [w.entry for w in written]
            if left:
                out.manifest.overlays[ns] = sorted(left, key=lambda e: e.file)
            else:
                out.manifest.overlays.pop(ns, None)
    out.retired = retired
    if not retired:
        return out
    out.changed = True
    _record_provenance(out, retired)
    return out


def rebase(res: Rewrite, start: Manifest, current: Manifest) -> Manifest:
    """The rewrite applied to `current`, the manifest at commit time (the rewrite read `start`).

    Writers that committed meanwhile only added files (appends, overlays, tombstones): those stay.
    If a file the rewrite retires is no longer listed (another compaction, a snapshot restore),
    the rewrite is stale: ConflictError, and nothing changes.
    """
    listed = {e.file for e in current.all_files()}
    gone = [e.file for e in res.retired if e.file not in listed]
    if gone:
        raise ConflictError(f"{current.dataset} changed while it was being compacted ({gone[0]} is no longer listed)",
                            hint="run `usr compact` again")
    retired = {e.file for e in res.retired}
    new = current.copy()
    added_parts = [e for e in current.parts if e.file not in {p.file for p in start.parts}]
    new.parts = sorted([*(e for e in current.parts if e.file not in retired), *(w.entry for w in res.base_written)],
                       key=lambda e: e.file)
    for ns in set(current.overlays) | set(res.overlay_written):
        kept = [e for e in current.overlays.get(ns, []) if e.file not in retired]
        entries = sorted([*kept, *(w.entry for w in res.overlay_written.get(ns, []))], key=lambda e: e.file)
        if entries:
            new.overlays[ns] = entries
        else:
            new.overlays.pop(ns, None)
    if start.dedupe_on_read and not res.manifest.dedupe_on_read and not added_parts:
        new.dedupe_on_read = False  # the rewrite removed the duplicates, and no part came in meanwhile
    return new


def _base_columns(rd: DatasetReader, entries: Sequence[FileEntry]) -> set[str]:
    cols: set[str] = set()
    for e in entries:
        cols |= set(rd.file(e).schema_arrow.names)
    return cols


def _write_rolling(dataset_dir: Path, names: Iterator[str], schema: pa.Schema, tables: Iterator[pa.Table],
                   metadata: Mapping[str, str], target_rows: int, stage: Path | None = None) -> list[pt.Written]:
    """Write a stream of tables into parts of at most `target_rows` rows each."""
    written: list[pt.Written] = []
    stream = (t for t in tables if t.num_rows)
    carry: list[pa.Table] = []

    def one_part() -> Iterator[pa.Table]:
        count = 0
        while count < target_rows:
            t = carry.pop() if carry else next(stream, None)
            if t is None:
                return
            room = target_rows - count
            if t.num_rows > room:
                carry.append(t.slice(room))
                t = t.slice(0, room)
            count += t.num_rows
            yield t

    while True:
        if not carry:
            t = next(stream, None)
            if t is None:
                return written
            carry.append(t)
        written.append(pt.write_batches(dataset_dir, next(names), schema, one_part(), metadata, stage))


def _carry_overlay(rd: DatasetReader, ns: str, entries: list[FileEntry], done: np.ndarray | None,
                   small: int, metadata: Mapping[str, str], stage: Path | None) -> tuple[list[pt.Written], list[FileEntry]]:
    """Rewrite a namespace's overlay parts that lost rows to folding, or are small and next to
    each other; big untouched parts stay. Returns (new parts, retired parts)."""
    starts = np.concatenate([[0], np.cumsum([rd.file(e).metadata.num_rows for e in entries])]).astype(np.int64)
    folded = [bool(done is not None and done[starts[i]:starts[i + 1]].any()) for i in range(len(entries))]
    flags = [folded[i] or e.rows < small for i, e in enumerate(entries)]
    written: list[pt.Written] = []
    gone: list[FileEntry] = []
    token = uuid.uuid4().hex[:8]
    for g in _consecutive(flags):
        if len(g) == 1 and not folded[g[0]]:
            continue
        group = [entries[i] for i in g]
        masks = [None if done is None else ~done[starts[i]:starts[i + 1]] for i in g]
        rows = _group_rows(rd, group, masks)
        gone += group
        if rows is None:
            continue
        schema, tables = rows
        prev = entries[g[0] - 1].file if g[0] > 0 else None
        nxt = entries[g[-1] + 1].file if g[-1] + 1 < len(entries) else None
        names = pt.successor_names(group[-1].file, prev, nxt, token)
        written += _write_rolling(rd.paths.dir, names, schema, tables, {**metadata, "usr:namespace": ns}, 1 << 62, stage)
    return written, gone


def _group_rows(rd: DatasetReader, group: list[FileEntry], masks: list[np.ndarray | None]) -> tuple[pa.Schema, Iterator[pa.Table]] | None:
    """The rows of a group of overlay parts still to keep (mask True), one row per id: rows whose
    id is in one part only stream through; ids in several parts are resolved newest-wins."""
    types = rd.derived_types()
    cols = sorted({c for e in group for c in rd.file(e).schema_arrow.names if c != "id"})
    schema = pa.schema([pa.field("id", pa.string()), *[pa.field(c, types.get(c, rd.type_from_files(c))) for c in cols]])
    keys = []
    for e, m in zip(group, masks, strict=True):
        k, _ = id_keys(rd.read_row_groups(e, list(range(rd.file(e).num_row_groups)), ["id"]).column("id"))
        keys.append(k[m] if m is not None else k)
    allk = np.sort(np.concatenate(keys)) if keys else np.zeros(0, np.uint64)
    if not len(allk):
        return None
    dup = np.unique(allk[1:][allk[1:] == allk[:-1]])

    def tables() -> Iterator[pa.Table]:
        held: list[pa.Table] = []
        for e, m in zip(group, masks, strict=True):
            pf = rd.file(e)
            offset = 0
            for rg in range(pf.num_row_groups):
                t = rd.read_row_groups(e, [rg], ["id", *cols])
                if m is not None:
                    t = t.filter(pa.array(m[offset:offset + t.num_rows]))
                offset += pf.metadata.row_group(rg).num_rows
                for c in cols:
                    if c not in t.column_names:
                        t = t.append_column(c, pa.nulls(t.num_rows, schema.field(c).type))
                t = t.select(schema.names)
                if len(dup):
                    k, _ = id_keys(t.column("id"))
                    at = np.searchsorted(dup, k)
                    at[at >= len(dup)] = 0
                    is_dup = dup[at] == k
                    if is_dup.any():
                        held.append(t.filter(pa.array(is_dup)))
                        t = t.filter(pa.array(~is_dup))
                if t.num_rows:
                    yield t
        if held:
            yield rd.resolve(held, cols)

    return schema, tables()


def _record_provenance(out: Rewrite, retired: list[FileEntry]) -> None:
    """Put the retired files (and what they retired) on one carrier entry of the new manifest."""
    names = {e.file for e in retired}
    for e in retired:
        names |= set(e.replaces)
    new_files = [w.entry for w in out.base_written] + [w.entry for ws in out.overlay_written.values() for w in ws]
    if not new_files:
        return  # everything retired folded away with no output (e.g. an all-empty group)
    carrier = new_files[0]
    names -= {e.file for e in new_files}
    updated = replace(carrier, replaces=tuple(sorted(names)))
    man = out.manifest
    man.parts = [updated if e.file == carrier.file else e for e in man.parts]
    for ns, es in man.overlays.items():
        man.overlays[ns] = [updated if e.file == carrier.file else e for e in es]
    for w in out.base_written:
        if w.entry.file == carrier.file:
            w.entry = updated
    for ws in out.overlay_written.values():
        for w in ws:
            if w.entry.file == carrier.file:
                w.entry = updated


def save_index(paths: DatasetPaths, res: Rewrite) -> None:
    """Runs for the new parts (a cache: if they cannot be written, the next read indexes the parts)."""
    with contextlib.suppress(OSError):
        if res.base_written:
            idx.add_run(paths.index_dir, idx.BASE_GROUP, [(w.run_part, w.index_entries) for w in res.base_written])
        for ns, ws in res.overlay_written.items():
            if ws:
                idx.add_run(paths.index_dir, idx.overlay_group(ns), [(w.run_part, w.index_entries) for w in ws])


__all__ = ["DERIVED_DIR", "RECORDS_DIR", "RECORD_FIELDS", "TARGET_ROWS", "Rewrite", "rewrite", "save_index"]
