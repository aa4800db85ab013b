"""Reading a dataset as a polars LazyFrame: base parts + overlays (newest wins) - tombstones."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from .manifest import FileEntry, Manifest
from .schema import RECORD_FIELDS

if TYPE_CHECKING:
    from .store import Dataset

TOMBSTONE_NS = "usr"
_EMPTY_BASE = {
    "id": pl.String, "bio_type": pl.String, "sequence": pl.String, "alphabet": pl.String,
    "length": pl.Int32, "source": pl.String, "created_at": pl.Datetime("us", "UTC"),
}


def _scan_files(ds: Dataset, entries: list[FileEntry]) -> pl.LazyFrame:
    frames = [pl.scan_parquet(ds.paths.file(e.file)) for e in entries]
    if len(frames) == 1:
        return frames[0]
    return pl.concat(frames, how="diagonal_relaxed")


def base_frame(ds: Dataset, man: Manifest) -> pl.LazyFrame:
    """The base records in part order (deduplicated by id when a merge made that necessary)."""
    if not man.parts:
        return pl.LazyFrame(schema=_EMPTY_BASE)
    frame = _scan_files(ds, man.parts)
    if man.dedupe_on_read:
        frame = frame.unique(subset="id", keep="first", maintain_order=True)
    return frame


def overlay_frame(ds: Dataset, entries: list[FileEntry]) -> pl.LazyFrame:
    """One namespace's overlay parts collapsed so the newest part's value wins for each id and column."""
    frame = _scan_files(ds, entries).with_row_index("__order")
    value_cols = [c for c in frame.collect_schema().names() if c not in ("id", "__order")]
    # Newest non-null value per column: a part that lacks a column (null) does not erase an older value.
    return frame.sort("__order").group_by("id", maintain_order=True).agg(
        [pl.col(c).drop_nulls().last().alias(c) for c in value_cols]
    )


def join_overlays(ds: Dataset, man: Manifest, frame: pl.LazyFrame, namespaces: list[str] | None,
                  include_deleted: bool) -> pl.LazyFrame:
    wanted = man.namespaces() if namespaces is None else [ns for ns in namespaces if ns in man.overlays]
    if not include_deleted and TOMBSTONE_NS in man.overlays and TOMBSTONE_NS not in wanted:
        wanted = [*wanted, TOMBSTONE_NS]
    base_cols = set(frame.collect_schema().names())
    for ns in wanted:
        ov = overlay_frame(ds, man.overlays[ns])
        ov_cols = [c for c in ov.collect_schema().names() if c != "id"]
        clash = [c for c in ov_cols if c in base_cols]
        if clash:  # materialized earlier: the overlay's newer value wins, the base fills gaps
            ov = ov.rename({c: f"{c}__ov" for c in clash})
        frame = frame.join(ov, on="id", how="left", maintain_order="left")
        if clash:
            frame = frame.with_columns([pl.coalesce(pl.col(f"{c}__ov"), pl.col(c)).alias(c) for c in clash]).drop(
                [f"{c}__ov" for c in clash])
        base_cols |= set(ov_cols)
    if not include_deleted and "usr__deleted" in base_cols:
        frame = frame.filter(~pl.col("usr__deleted").fill_null(False))
    if namespaces is not None and TOMBSTONE_NS not in namespaces:
        frame = frame.drop([c for c in frame.collect_schema().names() if c.startswith("usr__")])
    return frame


def scan(ds: Dataset, man: Manifest, *, include_deleted: bool = False, namespaces: list[str] | None = None) -> pl.LazyFrame:
    """Records with overlays joined. `namespaces=None` joins all; `[]` joins none (tombstones still apply)."""
    return join_overlays(ds, man, base_frame(ds, man), namespaces, include_deleted)


def head(ds: Dataset, n: int = 10, *, include_deleted: bool = False, columns: list[str] | None = None) -> pl.DataFrame:
    """The first `n` visible records, reading only as much of the base as needed."""
    man = ds.manifest()
    want = max(n, 1)
    base = base_frame(ds, man)
    while True:
        chunk = base.head(want).collect()
        out = join_overlays(ds, man, chunk.lazy(), None, include_deleted).head(n).collect()
        if out.height >= n or chunk.height < want:
            return _select(out, columns)
        want *= 4


def get(ds: Dataset, record_id: str, *, include_deleted: bool = False) -> dict | None:
    """One record by id (the id index finds its part), with overlays joined."""
    part = ds.locate(record_id)
    if part is None:
        return None
    man = ds.manifest()
    row = pl.scan_parquet(ds.paths.file(part.file)).filter(pl.col("id") == record_id).collect()
    out = join_overlays(ds, man, row.lazy(), None, include_deleted).collect()
    return out.to_dicts()[0] if out.height else None


def grep(ds: Dataset, pattern: str, *, limit: int = 20, include_deleted: bool = False, literal: bool = False) -> pl.DataFrame:
    """Records whose sequence matches a regular expression (case-insensitive for DNA/RNA letters)."""
    man = ds.manifest()
    expr = pl.col("sequence").str.contains(pattern.upper() if literal else f"(?i){pattern}", literal=literal)
    hits = base_frame(ds, man).filter(expr).head(limit * 4 if man.overlays else limit)
    return join_overlays(ds, man, hits, None, include_deleted).head(limit).collect()


def _select(frame: pl.DataFrame, columns: list[str] | None) -> pl.DataFrame:
    if not columns:
        return frame
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        from ..core.errors import InputError

        raise InputError(f"unknown column(s) {', '.join(missing)}", hint="see `usr schema` for the column names")
    return frame.select(columns)


__all__ = ["RECORD_FIELDS", "base_frame", "get", "grep", "head", "overlay_frame", "scan"]
