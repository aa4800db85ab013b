"""Reading records and overlay columns from CSV / Parquet / FASTA files, and exporting datasets."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..core.atomic import atomic_write_with
from ..core.errors import InputError, NotFoundError
from ..core.ids import record_id
from .schema import RECORD_FIELDS, make_records, normalize_sequence

FORMATS = ("csv", "parquet", "fasta")
EXPORT_FORMATS = (*FORMATS, "genbank")  # genbank: export only (usr.export_genbank)


def detect_format(path: Path, fmt: str | None, formats: tuple[str, ...] = FORMATS) -> str:
    """The file format from `--format` or the file extension, one of `formats`."""
    if fmt:
        if fmt not in formats:
            raise InputError(f"unknown format {fmt!r}", hint=f"use one of {', '.join(formats)}")
        return fmt
    suffix = path.suffix.lower().lstrip(".")
    mapping = {"csv": "csv", "tsv": "csv", "parquet": "parquet", "pq": "parquet", "fa": "fasta", "fasta": "fasta", "fna": "fasta",
               "gb": "genbank", "gbk": "genbank", "genbank": "genbank"}
    if mapping.get(suffix) not in formats:
        raise InputError(f"cannot tell the format of {path.name} from its extension", hint=f"pass --format {'|'.join(formats)}")
    return mapping[suffix]


def read_table_file(path: Path, fmt: str) -> pl.DataFrame:
    """CSV (all columns as text) or Parquet as a polars frame; errors name the file."""
    if not path.exists():
        raise NotFoundError(f"input file {path} does not exist", hint="check the path")
    try:
        if fmt == "csv":
            sep = "\t" if path.suffix.lower() == ".tsv" else ","
            return pl.read_csv(path, separator=sep, infer_schema=False)
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError, pa.ArrowException) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot be read as {fmt}: {first}", hint="check that the file is well-formed") from None


def read_fasta(path: Path) -> tuple[list[str], list[str], list[int]]:
    """(headers, sequences, line numbers) from a FASTA file; malformed input names the line."""
    if not path.exists():
        raise NotFoundError(f"input file {path} does not exist", hint="check the path")
    headers: list[str] = []
    seqs: list[list[str]] = []
    lines: list[int] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, start=1):
            line = line.strip()
            if not line or line.startswith(";"):
                continue
            if line.startswith(">"):
                headers.append(line[1:].strip())
                seqs.append([])
                lines.append(n)
            elif not headers:
                raise InputError(f"{path}, line {n}: sequence data before the first '>' header", hint="is this a FASTA file?")
            else:
                seqs[-1].append(line.replace(" ", ""))
    for h, s, n in zip(headers, seqs, lines, strict=True):
        if not s:
            raise InputError(f"{path}, line {n}: record {h!r} has no sequence", hint="remove the empty record")
    if not headers:
        raise InputError(f"{path}: no FASTA records found", hint="records start with a '>' header line")
    return headers, ["".join(s) for s in seqs], lines


@dataclass(frozen=True)
class ImportBatch:
    records: pa.Table
    ignored_columns: list[str]


def read_records(path: Path, *, fmt: str | None = None, bio_type: str = "dna", alphabet: str | None = None,
                 source: str | None = None, sequence_column: str = "sequence") -> ImportBatch:
    """Read and validate a file of sequences into a record table (errors name file and row)."""
    fmt = detect_format(path, fmt)
    where = str(path)
    if fmt == "fasta":
        headers, fasta_seqs, lines = read_fasta(path)
        table = make_records(fasta_seqs, bio_type=bio_type, alphabet=alphabet, source=source or path.name,
                             where=where, row_numbers=[f"line {n} (>{h[:30]})" for h, n in zip(headers, lines, strict=True)])
        return ImportBatch(table, [])
    frame = read_table_file(path, fmt)
    if sequence_column not in frame.columns:
        raise InputError(f"{path} has no {sequence_column!r} column (columns: {', '.join(frame.columns[:8])})",
                         hint="rename the sequence column or pass --sequence-column")
    seqs: list[str | None] = [None if v is None else str(v) for v in frame.get_column(sequence_column).to_list()]
    ids = frame.get_column("id").cast(pl.String).to_list() if "id" in frame.columns else None
    if "bio_type" in frame.columns:
        kinds = set(frame.get_column("bio_type").drop_nulls().to_list())
        if kinds - {bio_type}:
            raise InputError(f"{path}: bio_type column holds {sorted(kinds)}, but the import is for {bio_type}",
                             hint="pass the matching --bio-type, or split the file")
    if source is None and "source" in frame.columns:
        src: str | list[str] = [s or path.name for s in frame.get_column("source").cast(pl.String).to_list()]
    else:
        src = source or path.name
    first_row = 2 if fmt == "csv" else 1  # CSV: line 1 is the header
    table = make_records(seqs, bio_type=bio_type, alphabet=alphabet, source=src, ids=ids, where=where,
                         row_numbers=[f"{'line' if fmt == 'csv' else 'row'} {i + first_row}" for i in range(len(seqs))])
    ignored = [c for c in frame.columns if c not in RECORD_FIELDS and c != sequence_column]
    return ImportBatch(table, ignored)


def read_overlay(path: Path, *, fmt: str | None, key: str, key_col: str | None, columns: list[str] | None,
                 bio_type: str | None) -> pa.Table:
    """Read columns to attach: returns a table with `id` plus the chosen columns (names not yet namespaced)."""
    fmt = detect_format(path, fmt)
    if fmt == "fasta":
        raise InputError("attach reads CSV or Parquet, not FASTA", hint="convert the values to a CSV with an id or sequence column")
    frame = read_table_file(path, fmt)
    if fmt == "csv":
        frame = _infer_csv_types(frame)
    key_col = key_col or key
    if key_col not in frame.columns:
        raise InputError(f"{path} has no key column {key_col!r}", hint="pass --key-col with the column that holds the key")
    keys = frame.get_column(key_col).cast(pl.String).to_list()
    for i, k in enumerate(keys):
        if k is None or not k.strip():
            raise InputError(f"{path}, row {i + 1}: key column {key_col!r} is empty", hint="fill in or remove the row")
    if key == "sequence":
        if not bio_type:
            raise InputError("attaching by sequence needs a dataset with one bio_type", hint="attach by --key id instead")
        keys = [record_id(bio_type, normalize_sequence(bio_type, k)) for k in keys]
    elif key != "id":
        raise InputError(f"unknown key {key!r}", hint="use --key id or --key sequence")
    value_cols = columns or [c for c in frame.columns if c != key_col and c not in ("id", *RECORD_FIELDS)]
    missing = [c for c in value_cols if c not in frame.columns]
    if missing:
        raise InputError(f"{path} has no column(s) {', '.join(missing)}", hint="check --columns")
    if not value_cols:
        raise InputError(f"{path} has no columns to attach besides the key", hint="add value columns")
    out = frame.select(value_cols).with_columns(pl.Series("id", keys)).select(["id", *value_cols])
    dup = out.get_column("id").is_duplicated()
    if dup.any():
        row = int(dup.arg_max() or 0) + 1
        raise InputError(f"{path}, row {row}: key appears more than once", hint="keep one row per record")
    return out.to_arrow()


def _infer_csv_types(frame: pl.DataFrame) -> pl.DataFrame:
    """Give text CSV columns numeric/bool types when every value parses (stable, predictable rules)."""
    cols = []
    for name in frame.columns:
        s = frame.get_column(name)
        vals = s.drop_nulls()
        if len(vals) == 0:
            cols.append(s)
            continue
        lowered = vals.str.to_lowercase()
        if lowered.is_in(["true", "false"]).all():
            cols.append(s.str.to_lowercase().replace_strict({"true": True, "false": False}, default=None, return_dtype=pl.Boolean))
            continue
        as_int = s.cast(pl.Int64, strict=False)
        if as_int.null_count() == s.null_count():
            cols.append(as_int)
            continue
        as_float = s.cast(pl.Float64, strict=False)
        if as_float.null_count() == s.null_count():
            cols.append(as_float)
            continue
        cols.append(s)
    return pl.DataFrame(cols)


def export_batches(batches: Iterable[pl.DataFrame], path: Path, fmt: str, schema: Mapping[str, Any] | None = None) -> int:
    """Stream frames into one CSV, Parquet or FASTA file, atomically; returns the rows written.

    Memory holds one batch: Parquet is written row group by row group, CSV and FASTA batch by batch.
    In CSV, nested values (lists, structs) are written as compact JSON text. FASTA needs `id` and
    `sequence` and wraps sequences at 80 characters.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    count = 0

    def write(p: Path) -> None:
        nonlocal count
        if fmt == "parquet":
            writer = None
            for frame in batches:
                table = frame.to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(p, table.schema, compression="zstd")
                writer.write_table(table, row_group_size=1 << 17)
                count += frame.height
            if writer is None:
                empty = pl.DataFrame(schema=dict(schema or {})).to_arrow()
                pq.write_table(empty, p, compression="zstd")
            else:
                writer.close()
            return
        with open(p, "wb") as fh:
            first = True
            for frame in batches:
                if fmt == "csv":
                    frame = _flatten_nested(frame)
                    buf = io.BytesIO()
                    frame.write_csv(buf, include_header=first)
                    fh.write(buf.getvalue())
                else:
                    text = frame.select(
                        pl.concat_str([pl.lit(">"), pl.col("id"), pl.lit("\n"),
                                       pl.col("sequence").str.extract_all(".{1,80}").list.join("\n"), pl.lit("\n")]))
                    fh.write("".join(text.to_series().to_list()).encode())
                first = False
                count += frame.height
            if first and fmt == "csv" and schema:
                fh.write((",".join(schema) + "\n").encode())

    atomic_write_with(path, write)
    return count


def _flatten_nested(frame: pl.DataFrame) -> pl.DataFrame:
    """Nested columns (list, struct, array) as compact JSON text, vectorised."""
    nested = [c for c, t in frame.schema.items() if isinstance(t, (pl.List, pl.Struct, pl.Array))]
    if not nested:
        return frame
    exprs = []
    for c in nested:
        if isinstance(frame.schema[c], pl.Struct):
            exprs.append(pl.col(c).struct.json_encode().alias(c))
        else:  # wrap in a one-field struct, encode, strip the wrapper: {"c":[...]} -> [...]
            prefix = len(json.dumps({c: 0}, separators=(",", ":"))) - 2
            exprs.append(pl.struct(pl.col(c)).struct.json_encode().str.slice(prefix).str.head(-1).alias(c))
    return frame.with_columns(exprs)


def export_frame(frame: pl.DataFrame, path: Path, fmt: str) -> None:
    """Write one in-memory frame atomically as CSV, Parquet or FASTA (see `export_batches`)."""
    export_batches([frame], path, fmt, dict(frame.schema))
