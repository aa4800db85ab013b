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
part that may hold the id, and a filtered scan or export holds one batch at a time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..core.errors import IntegrityError
from . import index as idx
from .arrowtypes import parse_type
from .keys import as_string_array, id_keys
from .layout import DatasetPaths
from .manifest import FileEntry, Manifest
from .schema import RECORD_FIELDS, RECORD_SCHEMA

TOMBSTONE_NS = "usr"
DELETED = "usr__deleted"
BATCH_ROWS = 262_144
FULL_OVERLAY_ROWS = 1_000_000  # a namespace this small is loaded whole when a batch needs much of it
CACHE_BYTES = 192 << 20


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
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise part_error(path, exc) from None


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
    """What a read wants: the columns (None = all), the namespaces joined, whether tombstoned rows stay."""

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
        self._full: dict[tuple[str, tuple[str, ...]], pl.DataFrame] = {}
        self._types: dict[str, pa.DataType] | None = None
        self._dup_keys: np.ndarray | None = None

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
            for col in unknown:
                types[col] = self.type_from_files(col)
            self._types = types
        return self._types

    def type_from_files(self, col: str) -> pa.DataType:
        ns = namespace_of(col)
        for e in [*self.man.overlays.get(ns or "", []), *self.man.parts]:
            sch = self.file(e).schema_arrow
            if col in sch.names:
                return sch.field(col).type
        return pa.null()

    def namespaces(self) -> list[str]:
        """Namespaces with columns, wherever stored (overlay parts or base parts)."""
        found = {ns for ns in (namespace_of(c) for c in self.man.columns) if ns}
        return sorted(found | set(self.man.namespaces()))

    def columns_for(self, namespaces: Sequence[str] | None) -> list[str]:
        """Derived columns visible for a namespace selection (None = all; `usr` only when asked for)."""
        cols = sorted(self.derived_types())
        if namespaces is None:
            return cols
        chosen = set(namespaces)
        return [c for c in cols if namespace_of(c) in chosen]

    def arrow_schema(self, namespaces: Sequence[str] | None = None) -> pa.Schema:
        types = self.derived_types()
        return pa.schema([*RECORD_SCHEMA, *[pa.field(c, types[c]) for c in self.columns_for(namespaces)]])

    def polars_schema(self, namespaces: Sequence[str] | None = None) -> dict[str, pl.DataType]:
        sch = self.arrow_schema(namespaces)
        empty = pl.from_arrow(pa.table({f.name: pa.array([], f.type) for f in sch}))
        assert isinstance(empty, pl.DataFrame)
        return dict(empty.schema)

    # -- files and indexes -----------------------------------------------------------------------
    def file(self, entry: FileEntry) -> pq.ParquetFile:
        pf = self._files.get(entry.file)
        if pf is None:
            path = self.paths.file(entry.file)
            if not path.exists():
                raise IntegrityError(f"{path} is listed in the manifest but missing",
                                     hint="run `usr validate`; restore the file (e.g. `usr pull`) or a snapshot")
            pf = self._files[entry.file] = open_parquet(path)
        return pf

    def read_row_groups(self, entry: FileEntry, rgs: list[int], columns: list[str]) -> pa.Table:
        pf = self.file(entry)
        present = set(pf.schema_arrow.names)
        try:
            return pf.read_row_groups(rgs, columns=[c for c in columns if c in present])
        except (OSError, pa.ArrowException) as exc:
            raise part_error(self.paths.file(entry.file), exc) from None

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
                       track: np.ndarray | None = None) -> pl.DataFrame:
        """`id` + `columns` of namespace `ns` for those of `ids` that have values (newest wins per column).

        `track`, a bool array over the namespace's overlay rows (parts in manifest order), gets the
        rows that matched set to True (compaction uses it to know which rows it folded).
        """
        entries = self.man.overlays.get(ns, [])
        if not entries or not len(ids):
            return self._empty_values(columns)
        total = sum(e.rows for e in entries)
        id_frame = pl.DataFrame({"id": pl.Series("id", ids).cast(pl.String)})
        if track is None and total <= FULL_OVERLAY_ROWS and len(ids) * 16 >= total:
            return self._full_overlay(ns, columns).join(id_frame, on="id", how="semi")
        if keys is None:
            keys, _ = id_keys(ids)
        hits = self.overlay_index(ns).lookup(keys)
        if not len(hits):
            return self._empty_values(columns)
        wanted = np.unique(keys & idx.KEY_MASK)
        starts = self._row_starts(ns) if track is not None else None
        pieces = []
        for pos, rg in sorted(set(zip(hits.pos.tolist(), hits.rg.tolist(), strict=False))):
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
                piece = table.take(pa.array(sel))
                if starts is not None:
                    piece = piece.append_column("__ord", pa.array(starts[pos][rg] + sel, pa.int64()))
                pieces.append(piece)
        return self._resolve(pieces, columns, id_frame, track)

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

    def _full_overlay(self, ns: str, columns: list[str]) -> pl.DataFrame:
        key = (ns, tuple(columns))
        if key not in self._full:
            pieces = [self.read_row_groups(e, list(range(self.file(e).num_row_groups)), ["id", *columns])
                      for e in self.man.overlays.get(ns, [])]
            self._full[key] = self._resolve(pieces, columns)
        return self._full[key]

    def _empty_values(self, columns: list[str]) -> pl.DataFrame:
        types = self.derived_types()
        t = pa.table({"id": pa.array([], pa.string()), **{c: pa.array([], types.get(c, pa.null())) for c in columns}})
        out = pl.from_arrow(t)
        assert isinstance(out, pl.DataFrame)
        return out

    def _resolve(self, pieces: list[pa.Table], columns: list[str], id_frame: pl.DataFrame | None = None,
                 track: np.ndarray | None = None) -> pl.DataFrame:
        """Stack overlay rows oldest first; keep rows whose id is in `id_frame` (exact match), mark
        them in `track`; per id and column keep the newest non-null value."""
        if not pieces:
            return self._empty_values(columns)
        types = self.derived_types()
        frames = []
        for t in pieces:
            for c in columns:
                if c not in t.column_names:
                    t = t.append_column(c, pa.nulls(t.num_rows, types.get(c, pa.null())))
            frame = pl.from_arrow(t.select(["id", *columns, *(["__ord"] if "__ord" in t.column_names else [])]))
            assert isinstance(frame, pl.DataFrame)
            frames.append(frame)
        stacked = pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]
        stacked = stacked.with_columns(pl.col("id").cast(pl.String))
        if id_frame is not None:
            stacked = stacked.join(id_frame, on="id", how="semi", maintain_order="left")
        if "__ord" in stacked.columns:
            if track is not None:
                track[stacked.get_column("__ord").to_numpy()] = True
            stacked = stacked.drop("__ord")
        if stacked.get_column("id").is_unique().all():
            return stacked
        return stacked.group_by("id", maintain_order=True).agg([pl.col(c).drop_nulls().last() for c in columns])

    # -- base batches ------------------------------------------------------------------------------
    def duplicate_keys(self) -> np.ndarray:
        """Sorted 48-bit keys held by more than one base row (only needed after a union merge)."""
        if self._dup_keys is None:
            gi = self.base_index()
            chunks = []
            for run, live in gi.runs:
                vals = np.asarray(run.entries)
                ords = (vals & idx.RG_MASK).astype(np.int64)
                pidx = np.searchsorted(run.rg_start, ords, "right") - 1
                chunks.append(vals[live[pidx] >= 0] & idx.KEY_MASK)
            allk = np.sort(np.concatenate(chunks)) if chunks else np.zeros(0, np.uint64)
            dup = allk[1:][allk[1:] == allk[:-1]]
            self._dup_keys = np.unique(dup)
        return self._dup_keys

    def base_batches(self, columns: list[str], batch_rows: int = BATCH_ROWS, first_rows: int | None = None,
                     parts: Sequence[FileEntry] | None = None) -> Iterator[pa.Table]:
        """Base rows in dataset order with `columns` (missing derived columns as nulls), deduplicated
        by id when the manifest asks for it. `first_rows` makes the first batches small (for head)."""
        types = self.derived_types()
        dedupe = self.man.dedupe_on_read
        dup = self.duplicate_keys() if dedupe else None
        seen: set[str] = set()
        size = max(1, first_rows) if first_rows else batch_rows
        for entry in self.man.parts if parts is None else parts:
            pf = self.file(entry)
            rgs = list(range(pf.num_row_groups))
            i = 0
            while i < len(rgs):
                group: list[int] = []
                rows = 0
                while i < len(rgs) and (not group or rows + pf.metadata.row_group(rgs[i]).num_rows <= size):
                    group.append(rgs[i])
                    rows += pf.metadata.row_group(rgs[i]).num_rows
                    i += 1
                table = self.read_row_groups(entry, group, columns)
                for c in columns:
                    if c not in table.column_names:
                        typ = RECORD_SCHEMA.field(c).type if c in RECORD_FIELDS else types.get(c, pa.null())
                        table = table.append_column(c, pa.nulls(table.num_rows, typ))
                table = table.select(columns)
                if dup is not None and len(dup):
                    table, seen = _drop_repeats(table, dup, seen)
                start = 0
                while start < table.num_rows:
                    yield table.slice(start, size)
                    start += size
                    if first_rows:
                        size = min(size * 4, batch_rows)

    def batches(self, sel: Selection, *, predicate: pl.Expr | None = None, n_rows: int | None = None,
                batch_rows: int = BATCH_ROWS, parts: Sequence[FileEntry] | None = None,
                join: Sequence[str] | None = None, track: dict[str, np.ndarray] | None = None) -> Iterator[pl.DataFrame]:
        """Rows with overlays joined, tombstones applied, `predicate` filtered, `sel.columns` projected.

        `parts` limits the read to some base parts; `join` to some overlay namespaces (default: every
        namespace a wanted column belongs to); `track` marks folded overlay rows (see overlay_values).
        """
        visible = self.columns_for(sel.namespaces)
        all_cols = [*RECORD_FIELDS, *visible]
        out_cols = list(sel.columns) if sel.columns is not None else all_cols
        need = set(out_cols) | (set(predicate.meta.root_names()) if predicate is not None else set())
        tomb = not sel.include_deleted and DELETED in self.derived_types()
        if tomb:
            need.add(DELETED)
        need.add("id")
        want_ns: dict[str, list[str]] = {}
        for c in sorted(need):
            ns = namespace_of(c)
            if ns and c in self.derived_types() and ns in self.man.overlays and (join is None or ns in join):
                want_ns.setdefault(ns, []).append(c)
        base_cols = [c for c in [*RECORD_FIELDS, *sorted(self.derived_types())] if c in need]
        early = predicate is not None and all(c in RECORD_FIELDS for c in predicate.meta.root_names())
        schema = self.polars_schema(None)
        produced = 0
        first = n_rows * 2 + 16 if n_rows is not None and predicate is None else None
        for table in self.base_batches(base_cols, batch_rows, first, parts):
            frame = pl.from_arrow(table)
            assert isinstance(frame, pl.DataFrame)
            if early and predicate is not None:
                frame = frame.filter(predicate)
                if frame.height == 0:
                    continue
            frame = self._join(frame, want_ns, track)
            if tomb:
                frame = frame.filter(~pl.col(DELETED).fill_null(False))
            if predicate is not None and not early:
                frame = frame.filter(predicate)
            frame = frame.select(out_cols).cast({c: schema[c] for c in out_cols if c in schema and frame.schema[c] != schema[c]})
            if n_rows is not None and produced + frame.height > n_rows:
                frame = frame.head(n_rows - produced)
            if frame.height:
                produced += frame.height
                yield frame
            if n_rows is not None and produced >= n_rows:
                return

    def _join(self, frame: pl.DataFrame, want_ns: dict[str, list[str]], track: dict[str, np.ndarray] | None = None) -> pl.DataFrame:
        if not want_ns or frame.height == 0:
            return frame
        ids = as_string_array(frame.get_column("id").to_arrow())
        keys, _ = id_keys(ids)
        for ns, cols in want_ns.items():
            values = self.overlay_values(ns, ids, cols, keys, (track or {}).get(ns))
            clash = [c for c in cols if c in frame.columns]
            if clash:
                values = values.rename({c: f"{c}__ov" for c in clash})
            frame = frame.join(values, on="id", how="left", maintain_order="left")
            if clash:
                frame = frame.with_columns([pl.coalesce(pl.col(f"{c}__ov"), pl.col(c)).alias(c) for c in clash]).drop(
                    [f"{c}__ov" for c in clash])
        return frame

    # -- point lookups -----------------------------------------------------------------------------
    def rows_by_id(self, ids: Sequence[str], sel: Selection) -> pl.DataFrame:
        """The records with these ids (first copy of each), overlays joined; absent ids are skipped."""
        schema = self.polars_schema(sel.namespaces)
        cols = list(sel.columns) if sel.columns is not None else list(schema)
        arr = pa.array(list(ids), pa.string())
        keys, ok = id_keys(arr)
        if not len(arr) or not ok.any():
            return pl.DataFrame(schema=schema).select(cols)
        gi = self.base_index()
        hits = gi.lookup(keys)
        base_cols = [c for c in [*RECORD_FIELDS, *sorted(self.derived_types())]]
        found: dict[str, pa.Table] = {}
        for pos, rg in sorted(set(zip(hits.pos.tolist(), hits.rg.tolist(), strict=False))):
            table = self.read_row_groups(self.man.parts[pos], [rg], base_cols)
            mask = pc.is_in(table.column("id"), value_set=arr)
            for row in table.filter(mask).to_pylist():
                found.setdefault(row["id"], pa.Table.from_pylist([row], schema=table.schema))
        if not found:
            return pl.DataFrame(schema=schema).select(cols)
        types = self.derived_types()
        frames = []
        for rid in ids:
            t = found.get(rid)
            if t is None:
                continue
            for c in base_cols:
                if c not in t.column_names:
                    typ = RECORD_SCHEMA.field(c).type if c in RECORD_FIELDS else types.get(c, pa.null())
                    t = t.append_column(c, pa.nulls(t.num_rows, typ))
            frames.append(t.select(base_cols))
        frame = pl.from_arrow(pa.concat_tables(frames))
        assert isinstance(frame, pl.DataFrame)
        want_ns = {ns: [c for c in self.derived_types() if namespace_of(c) == ns] for ns in self.man.overlays}
        frame = self._join(frame, {ns: cs for ns, cs in want_ns.items() if cs})
        if not sel.include_deleted and DELETED in frame.columns:
            frame = frame.filter(~pl.col(DELETED).fill_null(False))
        full = self.polars_schema(None)
        frame = frame.cast({c: full[c] for c in frame.columns if c in full and frame.schema[c] != full[c]})
        return frame.select(cols)


def _drop_repeats(table: pa.Table, dup: np.ndarray, seen: set[str]) -> tuple[pa.Table, set[str]]:
    """Drop rows whose id appeared earlier in the read (only ids whose key is a known duplicate are tracked)."""
    keys, _ = id_keys(table.column("id"))
    k = keys & idx.KEY_MASK
    p = np.searchsorted(dup, k)
    p[p >= len(dup)] = 0
    cand = np.flatnonzero(dup[p] == k)
    if not len(cand):
        return table, seen
    keep = np.ones(table.num_rows, bool)
    ids = table.column("id").take(pa.array(cand)).to_pylist()
    for i, rid in zip(cand.tolist(), ids, strict=False):
        if rid in seen:
            keep[i] = False
        else:
            seen.add(rid)
    return table.filter(pa.array(keep)), seen
