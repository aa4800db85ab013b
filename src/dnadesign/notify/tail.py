"""Read complete event lines from an open log file, in bounded batches, across polls.

A torn last line (no newline yet) stays unread until its newline arrives. Malformed lines are
returned with an error so the caller can report and skip them. Memory is bounded by one chunk.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from .cursor import FileId, file_id_fd, file_id_path


@dataclass(frozen=True, slots=True)
class Line:
    """One complete line: byte span, parsed event (or None) and the parse error (or None)."""

    offset: int
    end: int
    event: dict[str, Any] | None
    error: str | None = None
    filtered: bool = False  # rejected by the raw pre-filter without decoding


_scan = cast(Any, json.JSONDecoder()).scan_once  # the C scanner, without json.loads' per-call overhead


def parse_line(raw: bytes, offset: int, end: int) -> Line:
    """Decode one JSON event line; bad JSON, bad UTF-8 or a non-event become an error, not an exception."""
    try:
        text = raw.decode("utf-8").strip()
        event, stop = _scan(text, 0)
        if stop != len(text):
            raise ValueError(f"extra data at column {stop + 1}")
    except UnicodeDecodeError as exc:
        return Line(offset, end, None, f"invalid UTF-8 at byte {offset + exc.start}")
    except StopIteration:
        return Line(offset, end, None, f"malformed JSON at byte {offset}: no JSON value")
    except (ValueError, RecursionError) as exc:
        return Line(offset, end, None, f"malformed JSON at byte {offset}: {str(exc)[:120]}")
    if not isinstance(event, dict) or not isinstance(event.get("action"), str):
        return Line(offset, end, None, f"not an event object at byte {offset}")
    return Line(offset, end, event)


class LogReader:
    """An open events file positioned at a byte offset; `read_batch` returns the next complete lines."""

    def __init__(self, path: str | Path, offset: int = 0, chunk_size: int = 1 << 18):
        self.path = Path(path)
        self.chunk_size = chunk_size
        self._fh = open(self.path, "rb")  # noqa: SIM115 - the reader owns this handle; close() releases it
        self.file_id: FileId = file_id_fd(self._fh.fileno())
        self.offset = offset  # first byte not yet returned
        self._fh.seek(offset)
        self._buf = b""

    def close(self) -> None:
        self._fh.close()

    def size(self) -> int:
        """Current size of the open file (not of whatever is now at the path)."""
        return os.fstat(self._fh.fileno()).st_size

    def refresh_head(self) -> None:
        """Fill in the first-line fingerprint once the file has one."""
        if self.file_id.head is None:
            self.file_id = file_id_fd(self._fh.fileno())

    def read_batch(self, max_lines: int = 4096, reject: Callable[[bytes], bool] | None = None) -> list[Line]:
        """Up to `max_lines` complete lines after the current offset (empty at EOF or before a torn line).

        Lines for which `reject(raw)` is true come back undecoded with `filtered=True`.
        """
        out: list[Line] = []
        while len(out) < max_lines:
            nl = self._buf.find(b"\n")
            if nl < 0:
                block = self._fh.read(self.chunk_size)
                if not block:
                    break
                self._buf += block
                continue
            lines = self._buf.split(b"\n")
            self._buf = lines.pop()
            start = self.offset
            take = lines[: max_lines - len(out)]
            rest = lines[len(take):]
            for raw in take:
                end = start + len(raw) + 1
                if reject is not None and reject(raw):
                    out.append(Line(start, end, None, None, True))
                elif raw.strip():
                    out.append(parse_line(raw, start, end))
                start = end
            self.offset = start
            if rest:
                self._buf = b"\n".join(rest) + b"\n" + self._buf
        return out

    def status(self) -> str:
        """`same`, `missing`, `rotated` (another file now at the path), `truncated` (shorter than our offset) or `stale`."""
        now = file_id_path(self.path)
        if now is None:
            return "missing"
        if (now.dev, now.ino) != (self.file_id.dev, self.file_id.ino):
            return "rotated"
        try:
            size = self.size()
        except OSError:
            return "stale"  # our handle went bad (e.g. NFS): reopen by path, keep the offset
        if size < self.offset + len(self._buf):
            return "truncated"
        if self.file_id.head is not None and now.head is not None and now.head != self.file_id.head:
            return "truncated"  # rewritten in place
        return "same"

    def __enter__(self) -> LogReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
