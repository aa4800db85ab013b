"""The record schema, alphabets and the checks that keep bad rows out of a dataset."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pyarrow as pa

from ..core.errors import InputError
from ..core.ids import record_id
from ..core.timeutil import utc_now

RECORD_FIELDS = ("id", "bio_type", "sequence", "alphabet", "length", "source", "created_at")
RECORD_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("bio_type", pa.string()),
        ("sequence", pa.string()),
        ("alphabet", pa.string()),
        ("length", pa.int32()),
        ("source", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
    ]
)
ALPHABETS = {
    "dna_4": ("dna", "ACGT"),
    "dna_5": ("dna", "ACGTN"),
    "rna_4": ("rna", "ACGU"),
    "rna_5": ("rna", "ACGUN"),
    "protein_20": ("protein", "ACDEFGHIKLMNPQRSTVWY"),
    "protein_21": ("protein", "ACDEFGHIKLMNPQRSTVWYX"),
}
DEFAULT_ALPHABET = {"dna": "dna_4", "rna": "rna_4", "protein": "protein_20"}
# A namespace never contains "__", so `<namespace>__<field>` splits at the first "__" (as the reader
# does): `infer__evo2_7b__ll_mean` is field `evo2_7b__ll_mean` of namespace `infer`.
DERIVED_COLUMN = re.compile(r"^([a-z][a-z0-9]*(?:_[a-z0-9]+)*)__([A-Za-z0-9_][A-Za-z0-9_.-]*)$")
NAMESPACE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
RESERVED_NAMESPACES = frozenset({"usr"})


def check_bio_alphabet(bio_type: str, alphabet: str | None) -> str:
    """Return the alphabet to use for `bio_type`, raising InputError if they do not belong together."""
    if bio_type not in DEFAULT_ALPHABET:
        raise InputError(f"unknown bio_type {bio_type!r}", hint="use dna, rna or protein")
    alphabet = alphabet or DEFAULT_ALPHABET[bio_type]
    if alphabet not in ALPHABETS or ALPHABETS[alphabet][0] != bio_type:
        allowed = ", ".join(a for a, (b, _) in ALPHABETS.items() if b == bio_type)
        raise InputError(f"alphabet {alphabet!r} does not fit bio_type {bio_type!r}", hint=f"use one of {allowed}")
    return alphabet


def normalize_sequence(bio_type: str, sequence: str) -> str:
    seq = sequence.strip()
    return seq.upper() if bio_type in ("dna", "rna") else seq


def bad_character(sequence: str, alphabet: str) -> tuple[int, str] | None:
    """(position, char) of the first character outside the alphabet, or None."""
    allowed = ALPHABETS[alphabet][1]
    for i, ch in enumerate(sequence):
        if ch not in allowed:
            return i, ch
    return None


def make_records(
    sequences: Sequence[str | None],
    *,
    bio_type: str = "dna",
    alphabet: str | None = None,
    source: str | Sequence[str] = "",
    ids: Sequence[str | None] | None = None,
    where: str = "input",
    row_numbers: Sequence[int | str] | None = None,
) -> pa.Table:
    """Validate and build a record table (one `created_at` for the batch).

    Errors name the row (1-based, or the given `row_numbers`) and the offending value. A given `id`
    must equal the recomputed one; duplicate ids within the batch are rejected.
    """
    alphabet = check_bio_alphabet(bio_type, alphabet)
    rows = [r if isinstance(r, str) else f"row {r}" for r in (row_numbers or range(1, len(sequences) + 1))]
    norm: list[str] = []
    out_ids: list[str] = []
    first_row: dict[str, str] = {}
    for i, (raw, row) in enumerate(zip(sequences, rows, strict=False)):
        if raw is None or not str(raw).strip():
            raise InputError(f"{where}, {row}: sequence is empty", hint="remove the row or fill in the sequence")
        seq = normalize_sequence(bio_type, str(raw))
        bad = bad_character(seq, alphabet)
        if bad:
            raise InputError(
                f"{where}, {row}: sequence has {bad[1]!r} at position {bad[0] + 1}, not in alphabet {alphabet} ({ALPHABETS[alphabet][1]})",
                hint="fix the sequence or choose a wider --alphabet",
            )
        rid = record_id(bio_type, seq)
        given = ids[i] if ids is not None else None
        if given not in (None, "") and given != rid:
            raise InputError(
                f"{where}, {row}: id {given} does not match its sequence (expected {rid})",
                hint="drop the id column to let usr compute ids, or fix the sequence",
            )
        if rid in first_row:
            raise InputError(
                f"{where}, {first_row[rid]} and {row}: duplicate sequence (id {rid[:12]}...)",
                hint="remove the duplicate rows",
            )
        first_row[rid] = row
        norm.append(seq)
        out_ids.append(rid)
    n = len(norm)
    sources = [source] * n if isinstance(source, str) else [str(s) for s in source]
    now = utc_now()
    return pa.table(
        {
            "id": pa.array(out_ids, pa.string()),
            "bio_type": pa.array([bio_type] * n, pa.string()),
            "sequence": pa.array(norm, pa.string()),
            "alphabet": pa.array([alphabet] * n, pa.string()),
            "length": pa.array([len(s) for s in norm], pa.int32()),
            "source": pa.array(sources, pa.string()),
            "created_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
        },
        schema=RECORD_SCHEMA,
    )


def check_derived_name(column: str, namespace: str) -> str:
    """`field` -> `namespace__field`; an explicit foreign prefix or a record field is rejected."""
    if column in RECORD_FIELDS:
        raise InputError(f"column {column!r} is a record field and cannot be attached", hint="rename it")
    m = DERIVED_COLUMN.match(column)
    if m:
        if m.group(1) != namespace:
            raise InputError(f"column {column!r} belongs to namespace {m.group(1)!r}, not {namespace!r}",
                             hint=f"rename it or attach with --namespace {m.group(1)}")
        return column
    name = f"{namespace}__{column}"
    if not DERIVED_COLUMN.match(name):
        raise InputError(f"column {column!r} is not a valid field name", hint="use letters, digits, '_', '.', '-'")
    return name


def check_namespace(namespace: str, *, allow_reserved: bool = False) -> str:
    if not NAMESPACE.match(namespace or ""):
        raise InputError(f"invalid namespace {namespace!r}", hint="use lowercase letters and digits, single '_' between words (e.g. densegen)")
    if namespace in RESERVED_NAMESPACES and not allow_reserved:
        raise InputError(f"namespace {namespace!r} is reserved for usr itself", hint="choose another namespace")
    return namespace
