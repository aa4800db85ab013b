"""The spool: one file per undelivered payload (mode 600, directory 700) and a dead-letter folder.

`drain` holds an exclusive lock so two drains never send the same payload; each attempt is
recorded in the file, and a payload moves to `dead/` with its reason after a permanent failure
(4xx) or too many attempts. A payload is removed only after the webhook accepted it.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_write_json, fsync_dir
from ..core.errors import ConfigError
from ..core.locks import FileLock
from ..core.timeutil import utc_now_iso
from .delivery import Result

SPOOL_VERSION = 1
DEAD = "dead"
LOCK = ".drain.lock"


def ensure_private_dir(path: Path) -> None:
    """Create `path` (and parents) and make it mode 700."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if stat.S_IMODE(path.stat().st_mode) != 0o700:
        os.chmod(path, 0o700)


def _safe_key(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in key)[:128] or "payload"


@dataclass
class SpoolEntry:
    """A spooled payload and its delivery history."""

    path: Path
    key: str
    provider: str
    payload: dict[str, Any]
    created: str
    attempts: int = 0
    last_error: str | None = None
    last_attempt: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The file's JSON document."""
        return {"spool_version": SPOOL_VERSION, "key": self.key, "provider": self.provider, "payload": self.payload,
                "created": self.created, "attempts": self.attempts, "last_error": self.last_error,
                "last_attempt": self.last_attempt, **self.extra}

    def summary(self) -> dict[str, Any]:
        """What `spool list` shows (no payload)."""
        return {"key": self.key, "provider": self.provider, "created": self.created, "attempts": self.attempts,
                "last_error": self.last_error, "file": self.path.name, **({"reason": self.extra["reason"]} if "reason" in self.extra else {})}


@dataclass
class DrainReport:
    """Counts from one drain."""

    delivered: int = 0
    dead_lettered: int = 0
    failed: int = 0
    remaining: int = 0
    unreadable: int = 0
    rate_limited: bool = False
    details: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The report as `--json` prints it."""
        return {"delivered": self.delivered, "dead_lettered": self.dead_lettered, "failed": self.failed,
                "remaining": self.remaining, "unreadable": self.unreadable, "rate_limited": self.rate_limited,
                "details": self.details}


class Spool:
    """A spool directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.dead = self.path / DEAD

    def ensure(self) -> Spool:
        """Create the spool and its dead-letter folder (mode 700)."""
        ensure_private_dir(self.path)
        ensure_private_dir(self.dead)
        return self

    def put(self, key: str, provider: str, payload: dict[str, Any], *, reason: str | None = None,
            attempts: int = 0, dead: bool = False, **extra: Any) -> Path:
        """Store a payload (to `dead/` when `dead`); the same key overwrites, so a payload is spooled once."""
        self.ensure()
        target = (self.dead if dead else self.path) / f"{_safe_key(key)}.json"
        entry = SpoolEntry(target, key, provider, payload, utc_now_iso(), attempts, reason,
                           utc_now_iso() if attempts else None, dict(extra))
        if dead:
            entry.extra["reason"] = reason
        atomic_write_json(target, entry.to_json(), mode=0o600)
        return target

    def _load(self, path: Path) -> SpoolEntry:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or data.get("spool_version") != SPOOL_VERSION or not isinstance(data.get("payload"), dict):
            raise ValueError("not a notify spool file")
        known = {"spool_version", "key", "provider", "payload", "created", "attempts", "last_error", "last_attempt"}
        return SpoolEntry(path, str(data["key"]), str(data.get("provider", "generic")), data["payload"],
                          str(data.get("created", "")), int(data.get("attempts", 0)), data.get("last_error"),
                          data.get("last_attempt"), {k: v for k, v in data.items() if k not in known})

    def files(self, dead: bool = False) -> list[Path]:
        """Spooled payload files (or dead letters), by name."""
        base = self.dead if dead else self.path
        if not base.is_dir():
            return []
        return sorted(p for p in base.iterdir() if p.suffix == ".json" and not p.name.startswith(".") and p.is_file())

    def entries(self, dead: bool = False) -> Iterator[SpoolEntry | tuple[Path, str]]:
        """Entries oldest first; unreadable files come back as (path, reason)."""
        loaded: list[SpoolEntry] = []
        bad: list[tuple[Path, str]] = []
        for p in self.files(dead):
            try:
                loaded.append(self._load(p))
            except FileNotFoundError:
                continue
            except (OSError, ValueError, KeyError, TypeError) as exc:
                bad.append((p, f"unreadable spool file ({type(exc).__name__})"))
        loaded.sort(key=lambda e: (e.created, e.path.name))
        yield from bad
        yield from loaded

    def _to_dead(self, entry: SpoolEntry, reason: str) -> None:
        entry.extra["reason"] = reason
        entry.extra["dead_lettered"] = utc_now_iso()
        atomic_write_json(self.dead / entry.path.name, entry.to_json(), mode=0o600)
        entry.path.unlink(missing_ok=True)
        fsync_dir(self.path)

    def drain(self, send: Callable[[SpoolEntry], Result], *, max_attempts: int = 10, lock_timeout: float | None = 60.0,
              keep_going: bool = False, stop: Callable[[], bool] | None = None) -> DrainReport:
        """Deliver every waiting payload under the drain lock; stop at the first transient failure unless `keep_going`."""
        if not self.path.is_dir():
            raise ConfigError(f"spool directory {self.path} does not exist", hint="nothing was spooled yet, or check --spool-dir")
        self.ensure()
        report = DrainReport()
        with FileLock(self.path / LOCK, timeout=lock_timeout, what="spool drain lock"):
            pending = list(self.entries())
            for item in pending:
                if stop is not None and stop():
                    break
                if isinstance(item, tuple):
                    path, reason = item
                    os.replace(path, self.dead / path.name)
                    report.unreadable += 1
                    report.details.append({"file": path.name, "outcome": "dead", "reason": reason})
                    continue
                entry = item
                if not entry.path.exists():
                    continue
                result = send(entry)
                entry.attempts += result.attempts
                if result.attempts:
                    entry.last_attempt = utc_now_iso()
                if result.ok:
                    entry.path.unlink(missing_ok=True)
                    report.delivered += 1
                    continue
                entry.last_error = result.reason
                if result.permanent or entry.attempts >= max_attempts:
                    why = result.reason if result.permanent else f"gave up after {entry.attempts} attempts: {result.reason}"
                    self._to_dead(entry, why)
                    report.dead_lettered += 1
                    report.details.append({"key": entry.key, "outcome": "dead", "reason": why})
                    continue
                atomic_write_json(entry.path, entry.to_json(), mode=0o600)
                report.failed += 1
                report.details.append({"key": entry.key, "outcome": "rate-limited" if result.rate_limited else "failed",
                                       "reason": result.reason})
                if result.rate_limited:
                    report.rate_limited = True
                    break  # every later payload goes to the same destination: wait for the next drain
                if not keep_going:
                    break
            fsync_dir(self.path)
            report.remaining = len(self.files())
        return report
