"""GenBank export of records that carry DenseGen placements, streamed batch by batch.

usr does not import densegen: the placements are read by their documented column schema
(`docs/dense.md`, "Columns"): `densegen__placements` is `list<struct{site_id, regulator, offset,
end, strand, sequence, fixed}>`, with `offset`/`end` 0-based on the + strand and `fixed` true for
promoter elements, whose `site_id` is `<promoter>:upstream` or `<promoter>:downstream`.

Each record becomes one GenBank entry: LOCUS name = the first 16 characters of the USR id (valid
for common viewers, which cap it at 16), ACCESSION/VERSION = the whole id, a `source` feature
(synthetic DNA construct), a `protein_bind` feature per placed site (`/bound_moiety` and `/label`
= regulator, strand from the placement), and per promoter a `promoter` feature over both elements
plus a `regulatory` feature per element (`-35` / `-10`, `/regulatory_class`). Written with
Biopython; memory holds one batch (plus 8 bytes per record to prove the LOCUS names unique).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from Bio import SeqIO
from Bio.Seq import Seq
from Bio.SeqFeature import FeatureLocation, SeqFeature
from Bio.SeqRecord import SeqRecord

from ..core.atomic import atomic_write_with
from ..core.errors import InputError

PLACEMENTS = "densegen__placements"
REQUIRED_FIELDS = ("regulator", "offset", "end", "strand")
OPTIONAL_COLUMNS = ("created_at", "source", "densegen__plan", "densegen__run_id", "densegen__n_sites")
LOCUS_MAX = 16
SLICE_ROWS = 2048
_LOCUS_BAD = re.compile(r"[^A-Za-z0-9_.-]")
# promoter element role -> (label, INSDC regulatory_class)
_ELEMENTS = {"upstream": ("-35", "minus_35_signal"), "downstream": ("-10", "minus_10_signal")}


def genbank_columns(available: Iterable[str], dataset: str = "the dataset") -> list[str]:
    """The columns a GenBank export reads; one clear error when there are no placements."""
    have = set(available)
    if PLACEMENTS not in have:
        raise InputError(f"{dataset} has no {PLACEMENTS} column, so there are no sites to annotate in GenBank",
                         hint="export datasets written by `dense run`, or use --format fasta|csv|parquet")
    return ["id", "sequence", PLACEMENTS, *(c for c in OPTIONAL_COLUMNS if c in have)]


def check_placements_type(t: pa.DataType) -> None:
    """Fail clearly when the placements column is not the documented list<struct{...}>."""
    ok = (pa.types.is_list(t) or pa.types.is_large_list(t)) and pa.types.is_struct(t.value_type)
    names = {t.value_type.field(i).name for i in range(t.value_type.num_fields)} if ok else set()
    missing = [f for f in REQUIRED_FIELDS if f not in names]
    if not ok or missing:
        raise InputError(f"{PLACEMENTS} is {t}, not the documented list<struct{{site_id, regulator, offset, end, strand, ...}}>",
                         hint="only placements written by `dense run` can be exported as GenBank")


def _q(text: object) -> str:
    """Text safe inside a GenBank qualifier or header line: ASCII, no double quotes."""
    return str(text).replace('"', "'").encode("ascii", "replace").decode("ascii")


def locus_name(record_id: str) -> str:
    """A LOCUS name for `record_id`: at most 16 characters from [A-Za-z0-9_.-]."""
    return _LOCUS_BAD.sub("_", record_id)[:LOCUS_MAX] or "record"


def _span(p: dict, length: int, rid: str) -> tuple[int, int, int]:
    """(start, end, strand as +1/-1) of a placement; one clear error when it does not fit the record."""
    start, end, strand = p.get("offset"), p.get("end"), p.get("strand")
    if start is None or end is None or not (0 <= start < end <= length) or strand not in ("+", "-"):
        raise InputError(f"record {rid}: placement {p.get('site_id') or p.get('regulator')!r} at "
                         f"[{start}, {end}) strand {strand!r} does not fit its {length}-bp sequence",
                         hint="check the dataset with `usr validate`; re-run `dense run` for this record")
    return int(start), int(end), 1 if strand == "+" else -1


def record_features(rid: str, sequence: str, placements: Sequence[dict] | None) -> list[SeqFeature]:
    """The GenBank features of one record: source, sites, promoters and their elements, by start."""
    length = len(sequence)
    feats: list[tuple[int, int, SeqFeature]] = []
    promoters: dict[str, list[tuple[int, int]]] = {}
    for p in placements or ():
        start, end, strand = _span(p, length, rid)
        site_id = _q(p.get("site_id") or "")
        reg = _q(p["regulator"])
        seq = p.get("sequence")
        if seq and seq != sequence[start:end]:
            raise InputError(f"record {rid}: placement {site_id or reg!r} says {seq} but the sequence has "
                             f"{sequence[start:end]} there", hint="check the dataset with `usr validate`")
        loc = FeatureLocation(start, end, strand=strand)
        if p.get("fixed"):
            name, _, role = site_id.rpartition(":")
            label, cls = _ELEMENTS.get(role, (site_id or reg, "other"))
            quals = {"regulatory_class": [cls], "label": [label],
                     "note": [f"{name or reg} {role or 'element'} (fixed promoter element)"]}
            feats.append((start, end, SeqFeature(loc, type="regulatory", qualifiers=quals)))
            promoters.setdefault(name or reg, []).append((start, end))
        else:
            quals = {"bound_moiety": [reg], "label": [reg], **({"note": [f"site_id: {site_id}"]} if site_id else {})}
            feats.append((start, end, SeqFeature(loc, type="protein_bind", qualifiers=quals)))
    for name, spans in promoters.items():
        if len(spans) > 1:
            lo, hi = min(a for a, _ in spans), max(b for _, b in spans)
            feats.append((lo, hi, SeqFeature(FeatureLocation(lo, hi, strand=1), type="promoter",
                                             qualifiers={"label": [name], "note": ["promoter span: upstream to downstream element"]})))
    feats.sort(key=lambda x: (x[0], -x[1], x[2].type))
    source = SeqFeature(FeatureLocation(0, length, strand=1), type="source",
                        qualifiers={"organism": ["synthetic DNA construct"], "mol_type": ["other DNA"]})
    return [source, *(f for _, _, f in feats)]


def _description(row: dict[str, Any], n_sites: int) -> str:
    parts = ["DenseGen designed sequence"]
    if row.get("densegen__plan"):
        parts.append(f"plan {row['densegen__plan']}")
    if row.get("densegen__run_id"):
        parts.append(f"run {row['densegen__run_id']}")
    parts.append(f"{n_sites} site{'s' if n_sites != 1 else ''}")
    return ", ".join(parts)


def table_records(table: pa.Table) -> Iterator[SeqRecord]:
    """SeqRecords of one small Arrow table (columns from `genbank_columns`), built lazily.

    `write_genbank` hands it `SLICE_ROWS` rows at a time, so a reader's large batch (up to a
    million rows when overlays are joined) never sits in memory as Python lists.
    """
    cols = {c: table.column(c).to_pylist() for c in table.column_names}
    for i in range(table.num_rows):
        row = {c: v[i] for c, v in cols.items()}
        rid, seq = str(row["id"]), row["sequence"]
        if not seq:
            raise InputError(f"record {rid} has no sequence", hint="check the dataset with `usr validate`")
        places = row.get(PLACEMENTS) or []
        n_sites = sum(1 for p in places if not p.get("fixed"))
        rec = SeqRecord(Seq(seq), id=re.sub(r"\s", "_", _q(rid)), name=locus_name(rid), description=_q(_description(row, n_sites)),
                        features=record_features(rid, seq, places))
        created = row.get("created_at")
        rec.annotations = {"molecule_type": "DNA", "topology": "linear", "data_file_division": "SYN",
                           "organism": "synthetic DNA construct", "source": "synthetic DNA construct"}
        if isinstance(created, datetime):
            rec.annotations["date"] = created.strftime("%d-%b-%Y").upper()
        if row.get("source"):
            rec.annotations["comment"] = _q(f"usr source: {row['source']}")
        yield rec


def _name_key(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


def write_genbank(batches: Iterable[pa.Table], path: Path) -> int:
    """Stream Arrow batches of records with placements into one GenBank file, atomically.

    Returns the number of records written. Memory holds one batch and 8 bytes per record (a hash
    of each LOCUS name, to refuse a file whose names would not be unique).
    """
    count = 0

    def write(tmp: Path) -> None:
        nonlocal count
        keys: list[np.ndarray] = []
        with open(tmp, "w", encoding="ascii", newline="\n") as fh:
            for table in batches:
                if PLACEMENTS not in table.column_names:
                    genbank_columns(table.column_names)
                check_placements_type(table.schema.field(PLACEMENTS).type)
                for off in range(0, table.num_rows, SLICE_ROWS):
                    part = table.slice(off, SLICE_ROWS)
                    keys.append(np.fromiter((_name_key(locus_name(str(r))) for r in part.column("id").to_pylist()),
                                            dtype=np.uint64, count=part.num_rows))
                    count += SeqIO.write(table_records(part), fh, "genbank")
        if keys:
            allk = np.sort(np.concatenate(keys))
            if allk.size > 1 and bool((allk[1:] == allk[:-1]).any()):
                raise InputError("two records would share a LOCUS name (the first 16 characters of their ids)",
                                 hint="export them to separate files (--limit, or a filtered dataset)")

    atomic_write_with(path, write)
    return count
