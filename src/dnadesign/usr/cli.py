"""`usr`: thin Typer CLI over the USR store (`dnadesign.usr.store`)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..core import events as ev
from ..core.cli import handled, run_app
from ..core.console import out, print_json, table
from ..core.errors import InputError, NotFoundError, UsageError
from .layout import ROOT_ENV, DatasetPaths, list_dataset_ids, resolve_root
from .manifest import Manifest
from .sync import cli as sync_cli

if TYPE_CHECKING:  # heavy modules (polars, pyarrow) are imported inside the commands that need them
    import pyarrow as pa

    from .store import Dataset

app = typer.Typer(name="usr", help="Universal Sequence Records: Parquet datasets with an append-only event log.",
                  no_args_is_help=True, add_completion=False)
snapshot_app = typer.Typer(help="Save, list and restore snapshots (saved manifests; no data is copied).", no_args_is_help=True)
events_app = typer.Typer(help="Read a dataset's .events.log.", no_args_is_help=True)
app.add_typer(snapshot_app, name="snapshot")
app.add_typer(events_app, name="events")

JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")
DatasetArg = typer.Argument(..., help="Dataset id: namespace/name (e.g. densegen/demo_sites).", show_default=False)


@app.callback()
def _root(ctx: typer.Context,
          root: Path | None = typer.Option(None, "--root", help=f"USR root directory (default ${ROOT_ENV}, else ~/.local/share/dnadesign/usr).")) -> None:
    ctx.obj = {"root": root}


def _root_of(ctx: typer.Context) -> Path:
    obj = ctx.find_root().obj or {}
    return resolve_root(obj.get("root"))


def _arrow_memory() -> None:
    """Arrow's jemalloc pool: streaming commands free and reallocate batch-sized buffers, and the
    default pool (mimalloc) keeps more of the freed pages (peak RSS ~20 % higher on export/compact).
    jemalloc's own decay is kept: returning pages at once costs more CPU in page faults than it saves."""
    import contextlib

    import pyarrow as pa

    with contextlib.suppress(NotImplementedError, pa.ArrowNotImplementedError):  # no jemalloc: keep the default
        pa.set_memory_pool(pa.jemalloc_memory_pool())


def _require(ctx: typer.Context, dataset: str) -> DatasetPaths:
    """The dataset's paths; a missing dataset is an error that suggests the likely right one."""
    paths = DatasetPaths(_root_of(ctx), dataset)
    if not paths.manifest.exists():
        from .discover import dataset_not_found

        raise dataset_not_found(paths.root, dataset)
    return paths


def _open(ctx: typer.Context, dataset: str) -> Dataset:
    from .store import Dataset

    _require(ctx, dataset)
    _arrow_memory()
    return Dataset.open(_root_of(ctx), dataset)


def _manifest(ctx: typer.Context, dataset: str) -> tuple[DatasetPaths, Manifest]:
    """The manifest alone (no Parquet libraries needed): for fast listing commands."""
    paths = _require(ctx, dataset)
    return paths, Manifest.load(paths.manifest)


def _split(values: str | None) -> list[str] | None:
    return [v.strip() for v in values.split(",") if v.strip()] if values else None


def _show_rows(records: list[dict], columns: list[str], as_json: bool, max_width: int = 40) -> None:
    if as_json:
        print_json(records)
        return
    out.print(table(None, columns, [[_short(r[c], max_width) for c in columns] for r in records]))


def _records(result) -> list[dict]:
    """Rows of an Arrow table as dicts. Top-level timestamps are converted here: pyarrow would
    import pandas (~0.2 s) to convert time zones, which point reads do not otherwise need."""
    import datetime as dt

    import pyarrow as pa

    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    units = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0.001}
    stamps = {}
    for f in result.schema:
        if pa.types.is_timestamp(f.type) and f.type.tz in ("UTC", "+00:00", "Z"):
            scale = units[f.type.unit]
            stamps[f.name] = [None if v is None else epoch + dt.timedelta(microseconds=v * scale)
                              for v in result.column(f.name).cast(pa.int64()).to_pylist()]
    plain = result.drop_columns(list(stamps)).to_pylist()
    order = result.column_names
    return [{c: (stamps[c][i] if c in stamps else row[c]) for c in order} for i, row in enumerate(plain)]


def _short(value, width: int) -> str:
    text = json.dumps(value, default=str) if isinstance(value, (list, dict)) else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


# -- datasets ------------------------------------------------------------------------------------
@app.command()
@handled
def init(ctx: typer.Context, dataset: str = DatasetArg,
         source: str = typer.Option("", help="Where the data comes from (free text)."),
         notes: str = typer.Option("", help="Notes for meta.md.")) -> None:
    """Create an empty dataset."""
    from .store import Dataset

    ds = Dataset.create(_root_of(ctx), dataset, source=source, notes=notes)
    out.print(f"Created dataset {ds.id} at {ds.dir}")


@app.command("import")
@handled
def import_(ctx: typer.Context, dataset: str = DatasetArg,
            path: Path = typer.Argument(..., help="CSV, Parquet or FASTA file."),
            fmt: str | None = typer.Option(None, "--format", help="csv | parquet | fasta (default: from the extension)."),
            bio_type: str = typer.Option("dna", "--bio-type", help="dna | rna | protein."),
            alphabet: str | None = typer.Option(None, "--alphabet", help="dna_4, dna_5, rna_4, rna_5, protein_20, protein_21."),
            source: str | None = typer.Option(None, "--source", help="Source label (default: a per-row `source` column, else the file name)."),
            on_conflict: str = typer.Option("error", "--on-conflict", help="error | ignore records already stored."),
            sequence_column: str = typer.Option("sequence", "--sequence-column", help="Column holding the sequences (CSV/Parquet)."),
            create: bool = typer.Option(False, "--create", help="Create the dataset if it does not exist."),
            as_json: bool = JsonOpt) -> None:
    """Import sequences from a file (validated; the dataset is unchanged if any row is bad)."""
    from .io import detect_format, read_records
    from .store import Dataset

    if on_conflict not in ("error", "ignore"):
        raise UsageError(f"--on-conflict must be error or ignore, not {on_conflict!r}")
    from .incumbent import is_incumbent_dir

    if path.name == "records.parquet" and is_incumbent_dir(path.resolve().parent):
        from ..core.console import warn

        warn(f"{path.parent} is a dataset of the previous usr: `usr migrate {path.parent}` carries all of it "
             "(derived columns, tombstones, snapshots, events; see docs/migrate.md)")
    root = _root_of(ctx)
    ds = Dataset(root, dataset) if create else Dataset.open(root, dataset)
    batch = read_records(path, fmt=fmt, bio_type=bio_type, alphabet=alphabet, source=source, sequence_column=sequence_column)
    if create:
        ds = Dataset.create(root, dataset, source=str(path.name), exist_ok=True)
    res = ds.append(batch.records, on_conflict=on_conflict, event_args={"file": path.name, "format": detect_format(path, fmt)},
                    note=f"import {path.name}")
    if as_json:
        print_json({"dataset": ds.id, "added": res.added, "skipped": res.skipped, "ignored_columns": batch.ignored_columns})
        return
    out.print(f"Imported {res.added} record(s) into {ds.id}" + (f" ({res.skipped} already present, skipped)" if res.skipped else ""))
    if batch.ignored_columns:
        from ..core.console import warn

        warn(f"columns not imported: {', '.join(batch.ignored_columns)} (add them with `usr attach {ds.id} {path} --namespace NS`)")


@app.command("ls")
@handled
def ls(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """List datasets under the root (and say where else datasets were found)."""
    root = _root_of(ctx)
    obj = ctx.find_root().obj or {}
    if not root.is_dir() and (obj.get("root") is not None or os.environ.get(ROOT_ENV)):
        given = "--root" if obj.get("root") is not None else f"${ROOT_ENV}"
        raise NotFoundError(f"the USR root {root} does not exist", hint=f"check {given}; `usr init namespace/name` creates a root")
    rows: list[dict[str, Any]] = []
    for did in list_dataset_ids(root):
        man = _manifest(ctx, did)[1]
        rows.append({"dataset": did, "rows": man.rows, "files": len(man.all_files()), "bytes": man.bytes,
                     "namespaces": man.derived_namespaces(), "updated_at": man.updated_at})
    if as_json:
        print_json(rows)
    elif not rows:
        out.print(f"No datasets under {root}" + ("" if root.is_dir() else " (it does not exist yet)"), highlight=False)
    else:
        out.print(table(str(root), ["dataset", "rows", "files", "size", "namespaces", "updated"],
                        [[r["dataset"], r["rows"], r["files"], _size(r["bytes"]), ",".join(r["namespaces"]), r["updated_at"]] for r in rows]))
    _ls_hints(root, empty=not rows)


def _ls_hints(root: Path, *, empty: bool) -> None:
    """On stderr: incumbent datasets waiting for `usr migrate`, and (for an empty root) workspace roots."""
    from ..core.console import info
    from .discover import display, workspace_roots
    from .incumbent import find_incumbent_datasets

    cwd = Path.cwd()
    for ref in find_incumbent_datasets(root):
        to = ref.new_id or "<namespace/name>"
        if ref.new_id and (root / ref.new_id / "manifest.json").exists():
            info(f"{ref.old_id}: dataset of the previous usr, already converted to {to} (remove {ref.path} when satisfied)")
        else:
            extra = "" if ref.new_id else " --to namespace/name"
            info(f"{ref.old_id}: dataset of the previous usr; convert it with `usr --root {root} migrate {ref.old_id}{extra}` (becomes {to})")
    if empty:
        found = [ws for ws in workspace_roots(cwd) if ws.resolve() != root.resolve()]
        for ws in found[:5]:
            ids = ", ".join(list_dataset_ids(ws)[:3])
            info(f"datasets written by `dense run` live in their workspace: {ids} in `usr --root {display(ws, cwd)} ls`")
        if not found:
            info(f"(`dense run` writes into its workspace's own root, <workspace>/outputs/usr_datasets; pass it with --root, "
                 f"or set output.usr.root or ${ROOT_ENV} to share one root)")


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


@app.command()
@handled
def info(ctx: typer.Context, dataset: str = DatasetArg, as_json: bool = JsonOpt) -> None:
    """Rows, files, size, namespaces and snapshots of a dataset (read from the manifest only)."""
    paths, man = _manifest(ctx, dataset)
    snapshots = sorted(p.stem for p in paths.snapshots_dir.glob("*.json"))
    data = {"dataset": dataset, "path": str(paths.dir), "rows": man.rows, "parts": len(man.parts),
            "overlay_files": sum(len(v) for v in man.overlays.values()), "bytes": man.bytes,
            "namespaces": man.derived_namespaces(), "overlay_namespaces": man.namespaces(), "derived_columns": man.columns, "bio_types": man.bio_types,
            "snapshots": snapshots, "created_at": man.created_at, "updated_at": man.updated_at,
            "events_log": str(paths.events_log)}
    if as_json:
        print_json(data)
        return
    for k, v in data.items():
        out.print(f"{k:16} {', '.join(map(str, v)) if isinstance(v, list) else (json.dumps(v) if isinstance(v, dict) else v)}", highlight=False)


@app.command()
@handled
def schema(ctx: typer.Context, dataset: str = DatasetArg, as_json: bool = JsonOpt) -> None:
    """Column names and types (records plus overlays)."""
    ds = _open(ctx, dataset)
    sch = ds.scan(include_deleted=True).collect_schema()
    man = ds.manifest()
    rows = [{"column": c, "type": str(t), "origin": "overlay" if c in man.columns else "record"} for c, t in sch.items()]
    if as_json:
        print_json(rows)
    else:
        out.print(table(ds.id, ["column", "type", "origin"], [[r["column"], r["type"], r["origin"]] for r in rows]))


@app.command()
@handled
def head(ctx: typer.Context, dataset: str = DatasetArg, n: int = typer.Option(10, "-n", help="Number of records."),
         columns: str | None = typer.Option(None, "--columns", help="Comma-separated columns to show."),
         include_deleted: bool = typer.Option(False, "--include-deleted", help="Show tombstoned records too."),
         as_json: bool = JsonOpt) -> None:
    """The first records, overlays joined (reads only the first row group)."""
    from .reader import head_table
    from .schema import RECORD_FIELDS

    paths, man = _manifest(ctx, dataset)
    cols = _split(columns)
    if cols:
        unknown = [c for c in cols if c not in RECORD_FIELDS and c not in man.columns]
        if unknown:
            raise InputError(f"unknown column(s) {', '.join(unknown)}", hint="see `usr schema` for the column names")
    _arrow_memory()
    result = head_table(paths, man, n, include_deleted=include_deleted, columns=cols)
    if cols or as_json:
        _show_rows(_records(result), result.column_names, as_json)
        return
    _show_fitted(result)


def _show_fitted(result: pa.Table) -> None:
    """The default `head` view: the columns that fit the terminal whole (see usr/view.py)."""
    import pyarrow as pa
    from rich.table import Table

    from ..core.console import info
    from .view import fit, rows

    records = _records(result)
    nested = {f.name for f in result.schema if pa.types.is_nested(f.type)}
    view = fit(records, result.column_names, nested, out.width)
    t = Table(box=None, pad_edge=False, padding=(0, 1), show_edge=False, header_style="bold")
    for label, width in zip(view.headers, view.widths, strict=True):
        t.add_column(label, width=width, no_wrap=True, overflow="ellipsis")
    for r in rows(records, view):
        t.add_row(*r)
    out.print(t, highlight=False)
    if view.caption:
        info(f"({view.caption})")


@app.command()
@handled
def get(ctx: typer.Context, dataset: str = DatasetArg, record_id: str = typer.Argument(..., help="Record id (sha1)."),
        include_deleted: bool = typer.Option(False, "--include-deleted", help="Find the record even if it is tombstoned."),
        as_json: bool = JsonOpt) -> None:
    """One record by id, with its overlay columns (the id index finds its row group)."""
    from .reader import get_table

    paths, man = _manifest(ctx, dataset)
    rid = record_id.strip().lower()
    _arrow_memory()
    rows = _records(get_table(paths, man, [rid], include_deleted=include_deleted)) if _is_sha1(record_id) else []
    if not rows:
        raise NotFoundError(f"no record {record_id} in {dataset}", hint="ids are 40-character sha1 hex; find them with `usr head` or `usr grep`")
    if as_json:
        print_json(rows[0])
    else:
        for k, v in rows[0].items():
            out.print(f"{k:28} {v}", highlight=False)


def _is_sha1(text: str) -> bool:
    t = text.strip().lower()
    return len(t) == 40 and all(c in "0123456789abcdef" for c in t)


@app.command()
@handled
def grep(ctx: typer.Context, dataset: str = DatasetArg, pattern: str = typer.Argument(..., help="Regular expression over sequences (case-insensitive)."),
         limit: int = typer.Option(20, "--limit", help="Most records to print."),
         include_deleted: bool = typer.Option(False, "--include-deleted", help="Search tombstoned records too."),
         as_json: bool = JsonOpt) -> None:
    """Records whose sequence matches PATTERN (reading stops at --limit matches)."""
    import re

    from .reader import grep_table

    try:
        re.compile(pattern)
    except re.error as exc:
        raise InputError(f"invalid pattern {pattern!r}: {exc}", hint="use a regular expression such as TTGACA.{15,19}TATAAT") from None
    paths, man = _manifest(ctx, dataset)
    _arrow_memory()
    try:
        result = grep_table(paths, man, pattern, limit=limit, include_deleted=include_deleted)
    except ValueError as exc:  # Arrow's RE2 rejects a few constructs Python accepts (e.g. look-arounds)
        raise InputError(f"invalid pattern {pattern!r}: {str(exc).splitlines()[0]}", hint="use RE2 syntax (no look-arounds or backreferences)") from None
    shown = result.column_names if as_json else ["id", "sequence", "source"]
    _show_rows(_records(result.select(shown)), shown, as_json, max_width=64)


@app.command()
@handled
def export(ctx: typer.Context, dataset: str = DatasetArg, path: Path = typer.Argument(..., help="Output file."),
           fmt: str | None = typer.Option(None, "--format", help="csv | parquet | fasta | genbank (default: from the extension)."),
           columns: str | None = typer.Option(None, "--columns", help="Comma-separated columns to write (default: all)."),
           limit: int | None = typer.Option(None, "--limit", min=0, help="Write at most N records (default: all)."),
           include_deleted: bool = typer.Option(False, "--include-deleted", help="Write tombstoned records too.")) -> None:
    """Write records (overlays joined) to a CSV, Parquet, FASTA or GenBank file, streaming and atomically.

    GenBank needs DenseGen placements: each placed site and promoter element becomes a feature.
    """
    import polars as pl

    from . import query
    from .io import EXPORT_FORMATS, detect_format, export_batches
    from .reader import Selection

    ds = _open(ctx, dataset)
    fmt = detect_format(path, fmt, EXPORT_FORMATS)
    rd = query.reader(ds)
    schema = query.polars_schema(rd)
    cols = _split(columns)
    if fmt == "genbank":
        from .export_genbank import genbank_columns, write_genbank

        if cols:
            raise UsageError("--columns does not apply to --format genbank", hint="GenBank entries always carry the sequence and its placements")
        sel = Selection(tuple(genbank_columns(schema, dataset)), None, include_deleted)
        n = write_genbank(rd.arrow_batches(sel, n_rows=limit), path)
        out.print(f"Wrote {n} record(s) to {path}")
        return
    if cols:
        query.check_columns(cols, schema)
    if fmt == "fasta":
        cols = ["id", "sequence"]
    chosen = cols or list(schema)
    frames = (pl.DataFrame(pl.from_arrow(t)).cast({c: schema[c] for c in chosen})
              for t in rd.arrow_batches(Selection(tuple(chosen), None, include_deleted), n_rows=limit))
    n = export_batches(frames, path, fmt, {c: schema[c] for c in chosen})
    out.print(f"Wrote {n} record(s) to {path}")


@app.command()
@handled
def attach(ctx: typer.Context, dataset: str = DatasetArg, path: Path = typer.Argument(..., help="CSV or Parquet with a key column and value columns."),
           namespace: str = typer.Option(..., "--namespace", help="Namespace for the columns (stored as <namespace>__<field>)."),
           key: str = typer.Option("id", "--key", help="id | sequence."),
           key_col: str | None = typer.Option(None, "--key-col", help="Column holding the key (default: same as --key)."),
           columns: str | None = typer.Option(None, "--columns", help="Comma-separated columns to attach (default: all)."),
           allow_missing: bool = typer.Option(False, "--allow-missing", help="Drop keys that are not records instead of failing."),
           fmt: str | None = typer.Option(None, "--format", help="csv | parquet (default: from the extension)."),
           as_json: bool = JsonOpt) -> None:
    """Attach derived columns as an overlay (types are fixed by the first attach)."""
    from .io import read_overlay

    ds = _open(ctx, dataset)
    man = ds.manifest()
    bio = man.bio_types[0] if len(man.bio_types) == 1 else None
    tbl = read_overlay(path, fmt=fmt, key=key, key_col=key_col, columns=_split(columns), bio_type=bio)
    res = ds.write_overlay(namespace, tbl, allow_missing=allow_missing, event_args={"file": path.name, "key": key},
                           note=f"attach {namespace} from {path.name}")
    if as_json:
        print_json({"dataset": ds.id, "namespace": namespace, **res})
    else:
        out.print(f"Attached {tbl.num_columns - 1} column(s) to {res['rows']} record(s) of {ds.id} under {namespace}"
                  + (f"; {res['dropped']} key(s) not in the dataset were dropped" if res["dropped"] else ""))


def _collect_ids(ids: list[str], id_file: Path | None) -> list[str]:
    found = list(ids or [])
    if id_file:
        if not id_file.exists():
            raise NotFoundError(f"id file {id_file} does not exist")
        found += [ln.strip() for ln in id_file.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    bad = [i for i in found if not _is_sha1(i)]
    if bad:
        raise InputError(f"{bad[0]!r} is not a record id", hint="ids are 40-character sha1 hex")
    if not found:
        raise UsageError("no ids given", hint="pass --id ID (repeatable) or --id-file FILE")
    return [i.lower() for i in found]


@app.command()
@handled
def delete(ctx: typer.Context, dataset: str = DatasetArg, ids: list[str] = typer.Option([], "--id", help="Record id (repeatable)."),
           id_file: Path | None = typer.Option(None, "--id-file", help="File with one id per line."),
           reason: str = typer.Option("", "--reason", help="Why the records are hidden (kept with the tombstone)."),
           allow_missing: bool = typer.Option(False, "--allow-missing", help="Skip ids that are not in the dataset instead of failing.")) -> None:
    """Hide records (tombstones); nothing is erased and `usr restore` brings them back."""
    ds = _open(ctx, dataset)
    n = ds.delete(_collect_ids(ids, id_file), reason=reason, allow_missing=allow_missing)
    out.print(f"Deleted (tombstoned) {n} record(s) in {ds.id}")


@app.command()
@handled
def restore(ctx: typer.Context, dataset: str = DatasetArg, ids: list[str] = typer.Option([], "--id", help="Record id (repeatable)."),
            id_file: Path | None = typer.Option(None, "--id-file", help="File with one id per line."),
            allow_missing: bool = typer.Option(False, "--allow-missing", help="Skip ids that are not in the dataset instead of failing.")) -> None:
    """Un-hide tombstoned records."""
    ds = _open(ctx, dataset)
    n = ds.restore(_collect_ids(ids, id_file), allow_missing=allow_missing)
    out.print(f"Restored {n} record(s) in {ds.id}")


@app.command()
@handled
def materialize(ctx: typer.Context, dataset: str = DatasetArg, namespaces: str | None = typer.Option(None, "--namespaces", help="Comma-separated (default: all)."),
                yes: bool = typer.Option(False, "-y", "--yes", help="Do not ask for confirmation.")) -> None:
    """Fold overlay columns into the base records (old files stay referenced by snapshots)."""
    ds = _open(ctx, dataset)
    if not yes and not typer.confirm(f"Fold overlays into the base of {ds.id}?", default=False):
        raise typer.Exit(1)
    res = ds.materialize(_split(namespaces))
    out.print(f"Materialized {', '.join(res['namespaces']) or 'nothing'} into {ds.id} ({res['rows']} rows)")


@app.command()
@handled
def compact(ctx: typer.Context, dataset: str = DatasetArg,
            target_rows: int = typer.Option(2_000_000, "--target-rows", min=1, help="Rows per merged part; parts of at least half this size are left alone."),
            as_json: bool = JsonOpt) -> None:
    """Merge small parts (folding their overlay values in), leave big ones; remove unreferenced and temp files."""
    res = _open(ctx, dataset).compact(target_rows=target_rows)
    if as_json:
        print_json(res)
    else:
        out.print(f"Compacted {dataset}: {res['files_before']} -> {res['files_after']} file(s), "
                  f"{res['parts_rewritten']} part(s) rewritten, {res['files_removed']} leftover file(s) removed")


@app.command("validate")
@handled
def validate_cmd(ctx: typer.Context, dataset: str = DatasetArg, no_hashes: bool = typer.Option(False, "--no-hashes", help="Skip sha256 of part files."),
                 as_json: bool = JsonOpt) -> None:
    """Check hashes, row counts, ids, alphabets and overlay keys. Exit 1 if anything is wrong."""
    from .validate import validate as validate_dataset

    ds = _open(ctx, dataset)
    rep = validate_dataset(ds, hashes=not no_hashes)
    if as_json:
        print_json(rep.as_dict())
    else:
        for w in rep.warnings:
            out.print(f"warning: {w}", highlight=False)
        for e in rep.errors:
            out.print(f"error: {e}", highlight=False)
        out.print(f"{'OK' if rep.ok else 'INVALID'}: {ds.id}: {rep.rows} rows in {rep.files} file(s)")
    if not rep.ok:
        raise typer.Exit(1)


@app.command("migrate")
@handled
def migrate_cmd(ctx: typer.Context,
                source: str = typer.Argument(..., help="Incumbent dataset: its directory, or its id under --root (e.g. densegen_demo)."),
                to: str | None = typer.Option(None, "--to", help="Dataset id here (default: densegen_<ws> -> densegen/<ws>; see docs/migrate.md)."),
                dry_run: bool = typer.Option(False, "--dry-run", help="Convert and validate in a scratch directory; publish nothing."),
                as_json: bool = JsonOpt) -> None:
    """Convert a dataset of the previous usr (records.parquet, overlays, snapshots, events) into this store."""
    from .migrate import migrate

    rep = migrate(source, _root_of(ctx), dataset_id=to, dry_run=dry_run)
    if as_json:
        print_json(rep.as_dict())
        return
    for line in rep.lines():
        out.print(line, highlight=False, markup=False)


# -- snapshots -----------------------------------------------------------------------------------
@snapshot_app.command("create")
@handled
def snapshot_create(ctx: typer.Context, dataset: str = DatasetArg, name: str | None = typer.Option(None, "--name", help="Snapshot name (default: snap-<UTC time>).")) -> None:
    """Save the current state (a manifest copy; costs a few KB)."""
    snap = _open(ctx, dataset).snapshot(name)
    out.print(f"Snapshot {snap.name} of {dataset}: {snap.rows} rows, {snap.files} file(s)")


@snapshot_app.command("list")
@handled
def snapshot_list(ctx: typer.Context, dataset: str = DatasetArg, as_json: bool = JsonOpt) -> None:
    """List snapshots."""
    snaps = _open(ctx, dataset).snapshots()
    if as_json:
        print_json([s.__dict__ for s in snaps])
    else:
        out.print(table(dataset, ["name", "saved", "rows", "files"], [[s.name, s.created_at, s.rows, s.files] for s in snaps]))


@snapshot_app.command("restore")
@handled
def snapshot_restore(ctx: typer.Context, dataset: str = DatasetArg,
                     name: str = typer.Argument(..., help="Snapshot name (see `usr snapshot list`).")) -> None:
    """Make a snapshot the current state (the event log keeps the history)."""
    man = _open(ctx, dataset).restore_snapshot(name)
    out.print(f"Restored {dataset} to snapshot {name} ({man.rows} rows)")


# -- events --------------------------------------------------------------------------------------
@events_app.command("tail")
@handled
def events_tail(ctx: typer.Context, dataset: str = DatasetArg, n: int = typer.Option(10, "-n", help="Number of events."),
                follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new events."),
                interval: float = typer.Option(0.5, "--interval", help="Poll interval with --follow (s)."),
                idle_timeout: float | None = typer.Option(None, "--idle-timeout", help="With --follow, stop after this many idle seconds."),
                raw: bool = typer.Option(False, "--raw", help="Print raw JSON lines.")) -> None:
    """Print the last N events; with --follow, keep polling for new ones (works on NFS)."""
    ds = _open(ctx, dataset)
    path = ds.events_path
    for event in ev.tail_events(path, n):
        _print_event(event, raw)
    if not follow:
        return
    offset = path.stat().st_size if path.exists() else 0
    typer.echo(f"following {path} from byte {offset} (Ctrl-C to stop)", err=True)  # also a readiness signal for scripts
    idle_since = time.monotonic()
    while True:
        got = False
        if path.exists():
            if path.stat().st_size < offset:
                offset = 0
            for rec in ev.iter_event_records(path, offset):
                offset = rec.end
                got = True
                if rec.event is not None:
                    _print_event(rec.event, raw)
        if got:
            idle_since = time.monotonic()
        elif idle_timeout is not None and time.monotonic() - idle_since >= idle_timeout:
            return
        time.sleep(interval)


@events_app.command("reconcile")
@handled
def events_reconcile(ctx: typer.Context, dataset: str = DatasetArg, as_json: bool = JsonOpt) -> None:
    """Mark scheduler jobs that started but never finished, and are gone from the queue, as `job_lost`.

    A job killed with SIGKILL (SGE qdel without -notify, h_rt overrun) cannot write its own
    `job_finished`; run this (e.g. from cron or before `notify`) so the loss becomes an event.
    """
    from ..core.jobs import reconcile

    paths = _require(ctx, dataset)
    res = reconcile(paths.events_log, dataset, ev.Actor.current("usr"))
    if as_json:
        print_json(res)
        return
    for kind in ("lost", "running", "unknown"):
        for job in res[kind]:
            task = f" task {job.get('task_id')}" if job.get("task_id") else ""
            note = {"lost": "marked job_lost", "running": "still queued or running",
                    "unknown": f"cannot ask {job.get('scheduler')} from this host"}[kind]
            out.print(f"{job.get('scheduler')} job {job.get('job_id')}{task}: {note}", highlight=False)
    if not any(res.values()):
        out.print("No unfinished jobs.")


@events_app.command("jobs")
@handled
def events_jobs(ctx: typer.Context, dataset: str = DatasetArg,
                state: str | None = typer.Option(None, "--state", help="Only tasks in these states (comma-separated: running, completed, failed, cancelled, timeout, lost, unknown)."),
                job: str | None = typer.Option(None, "--job", help="Only this job id (an array's master id)."),
                as_json: bool = JsonOpt) -> None:
    """Every scheduler job and array task seen in the event log: state, exit code, signal, runtime, rows, host; a roll-up per array."""
    from ..core.job_view import VIEW_STATES, build_job_view, format_runtime

    wanted = _split(state)
    if wanted and any(s not in VIEW_STATES for s in wanted):
        bad = next(s for s in wanted if s not in VIEW_STATES)
        raise UsageError(f"--state {bad!r} is not a job state", hint=f"choose from {', '.join(VIEW_STATES)}")
    paths = DatasetPaths(_root_of(ctx), dataset).require()
    view = build_job_view(paths.events_log)
    if wanted or job:
        view.tasks = [t for t in view.tasks if (not wanted or t.state in wanted) and (not job or t.job_id == job)]
        view.arrays = [a for a in view.arrays if not job or a.job_id == job]
    if as_json:
        print_json({"dataset": dataset, **view.as_dict()})
        return
    if not view.tasks:
        out.print("No scheduler jobs in the event log." if not (wanted or job) else "No tasks match the filter.")
    else:
        sep = {"slurm": "_", "sge": "."}
        reasons = any(t.reason for t in view.tasks)
        rows = [[t.job_id + (sep.get(t.scheduler, ":") + t.task_id if t.task_id else ""), t.state, t.exit_code, t.signal,
                 format_runtime(t.runtime_s), t.rows_written, t.host or "", (t.started_at or "")[5:16].replace("T", " "),
                 *([t.reason or ""] if reasons else [])] for t in view.tasks]
        out.print(table(None, ["job", "state", "exit", "sig", "runtime", "rows", "host", "started", *(["reason"] if reasons else [])], rows))
    for a in view.arrays:
        states = ", ".join(f"{n} {s}" for s, n in sorted(a.states.items(), key=lambda kv: -kv[1]))
        expected = f"{a.tasks_seen}/{a.tasks_expected}" if a.tasks_expected is not None else f"{a.tasks_seen}"
        problems = "; ".join(f"{s}: task {', '.join(ids[:20])}{' …' if len(ids) > 20 else ''}" for s, ids in a.problem_tasks.items())
        out.print(f"array {a.scheduler} {a.job_id}: {expected} tasks seen ({states}); {a.rows_written} rows"
                  + (f"; {a.not_seen} never started" if a.not_seen else "") + ("; done" if a.done else "")
                  + (f" - {problems}" if problems else ""), highlight=False)


def _print_event(event: dict, raw: bool) -> None:
    if raw:
        typer.echo(json.dumps(event, separators=(",", ":")))
        return
    actor = event.get("actor", {})
    metrics = event.get("metrics") or {}
    status = (event.get("args") or {}).get("status")
    extra = " ".join(f"{k}={v}" for k, v in list(metrics.items())[:4])
    out.print(f"{event.get('ts', '')}  {event.get('action', '?'):18} {actor.get('tool', '')}:{actor.get('run_id', '')}"
              + (f"  status={status}" if status else "") + (f"  {extra}" if extra else "")
              + f"  rows={event.get('fingerprint', {}).get('rows')}", highlight=False)


sync_cli.register(app)


def main() -> None:
    run_app(app, "usr")
