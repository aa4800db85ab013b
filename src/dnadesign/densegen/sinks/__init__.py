"""Output sinks of `dense run`: Parquet (parts + manifest) and USR (records + `densegen` overlay)."""

from .base import Sink
from .parquet_sink import ParquetSink
from .records import COLUMNS, FIELDS, NAMESPACE, PLACEMENT_TYPE, PLAN_COL, RUN_COL, Accepted, build_table
from .usr_sink import UsrSink

__all__ = ["COLUMNS", "FIELDS", "NAMESPACE", "PLACEMENT_TYPE", "PLAN_COL", "RUN_COL", "Accepted", "ParquetSink", "Sink",
           "UsrSink", "build_table"]
