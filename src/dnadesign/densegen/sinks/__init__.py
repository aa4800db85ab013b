"""Output sinks of `dense run`: Parquet (parts + manifest) and USR (records + `densegen` overlay)."""

from .parquet_sink import ParquetSink
from .records import COLUMNS, FIELDS, NAMESPACE, PLACEMENT_TYPE, Accepted, build_table
from .usr_sink import UsrSink

__all__ = ["COLUMNS", "FIELDS", "NAMESPACE", "PLACEMENT_TYPE", "Accepted", "ParquetSink", "UsrSink", "build_table"]
