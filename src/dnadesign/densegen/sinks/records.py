"""The shape of an accepted DenseGen row, identical in the Parquet and USR sinks.

A row is the USR record fields (`id, bio_type, sequence, alphabet, length, source, created_at`)
plus `densegen__<field>` columns. In USR those columns live in the `densegen` overlay; in Parquet
they are ordinary columns next to the record fields, so both sinks query the same way.

`densegen__placements` is a native Arrow `list<struct>` (not a JSON string), so polars can
`explode` / `unnest` it directly::

    df.select("id", "densegen__placements").explode("densegen__placements").unnest("densegen__placements")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from ...usr.schema import RECORD_FIELDS, RECORD_SCHEMA, make_records

NAMESPACE = "densegen"
SCHEMA_VERSION = 1

PLACEMENT_TYPE = pa.struct(
    [
        ("site_id", pa.string()),
        ("regulator", pa.string()),
        ("offset", pa.int32()),  # 0-based start on the + strand
        ("end", pa.int32()),  # exclusive end on the + strand
        ("strand", pa.string()),  # "+" or "-"
        ("sequence", pa.string()),  # the site as it reads on the + strand
        ("fixed", pa.bool_()),  # True for fixed promoter elements
    ]
)

# field -> arrow type; column names are f"{NAMESPACE}__{field}"
FIELDS: dict[str, pa.DataType] = {
    "schema_version": pa.int32(),
    "run_id": pa.string(),
    "plan": pa.string(),
    "placements": pa.list_(PLACEMENT_TYPE),
    "regulators": pa.list_(pa.string()),
    "n_sites": pa.int32(),
    "filler": pa.list_(PLACEMENT_TYPE),  # background filler, kept apart: not binding sites
    "sites_per_100bp": pa.float64(),
    "gc": pa.float64(),
    "compression_ratio": pa.float64(),
    "library_hash": pa.string(),
    "library_index": pa.int64(),
    "library_size": pa.int32(),
    "solver_status": pa.string(),  # "optimal" | "feasible"
    "solver_objective": pa.float64(),
    "solver_bound": pa.float64(),
    "solve_time_s": pa.float64(),
    "accepted_at": pa.timestamp("us", tz="UTC"),
    "session": pa.int32(),
}
COLUMNS = {f"{NAMESPACE}__{k}": v for k, v in FIELDS.items()}
PLAN_COL = f"{NAMESPACE}__plan"
RUN_COL = f"{NAMESPACE}__run_id"


@dataclass(frozen=True)
class Accepted:
    """One accepted design, verified by the solver's checker, waiting to be written."""

    plan: str
    sequence: str
    placements: tuple  # of solver Placement
    objective: float
    bound: float | None
    optimal: bool
    solve_time_s: float
    library_hash: str
    library_index: int
    library_size: int
    accepted_at: datetime
    session: int = 1
    filler: tuple = ()  # background filler placements (not in `placements`, never counted as sites)

    @property
    def n_sites(self) -> int:
        return sum(1 for p in self.placements if not getattr(p, "fixed", False))


def gc_fraction(seq: str) -> float:
    """Fraction of G and C bases."""
    return (seq.count("G") + seq.count("C")) / len(seq) if seq else 0.0


def compression_ratio(acc: Accepted) -> float:
    """Total length of placed library sites over the sequence length (above 1 when sites overlap)."""
    total = sum(len(p.sequence) for p in acc.placements if not getattr(p, "fixed", False))
    return total / len(acc.sequence) if acc.sequence else 0.0


def build_table(rows: Sequence[Accepted], *, run_id: str, bio_type: str = "dna", alphabet: str = "dna_4") -> pa.Table:
    """The flat table (record fields + `densegen__*`) for a batch of accepted rows."""
    records = make_records([r.sequence for r in rows], bio_type=bio_type, alphabet=alphabet,
                           source=[f"densegen:{run_id}:{r.plan}" for r in rows], where="densegen batch")
    cols: dict[str, list] = {k: [] for k in FIELDS}
    for r in rows:
        L = len(r.sequence)
        lib = [p for p in r.placements if not getattr(p, "fixed", False)]
        cols["schema_version"].append(SCHEMA_VERSION)
        cols["run_id"].append(run_id)
        cols["plan"].append(r.plan)
        cols["placements"].append([
            {"site_id": p.site_id, "regulator": p.regulator, "offset": int(p.offset), "end": int(p.offset) + len(p.sequence),
             "strand": p.strand, "sequence": p.sequence, "fixed": bool(getattr(p, "fixed", False))}
            for p in r.placements
        ])
        cols["filler"].append([
            {"site_id": p.site_id, "regulator": p.regulator, "offset": int(p.offset), "end": int(p.offset) + len(p.sequence),
             "strand": p.strand, "sequence": p.sequence, "fixed": False}
            for p in r.filler
        ])
        cols["regulators"].append(sorted({p.regulator for p in lib}))
        cols["n_sites"].append(len(lib))
        cols["sites_per_100bp"].append(100.0 * len(lib) / L if L else 0.0)
        cols["gc"].append(gc_fraction(r.sequence))
        cols["compression_ratio"].append(compression_ratio(r))
        cols["library_hash"].append(r.library_hash)
        cols["library_index"].append(int(r.library_index))
        cols["library_size"].append(int(r.library_size))
        cols["solver_status"].append("optimal" if r.optimal else "feasible")
        cols["solver_objective"].append(float(r.objective))
        cols["solver_bound"].append(None if r.bound is None else float(r.bound))
        cols["solve_time_s"].append(float(r.solve_time_s))
        cols["accepted_at"].append(r.accepted_at)
        cols["session"].append(int(r.session))
    arrays = [records.column(c) for c in RECORD_FIELDS]
    names = list(RECORD_FIELDS)
    for k, t in FIELDS.items():
        arrays.append(pa.array(cols[k], type=t))
        names.append(f"{NAMESPACE}__{k}")
    return pa.table(arrays, names=names)


def conform(table: pa.Table) -> pa.Table:
    """Select and cast a flat table to the canonical column order and types (extra columns dropped)."""
    arrays, names = [], []
    for f in RECORD_SCHEMA:
        arrays.append(table.column(f.name).cast(f.type))
        names.append(f.name)
    for name, t in COLUMNS.items():
        if name in table.column_names:
            arrays.append(table.column(name).cast(t))
        else:
            arrays.append(pa.nulls(table.num_rows, t))
        names.append(name)
    return pa.table(arrays, names=names)


def empty_table() -> pa.Table:
    """A zero-row flat table with the canonical schema."""
    fields = list(RECORD_SCHEMA) + [pa.field(n, t) for n, t in COLUMNS.items()]
    schema = pa.schema(fields)
    # pa.nulls, not schema.empty_table()/pa.array([]): those import pandas (1.7 s of every plot run)
    return pa.Table.from_arrays([pa.nulls(0, type=f.type) for f in schema], schema=schema)
