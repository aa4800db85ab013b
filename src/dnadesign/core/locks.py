"""Advisory file locks (flock) with a timeout and a message that names the holder.

The lock file keeps a one-line JSON description of its current exclusive holder (host, pid,
command, since) so a blocked user is told who to wait for instead of hanging silently.

A lock is re-entrant within one thread: taking a lock the same thread already holds on the same
path (e.g. a caller that holds a dataset lock while calling a store method that takes it again)
nests instead of deadlocking on a second file description. Other threads and processes still
exclude each other as flock does. `shared=True` takes a shared (reader) lock: any number of shared
holders, no exclusive one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

from .errors import LockTimeoutError
from .timeutil import utc_now_iso

# (real path, thread id) -> [fd, depth, shared] of the locks this process holds
_HELD: dict[tuple[str, int], list] = {}
_HELD_GUARD = threading.Lock()


def _holder_info() -> dict:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "cmd": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv[:4])),
        "since": utc_now_iso(),
    }


def read_holder(path: str | Path) -> dict | None:
    """Return the holder description stored in a lock file, if any."""
    try:
        text = Path(path).read_text().strip()
        return json.loads(text) if text else None
    except (OSError, ValueError):
        return None


def describe_holder(holder: dict | None) -> str:
    """`pid N on HOST (command, since TS)`, or `another process` when the file names nobody."""
    if not holder:
        return "another process"
    return f"pid {holder.get('pid')} on {holder.get('host')} ({holder.get('cmd', '?')}, since {holder.get('since', '?')})"


class FileLock:
    """flock on `path` (exclusive by default), usable as a context manager.

    `timeout=None` waits forever, `0` fails at once. An exclusive holder is recorded in the file.
    """

    def __init__(self, path: str | Path, timeout: float | None = 300.0, what: str = "lock", poll: float = 0.05,
                 *, shared: bool = False):
        self.path = Path(path)
        self.timeout = timeout
        self.what = what
        self.poll = poll
        self.shared = shared
        self._fd: int | None = None
        self._key: tuple[str, int] | None = None

    def _registry_key(self) -> tuple[str, int]:
        return (os.path.realpath(self.path), threading.get_ident())

    def acquire(self) -> FileLock:
        """Take the lock (or nest inside this thread's hold of it); raise LockTimeoutError after `timeout`."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        key = self._registry_key()
        with _HELD_GUARD:
            held = _HELD.get(key)
            if held is not None and (not held[2] or self.shared):
                held[1] += 1  # re-entrant: this thread holds it already (an exclusive hold covers a shared request)
                self._key = key
                self._fd = held[0]
                return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        mode = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    os.close(fd)
                    holder = describe_holder(read_holder(self.path))
                    raise LockTimeoutError(
                        f"{self.what} {self.path} is held by {holder}",
                        hint="wait for that process to finish, or stop it if it is stale, then retry",
                    ) from None
                time.sleep(self.poll)
        if not self.shared:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(_holder_info()) + "\n").encode(), 0)
        with _HELD_GUARD:
            _HELD[key] = [fd, 1, self.shared]
        self._key = key
        self._fd = fd
        return self

    def release(self) -> None:
        """Release this hold; the flock itself is dropped when the outermost hold is released."""
        if self._fd is None or self._key is None:
            return
        with _HELD_GUARD:
            held = _HELD.get(self._key)
            if held is not None and held[1] > 1:
                held[1] -= 1
                self._fd = None
                return
            _HELD.pop(self._key, None)
        fd, self._fd = self._fd, None
        if not self.shared:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def pid_alive(pid: int) -> bool:
    """Whether a process of this host with ``pid`` still exists (a lock or staging owner)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
