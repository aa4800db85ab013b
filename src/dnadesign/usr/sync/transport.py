"""How `SshSide` reaches the machine holding a remote dataset: run a sh script there, and where rsync points.

`ssh.Connection` is the real transport (system ssh over one ControlMaster). `LocalShell` runs the
same scripts with this machine's `sh` and rsyncs between local paths: it drives the whole SSH-side
protocol without an sshd (as httpx's MockTransport drives a client without a server), and tests
wrap either one to inject faults.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from typing import Protocol

from ...core.errors import RemoteError

SAFE_ARG = re.compile(r"^[A-Za-z0-9_./~+@:=,%-]*$")


@dataclass
class Result:
    """A finished remote script: exit code, stdout bytes, stderr text."""

    rc: int
    stdout: bytes
    stderr: str


class Transport(Protocol):
    """Runs scripts where the remote dataset lives and tells rsync how to reach it."""

    calls: int       # remote commands run (scripts and rsyncs)
    bytes_in: int    # bytes received from scripts

    def run_script(self, script: str, args: list[str], *, timeout: float = 600.0, check: bool = True) -> Result:
        """Run POSIX sh `script` with positional `args` (validated), returning its output."""
        ...

    def rsync_host(self) -> tuple[str | None, str | None]:
        """(`user@host` or None for this machine, rsync -e value or None)."""
        ...

    def rsync_failure(self, rc: int, stderr: str) -> Exception:
        """The error for a failed rsync over this transport."""
        ...


def check_args(args: list[str]) -> None:
    for a in args:
        if not SAFE_ARG.match(a):
            raise RemoteError(f"refusing to pass unsafe argument {a!r} to the remote shell")


class LocalShell:
    """A transport whose "remote" is this machine: scripts run under `sh`, rsync copies between paths."""

    def __init__(self, name: str = "local-shell"):
        self.name = name
        self.calls = 0
        self.bytes_in = 0

    def run_script(self, script: str, args: list[str], *, timeout: float = 600.0, check: bool = True) -> Result:
        check_args(args)
        self.calls += 1
        try:
            res = subprocess.run(["sh", "-s", "--", *args], input=script.encode(), capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RemoteError(f"{self.name}: command timed out after {timeout:.0f}s", hint="rerun the same command") from None
        self.bytes_in += len(res.stdout)
        err = res.stderr.decode(errors="replace")
        if check and res.returncode != 0:
            raise RemoteError(f"{self.name}: script failed with exit {res.returncode} ({err.strip()[-300:] or 'no message'})")
        return Result(res.returncode, res.stdout, err)

    def rsync_host(self) -> tuple[str | None, str | None]:
        return None, None

    def rsync_failure(self, rc: int, stderr: str) -> Exception:
        return RemoteError(f"rsync failed with exit {rc} ({stderr.strip()[-300:]})", hint="rerun the same command; it resumes")
