"""Convert a dataset of the previous `usr` (the incumbent) into a dataset of this store.

One call, `migrate()`, keeps every row and every derived column:

- records (in batches, validated as on any import): `created_at` and `source` are kept; the id is
  recomputed by this store's rule, which upper-cases DNA/RNA (the incumbent hashed the case as
  written), and every overlay key and id-valued state column follows the new id;
- derived columns, wherever the incumbent kept them: materialized `<ns>__*` columns of
  records.parquet, compact `_derived/<ns>.parquet` and `_derived/<ns>/part-*.parquet` overlays
  (keyed by id or by sequence), combined as the incumbent showed them (overlay over base, newest
  non-null value per key) into one overlay part per namespace; columns keep their Arrow types;
- tombstones (`_derived/usr.parquet`, with their times and reasons) and `usr_state`;
- snapshots (`_snapshots/records-<stamp>.parquet`, full copies there) become saved manifests
  `incumbent-<stamp>`: the rows are appended in snapshot order, so each snapshot is a prefix of
  the parts. A snapshot holding rows the current table no longer has cannot be expressed that way
  and is reported as not carried;
- the incumbent `.events.log`, converted line by line (`migrated_event`, see incumbent.py), then
  this store's own events of the conversion and a final `migrate` event.

The dataset is built in a staging directory under the root, validated, and only then renamed
into place; the source is never modified. When the new id names the source's own directory
(`densegen/demo` -> `densegen/demo`), the source is first moved to `<root>/_incumbent/<old id>`.
Anything that cannot be carried is refused before publishing, with one line saying what and why.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..core import events as ev
from ..core.atomic import atomic_write_text
from ..core.errors import ConflictError, InputError, IntegrityError, NotFoundError
from ..core.ids import record_id
from ..core.locks import FileLock, pid_alive
from ..core.timeutil import utc_now_iso
from .incumbent import (
    HISTORY_ACTION,
    RECORDS_FILE,
    TOMBSTONES,
    convert_events,
    find_incumbent_datasets,
    incumbent_id,
    is_incumbent_dir,
    map_dataset_id,
)
from .incumbent_inventory import Inventory, inventory, snapshot_stamp
from .layout import MANIFEST, resolve_root
from .schema import ALPHABETS, make_records, normalize_sequence
from .store import Dataset

BATCH_ROWS = 500_000
STAGE_PREFIX = ".usr-migrate-"  # staging directories under the root (never listed as datasets)
STAGE_OWNER = "owner.json"
EVENT_BATCH = 5_000
BACKUP_DIR = "_incumbent"
EXTRA_NAMESPACE = "incumbent"  # base columns of the incumbent that had no namespace
ID_VALUED = ("usr_state__supersedes", "usr_state__lineage")  # columns whose values are record ids
_TOMBSTONE_TYPES = {"usr__deleted": pa.bool_(), "usr__deleted_at": pa.timestamp("us", tz="UTC"),
                    "usr__deleted_reason": pa.string()}


@dataclass
class MigrationReport:
    """What a migration converted, kept approximately, skipped and why (`as_dict` for --json)."""

    dataset: str
    root: str
    source: str
    old_id: str
    dry_run: bool = False
    rows: int = 0
    ids_recomputed: int = 0
    created_at_filled: int = 0
    namespaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    tombstones: dict[str, int] = field(default_factory=dict)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    snapshots_not_carried: list[dict[str, str]] = field(default_factory=list)
    events_converted: int = 0
    events_skipped: list[dict[str, Any]] = field(default_factory=list)
    not_carried: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    source_moved_to: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The report as short lines for a terminal."""
        verb = "Would migrate" if self.dry_run else "Migrated"
        out = [f"{verb} incumbent dataset {self.old_id} ({self.source}) to {self.dataset} under {self.root}",
               f"  records    {self.rows} row(s)" + (f", {self.ids_recomputed} id(s) recomputed" if self.ids_recomputed else "")
               + (f", created_at filled for {self.created_at_filled}" if self.created_at_filled else "")]
        for ns, info in self.namespaces.items():
            dropped = f", {info['dropped']} orphan row(s) dropped" if info.get("dropped") else ""
            out.append(f"  overlay    {ns}: {len(info['columns'])} column(s), {info['rows']} row(s) from {', '.join(info['from'])}{dropped}")
        if self.tombstones:
            out.append(f"  tombstones {self.tombstones.get('hidden', 0)} hidden, {self.tombstones.get('restored', 0)} restored")
        for s in self.snapshots:
            out.append(f"  snapshot   {s['name']}: {s['rows']} row(s)" + ("" if s["exact"] else f" ({s.get('note', 'approximate')})"))
        for s in self.snapshots_not_carried:
            out.append(f"  not carried {s['file']}: {s['reason']}")
        out.append(f"  events     {self.events_converted} incumbent line(s) kept as `{HISTORY_ACTION}`"
                   + (f"; {len(self.events_skipped)} skipped" if self.events_skipped else ""))
        for e in self.events_skipped[:5]:
            out.append(f"  skipped    .events.log line {e['line']}: {e['problem']}")
        for name, why in self.not_carried.items():
            out.append(f"  not carried {name}: {why}")
        for note in self.notes:
            out.append(f"  note       {note}")
        if self.source_moved_to:
            out.append(f"  the incumbent copy was moved to {self.source_moved_to} (delete it once you are satisfied)")
        elif not self.dry_run:
            out.append(f"  the incumbent copy is unchanged at {self.source}")
        return out


def resolve_source(source: str | Path, root: Path) -> Path:
    """The incumbent dataset directory named by a path, or by an incumbent id under the root."""
    p = Path(source).expanduser()
    candidates = [p] if p.is_absolute() else [p, root / p]
    for c in candidates:
        if c.is_dir() and (c / RECORDS_FILE).is_file():
            return c.resolve()
    for c in candidates:
        if c.is_dir() and (c / MANIFEST).is_file():
            raise InputError(f"{c} is already a dataset of this usr (it has a manifest.json)", hint="nothing to migrate")
    found = [r.old_id for r in find_incumbent_datasets(root)]
    hint = (f"incumbent datasets under {root}: {', '.join(found[:8])}" if found
            else "pass the directory that holds the incumbent records.parquet")
    raise NotFoundError(f"no incumbent dataset at {source} (no {RECORDS_FILE} there or under {root})", hint=hint)


def migrate(source: str | Path, root: str | Path | None = None, *, dataset_id: str | None = None,
            dry_run: bool = False, batch_rows: int = BATCH_ROWS, actor: ev.Actor | None = None) -> MigrationReport:
    """Convert the incumbent dataset at `source` into `dataset_id` (default: `map_dataset_id`) under `root`.

    Everything is built and validated in a staging directory first; `dry_run` stops there and
    discards it. Raises a DnadesignError (nothing published) when something cannot be carried.
    """
    root_path = resolve_root(root)
    src = resolve_source(source, root_path)
    old_id = incumbent_id(src, root_path)
    new_id = dataset_id or map_dataset_id(old_id)
    Dataset(root_path, new_id)  # validates the id before any path is built
    target = root_path / new_id
    in_place = target.exists() and target.resolve() == src
    backup = root_path / BACKUP_DIR / old_id
    _check_target(target, in_place, backup, new_id)
    inv = inventory(src)
    report = MigrationReport(dataset=new_id, root=str(root_path), source=str(src), old_id=old_id, dry_run=dry_run,
                             not_carried=dict(inv.not_carried))
    actor = actor or ev.Actor.current("usr")
    root_path.mkdir(parents=True, exist_ok=True)
    for old in _remove_abandoned_stages(root_path):
        report.notes.append(f"removed {old.name}, left by a migration that was killed")
    stage = root_path / f"{STAGE_PREFIX}{uuid.uuid4().hex[:12]}"
    stage.mkdir()
    (stage / STAGE_OWNER).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    try:
        ds = _build(inv, stage, new_id, old_id, report, batch_rows, actor)
        _validate(ds)
        if not dry_run:
            with FileLock(root_path / ".usr-migrate.lock", timeout=60, what="migration lock"):
                _check_target(target, in_place, backup, new_id)
                _publish(ds.dir, target, src if in_place else None, backup, report)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return report


def _remove_abandoned_stages(root: Path) -> list[Path]:
    """Staging directories of this host whose migration process is gone (killed mid-way)."""
    removed = []
    for stage in root.glob(f"{STAGE_PREFIX}*"):
        try:
            owner = json.loads((stage / STAGE_OWNER).read_text())
        except (OSError, ValueError):
            continue
        if owner.get("host") != socket.gethostname() or pid_alive(int(owner.get("pid", 0))):
            continue
        shutil.rmtree(stage, ignore_errors=True)
        removed.append(stage)
    return removed


def _check_target(target: Path, in_place: bool, backup: Path, new_id: str) -> None:
    if in_place:
        if backup.exists():
            raise ConflictError(f"{backup} already exists, so the incumbent copy of {new_id} cannot be moved there",
                                hint="move that directory away, or migrate to another id with --to")
        return
    if (target / MANIFEST).exists():
        raise ConflictError(f"dataset {new_id} already exists under {target.parent.parent}",
                            hint="it was probably migrated before; choose another id with --to, or remove it first")
    if target.exists() and any(target.iterdir()):
        raise ConflictError(f"{target} exists and is not empty", hint="choose another id with --to")


def _publish(built: Path, target: Path, in_place_source: Path | None, backup: Path, report: MigrationReport) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if in_place_source is not None:
        backup.parent.mkdir(parents=True, exist_ok=True)
        os.rename(in_place_source, backup)
        try:
            os.rename(built, target)
        except OSError:
            os.rename(backup, in_place_source)
            raise
        report.source_moved_to = str(backup)
    else:
        if target.exists():
            target.rmdir()  # empty (checked under the lock)
        os.rename(built, target)


def _validate(ds: Dataset) -> None:
    from .validate import validate

    rep = validate(ds, hashes=False)
    if not rep.ok:
        raise IntegrityError(f"the converted dataset does not validate: {rep.errors[0]}",
                             hint="nothing was published; report this with the incumbent dataset attached")


# -- building -----------------------------------------------------------------------------------------

def _build(inv: Inventory, stage: Path, new_id: str, old_id: str, report: MigrationReport, batch_rows: int,
           actor: ev.Actor) -> Dataset:
    ds_dir = stage / new_id
    ds_dir.mkdir(parents=True)  # the stage itself exists (it names its owner)
    _write_meta(ds_dir / "meta.md", new_id, old_id, inv)
    if inv.events is not None:
        _carry_events(inv.events, ds_dir / ".events.log", new_id, report)
    ds = Dataset.create(stage, new_id, source=f"incumbent usr dataset {old_id}", actor=actor)
    remap: dict[str, str] = {}
    current_ids = _id_column(inv.path / RECORDS_FILE)
    for snap in inv.snapshots:
        _carry_snapshot(ds, snap, current_ids, remap, report, batch_rows)
    _append_records(ds, inv.path / RECORDS_FILE, remap, report, batch_rows, label=RECORDS_FILE)
    rows = ds.manifest().rows
    if rows != inv.rows:
        raise InputError(_duplicate_message(inv.path / RECORDS_FILE, inv.rows, rows),
                         hint="this store keeps one record per sequence; deduplicate the incumbent dataset "
                              "(`usr maintenance dedupe --key sequence_ci`) and migrate again")
    report.rows = rows
    report.ids_recomputed = len(remap)
    if remap:
        report.notes.append(f"{len(remap)} record id(s) changed: this store hashes DNA/RNA upper-cased; "
                            "overlay keys and usr_state ids follow the new ids")
    bio_types = ds.manifest().bio_types
    namespaces = sorted(set(inv.materialized) | set(inv.overlays) | ({EXTRA_NAMESPACE} if inv.extra_columns else set()))
    for ns in namespaces:
        _carry_namespace(ds, inv, ns, remap, bio_types, report)
    ds.log_event("migrate", args={"from": "incumbent", "source": old_id},
                 metrics={"rows": report.rows, "ids_recomputed": report.ids_recomputed,
                          "namespaces": len(report.namespaces), "snapshots": len(report.snapshots),
                          "history_events": report.events_converted})
    return ds


def _write_meta(path: Path, new_id: str, old_id: str, inv: Inventory) -> None:
    old = inv.meta.read_text(errors="replace").rstrip() if inv.meta is not None else ""
    text = (f"# {new_id}\n\n- created_at: {utc_now_iso()}\n- source: migrated from the incumbent usr dataset {old_id}\n"
            f"- notes: the incumbent meta.md follows, unchanged\n\n")
    if old:
        text += "## Incumbent meta.md\n\n" + "\n".join("    " + ln for ln in old.splitlines()) + "\n\n"
    atomic_write_text(path, text + "## Log\n\n")


def _carry_events(src: Path, dest: Path, new_id: str, report: MigrationReport) -> None:
    batch: list[Mapping[str, Any]] = []
    skipped = 0
    for line in convert_events(src, new_id, ev.MAX_LINE_BYTES):
        if line.event is None:
            skipped += 1
            if len(report.events_skipped) < 20:
                report.events_skipped.append({"line": line.line, "problem": line.problem})
            continue
        batch.append(line.event)
        report.events_converted += 1
        if len(batch) >= EVENT_BATCH:
            ev.append_events(dest, batch)
            batch = []
    if batch:
        ev.append_events(dest, batch)
    if skipped > len(report.events_skipped):
        report.notes.append(f"{skipped} incumbent event line(s) could not be converted; the first "
                            f"{len(report.events_skipped)} are listed")


def _id_column(path: Path) -> pa.ChunkedArray | None:
    names = pq.read_schema(path).names
    return pq.read_table(path, columns=["id"]).column("id").cast(pa.string()) if "id" in names else None


def _carry_snapshot(ds: Dataset, snap: Path, current_ids: pa.ChunkedArray | None, remap: dict[str, str],
                    report: MigrationReport, batch_rows: int) -> None:
    rel = f"_snapshots/{snap.name}"
    names = pq.read_schema(snap).names
    if "sequence" not in names or "id" not in names or current_ids is None:
        report.snapshots_not_carried.append({"file": rel, "reason": "it has no id or sequence column"})
        return
    snap_ids = pq.read_table(snap, columns=["id"]).column("id").cast(pa.string())
    gone = len(snap_ids) - pc.sum(pc.is_in(snap_ids, value_set=current_ids.combine_chunks())).as_py() if len(snap_ids) else 0
    if gone:
        report.snapshots_not_carried.append({
            "file": rel, "reason": f"it holds {gone} record(s) the current records.parquet no longer has "
                                   "(removed by an incumbent dedupe or materialize --drop-deleted)"})
        return
    _append_records(ds, snap, remap, report, batch_rows, label=rel)
    rows = len(pc.unique(snap_ids))
    name = f"incumbent-{snapshot_stamp(snap)}"
    ds.snapshot(name)
    have = ds.manifest().rows
    entry = {"name": name, "rows": rows, "exact": have == rows}
    if have != rows:
        entry["note"] = f"also lists {have - rows} record(s) an earlier snapshot had and this one did not"
    report.snapshots.append(entry)


def _append_records(ds: Dataset, path: Path, remap: dict[str, str], report: MigrationReport, batch_rows: int,
                    *, label: str) -> None:
    pf = pq.ParquetFile(path)
    cols = [c for c in ("id", "bio_type", "sequence", "alphabet", "source", "created_at") if c in pf.schema_arrow.names]
    offset = 0
    for batch in pf.iter_batches(batch_size=batch_rows, columns=cols):
        table = pa.Table.from_batches([batch])
        records = _records_of(table, str(path), offset, remap, report)
        offset += table.num_rows
        ds.append(records, on_conflict="ignore", event_args={"migrated_from": "incumbent", "file": label})


def _records_of(table: pa.Table, where: str, offset: int, remap: dict[str, str], report: MigrationReport) -> pa.Table:
    """Validated record rows of one incumbent batch, keeping created_at and source; fills `remap`."""
    bio = table.column("bio_type").to_pylist()
    alpha = table.column("alphabet").to_pylist()
    groups: dict[tuple[Any, Any], list[int]] = {}
    for i, key in enumerate(zip(bio, alpha, strict=True)):
        groups.setdefault(key, []).append(i)
    out = []
    for (b, a), rows in groups.items():
        if a not in ALPHABETS or ALPHABETS[a][0] != b:
            raise InputError(f"{where}, row {offset + rows[0] + 1}: bio_type {b!r} with alphabet {a!r} is not a valid pair here",
                             hint="fix the row in the incumbent dataset (dna_4/dna_5, rna_4/rna_5, protein_20/protein_21)")
        sub = table.take(pa.array(rows))
        sources = sub.column("source").to_pylist() if "source" in sub.column_names else [""] * len(rows)
        recs = make_records(sub.column("sequence").to_pylist(), bio_type=b, alphabet=a,
                            source=["" if s is None else str(s) for s in sources], where=where,
                            row_numbers=[f"row {offset + r + 1}" for r in rows])
        recs = recs.set_column(recs.schema.get_field_index("created_at"), "created_at", _created_at(sub, recs, report))
        if "id" in sub.column_names:
            for old, new in zip(sub.column("id").to_pylist(), recs.column("id").to_pylist(), strict=True):
                if old and old != new:
                    remap[str(old)] = new
        out.append(recs)
    return pa.concat_tables(out) if len(out) > 1 else out[0]


def _created_at(sub: pa.Table, recs: pa.Table, report: MigrationReport) -> pa.ChunkedArray:
    now = recs.column("created_at")
    if "created_at" not in sub.column_names:
        report.created_at_filled += len(recs)
        return now
    target = pa.timestamp("us", tz="UTC")
    col = sub.column("created_at")
    try:
        if pa.types.is_timestamp(col.type) and col.type.tz is None:
            col = pc.assume_timezone(col, "UTC")
        col = col.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        report.created_at_filled += len(recs)
        return now
    nulls = col.null_count
    if nulls:
        report.created_at_filled += nulls
        col = pc.if_else(pc.is_null(col), now, col)
    return col


def _duplicate_message(path: Path, expected: int, got: int) -> str:
    frame = pl.read_parquet(path, columns=["bio_type", "sequence"]).with_row_index("row")
    key = pl.when(pl.col("bio_type").is_in(["dna", "rna"])).then(pl.col("sequence").str.strip_chars().str.to_uppercase()) \
        .otherwise(pl.col("sequence").str.strip_chars())
    dup = frame.with_columns(key.alias("k")).filter(pl.col("k").is_duplicated()).sort("k", "row").head(2)
    example = ""
    if dup.height == 2:
        r = dup.get_column("row").to_list()
        example = f" (e.g. rows {r[0] + 1} and {r[1] + 1})"
    return (f"{path} has {expected} rows but {got} distinct sequences once DNA/RNA letters are upper-cased{example}; "
            f"{expected - got} row(s) would be lost")


# -- overlays -----------------------------------------------------------------------------------------

def _carry_namespace(ds: Dataset, inv: Inventory, ns: str, remap: dict[str, str], bio_types: list[str],
                     report: MigrationReport) -> None:
    frames: list[pl.DataFrame] = []
    types: dict[str, pa.DataType] = {}
    origins: list[str] = []
    records = inv.path / RECORDS_FILE
    base_cols = inv.materialized.get(ns, []) if ns != EXTRA_NAMESPACE else inv.extra_columns
    if base_cols:
        key = "id" if "id" in pq.read_schema(records).names else "sequence"
        base = pq.read_table(records, columns=[key, *base_cols])
        if ns == EXTRA_NAMESPACE:
            base = base.rename_columns([key, *(f"{EXTRA_NAMESPACE}__{c}" for c in base_cols)])
            report.notes.append(f"base column(s) without a namespace ({', '.join(base_cols)}) are kept as "
                                f"{EXTRA_NAMESPACE}__<name>")
        types.update({f.name: f.type for f in base.schema if f.name != key})
        frames.append(_keyed(base, key, remap, bio_types, str(records)))
        origins.append(f"{RECORDS_FILE} (materialized)")
    for src in inv.overlays.get(ns, []):
        table = pq.read_table(src.path)
        key_cols = {"id", "sequence", "sequence_norm", "sequence_ci"} & set(table.column_names)
        value_cols = [c for c in table.column_names if c not in key_cols and not c.startswith("__")]
        table = table.select([src.key, *value_cols])
        types.update({f.name: f.type for f in table.schema if f.name != src.key})
        frames.append(_keyed(table, src.key, remap, bio_types, str(src.path)))
        origins.append(src.path.relative_to(inv.path).as_posix())
    if not frames:
        return
    combined = _newest_non_null(frames)
    table = combined.to_arrow()
    arrays, names = [table.column("id").cast(pa.string())], ["id"]
    for name in table.column_names:
        if name == "id":
            continue
        want = _TOMBSTONE_TYPES.get(name) if ns == TOMBSTONES else types.get(name)
        col = table.column(name)
        if want is None or pa.types.is_null(want):
            want = pa.string()
            report.notes.append(f"column {name} held no values in the incumbent; it is kept with type string")
        col = col.cast(want)
        if name in ID_VALUED and remap:
            col = _remap_values(col, remap)
        arrays.append(col)
        names.append(name)
    out = pa.table(arrays, names=names)
    action = "delete" if ns == TOMBSTONES else "attach"
    res = ds.write_overlay(ns, out, allow_missing=True, action=action,
                           event_args={"migrated_from": "incumbent", "files": len(origins)})
    info: dict[str, Any] = {"columns": names[1:], "rows": res["rows"], "from": origins}
    if res["dropped"]:
        info["dropped"] = res["dropped"]
        report.notes.append(f"{ns}: {res['dropped']} overlay row(s) keyed to records that do not exist were dropped "
                            "(the incumbent did not show them either)")
    report.namespaces[ns] = info
    if ns == TOMBSTONES and "usr__deleted" in names:
        flags = out.column("usr__deleted").to_pylist()
        report.tombstones = {"hidden": sum(1 for f in flags if f), "restored": sum(1 for f in flags if f is False)}


def _keyed(table: pa.Table, key: str, remap: dict[str, str], bio_types: list[str], where: str) -> pl.DataFrame:
    """The table with its key replaced by this store's record id (`id` first)."""
    keys = table.column(key).cast(pa.string()).to_pylist()
    if key == "id":
        ids = [remap.get(k, k) if k is not None else None for k in keys]
    else:
        if len(bio_types) != 1:
            raise InputError(f"{where} is keyed by {key} but the dataset holds several bio_types ({', '.join(bio_types)})",
                             hint="the incumbent refused such overlays too; re-key the file by id and migrate again")
        bio = bio_types[0]
        ids = [record_id(bio, normalize_sequence(bio, k)) if k else None for k in keys]
    if any(i is None for i in ids):
        raise InputError(f"{where}: empty {key} key in row {ids.index(None) + 1}", hint="fix or remove the row, then migrate again")
    values = table.drop_columns([key])
    frame = pl.from_arrow(values) if values.num_columns else pl.DataFrame()
    assert isinstance(frame, pl.DataFrame)
    frame = frame.with_columns(pl.Series("id", ids, dtype=pl.String)) if frame.width else pl.DataFrame({"id": ids})
    if frame.get_column("id").is_duplicated().any():
        raise InputError(f"{where}: a record appears more than once (key {key})",
                         hint="the incumbent requires unique keys per overlay file; fix the file and migrate again")
    return frame.select(["id", *[c for c in frame.columns if c != "id"]])


def _newest_non_null(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """One row per id; for each column the value of the newest frame that has it non-null."""
    tagged = [f.with_columns(pl.lit(i, dtype=pl.Int32).alias("__order")) for i, f in enumerate(frames)]
    stacked = pl.concat(tagged, how="diagonal_relaxed").sort("__order", maintain_order=True)
    value_cols = [c for c in stacked.columns if c not in ("id", "__order")]
    return stacked.group_by("id", maintain_order=True).agg([pl.col(c).drop_nulls().last().alias(c) for c in value_cols])


def _remap_values(col: pa.ChunkedArray, remap: dict[str, str]) -> pa.ChunkedArray:
    values = col.to_pylist()
    new: list[Any]
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        new = [None if v is None else [remap.get(x, x) for x in v] for v in values]
    else:
        new = [remap.get(v, v) if isinstance(v, str) else v for v in values]
    return pa.chunked_array([pa.array(new, type=col.type)])


# -- helpers for `usr ls` ---------------------------------------------------------------------------------

def pending(root: Path) -> list[dict[str, Any]]:
    """Incumbent datasets under a root with the id each maps to and whether that id exists already."""
    out = []
    for ref in find_incumbent_datasets(root):
        done = ref.new_id is not None and (root / ref.new_id / MANIFEST).exists()
        out.append({**ref.as_dict(), "converted": done})
    return out


__all__ = ["HISTORY_ACTION", "MigrationReport", "is_incumbent_dir", "migrate", "pending", "resolve_source"]
