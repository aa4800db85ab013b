"""What an incumbent dataset holds (see incumbent.py for its layout), read from Parquet footers.

`inventory()` lists the record columns (and which are materialized derived columns), the overlay
files per namespace in the incumbent's precedence order, the snapshots, the event log and the
auxiliary content that has no counterpart here. It reads footers only, never the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..core.errors import InputError
from .incumbent import DERIVED, EVENTS, META, NOT_CARRIED, RECORDS_FILE, RUNTIME_FILES, SNAPSHOT_NAME, SNAPSHOTS
from .schema import DERIVED_COLUMN, RECORD_FIELDS


@dataclass
class OverlaySource:
    """One overlay file of the incumbent: its namespace, key kind and precedence (older first)."""

    path: Path
    namespace: str
    key: str  # id | sequence | sequence_norm | sequence_ci
    order: tuple[str, str]  # (created_at, file name): later wins


@dataclass
class Inventory:
    """What an incumbent dataset holds, read from file footers only (cheap)."""

    path: Path
    rows: int
    base_columns: list[str]
    materialized: dict[str, list[str]]  # namespace -> base columns <ns>__*
    extra_columns: list[str]  # base columns that are neither record fields nor <ns>__*
    overlays: dict[str, list[OverlaySource]] = field(default_factory=dict)
    snapshots: list[Path] = field(default_factory=list)
    events: Path | None = None
    meta: Path | None = None
    not_carried: dict[str, str] = field(default_factory=dict)


def _key_of(path: Path, schema: pa.Schema) -> str:
    meta = schema.metadata or {}
    key = (meta.get(b"usr:overlay_key") or b"").decode() or None
    if key in ("id", "sequence", "sequence_norm", "sequence_ci") and key in schema.names:
        return key
    for cand in ("id", "sequence", "sequence_norm", "sequence_ci"):
        if cand in schema.names:
            return cand
    raise InputError(f"{path}: overlay has no key column (id or sequence)",
                     hint="this file is not a usr overlay; move it out of _derived/ and migrate again")


def _order_of(path: Path, schema: pa.Schema) -> tuple[str, str]:
    meta = schema.metadata or {}
    created = (meta.get(b"usr:overlay_created_at") or b"").decode()
    return created, path.name


def _schema(path: Path) -> pa.Schema:
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot be read as Parquet: {first}",
                         hint="restore the file from a backup or move it aside, then migrate again") from None


def inventory(path: Path) -> Inventory:
    """Look at an incumbent dataset: record columns, overlays, snapshots, events, what will not be carried."""
    records = path / RECORDS_FILE
    if not records.is_file():
        raise InputError(f"{path} is not an incumbent usr dataset (no {RECORDS_FILE})",
                         hint="pass the dataset directory that holds records.parquet")
    schema = _schema(records)
    missing = [c for c in ("sequence", "bio_type", "alphabet") if c not in schema.names]
    if missing:
        raise InputError(f"{records} lacks the record column(s) {', '.join(missing)}",
                         hint="this is not a usr records table; import it with `usr import` instead")
    rows = pq.ParquetFile(records).metadata.num_rows
    materialized: dict[str, list[str]] = {}
    extra: list[str] = []
    for name in schema.names:
        if name in RECORD_FIELDS or name.startswith("__"):  # pandas index columns carry no data
            continue
        m = DERIVED_COLUMN.match(name)
        if m:
            materialized.setdefault(m.group(1), []).append(name)
        else:
            extra.append(name)
    inv = Inventory(path, rows, list(schema.names), materialized, extra)
    derived = path / DERIVED
    if derived.is_dir():
        for entry in sorted(derived.iterdir()):
            if entry.name.startswith(".") or entry.name == "_archived":
                if entry.name == "_archived":
                    inv.not_carried["_derived/_archived"] = "overlays the incumbent archived (no longer part of the dataset)"
                continue
            if entry.is_file() and entry.suffix == ".parquet" and not entry.name.endswith(".tmp.parquet"):
                sch = _schema(entry)
                inv.overlays.setdefault(entry.stem, []).append(OverlaySource(entry, entry.stem, _key_of(entry, sch), _order_of(entry, sch)))
            elif entry.is_dir():
                parts = sorted(p for p in entry.glob("*.parquet") if not p.name.endswith((".tmp", ".tmp.parquet")))
                for p in parts:
                    sch = _schema(p)
                    inv.overlays.setdefault(entry.name, []).append(OverlaySource(p, entry.name, _key_of(p, sch), _order_of(p, sch)))
                if (entry / "digest_ledger.json").exists():
                    inv.not_carried[f"_derived/{entry.name}/digest_ledger.json"] = "a cache of part hashes (the manifest holds sha256 here)"
        for sources in inv.overlays.values():
            sources.sort(key=lambda s: s.order)
    snaps = path / SNAPSHOTS
    if snaps.is_dir():
        inv.snapshots = sorted((p for p in snaps.glob("*.parquet") if SNAPSHOT_NAME.match(p.name)), key=lambda p: p.name)
    inv.events = path / EVENTS if (path / EVENTS).is_file() else None
    inv.meta = path / META if (path / META).is_file() else None
    known = {RECORDS_FILE, DERIVED, SNAPSHOTS, EVENTS, META}
    for entry in sorted(path.iterdir()):
        if entry.name in known or RUNTIME_FILES.match(entry.name):
            continue
        inv.not_carried[entry.name + ("/" if entry.is_dir() else "")] = NOT_CARRIED.get(entry.name, "not part of a usr dataset")
    return inv


def snapshot_stamp(path: Path) -> str:
    """`20260301T120000000000` of `records-20260301T120000000000.parquet`."""
    m = SNAPSHOT_NAME.match(path.name)
    return m.group(1) if m else path.stem
