"""Per-destination rate limits carried across messages, runs and processes.

When a destination answers 429, its `Retry-After` becomes a *not-before* time for that destination,
not just for the message that was refused, and the gap it asked for becomes the spacing between the
next posts (for `SPACING_HOLD` seconds after the last 429). Both are persisted in a small JSON file
(atomic writes under a lock) that the watcher and `spool drain` share, so a drain started right
after a rate-limited watcher waits too. Destinations are keyed by a hash of the URL: the file never
holds a secret.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_write_json
from ..core.errors import LockTimeoutError
from ..core.locks import FileLock
from ..core.timeutil import utc_now_iso

STATE_NAME = ".ratelimit.json"
STATE_VERSION = 1
SPACING_HOLD = 600.0  # keep the learned spacing this long after the last 429
SPACING_MAX = 10.0  # a long Retry-After is a window reset, not a per-message pace
DEFAULT_RETRY_AFTER = 30.0  # a 429 without a usable Retry-After
MAX_DESTINATIONS = 64


def destination_id(url: str) -> str:
    """A stable, non-reversible name for a destination URL (never the URL itself)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def state_path_for(spool_dir: str | Path | None, cursor: str | Path | None) -> Path | None:
    """Where the rate-limit state lives: in the spool (shared by watch and drain), else beside the cursor."""
    if spool_dir:
        return Path(spool_dir) / STATE_NAME
    if cursor:
        c = Path(cursor)
        return c.with_name(c.name + ".ratelimit.json")
    return None


@dataclass
class _Limit:
    not_before: float = 0.0  # wall clock (epoch seconds): no post before this
    spacing: float = 0.0  # seconds between posts while `now < spacing_until`
    spacing_until: float = 0.0
    reason: str = ""

    def expired(self, now: float) -> bool:
        return self.not_before < now and self.spacing_until < now

    def to_json(self) -> dict[str, Any]:
        return {"not_before": self.not_before, "spacing": self.spacing, "spacing_until": self.spacing_until,
                "reason": self.reason, "updated": utc_now_iso()}

    @classmethod
    def from_json(cls, d: Any) -> _Limit:
        if not isinstance(d, dict):
            return cls()
        try:
            return cls(float(d.get("not_before") or 0), float(d.get("spacing") or 0), float(d.get("spacing_until") or 0),
                       str(d.get("reason") or ""))
        except (TypeError, ValueError):
            return cls()


class RateGate:
    """The not-before time and learned spacing of one destination; persisted when `path` is given.

    `wait_seconds()` says how long to wait before the next post; `posted()` and `rate_limited()`
    record what happened. Clocks are wall-clock epoch seconds so the state means the same in every
    process (and on every host sharing the file).
    """

    def __init__(self, dest: str, path: Path | None = None, *, min_interval: float = 0.0, clock=time.time):
        self.dest = dest
        self.path = path
        self.min_interval = min_interval
        self._clock = clock
        self._limit = _Limit()
        self._last_post: float | None = None

    # -- persistence ---------------------------------------------------------------------------
    def _read_file(self) -> dict[str, Any]:
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION or not isinstance(data.get("destinations"), dict):
            return {}
        return data["destinations"]

    def _refresh(self) -> None:
        """Reload this destination's limit (another process may have recorded one); cheap next to a POST."""
        if self.path is None:
            return
        mine = self._read_file().get(self.dest)
        if mine is not None:
            fresh = _Limit.from_json(mine)
            if fresh.not_before > self._limit.not_before or fresh.spacing_until > self._limit.spacing_until:
                self._limit = fresh

    def _store(self) -> None:
        if self.path is None:
            return
        try:
            with FileLock(self.path.with_name(self.path.name + ".lock"), timeout=10, what="rate-limit state lock"):
                dests = self._read_file()
                mine = _Limit.from_json(dests.get(self.dest))
                # keep the later limit if another process recorded one meanwhile
                mine.not_before = max(mine.not_before, self._limit.not_before)
                if self._limit.spacing_until >= mine.spacing_until:
                    mine.spacing, mine.spacing_until = self._limit.spacing, self._limit.spacing_until
                mine.reason = self._limit.reason or mine.reason
                self._limit = mine
                dests.pop(self.dest, None)
                dests[self.dest] = mine.to_json()
                if len(dests) > MAX_DESTINATIONS:  # forget expired limits of other destinations
                    now = self._clock()
                    for k in [k for k, v in dests.items() if k != self.dest and _Limit.from_json(v).expired(now)]:
                        dests.pop(k, None)
                atomic_write_json(self.path, {"version": STATE_VERSION, "destinations": dests}, mode=0o600)
        except (OSError, LockTimeoutError):
            pass  # the limit still applies in this process; persistence is best effort (read-only spool, stuck lock)

    # -- the gate ------------------------------------------------------------------------------
    def wait_seconds(self) -> float:
        """Seconds to wait before the next post to this destination (0 when it may go now)."""
        self._refresh()
        now = self._clock()
        wait = self._limit.not_before - now
        if self._last_post is not None:
            gap = self.min_interval
            if now < self._limit.spacing_until:
                gap = max(gap, self._limit.spacing)
            wait = max(wait, self._last_post + gap - now)
        return max(0.0, wait)

    def posted(self) -> None:
        """Record a post; while a learned spacing applies, other processes see the next allowed time."""
        now = self._clock()
        self._last_post = now
        if now < self._limit.spacing_until and self._limit.spacing > 0 and self.path is not None:
            self._limit.not_before = max(self._limit.not_before, now + self._limit.spacing)
            self._store()

    def rate_limited(self, retry_after: float | None, reason: str) -> float:
        """Record a 429: no post before now + Retry-After, and that spacing for a while. Returns the wait."""
        now = self._clock()
        wait = DEFAULT_RETRY_AFTER if retry_after is None else max(0.0, retry_after)
        self._limit.not_before = max(self._limit.not_before, now + wait)
        self._limit.spacing = max(self._limit.spacing if now < self._limit.spacing_until else 0.0,
                                  min(max(wait, self.min_interval), SPACING_MAX))
        self._limit.spacing_until = now + SPACING_HOLD
        self._limit.reason = reason
        self._store()
        return wait
