"""Advisory file locks (flock) with a timeout and a message that names the holder.

The lock file keeps a one-line JSON description of its current holder (host, pid, command, since)
so a blocked user is told who to wait for instead of hanging silently.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from .errors import LockTimeoutError
from .timeutil import utc_now_iso


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
    if not holder:
        return "another process"
    return f"pid {holder.get('pid')} on {holder.get('host')} ({holder.get('cmd', '?')}, since {holder.get('since', '?')})"


class FileLock:
    """Exclusive flock on `path`, usable as a context manager.

    `timeout=None` waits forever, `0` fails at once. The holder is recorded in the file.
    """

    def __init__(self, path: str | Path, timeout: float | None = 300.0, what: str = "lock", poll: float = 0.05):
        self.path = Path(path)
        self.timeout = timeout
        self.what = what
        self.poll = poll
        self._fd: int | None = None

    def acquire(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
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
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(_holder_info()) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
