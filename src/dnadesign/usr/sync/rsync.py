"""The one transfer routine: rsync a list of files between two endpoints (either may be this machine).

rsync writes each file under a temporary name and renames it, so a destination file is complete or
absent; partial data is kept in `.usr-partial/` and resumed by the next run. Only files named on
stdin (`--files-from=-`) move; nothing is ever deleted.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence

from ...core.errors import RemoteError, UsageError
from .side import Endpoint
from .state import PARTIAL_DIR

BWLIMIT_ENV = "USR_SYNC_BWLIMIT"
IO_TIMEOUT_ENV = "USR_SYNC_IO_TIMEOUT"
_BWLIMIT = re.compile(r"^[0-9]+(\.[0-9]+)?([KMGkmg](i?[Bb])?)?$")
_PROGRESS = re.compile(rb"^\s*([\d,]+)\s+(\d+)%")


def check_bwlimit(value: str | None) -> str | None:
    """A valid rsync --bwlimit value (KB/s, or with a K/M/G suffix), or None; a UsageError otherwise."""
    if value is None or value == "":
        return None
    if not _BWLIMIT.match(value):
        raise UsageError(f"--bwlimit {value!r} is not a rate rsync understands",
                         hint="give KB/s as a number (e.g. 5000) or with a suffix (e.g. 5M)")
    return value


def rsync_binary() -> str:
    path = shutil.which("rsync")
    if not path:
        raise RemoteError("`rsync` is not installed on this machine", hint="install it (e.g. `apt-get install rsync`)")
    return path


def rsync_files(files: Sequence[str], src: Endpoint, dst: Endpoint, *, dst_sub: str = "", bwlimit: str | None = None,
                progress: Callable[[int, int], None] | None = None,
                on_failure: Callable[[int, str], Exception] | None = None) -> int:
    """Copy `files` (paths relative to src's dataset dir) to `dst`'s dataset dir (or its `dst_sub` directory).

    Returns the bytes rsync reports moving (sent, or received when the source is remote).
    `on_failure(exit_code, stderr)` builds the error for a failed run (the SSH side classifies it).
    """
    if not files:
        return 0
    if src.host and dst.host:
        raise RemoteError("rsync cannot copy between two remote hosts", hint="sync each remote with this machine instead")
    dst_dir = dst.path.rstrip("/") + ("/" + dst_sub.strip("/") if dst_sub else "")
    argv = [rsync_binary(), "-t", "--protect-args", "--files-from=-", f"--partial-dir={PARTIAL_DIR}",
            f"--timeout={int(os.environ.get(IO_TIMEOUT_ENV, '60'))}", "--no-perms", "--chmod=F644", "--stats", "--info=progress2"]
    rsh = src.rsh or dst.rsh
    if rsh:
        argv += ["-e", rsh]
    limit = check_bwlimit(bwlimit or os.environ.get(BWLIMIT_ENV) or None)
    if limit:
        argv.append(f"--bwlimit={limit}")
    if dst.host:
        argv.append(f"--rsync-path=mkdir -p '{dst_dir}' && rsync")
    else:
        os.makedirs(dst_dir, exist_ok=True)
    argv += [src.spec(), dst.spec(dst_sub)]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    errbuf: list[bytes] = []
    stderr = proc.stderr
    t = threading.Thread(target=lambda: errbuf.append(stderr.read()), daemon=True)
    t.start()
    try:
        proc.stdin.write(("\n".join(files) + "\n").encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    outbuf = bytearray()
    out_fd = proc.stdout.fileno()
    while True:
        chunk = os.read(out_fd, 65536)
        if not chunk:
            break
        outbuf += chunk
        if progress:
            for piece in re.split(rb"[\r\n]", bytes(chunk)):
                m = _PROGRESS.match(piece)
                if m:
                    progress(int(m.group(1).replace(b",", b"")), int(m.group(2)))
    rc = proc.wait()
    t.join(timeout=5)
    err = b"".join(errbuf).decode(errors="replace")
    if rc != 0:
        if on_failure is not None:
            raise on_failure(rc, err)
        raise RemoteError(f"rsync failed with exit {rc} ({err.strip()[-300:]})", hint="rerun the same command; it resumes")
    key = "Total bytes received" if src.host else "Total bytes sent"
    total = re.search(key + r":\s*([\d,.]+)", outbuf.decode(errors="replace"))
    return int(total.group(1).replace(",", "").replace(".", "")) if total else 0
