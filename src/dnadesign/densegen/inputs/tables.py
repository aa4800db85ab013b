"""Table inputs: curated binding sites and sequence libraries (CSV / TSV / Parquet), and
sequences read from a USR dataset."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from ...core.errors import InputError

_ACGT = frozenset("ACGT")


@dataclass(frozen=True)
class SiteRecord:
    """One candidate site of a pool, with provenance for manifests and records."""

    id: str
    sequence: str
    regulator: str
    info: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def site_id(input_name: str, regulator: str, sequence: str) -> str:
    """Stable id of a site: same input, regulator and sequence -> same id on every machine."""
    digest = hashlib.sha1(f"{regulator}|{sequence}".encode()).hexdigest()[:10]
    return f"{input_name}:{regulator}:{digest}"


def read_table(path: Path, fmt: str, what: str) -> pa.Table:
    """Read CSV / TSV / Parquet as an Arrow table (all CSV columns as strings)."""
    if not path.exists():
        raise InputError(f"{what}: file {path} not found", hint="paths in the config are relative to the config file")
    if fmt == "auto":
        suffix = path.suffix.lower()
        fmt = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".parquet": "parquet", ".pq": "parquet"}.get(suffix, "")
        if not fmt:
            raise InputError(f"{what}: cannot tell the format of {path.name} from its suffix",
                             hint="set format: csv, tsv or parquet")
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        import pyarrow.csv as pacsv

        delim = "\t" if fmt == "tsv" else ","
        with open(path, "rb") as fh:
            header = fh.readline().decode("utf-8", "replace").rstrip("\r\n").split(delim)
        types = {c: pa.string() for c in header}
        return pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=delim),
                              convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False))
    except (pa.ArrowInvalid, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"{what}: cannot read {path} as {fmt}: {first}") from None


def _column(table: pa.Table, name: str, what: str, path: Path, key: str) -> list:
    if name not in table.column_names:
        raise InputError(f"{what}: column {name!r} not found in {path.name} (columns: {', '.join(table.column_names)})",
                         hint=f"set {key} in the config")
    return table.column(name).to_pylist()


def _clean(seq: Any) -> str:
    return "" if seq is None else str(seq).strip().upper()


def read_binding_sites(inp, path: Path) -> tuple[list[SiteRecord], list[str]]:
    """Sites of a `binding_sites` input, de-duplicated on (regulator, sequence); returns (sites, notes)."""
    what = f"input {inp.name!r}"
    table = read_table(path, inp.format, what)
    regs = _column(table, inp.columns.regulator, what, path, "columns.regulator")
    seqs = _column(table, inp.columns.sequence, what, path, "columns.sequence")
    ids = _column(table, inp.columns.site_id, what, path, "columns.site_id") if inp.columns.site_id else None
    keep_regs = set(inp.regulators) if inp.regulators is not None else None
    out: list[SiteRecord] = []
    seen: set[tuple[str, str]] = set()
    used_ids: set[str] = set()
    skipped = dups = filtered = 0
    for row, (reg, raw) in enumerate(zip(regs, seqs, strict=False)):
        line = row + 2 if path.suffix.lower() in (".csv", ".tsv", ".txt") else row + 1
        reg = "" if reg is None else str(reg).strip()
        seq = _clean(raw)
        if not reg:
            raise InputError(f"{what}: {path.name} row {line} has an empty regulator")
        if not seq or not set(seq) <= _ACGT:
            if inp.skip_invalid:
                skipped += 1
                continue
            raise InputError(f"{what}: {path.name} row {line}: sequence {raw!r} is not DNA (only A, C, G, T)",
                             hint="fix the row, or set skip_invalid: true on this input to drop such rows")
        if keep_regs is not None and reg not in keep_regs:
            filtered += 1
            continue
        if (inp.length.min and len(seq) < inp.length.min) or (inp.length.max and len(seq) > inp.length.max):
            filtered += 1
            continue
        if (reg, seq) in seen:
            dups += 1
            continue
        seen.add((reg, seq))
        sid = f"{inp.name}:{ids[row]}" if ids is not None else site_id(inp.name, reg, seq)
        if sid in used_ids:
            raise InputError(f"{what}: {path.name} row {line}: site id {ids[row] if ids else sid!r} is repeated",
                             hint="site ids must be unique within an input")
        used_ids.add(sid)
        out.append(SiteRecord(sid, seq, reg, {"source": inp.name, "row": line}))
    if keep_regs is not None:
        missing = sorted(keep_regs - {s.regulator for s in out})
        if missing:
            raise InputError(f"{what}: regulators {', '.join(missing)} have no sites in {path.name}",
                             hint="check the spelling in `regulators` (names are case-sensitive)")
    notes = []
    if skipped:
        notes.append(f"input {inp.name!r}: skipped {skipped} row(s) with non-ACGT sequences")
    if dups:
        notes.append(f"input {inp.name!r}: merged {dups} duplicate (regulator, sequence) row(s)")
    if not out:
        raise InputError(f"{what}: no usable sites in {path.name} after filters")
    return out, notes


def read_sequence_library(inp, path: Path) -> tuple[list[SiteRecord], list[str]]:
    """Whole sequences of a `sequence_library` input, each one site (label: regulator column or name)."""
    what = f"input {inp.name!r}"
    table = read_table(path, inp.format, what)
    seqs = _column(table, inp.sequence_column, what, path, "sequence_column")
    regs = _column(table, inp.regulator_column, what, path, "regulator_column") if inp.regulator_column else None
    label = inp.regulator or inp.name
    out: list[SiteRecord] = []
    seen: set[tuple[str, str]] = set()
    skipped = 0
    for row, raw in enumerate(seqs):
        seq = _clean(raw)
        if not seq or not set(seq) <= _ACGT:
            if inp.skip_invalid:
                skipped += 1
                continue
            raise InputError(f"{what}: {path.name} row {row + 2}: sequence {raw!r} is not DNA (only A, C, G, T)",
                             hint="fix the row, or set skip_invalid: true on this input")
        reg = str(regs[row]).strip() if regs is not None and regs[row] else label
        if (reg, seq) in seen:
            continue
        seen.add((reg, seq))
        out.append(SiteRecord(site_id(inp.name, reg, seq), seq, reg, {"source": inp.name, "row": row + 2}))
        if inp.limit and len(out) >= inp.limit:
            break
    if not out:
        raise InputError(f"{what}: no usable sequences in {path.name}")
    notes = [f"input {inp.name!r}: skipped {skipped} non-ACGT row(s)"] if skipped else []
    return out, notes


def read_usr_sequences(inp, root: Path | None) -> tuple[list[SiteRecord], list[str]]:
    """Sequences of a USR dataset (tombstoned rows excluded), in stored order, up to `limit`."""
    from ...core.errors import DnadesignError
    from ...usr.store import Dataset

    what = f"input {inp.name!r}"
    try:
        ds = Dataset.open(root, inp.dataset)
        frame = ds.scan().select(["id", "sequence"])
        if inp.limit:
            frame = frame.head(inp.limit)
        df = frame.collect()
    except DnadesignError as e:
        raise InputError(f"{what}: cannot read USR dataset {inp.dataset}: {e.message}", hint=e.hint) from None
    label = inp.regulator or inp.name
    out: list[SiteRecord] = []
    seen: set[str] = set()
    for rid, raw in zip(df["id"].to_list(), df["sequence"].to_list(), strict=False):
        seq = _clean(raw)
        if not seq or not set(seq) <= _ACGT:
            raise InputError(f"{what}: USR record {rid} is not a DNA sequence over ACGT")
        if seq in seen:
            continue
        seen.add(seq)
        out.append(SiteRecord(f"{inp.name}:{rid[:12]}", seq, label, {"source": inp.name, "usr_id": rid}))
    if not out:
        raise InputError(f"{what}: USR dataset {inp.dataset} has no records")
    return out, []
