"""What a sink is: somewhere accepted rows are committed atomically, and read back on resume."""

from __future__ import annotations

from typing import Protocol

import polars as pl
import pyarrow as pa

from ...core.locks import FileLock


class Sink(Protocol):
    """A durable destination for accepted rows, shared safely by concurrent writers.

    `commit` stores a whole batch or nothing (a crash leaves the previous state valid) and
    returns the rows it actually added (ids already stored are skipped). `lock` is the writers'
    lock: `plan_counts` taken under it stays true until the lock is released, which is how a
    quota is enforced at commit time. `frame` returns what is committed, as the flat table of
    `records.py` (the resume source of truth).
    """

    name: str

    def lock(self) -> FileLock: ...

    def plan_counts(self, run_id: str) -> dict[str, int]: ...

    def has_ids(self, ids: list[str]) -> set[str]: ...

    def frame(self, columns: list[str] | None = None, ids: list[str] | None = None) -> pl.DataFrame: ...

    def commit(self, table: pa.Table, *, event_args: dict | None = None) -> pa.Table: ...

    def finalize(self) -> None: ...

    def location(self) -> str: ...

    def exists(self) -> bool: ...
