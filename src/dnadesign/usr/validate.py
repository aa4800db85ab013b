"""`usr validate`: check a dataset against its manifest and the record rules, streaming part by part."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..core.ids import sha256_file
from .layout import DERIVED_DIR, RECORDS_DIR
from .manifest import FileEntry
from .schema import ALPHABETS, RECORD_FIELDS

if TYPE_CHECKING:
    from .store import Dataset


@dataclass
class ValidationReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rows: int = 0
    files: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict:
        return {"ok": self.ok, "rows": self.rows, "files": self.files, "errors": self.errors, "warnings": self.warnings}


_LIST_FIELD = re.compile(r"\b(large_list|list)<[A-Za-z_][A-Za-z0-9_]*: ")


def type_key(text: str) -> str:
    """A type's text with the name of every list's value field dropped (`item` and `element` are the same type)."""
    return _LIST_FIELD.sub(r"\1<", text)


def same_type(actual: pa.DataType, recorded: str) -> bool:
    """Whether a file's column type is the recorded one, compared by structure, not by Arrow's field names."""
    return type_key(str(actual)) == type_key(recorded)


def _check_file(ds: Dataset, entry: FileEntry, rep: ValidationReport, hashes: bool) -> bool:
    path = ds.paths.file(entry.file)
    if not path.exists():
        rep.errors.append(f"{entry.file}: listed in the manifest but missing")
        return False
    if path.stat().st_size != entry.bytes:
        rep.errors.append(f"{entry.file}: size {path.stat().st_size} != manifest {entry.bytes}")
        return False
    if hashes and sha256_file(path) != entry.sha256:
        rep.errors.append(f"{entry.file}: sha256 does not match the manifest (file corrupted or replaced)")
        return False
    rows = pq.ParquetFile(path).metadata.num_rows
    if rows != entry.rows:
        rep.errors.append(f"{entry.file}: {rows} rows, manifest says {entry.rows}")
        return False
    return True


def _expected_ids(frame: pl.DataFrame) -> pl.Series:
    """Recompute `sha1("{bio_type}|{SEQUENCE}")` for every row (upper-casing is vectorised in polars)."""
    keyed = frame.select(
        pl.concat_str([pl.col("bio_type"), pl.lit("|"),
                       pl.when(pl.col("bio_type").is_in(["dna", "rna"])).then(pl.col("sequence").str.to_uppercase())
                       .otherwise(pl.col("sequence"))]).alias("k")
    ).get_column("k")
    sha1 = hashlib.sha1
    return pl.Series("expected", [sha1(k.encode()).hexdigest() for k in keyed.to_list()], dtype=pl.String)


def validate(ds: Dataset, *, hashes: bool = True, max_examples: int = 5) -> ValidationReport:
    """Check part hashes and row counts, record schema, recomputed ids, lengths, alphabets,
    duplicate ids, overlay keys and column types, and report unreferenced files as warnings."""
    rep = ValidationReport()
    man = ds.manifest()
    all_ids: list[pl.Series] = []
    for entry in man.parts:
        rep.files += 1
        if not _check_file(ds, entry, rep, hashes):
            continue
        frame = pl.read_parquet(ds.paths.file(entry.file))
        missing = [c for c in RECORD_FIELDS if c not in frame.columns]
        if missing:
            rep.errors.append(f"{entry.file}: missing record column(s) {', '.join(missing)}")
            continue
        rep.rows += frame.height
        nulls = [c for c in RECORD_FIELDS if frame.get_column(c).null_count()]
        if nulls:
            rep.errors.append(f"{entry.file}: null values in {', '.join(nulls)}")
            continue
        bad = frame.with_row_index("row").filter(_expected_ids(frame) != pl.col("id"))
        for row in bad.head(max_examples).iter_rows(named=True):
            rep.errors.append(f"{entry.file}, row {row['row']}: id {row['id']} does not match its sequence")
        bad_len = frame.filter(pl.col("sequence").str.len_chars() != pl.col("length"))
        if bad_len.height:
            rep.errors.append(f"{entry.file}: {bad_len.height} row(s) whose length column is wrong (e.g. id {bad_len.get_column('id')[0]})")
        for alphabet, (bio, letters) in ALPHABETS.items():
            sub = frame.filter(pl.col("alphabet") == alphabet)
            if sub.height:
                case = "" if bio == "protein" else "(?i)"
                wrong = sub.filter(pl.col("sequence").str.contains(f"{case}[^{letters}]"))
                if wrong.height:
                    rep.errors.append(f"{entry.file}: {wrong.height} sequence(s) outside alphabet {alphabet} (e.g. id {wrong.get_column('id')[0]})")
        unknown = frame.filter(~pl.col("alphabet").is_in(list(ALPHABETS)))
        if unknown.height:
            rep.errors.append(f"{entry.file}: unknown alphabet {unknown.get_column('alphabet')[0]!r}")
        all_ids.append(frame.get_column("id"))
    ids = pl.concat(all_ids) if all_ids else pl.Series("id", [], dtype=pl.String)
    dups = ids.len() - ids.n_unique()
    if dups:
        msg = f"{dups} duplicate id(s) across parts"
        (rep.warnings if man.dedupe_on_read else rep.errors).append(msg + (" (hidden on read after a merge; `usr compact` removes them)" if man.dedupe_on_read else ""))
    for _ns, entries in man.overlays.items():
        for entry in entries:
            rep.files += 1
            if not _check_file(ds, entry, rep, hashes):
                continue
            table = pq.read_table(ds.paths.file(entry.file))
            for name in table.column_names:
                if name == "id":
                    continue
                recorded = man.columns.get(name)
                if recorded is None:
                    rep.errors.append(f"{entry.file}: column {name} has no recorded type in the manifest")
                elif not same_type(table.schema.field(name).type, recorded):
                    rep.errors.append(f"{entry.file}: column {name} is {table.schema.field(name).type}, recorded as {recorded}")
            keys = pl.Series("id", table.column("id"))
            if keys.n_unique() != keys.len():
                rep.errors.append(f"{entry.file}: duplicate keys")
            n_foreign = pl.DataFrame({"id": keys}).join(pl.DataFrame({"id": ids}), on="id", how="anti").height
            if n_foreign:
                rep.errors.append(f"{entry.file}: {n_foreign} key(s) are not records of the dataset")
    refs = ds.referenced_files(man)
    for sub_name in (RECORDS_DIR, DERIVED_DIR):
        folder: Path = ds.dir / sub_name
        if folder.exists():
            for p in folder.rglob("*.parquet"):
                rel = p.relative_to(ds.dir).as_posix()
                if rel not in refs:
                    rep.warnings.append(f"{rel}: not referenced by the manifest or a snapshot (left by an interrupted write; `usr compact` removes it)")
    return rep
