"""Fitting records into a terminal: the default columns and widths of `usr head`.

A dataset can carry dozens of derived columns; squeezing all of them into 80 columns shows every
value as `denseg…`. The default view shows the short id, the length and as much of the sequence
as fits, then adds scalar derived columns (those that differ between the shown rows first) while
they fit whole. Nested columns (lists, structs) are left to `--columns` and `--json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import polars as pl

ID_WIDTH = 12  # 11 hex digits and an ellipsis: unique in practice, and `usr get` needs the full id from --json
MIN_SEQUENCE = 16
MAX_COLUMN = 24
GAP = 2


@dataclass(frozen=True)
class View:
    """Columns to show (in order), their header labels and widths, and the columns left out."""

    columns: list[str]
    headers: list[str]
    widths: list[int]
    hidden: list[str]
    caption: str | None = None


def cell(value: Any, width: int) -> str:
    """A value as text cut to `width` characters (an ellipsis marks the cut)."""
    if value is None:
        text = ""
    elif isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, (list, dict)):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _scalar(dtype: pl.DataType) -> bool:
    return not isinstance(dtype, (pl.List, pl.Array, pl.Struct, pl.Object))


def _label(column: str, shown: list[str]) -> str:
    """`densegen__plan` -> `plan` when no other shown column has the field name `plan`."""
    if "__" not in column:
        return column
    field = column.split("__", 1)[1]
    clash = [c for c in shown if c != column and (c.split("__", 1)[1] if "__" in c else c) == field]
    return column if clash else field


def fit(frame: pl.DataFrame, width: int) -> View:
    """Choose the default columns of `frame` for a terminal `width` characters wide."""
    width = max(width, 40)
    cols = frame.columns

    def natural(c: str, label: str) -> int:
        values = [cell(v, 10_000) for v in frame.get_column(c).to_list()]
        return min(max([len(label), *map(len, values)]), MAX_COLUMN)

    chosen: list[str] = [c for c in ("id", "length") if c in cols]
    widths = {"id": ID_WIDTH, "length": max(len("length"), *(len(str(v)) for v in frame.get_column("length").to_list()))} \
        if "length" in cols else {"id": ID_WIDTH}
    derived = [c for c in cols if "__" in c and not c.startswith("usr__") and _scalar(frame.schema[c])]
    varying = [c for c in derived if frame.height > 1 and frame.get_column(c).n_unique() > 1]
    constant = [c for c in derived if c not in varying]
    candidates = [*varying, *([c for c in ("source",) if c in cols]), *constant]
    seq_need = 0
    if "sequence" in cols:
        longest = max((len(v or "") for v in frame.get_column("sequence").to_list()), default=8)
        seq_need = min(max(longest, len("sequence")), MIN_SEQUENCE)

    def used(extra: list[str]) -> int:
        names = [*chosen, *extra]
        return sum(widths[c] for c in names) + GAP * len(names) + (seq_need + GAP if seq_need else 0)

    extras: list[str] = []
    for c in candidates:
        widths[c] = natural(c, _label(c, [*chosen, *extras, c]))
        if used([*extras, c]) <= width:
            extras.append(c)
    order = [c for c in ("id", "sequence", "length") if c in cols and (c != "sequence" or seq_need)]
    shown = [*order, *extras]
    if seq_need:
        longest = max((len(v or "") for v in frame.get_column("sequence").to_list()), default=8)
        spare = width - (sum(widths[c] for c in shown if c != "sequence") + GAP * len(shown))
        widths["sequence"] = max(min(longest, spare), min(seq_need, len("sequence")))
    hidden = [c for c in cols if c not in shown and not c.startswith("usr__")]
    labels = [_label(c, shown) for c in shown]
    namespaces = sorted({c.split("__", 1)[0] for c, lab in zip(shown, labels, strict=True) if lab != c})
    caption = None
    if hidden or namespaces:
        parts = []
        if namespaces:
            parts.append("derived columns shown without their " + ", ".join(f"{ns}__" for ns in namespaces) + " prefix")
        if hidden:
            parts.append(f"{len(hidden)} more column(s): --columns a,b or --json")
        caption = "; ".join(parts)
    return View(shown, labels, [widths[c] for c in shown], hidden, caption)


def rows(frame: pl.DataFrame, view: View) -> list[list[str]]:
    """The frame's cells for a view, each cut to its column width."""
    return [[cell(rec[c], w) for c, w in zip(view.columns, view.widths, strict=True)]
            for rec in frame.select(view.columns).iter_rows(named=True)]
