"""What a sink is: somewhere accepted rows are committed atomically, and read back on resume."""

from __future__ import annotations

from typing import Protocol

import polars as pl
import pyarrow as pa


class Sink(Protocol):
    """A durable destination for accepted rows.

    `write` commits a whole batch or nothing (a crash leaves the previous state valid). `frame`
    returns what is committed, as the flat table of `records.py` (the resume source of truth).
    """

    name: str

    def frame(self, columns: list[str] | None = None) -> pl.DataFrame: ...

    def write(self, table: pa.Table, *, event_args: dict | None = None) -> int: ...

    def finalize(self) -> None: ...

    def location(self) -> str: ...
