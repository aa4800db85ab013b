"""Child processes of the driver: output to a log file, CPU time and peak memory, bounded, stoppable.

Each child runs in its own process group, so a time-out or a stop signal to the driver (the
scheduler's SIGTERM at the time limit, SGE's SIGUSR2 with `-notify`) reaches everything it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

KILL_GRACE_S = 10.0


@dataclass
class ProcResult:
    """How a child ended: exit code (128+N for signal N), wall and CPU seconds, peak RSS, and why it was cut short."""

    exit_code: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    timed_out: bool = False
    stopped: bool = False


class Runner:
    """Runs one child at a time; `stop(signum)` (from a signal handler) ends it and refuses new ones."""

    def __init__(self) -> None:
        self.stop_signal: int | None = None
        self._pgid: int | None = None

    @property
    def stopping(self) -> bool:
        return self.stop_signal is not None

    def _kill_group(self, sig: int) -> None:
        if self._pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._pgid, sig)

    def _terminate(self) -> None:
        """SIGTERM to the child's group, SIGKILL after a grace period if it is still there."""
        pgid = self._pgid
        self._kill_group(signal.SIGTERM)

        def later() -> None:
            time.sleep(KILL_GRACE_S)
            if self._pgid == pgid:
                self._kill_group(signal.SIGKILL)

        threading.Thread(target=later, daemon=True).start()

    def stop(self, signum: int) -> None:
        """Record the stop and end the running child (safe to call from a signal handler)."""
        self.stop_signal = signum
        self._terminate()

    def run(self, cmd: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path, stdout: Path | None = None,
            timeout: float | None = None) -> ProcResult:
        """Run `cmd`; stderr (and stdout unless `stdout` is given) is appended to `log`."""
        if self.stopping:
            return ProcResult(128 + int(self.stop_signal or 15), 0.0, 0.0, 0.0, stopped=True)
        log.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        timer: threading.Timer | None = None
        timed_out = threading.Event()
        with open(log, "ab") as err_fh, open(stdout or log, "ab") as out_fh:
            err_fh.write(f"$ {' '.join(cmd)}\n".encode())
            err_fh.flush()
            proc = subprocess.Popen(list(cmd), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=out_fh,
                                    stderr=err_fh, start_new_session=True)
            self._pgid = proc.pid
            if timeout is not None:
                def on_timeout() -> None:
                    timed_out.set()
                    self._terminate()

                timer = threading.Timer(timeout, on_timeout)
                timer.daemon = True
                timer.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                if timer is not None:
                    timer.cancel()
                self._kill_group(signal.SIGKILL)  # nothing the child left behind outlives it
                self._pgid = None
            proc.returncode = os.waitstatus_to_exitcode(status)
        code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        return ProcResult(code, round(time.monotonic() - t0, 3), round(usage.ru_utime + usage.ru_stime, 3),
                          round(usage.ru_maxrss / 1024, 1), timed_out.is_set(), self.stopping)
