"""One side's `.events.log` as sync sees it: only the lines after a remembered mark are read and parsed.

A `LogMark` pins a position in an append-only log: the byte size of its complete lines, how many
distinct events they hold, and the sha256 of the first and of the last `WINDOW` bytes before the
mark. A log that was replaced, truncated or rewritten near the mark fails that check and is read
in full once (the slow path); otherwise only the bytes after the mark are read.

An `EventView` is what a diff needs from one side: the candidate lines (the tail after the mark
plus the side's *pending* lines, i.e. lines before the mark that the other side's prefix lacked)
keyed by event id, and the total count. Everything here is pure (bytes in, values out), so the
local reader, the remote reader and the property tests share it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ...core.ids import sha256_bytes

WINDOW = 4096
SYNC_ACTIONS = ("pull", "push")
EMPTY_SHA = sha256_bytes(b"")


@dataclass(frozen=True)
class LogMark:
    """A position in one event log: complete-line bytes, distinct events before it, window hashes."""

    size: int = 0
    lines: int = 0
    head_sha: str = EMPTY_SHA   # sha256 of bytes [0, min(WINDOW, size))
    lead_sha: str = EMPTY_SHA   # sha256 of bytes [max(0, size - WINDOW), size)

    def as_list(self) -> list:
        return [self.size, self.lines, self.head_sha, self.lead_sha]

    @classmethod
    def from_list(cls, v: object) -> LogMark:
        if not (isinstance(v, list) and len(v) == 4 and all(isinstance(x, int) and x >= 0 for x in v[:2])
                and all(isinstance(x, str) and len(x) == 64 for x in v[2:])):
            raise ValueError(f"not a log mark: {v!r}")
        return cls(v[0], v[1], v[2], v[3])


EMPTY_MARK = LogMark()


@dataclass(frozen=True, slots=True)
class EventLine:
    """One event line of a log: its key (event_id), byte span, whether it is a sync event.

    `raw` is set only when a caller loaded the bytes; a view keeps the bytes it read in one buffer
    (`EventView.raw`), and pending lines are remembered without them.
    """

    key: str
    start: int
    end: int
    sync: bool
    raw: bytes | None = field(default=None, compare=False)

    def unloaded(self) -> EventLine:
        return EventLine(self.key, self.start, self.end, self.sync)

    def as_list(self) -> list:
        return [self.key, self.start, self.end, self.sync]

    @classmethod
    def from_list(cls, v: object) -> EventLine:
        if not (isinstance(v, list) and len(v) == 4 and isinstance(v[0], str) and isinstance(v[1], int)
                and isinstance(v[2], int) and 0 <= v[1] < v[2] and isinstance(v[3], bool)):
            raise ValueError(f"not an event line: {v!r}")
        return cls(v[0], v[1], v[2], v[3])


@dataclass
class EventView:
    """One side's events for a sync: candidates (tail + pending) by key, the new mark, the total count."""

    mark: LogMark = EMPTY_MARK
    lines: dict[str, EventLine] = field(default_factory=dict)
    count: int = 0
    from_start: bool = True   # read from byte 0 with nothing pending: `lines` holds every event of the log
    reset: bool = False       # a mark was given but the log no longer matched it, so it was read from byte 0
    read_bytes: int = 0       # bytes of the log this view read (head + lead windows + tail)
    prefix_sha: str | None = None   # from_start views: sha256 of bytes [0, mark.size) (lets the other side reuse them)
    buffer: bytes = b""       # complete lines read, bytes [buffer_start, ...) (may be dropped: raws are then re-read)
    buffer_start: int = 0
    head_bytes: bytes = b""   # the windows at `mark` (bytes [0, min(WINDOW, size)) and the WINDOW bytes before size)
    lead_bytes: bytes = b""
    prefix_of_other: tuple[int, str] | None = None  # not read: "my log is (size, sha256); it may be a prefix of yours"

    @property
    def keys(self) -> set[str]:
        return set(self.lines)

    def raw(self, line: EventLine) -> bytes | None:
        """The bytes of `line` if this view read them (tail lines), else None (pending lines)."""
        if line.raw is not None:
            return line.raw
        if self.buffer_start <= line.start and line.end <= self.buffer_start + len(self.buffer):
            return self.buffer[line.start - self.buffer_start: line.end - self.buffer_start]
        return None


class MarkMismatch(Exception):
    """The log no longer matches the remembered mark (replaced, truncated or rewritten)."""


# The start of every line `core.events.encode_event` writes; such lines are keyed without a JSON parse.
_OWN_LINE = re.compile(rb'\{"event_version":\d+,"event_id":"([^"\\]+)","ts":"[^"\\]*","action":"([a-z_]+)"')


def parse_line(raw: bytes) -> tuple[str, bool]:
    """(key, is_sync_event) of one line; lines without an event_id are keyed by their content hash."""
    m = _OWN_LINE.match(raw)
    if m is not None and raw.rstrip().endswith(b"}") and m.group(2) not in (b"pull", b"push"):
        return m.group(1).decode(), False
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        obj = None
    if isinstance(obj, dict):
        eid = obj.get("event_id")
        args = obj.get("args")
        sync = obj.get("action") in SYNC_ACTIONS and isinstance(args, dict) and args.get("sync") is True
        if isinstance(eid, str) and eid:
            return eid, sync
        return "line:" + hashlib.sha1(raw.strip()).hexdigest(), sync
    return "line:" + hashlib.sha1(raw.strip()).hexdigest(), False


def event_key(raw: bytes) -> str:
    """The key sync matches lines by: the event_id, else a hash of the line."""
    return parse_line(raw)[0]


def is_sync_event(raw: bytes) -> bool:
    """A `pull`/`push` event written by sync itself (not drift on its own)."""
    return parse_line(raw)[1]


def complete_prefix(data: bytes) -> bytes:
    """`data` up to and including its last newline (a torn last line is left out)."""
    return data[: data.rfind(b"\n") + 1] if b"\n" in data else b""


def check_mark(mark: LogMark, head: bytes, lead: bytes) -> None:
    """Raise MarkMismatch unless `head`/`lead` (the windows at `mark`) hash to what the mark remembers."""
    if mark.size == 0:
        return
    if len(lead) != min(WINDOW, mark.size) or sha256_bytes(lead) != mark.lead_sha:
        raise MarkMismatch("lead")
    if mark.size > WINDOW and (len(head) != WINDOW or sha256_bytes(head) != mark.head_sha):
        raise MarkMismatch("head")


def build_view(head: bytes, lead: bytes, tail: bytes, mark: LogMark, pending: Iterable[EventLine],
               prefix_sha: str | None = None) -> EventView:
    """The view of a log read from `mark`.

    `head` = bytes [0, min(WINDOW, mark.size)), `lead` = bytes [max(0, mark.size - WINDOW), mark.size),
    `tail` = every byte from mark.size on (a torn last line is ignored). `pending` are the lines
    before the mark that the other side lacked at the mark (raw bytes not loaded). Raises
    MarkMismatch when the windows do not match the mark. A view read from byte 0 records the sha256
    of what it read (`prefix_sha`; pass it when already known).
    """
    check_mark(mark, head, lead)
    lines: dict[str, EventLine] = {}
    for p in pending:
        lines.setdefault(p.key, p)
    pending_keys = bool(lines)
    complete = complete_prefix(tail)
    count = mark.lines
    pos, n = 0, len(complete)
    while pos < n:
        nl = complete.index(b"\n", pos)
        raw = complete[pos:nl]
        if raw.strip():
            key, sync = parse_line(raw)
            if key not in lines:
                lines[key] = EventLine(key, mark.size + pos, mark.size + nl + 1, sync)
                count += 1
        pos = nl + 1
    size = mark.size + n
    if n >= WINDOW or mark.size == 0:
        new_lead = complete[n - min(WINDOW, n):]
    else:  # a short tail: the window reaches back before the mark
        new_lead = (lead + complete)[-min(WINDOW, size):]
    new_head = head if mark.size >= WINDOW else (lead + complete[:WINDOW])[: min(WINDOW, size)]
    new_mark = LogMark(size, count, sha256_bytes(new_head), sha256_bytes(new_lead))
    from_start = mark.size == 0 and not pending_keys
    return EventView(new_mark, lines, count, from_start=from_start, read_bytes=len(head) + len(lead) + len(tail),
                     prefix_sha=prefix_sha if from_start else None, buffer=complete, buffer_start=mark.size,
                     head_bytes=new_head, lead_bytes=new_lead)


def truncated_view(base: EventView, size: int, head: bytes, lead: bytes) -> EventView:
    """The view of a log that is exactly the first `size` bytes of the log `base` (read from byte 0) read.

    `head`/`lead` are the windows at the last line end within `size` (the caller reads them).
    """
    assert base.from_start
    lines = {k: ln for k, ln in base.lines.items() if ln.end <= size}
    end = max((ln.end for ln in lines.values()), default=0)
    mark = LogMark(end, len(lines), sha256_bytes(head), sha256_bytes(lead))
    return EventView(mark, lines, len(lines), from_start=True, head_bytes=head, lead_bytes=lead, buffer_start=end)


def last_line_end(base: EventView, size: int) -> int:
    """Where the last complete line of `base` that ends within `size` ends."""
    return max((ln.end for ln in base.lines.values() if ln.end <= size), default=0)


def extend_view(base: EventView, tail: bytes) -> EventView:
    """The view of a log whose first `base.mark.size` bytes are exactly what `base` (read from byte 0) read."""
    assert base.from_start
    lines = dict(base.lines)
    view = build_view(b"", b"", tail, EMPTY_MARK, ())
    new_lines = {}
    count = base.count
    for k, ln in view.lines.items():
        if k not in lines:
            new_lines[k] = EventLine(k, base.mark.size + ln.start, base.mark.size + ln.end, ln.sync)
            count += 1
    lines.update(new_lines)
    size = base.mark.size + view.mark.size
    lead = (base.lead_bytes + view.buffer[-WINDOW:])[-min(WINDOW, size):]
    head = (base.head_bytes + view.buffer[:WINDOW])[: min(WINDOW, size)]
    mark = LogMark(size, count, sha256_bytes(head), sha256_bytes(lead))
    # the shared prefix is also the other side's: only the tail's bytes can ever need sending from here
    return EventView(mark, lines, count, from_start=True, read_bytes=len(tail), buffer=view.buffer, buffer_start=base.mark.size,
                     head_bytes=head, lead_bytes=lead)


def settle(a: EventView, b: EventView) -> tuple[list[EventLine], list[EventLine]]:
    """The pending lines of each side at the two views' marks: candidates the other side lacks (unloaded)."""
    a_only = [ln.unloaded() for k, ln in a.lines.items() if k not in b.lines]
    b_only = [ln.unloaded() for k, ln in b.lines.items() if k not in a.lines]
    return a_only, b_only


def rebased(mark: LogMark, pending: Iterable[EventLine], count: int) -> EventView:
    """A view that read nothing after `mark`: its candidates are its pending lines only."""
    lines: dict[str, EventLine] = {}
    for p in pending:
        lines.setdefault(p.key, p)
    return EventView(mark, lines, count, from_start=False, buffer_start=mark.size)


def spans_to_read(lines: Iterable[EventLine], max_gap: int = 65536, max_reads: int = 64) -> list[tuple[int, int]]:
    """Byte ranges covering the given lines, merging close ones so at most `max_reads` reads are made."""
    spans = sorted((ln.start, ln.end) for ln in lines)
    merged: list[list[int]] = []
    for s, e in spans:
        if merged and s - merged[-1][1] <= max_gap:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    while len(merged) > max_reads:  # merge the two closest neighbours until few enough
        i = min(range(len(merged) - 1), key=lambda j: merged[j + 1][0] - merged[j][1])
        merged[i][1] = merged[i + 1][1]
        del merged[i + 1]
    return [(s, e) for s, e in merged]


def cut_lines(lines: Iterable[EventLine], chunks: Mapping[tuple[int, int], bytes]) -> dict[str, bytes]:
    """The raw bytes of each line, cut out of chunks read for `spans_to_read`; raises MarkMismatch if one moved."""
    out: dict[str, bytes] = {}
    ordered = sorted(chunks.items())
    for ln in lines:
        for (s, e), data in ordered:
            if s <= ln.start and ln.end <= e:
                raw = data[ln.start - s: ln.end - s]
                if not raw.endswith(b"\n") or event_key(raw[:-1]) != ln.key:
                    raise MarkMismatch(f"line at byte {ln.start} changed")
                out[ln.key] = raw
                break
        else:
            raise MarkMismatch(f"line at byte {ln.start} not read")
    return out
