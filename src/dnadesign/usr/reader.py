"""Streaming reads: base records in batches, overlay values joined through the id index.

A read never builds the whole dataset in memory. Base parts are read a few row groups at a time in
manifest order; for each batch, each wanted overlay namespace is asked only for the ids of that
batch: the namespace's id index names the overlay row groups that may hold them, those are read
(and kept in a small cache, since writers usually store overlay rows in base order), and the
values are joined by id. Within a namespace the newest part wins per id and column, and a null
never erases an older value. A value stored in the base (after `materialize` or `compact` folded an
overlay) is overridden by a newer overlay value. Tombstoned records (`usr__deleted`) are dropped
unless asked for. When a union merge left the same id in two parts, the first copy wins.

The cost of a read follows what it returns: `head` decodes one row group, `get` one row group per
part that may hold the id, and a filtered scan or export holds one batch at a time. This module
uses pyarrow and numpy only (no polars), so the point-read commands start fast and stay small.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..core.errors import IntegrityError
from . import index as idx
from .arrowtypes import parse_type
from .keys import arrow_bools, arrow_ints, arrow_strings, as_string_array, empty_array, id_keys
from .layout import DatasetPaths
from .manifest import FileEntry, Manifest, MissingPart
from .schema import RECORD_FIELDS, RECORD_SCHEMA

TOMBSTONE_NS = "usr"
DELETED = "usr__deleted"
BATCH_ROWS = 131_072
MAX_BATCH_ROWS = 1_048_576
FULL_OVERLAY_ROWS = 500_000  # a namespace this small is loaded whole when a batch needs much of it
CACHE_BYTES = 64 << 20

RowFilter = Callable[[pa.Table], pa.Array]


def namespace_of(column: str) -> str | None:
    ns, sep, _ = column.partition("__")
    return ns if sep and column not in RECORD_FIELDS else None


def part_error(path: Path, exc: Exception) -> IntegrityError:
    """One line for a part that cannot be read (truncated, damaged, missing)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return IntegrityError(f"cannot read {path}: {first[:160]}",
                          hint="run `usr validate` to see the damage; restore the file (e.g. `usr pull`) or a snapshot")


def open_parquet(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path, pre_buffer=False)
    except (OSError, pa.ArrowException) as exc:
        raise part_error(path, exc) from None


def _strings(arr: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One `string` array (ids from polars arrive as large_string or string_view)."""
    a = as_string_array(arr)
    return a.cast(pa.string()) if not pa.types.is_string(a.type) else a


class _RowGroupCache:
    """Decoded overlay row groups, least recently used dropped past a byte budget."""

    def __init__(self, budget: int = CACHE_BYTES):
        self.budget = budget
        self.used = 0
        self.items: OrderedDict[tuple, pa.Table] = OrderedDict()

    def get(self, key: tuple) -> pa.Table | None:
        t = self.items.get(key)
        if t is not None:
            self.items.move_to_end(key)
        return t

    def put(self, key: tuple, table: pa.Table) -> None:
        self.items[key] = table
        self.used += table.nbytes
        while self.used > self.budget and len(self.items) > 1:
            _, old = self.items.popitem(last=False)
            self.used -= old.nbytes


@dataclass(frozen=True)
class Selection:
    """What a read wants: the columns (None = all), the namespaces shown, whether tombstoned rows stay."""

    columns: tuple[str, ...] | None
    namespaces: tuple[str, ...] | None
    include_deleted: bool


class DatasetReader:
    """Reads one manifest's view of a dataset (a consistent snapshot: files are immutable)."""

    def __init__(self, paths: DatasetPaths, man: Manifest):
        self.paths = paths
        self.man = man
        self._base_index: idx.GroupIndex | None = None
        self._ov_index: dict[str, idx.GroupIndex] = {}
        self._files: dict[str, pq.ParquetFile] = {}
        self._cache = _RowGroupCache()
        self._full: dict[tuple[str, tuple[str, ...]], pa.Table] = {}
        self._types: dict[str, pa.DataType] | None = None
        self._dup_keys: np.ndarray | None = None
        self.batch_rows = BATCH_ROWS  # grows for overlays stored out of record order (see _note_coverage)

    # -- schema ------------------------------------------------------------------------------------
    def derived_types(self) -> dict[str, pa.DataType]:
        """Derived column -> Arrow type, from the manifest (footers are read only for unknown texts)."""
        if self._types is None:
            types: dict[str, pa.DataType] = {}
            unknown = []
            for col, text in self.man.columns.items():
                try:
                    types[col] = parse_type(text)
                except ValueError:
                    unknown.append(col)
            self._types = types
            for col in unknown:
                types[col] = self.type_from_files(col)
        return self._types

    def type_from_files(self, col: str) -> pa.DataType:
        ns = namespace_of(col)
        for e in [*self.man.overlays.get(ns or "", []), *self.man.parts]:
            sch = self.file(e).schema_arrow
            if col in sch.names:
                return sch.field(col).type
        return pa.null()

    def columns_for(self, namespaces: Sequence[str] | None) -> list[str]:
        """Derived columns visible for a namespace selection (None = all; `[]` = none)."""
        cols = sorted(self.derived_types())
        if namespaces is None:
            return cols
        chosen = set(namespaces)
        return [c for c in cols if namespace_of(c) in chosen]

    def arrow_schema(self, namespaces: Sequence[str] | None = None) -> pa.Schema:
        types = self.derived_types()
        return pa.schema([*RECORD_SCHEMA, *[pa.field(c, types[c]) for c in self.columns_for(namespaces)]])

    def column_type(self, col: str) -> pa.DataType:
        return RECORD_SCHEMA.field(col).type if col in RECORD_FIELDS else self.derived_types().get(col, pa.null())

    # -- files and indexes -----------------------------------------------------------------------
    def file(self, entry: FileEntry) -> pq.ParquetFile:
        pf = self._files.get(entry.file)
        if pf is None:
            path = self.paths.file(entry.file)
            if not path.exists():
                if self._retired(entry.file):
                    raise MissingPart(f"{path} was retired by a compaction (or the fold after an overlay write) "
                                      "while this read was running", hint="run the read again")
                raise MissingPart(f"{path} is listed in the manifest but missing",
                                  hint="run `usr validate`; restore the file (e.g. `usr pull`) or a snapshot")
            pf = self._files[entry.file] = open_parquet(path)
        return pf

    def _retired(self, file: str) -> bool:
        """Whether the dataset's current manifest no longer lists `file` (a rewrite retired it)."""
        try:
            current = Manifest.load(self.paths.manifest)
        except (OSError, ValueError):
            return False
        return file not in {e.file for e in current.all_files()}

    def read_row_groups(self, entry: FileEntry, rgs: list[int], columns: list[str]) -> pa.Table:
        """Those row groups of a part, with `columns` (absent ones added as typed nulls, in order)."""
        pf = self.file(entry)
        present = set(pf.schema_arrow.names)
        try:
            t = pf.read_row_groups(rgs, columns=[c for c in columns if c in present])
        except (OSError, pa.ArrowException) as exc:
            raise part_error(self.paths.file(entry.file), exc) from None
        for c in columns:
            if c not in t.column_names:
                t = t.append_column(c, pa.nulls(t.num_rows, self.column_type(c)))
        return t.select(columns)

    def base_index(self) -> idx.GroupIndex:
        if self._base_index is None:
            self._base_index = idx.GroupIndex(self.paths.dir, self.paths.index_dir, idx.BASE_GROUP, self.man.parts)
        return self._base_index

    def overlay_index(self, ns: str) -> idx.GroupIndex:
        if ns not in self._ov_index:
            self._ov_index[ns] = idx.GroupIndex(self.paths.dir, self.paths.index_dir, idx.overlay_group(ns), self.man.overlays.get(ns, []))
        return self._ov_index[ns]

    # -- overlay values for a set of ids -----------------------------------------------------------
    def overlay_values(self, ns: str, ids: pa.Array, columns: list[str], keys: np.ndarray | None = None,
                       track: np.ndarray | None = None) -> pa.Table:
        """`id` + `columns` of namespace `ns` for those of `ids` that have values (one row per id,
        newest non-null value per column). `track`, a bool array over the namespace's overlay rows
        (parts in manifest order), gets the rows that matched set (compaction: what it folded)."""
        entries = self.man.overlays.get(ns, [])
        if not entries or not len(ids):
            return self._empty_values(columns)
        ids = _strings(ids)
        total = sum(e.rows for e in entries)
        if track is None and total <= FULL_OVERLAY_ROWS and len(ids) * 16 >= total:
            full = self._full_overlay(ns, columns)
            return full.filter(pc.is_in(full.column("id"), value_set=ids))
        if keys is None:
            keys, _ = id_keys(ids)
        hits = self.overlay_index(ns).lookup(keys)
        if not len(hits):
            return self._empty_values(columns)
        wanted = np.unique(keys & idx.KEY_MASK)
        starts = self._row_starts(ns) if track is not None else None
        pieces = []
        groups = sorted(set(zip(hits.pos.tolist(), hits.rg.tolist(), strict=True)))
        self._note_coverage(ns, len(groups), len(ids))
        for pos, rg in groups:
            entry = entries[pos]
            cache_key = (entry.file, rg, tuple(columns))
            table = self._cache.get(cache_key)
            if table is None:
                table = self.read_row_groups(entry, [rg], ["id", *columns])
                self._cache.put(cache_key, table)
            rk, _ = id_keys(table.column("id"))
            rk &= idx.KEY_MASK
            at = np.searchsorted(wanted, rk)
            at[at >= len(wanted)] = 0
            sel = np.flatnonzero(wanted[at] == rk)
            if len(sel):
                piece = table.take(arrow_ints(sel))
                if starts is not None:
                    piece = piece.append_column("__ord", arrow_ints(starts[pos][rg] + sel))
                pieces.append(piece)
        return self.resolve(pieces, columns, ids, track)

    def _note_coverage(self, ns: str, groups_read: int, asked: int) -> None:
        """An overlay stored in an order unrelated to the records makes every batch read most of
        its row groups: then grow the base batches (fewer passes over the overlay), up to
        MAX_BATCH_ROWS, so the cost of a full read falls from O(n^2 / 131k) to O(n^2 / 1M)."""
        total = sum(self.file(e).num_row_groups for e in self.man.overlays.get(ns, []))
        if total > 4 and groups_read * 2 > total and asked * 2 >= self.batch_rows:
            self.batch_rows = min(self.batch_rows * 2, MAX_BATCH_ROWS)

    def _row_starts(self, ns: str) -> list[np.ndarray]:
        """Per overlay part of `ns`: the namespace-wide ordinal of the first row of each row group."""
        out, base = [], 0
        for e in self.man.overlays.get(ns, []):
            rows = idx.rows_per_rg(self.file(e))
            out.append(base + np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(np.int64))
            base += sum(rows)
        return out

    def overlay_rows(self, ns: str) -> int:
        return sum(self.file(e).metadata.num_rows for e in self.man.overlays.get(ns, []))

    def _full_overlay(self, ns: str, columns: list[str]) -> pa.Table:
        key = (ns, tuple(columns))
        if key not in self._full:
            pieces = [self.read_row_groups(e, list(range(self.file(e).num_row_groups)), ["id", *columns])
                      for e in self.man.overlays.get(ns, [])]
            self._full[key] = self.resolve(pieces, columns)
        return self._full[key]

    def _empty_values(self, columns: list[str]) -> pa.Table:
        return pa.table({"id": empty_array(pa.string()), **{c: empty_array(self.column_type(c)) for c in columns}})

    def resolve(self, pieces: list[pa.Table], columns: list[str], ids: pa.Array | None = None,
                 track: np.ndarray | None = None) -> pa.Table:
        """Stack overlay rows oldest first; keep rows whose id is in `ids` (exact), mark them in
        `track`; then one row per id with the newest non-null value of each column."""
        if not pieces:
            return self._empty_values(columns)
        names = ["id", *columns, *(["__ord"] if "__ord" in pieces[0].column_names else [])]
        cols = {}
        for c in names[1:]:
            typ = self.column_type(c) if c in columns else pieces[0].column(c).type
            cols[c] = pa.chunked_array([ch for p in pieces for ch in p.column(c).cast(typ).chunks], type=typ)
        stacked = pa.table({"id": pa.chunked_array([_strings(p.column("id")) for p in pieces]), **cols})
        if ids is not None:
            stacked = stacked.filter(pc.is_in(stacked.column("id"), value_set=ids))
        if "__ord" in stacked.column_names:
            if track is not None:
                track[stacked.column("__ord").to_numpy()] = True
            stacked = stacked.drop_columns(["__ord"])
        uniq = pc.unique(stacked.column("id"))
        if len(uniq) == stacked.num_rows:
            return stacked
        newest_first = stacked.take(arrow_ints(np.arange(stacked.num_rows - 1, -1, -1)))
        out = {"id": uniq}
        for c in columns:
            valid = newest_first.filter(pc.is_valid(newest_first.column(c)))
            out[c] = valid.column(c).take(pc.index_in(uniq, value_set=valid.column("id").combine_chunks()))
        return pa.table(out)

    # -- base batches ------------------------------------------------------------------------------
    def duplicate_keys(self) -> np.ndarray:
        """Sorted 48-bit keys held by more than one base row (only needed after a union merge)."""
        if self._dup_keys is None:
            chunks = []
            for run, live in self.base_index().runs:
                vals = np.asarray(run.entries)
                ords = (vals & idx.RG_MASK).astype(np.int64)
                pidx = np.searchsorted(run.rg_start, ords, "right") - 1
                chunks.append(vals[live[pidx] >= 0] & idx.KEY_MASK)
            allk = np.sort(np.concatenate(chunks)) if chunks else np.zeros(0, np.uint64)
            self._dup_keys = np.unique(allk[1:][allk[1:] == allk[:-1]])
        return self._dup_keys

    def base_batches(self, columns: list[str], batch_rows: int | None = None, first_rows: int | None = None,
                     parts: Sequence[FileEntry] | None = None) -> Iterator[pa.Table]:
        """Base rows in dataset order with `columns` (absent derived columns as nulls), deduplicated
        by id when the manifest asks for it. `first_rows` makes the first batches small (for head).
        Without `batch_rows` the size follows `self.batch_rows`, which joins may grow."""
        dup = self.duplicate_keys() if self.man.dedupe_on_read else None
        seen: set[str] = set()
        fixed = batch_rows
        size = max(1, first_rows) if first_rows else (fixed or self.batch_rows)
        for entry in self.man.parts if parts is None else parts:
            pf = self.file(entry)
            rg_rows = idx.rows_per_rg(pf)
            i = 0
            while i < len(rg_rows):
                group: list[int] = []
                rows = 0
                while i < len(rg_rows) and (not group or rows + rg_rows[i] <= size):
                    group.append(i)
                    rows += rg_rows[i]
                    i += 1
                table = self.read_row_groups(entry, group, columns)
                if dup is not None and len(dup):
                    table = _drop_repeats(table, dup, seen)
                start = 0
                while start < table.num_rows:
                    yield table.slice(start, size)
                    start += size
                    if first_rows:
                        size = min(size * 4, fixed or self.batch_rows)
                    elif not fixed:
                        size = self.batch_rows

    def arrow_batches(self, sel: Selection, *, keep: RowFilter | None = None, keep_columns: Sequence[str] = (),
                      n_rows: int | None = None, batch_rows: int | None = None, parts: Sequence[FileEntry] | None = None,
                      join: Sequence[str] | None = None, track: dict[str, np.ndarray] | None = None,
                      extra: Sequence[str] = ()) -> Iterator[pa.Table]:
        """Rows with overlays joined and tombstones applied, as Arrow tables of `sel.columns` (+ `extra`).

        `keep` filters base rows before any join (it may use `keep_columns`, record fields only);
        `n_rows` stops after that many rows; `parts` limits the read to some base parts; `join` to
        some overlay namespaces (default: those of the wanted columns); `track` marks folded overlay
        rows (see `overlay_values`). `extra` adds columns needed later (e.g. by a polars filter).
        """
        types = self.derived_types()
        out_cols = list(sel.columns) if sel.columns is not None else [*RECORD_FIELDS, *self.columns_for(sel.namespaces)]
        need = {*out_cols, *extra, *keep_columns, "id"}
        tomb = not sel.include_deleted and DELETED in types
        if tomb:
            need.add(DELETED)
        want_ns: dict[str, list[str]] = {}
        for c in sorted(need):
            ns = namespace_of(c)
            if ns and c in types and ns in self.man.overlays and (join is None or ns in join):
                want_ns.setdefault(ns, []).append(c)
        base_cols = [c for c in [*RECORD_FIELDS, *sorted(types)] if c in need]
        final = list(dict.fromkeys([*out_cols, *extra]))
        produced = 0
        first = None
        if n_rows is not None:  # small first batches, growing: a limited read stops early
            first = n_rows * 2 + 16 if keep is None else max(4096, n_rows * 256)
        for table in self.base_batches(base_cols, batch_rows, first, parts):
            if keep is not None:
                table = table.filter(keep(table))
                if table.num_rows == 0:
                    continue
            table = self.join(table, want_ns, track)
            if tomb:
                table = table.filter(visible(table.column(DELETED)))
            table = table.select(final)
            if n_rows is not None and produced + table.num_rows > n_rows:
                table = table.slice(0, n_rows - produced)
            if table.num_rows:
                produced += table.num_rows
                yield table
            if n_rows is not None and produced >= n_rows:
                return

    def join(self, table: pa.Table, want_ns: dict[str, list[str]], track: dict[str, np.ndarray] | None = None) -> pa.Table:
        """Left-join each namespace's values onto `table` by id, keeping row order; a base value of
        the same column (folded earlier) is the fallback when the overlay has none."""
        if not want_ns or table.num_rows == 0:
            return table
        ids = _strings(table.column("id"))
        keys, _ = id_keys(ids)
        for ns, cols in want_ns.items():
            values = self.overlay_values(ns, ids, cols, keys, (track or {}).get(ns))
            at = pc.index_in(ids, value_set=values.column("id").combine_chunks()) if values.num_rows else None
            for c in cols:
                col = values.column(c).take(at) if at is not None else pa.nulls(table.num_rows, self.column_type(c))
                if c in table.column_names:
                    i = table.column_names.index(c)
                    base = table.column(c).cast(col.type)
                    table = table.set_column(i, c, pc.coalesce(col, base) if at is not None else base)
                else:
                    table = table.append_column(c, col)
        return table

    # -- point lookups -----------------------------------------------------------------------------
    def rows_by_id(self, ids: Sequence[str], sel: Selection) -> pa.Table:
        """The records with these ids (first copy of each, in the given order), overlays joined;
        absent ids are skipped. Reads one row group per part that may hold each id."""
        out_cols = list(sel.columns) if sel.columns is not None else [*RECORD_FIELDS, *self.columns_for(sel.namespaces)]
        arr = arrow_strings(list(ids))
        keys, ok = id_keys(arr)
        schema = self.arrow_schema(None)
        empty = pa.table({c: empty_array(schema.field(c).type) for c in out_cols})
        if not len(arr) or not ok.any() or not self.man.parts:
            return empty
        hits = self.base_index().lookup(keys)
        base_cols = [*RECORD_FIELDS, *sorted(self.derived_types())]
        found: list[pa.Table] = []
        for pos, rg in sorted(set(zip(hits.pos.tolist(), hits.rg.tolist(), strict=True))):
            table = self.read_row_groups(self.man.parts[pos], [rg], base_cols)
            table = table.filter(pc.is_in(_strings(table.column("id")), value_set=arr))
            if table.num_rows:
                found.append(table)
        if not found:
            return empty
        rows = pa.concat_tables(found).combine_chunks()
        rows_ids = _strings(rows.column("id"))
        at = pc.index_in(arr, value_set=rows_ids)  # first copy in manifest order
        order = [i for i in at.to_pylist() if i is not None]
        table = rows.take(arrow_ints(np.array(order, np.int64))) if order else rows.slice(0, 0)
        want_ns = {ns: [c for c in self.derived_types() if namespace_of(c) == ns] for ns in self.man.overlays}
        table = self.join(table, {ns: cs for ns, cs in want_ns.items() if cs})
        if not sel.include_deleted and DELETED in table.column_names:
            table = table.filter(visible(table.column(DELETED)))
        return table.select(out_cols)


def visible(deleted: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Mask of rows that are not tombstoned (`usr__deleted` null or false)."""
    return pc.or_kleene(pc.is_null(deleted), pc.invert(deleted))


def _drop_repeats(table: pa.Table, dup: np.ndarray, seen: set[str]) -> pa.Table:
    """Drop rows whose id appeared earlier in the read (only ids whose key is a known duplicate are tracked)."""
    keys, _ = id_keys(table.column("id"))
    k = keys & idx.KEY_MASK
    p = np.searchsorted(dup, k)
    p[p >= len(dup)] = 0
    cand = np.flatnonzero(dup[p] == k)
    if not len(cand):
        return table
    keep = np.ones(table.num_rows, bool)
    for i, rid in zip(cand.tolist(), table.column("id").take(arrow_ints(cand)).to_pylist(), strict=True):
        if rid in seen:
            keep[i] = False
        else:
            seen.add(rid)
    return table.filter(arrow_bools(keep))


def regex_filter(pattern: str, *, literal: bool = False) -> RowFilter:
    """A base-row filter: `sequence` matches `pattern` (case-insensitive), evaluated by Arrow (RE2)."""
    if literal:
        return lambda t: pc.match_substring(t.column("sequence"), pattern, ignore_case=True)
    return lambda t: pc.match_substring_regex(t.column("sequence"), pattern, ignore_case=True)


# -- the point reads behind `usr head`, `usr get`, `usr grep` (Arrow in, Arrow out) ----------------
def _retrying(paths: DatasetPaths, man: Manifest, read: Callable[[DatasetReader], pa.Table]) -> pa.Table:
    """Run a short read; if a part vanished because the manifest moved on meanwhile (a concurrent
    `compact` retired it), read again from the new manifest (reads take no lock)."""
    try:
        return read(DatasetReader(paths, man))
    except MissingPart:
        fresh = Manifest.load(paths.manifest)
        if fresh.digest() == man.digest():
            raise
        return read(DatasetReader(paths, fresh))


def head_table(paths: DatasetPaths, man: Manifest, n: int, *, include_deleted: bool = False,
               columns: Sequence[str] | None = None) -> pa.Table:
    """The first `n` visible records (reads the first row group(s) only)."""
    sel = Selection(tuple(columns) if columns else None, None, include_deleted)
    return _retrying(paths, man, lambda rd: _concat(list(rd.arrow_batches(sel, n_rows=max(n, 0))), rd, sel))


def get_table(paths: DatasetPaths, man: Manifest, ids: Sequence[str], *, include_deleted: bool = False,
              columns: Sequence[str] | None = None) -> pa.Table:
    """Records by id (absent ids skipped), overlays joined."""
    sel = Selection(tuple(columns) if columns else None, None, include_deleted)
    return _retrying(paths, man, lambda rd: rd.rows_by_id(ids, sel))


def grep_table(paths: DatasetPaths, man: Manifest, pattern: str, *, limit: int = 20, include_deleted: bool = False,
               literal: bool = False) -> pa.Table:
    """The first `limit` records whose sequence matches `pattern` (tested before any join; reading
    stops at `limit`)."""
    sel = Selection(None, None, include_deleted)
    keep = regex_filter(pattern, literal=literal)
    return _retrying(paths, man, lambda rd: _concat(
        list(rd.arrow_batches(sel, keep=keep, keep_columns=["sequence"], n_rows=max(limit, 0))), rd, sel))


def _concat(tables: list[pa.Table], rd: DatasetReader, sel: Selection) -> pa.Table:
    if tables:
        return pa.concat_tables(tables)
    schema = rd.arrow_schema(sel.namespaces)
    cols = list(sel.columns) if sel.columns is not None else schema.names
    return pa.table({c: empty_array(rd.column_type(c)) for c in cols})
