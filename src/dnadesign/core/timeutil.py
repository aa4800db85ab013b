"""UTC timestamps in one format everywhere."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc_now_iso() -> str:
    """Current UTC time as ISO-8601 with microseconds and a Z suffix."""
    return utc_now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def compact_stamp() -> str:
    """A sortable stamp for file names: 20261122T171500123456Z."""
    return utc_now().strftime("%Y%m%dT%H%M%S%fZ")
