"""Graceful stop on SIGTERM / SIGINT (and the warnings batch schedulers send before a kill).

Why a watcher thread instead of `signal.signal`: CP-SAT installs its own SIGINT handler for the
duration of every solve (its `catch_sigint_signal` parameter) and would swallow a Ctrl-C, and a
Python handler only runs when the main thread is back in the interpreter. So while a run is
active the stop signals are *blocked* in every thread (CP-SAT's threads inherit the mask) and
one watcher thread takes them with `sigwait`, whatever handler a library installed. The watcher
only records the signal; the run loop stops, flushes what is accepted, records the state and
exits with 128 + signum.

Schedulers signal the whole process group, and a launcher in between (`uv run`, a shell) may
forward the same signal again, so one cancel can arrive two or three times within moments. Any
stop signal within `REPEAT_WINDOW_S` of the first is the same request. Only the same signal again
after that window (an impatient second Ctrl-C) exits at once, keeping what is committed.

`block_early()` blocks the stop signals as the very first thing `dense run` does, before its
imports: a signal that arrives during start-up stays pending and is picked up by the guard.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

# SIGUSR1/SIGUSR2: SGE's `-notify` warnings before suspend/kill; SIGXCPU: SGE s_cpu; SIGHUP: lost terminal.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGXCPU") if hasattr(signal, name)
)
REPEAT_WINDOW_S = 5.0

_early_mask: set | None = None  # the signal mask before `block_early`, restored when the guard exits


class StopRequested(Exception):
    """Raised at a start-up checkpoint when a stop was requested before the run loop began."""


class StopFlag:
    """Set by the signal watcher (or a deadline); read by the run loop."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.reason: str | None = None
        self.since: float | None = None  # monotonic time of the request
        self.repeats = 0  # further stop signals received while stopping
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)

    def request(self, reason: str, signum: int | None = None) -> None:
        """Ask the run to stop (the first request wins; later ones are counted)."""
        if self._event.is_set():
            self.repeats += 1
            return
        self.signum = signum
        self.reason = reason
        self.since = time.monotonic()
        self._event.set()
        for cb in list(self._callbacks):
            with contextlib.suppress(Exception):  # a callback must not keep the stop from being recorded
                cb()

    def on_request(self, cb: Callable[[], None]) -> None:
        """Call `cb` once when a stop is requested."""
        self._callbacks.append(cb)

    def check(self) -> None:
        """Raise StopRequested when a stop was requested (start-up checkpoints)."""
        if self.requested:
            raise StopRequested(self.reason or "stop requested")

    @property
    def exit_code(self) -> int | None:
        return None if self.signum is None else 128 + int(self.signum)


def signal_name(signum: int) -> str:
    """`SIGTERM` for 15 (or `signal N`)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def block_early(signals: tuple[int, ...] = STOP_SIGNALS) -> None:
    """Block the stop signals now (main thread, before threads exist); the guard takes them later."""
    global _early_mask
    if _early_mask is None and hasattr(signal, "pthread_sigmask"):
        _early_mask = signal.pthread_sigmask(signal.SIG_BLOCK, signals)


class SignalGuard:
    """Route stop signals to a `StopFlag` for the duration of a `with` block."""

    def __init__(self, stop: StopFlag, signals: tuple[int, ...] = STOP_SIGNALS, *, repeat_window_s: float = REPEAT_WINDOW_S):
        self.stop = stop
        self.signals = tuple(signals)
        self.repeat_window_s = repeat_window_s
        self._previous_mask: set | None = None
        self._previous: dict[int, object] = {}
        self._watcher: threading.Thread | None = None
        self._closing = threading.Event()

    def _record(self, signum: int) -> bool:
        """Record a stop signal; True when it is an impatient repeat that should end the process now."""
        stop = self.stop
        if stop.requested and signum == stop.signum and stop.since is not None \
                and time.monotonic() - stop.since > self.repeat_window_s:
            return True
        stop.request(signal_name(signum), signum)
        return False

    # -- sigwait mode (Linux / POSIX) ---------------------------------------------------------
    def _watch(self) -> None:
        while True:
            try:
                signum = signal.sigwait(self.signals)
            except (OSError, ValueError):  # pragma: no cover - defensive
                return
            if self._closing.is_set():
                return
            if self._record(signum):
                # impatient second signal: leave now (what is committed stays committed)
                sys.stderr.write(f"dense: second {signal_name(signum)}; exiting without waiting\n")
                sys.stderr.flush()
                os._exit(128 + int(signum))

    # -- handler (threads that do not block the signals; platforms without sigwait) ------------
    def _handler(self, signum, frame) -> None:
        if self._record(signum):
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    def __enter__(self) -> SignalGuard:
        global _early_mask
        if threading.current_thread() is not threading.main_thread():
            return self
        # Handlers too: a thread that existed before the mask was set (e.g. in a long-lived process that
        # already used polars) may still receive a signal; the handler then records it instead of the
        # default action killing the process.
        for s in self.signals:
            try:
                self._previous[s] = signal.signal(s, self._handler)
            except (OSError, ValueError):
                continue
        if hasattr(signal, "pthread_sigmask") and hasattr(signal, "sigwait"):
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, self.signals)
            self._previous_mask = _early_mask if _early_mask is not None else mask
            _early_mask = None
            self._watcher = threading.Thread(target=self._watch, name="dense-signal-watcher", daemon=True)
            self._watcher.start()
        return self

    def __exit__(self, *exc) -> None:
        watcher = self._watcher
        if watcher is not None and watcher.ident is not None:
            self._closing.set()
            with contextlib.suppress(OSError, ValueError, ProcessLookupError):
                signal.pthread_kill(watcher.ident, self.signals[0])  # wake sigwait; it sees _closing
            watcher.join(timeout=2)
            self._watcher = None
            # a signal that arrived after the run loop finished is still honoured by the caller
            pending = signal.sigpending() & set(self.signals)
            for s in pending:
                if not self.stop.requested:
                    self.stop.request(signal_name(s), s)
            if self._previous_mask is not None:
                # drop pending stop signals (already recorded) before unblocking, so they do not kill us now
                for s in pending:
                    with contextlib.suppress(OSError, ValueError):
                        signal.sigtimedwait([s], 0)
                signal.pthread_sigmask(signal.SIG_SETMASK, self._previous_mask)
                self._previous_mask = None
        for s, h in self._previous.items():
            with contextlib.suppress(OSError, ValueError, TypeError):
                signal.signal(s, h)  # type: ignore[arg-type]
        self._previous.clear()
