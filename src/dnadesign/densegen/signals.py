"""Graceful stop on SIGTERM / SIGINT (and the warnings batch schedulers send before a kill).

Why a watcher thread instead of `signal.signal`: CP-SAT installs its own SIGINT handler for the
duration of every solve (its `catch_sigint_signal` parameter) and would swallow a Ctrl-C, and a
Python handler only runs when the main thread is back in the interpreter. So while a run is
active the stop signals are *blocked* in every thread (CP-SAT's threads inherit the mask) and
one watcher thread takes them with `sigwait`, whatever handler a library installed. The watcher
only records the signal; the run loop stops, flushes what is accepted, records the state and
exits with 128 + signum. A second identical signal while stopping exits at once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable

# SIGUSR1/SIGUSR2: SGE's `-notify` warnings before suspend/kill; SIGXCPU: SGE s_cpu; SIGHUP: lost terminal.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGXCPU") if hasattr(signal, name)
)


class StopFlag:
    """Set by the signal watcher (or a deadline); read by the run loop."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.reason: str | None = None
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)

    def request(self, reason: str, signum: int | None = None) -> None:
        if not self._event.is_set():
            self.signum = signum
            self.reason = reason
            self._event.set()
            for cb in list(self._callbacks):
                try:
                    cb()
                except Exception:
                    pass

    def on_request(self, cb: Callable[[], None]) -> None:
        """Call `cb` once when a stop is requested."""
        self._callbacks.append(cb)

    @property
    def exit_code(self) -> int | None:
        return None if self.signum is None else 128 + int(self.signum)


def _name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class SignalGuard:
    """Route stop signals to a `StopFlag` for the duration of a `with` block."""

    def __init__(self, stop: StopFlag, signals: tuple[int, ...] = STOP_SIGNALS):
        self.stop = stop
        self.signals = tuple(signals)
        self._previous_mask: set | None = None
        self._previous: dict[int, object] = {}
        self._watcher: threading.Thread | None = None
        self._closing = threading.Event()

    # -- sigwait mode (Linux / POSIX) ---------------------------------------------------------
    def _watch(self) -> None:
        while True:
            try:
                signum = signal.sigwait(self.signals)
            except (OSError, ValueError):  # pragma: no cover - defensive
                return
            if self._closing.is_set():
                return
            if self.stop.requested and signum == self.stop.signum:
                # impatient second signal: leave now (what is committed stays committed)
                sys.stderr.write(f"dense: second {_name(signum)}; exiting without waiting\n")
                sys.stderr.flush()
                os._exit(128 + int(signum))
            self.stop.request(_name(signum), signum)

    # -- handler (threads that do not block the signals; platforms without sigwait) ------------
    def _handler(self, signum, frame) -> None:
        if self.stop.requested and signum == self.stop.signum:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
            return
        self.stop.request(_name(signum), signum)

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is not threading.main_thread():
            return self
        # Handlers too: a thread that existed before the mask was set (e.g. in a long-lived process that
        # already used polars) may still receive a signal; the handler then records it instead of the
        # default action killing the process.
        for s in self.signals:
            try:
                self._previous[s] = signal.signal(s, self._handler)
            except (OSError, ValueError):
                pass
        if hasattr(signal, "pthread_sigmask") and hasattr(signal, "sigwait"):
            self._previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, self.signals)
            self._watcher = threading.Thread(target=self._watch, name="dense-signal-watcher", daemon=True)
            self._watcher.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._watcher is not None:
            self._closing.set()
            try:
                signal.pthread_kill(self._watcher.ident, self.signals[0])  # wake sigwait; it sees _closing
            except (OSError, ValueError, ProcessLookupError):
                pass
            self._watcher.join(timeout=2)
            self._watcher = None
            # a signal that arrived after the run loop finished is still honoured by the caller
            pending = signal.sigpending() & set(self.signals)
            for s in pending:
                if not self.stop.requested:
                    self.stop.request(_name(s), s)
            if self._previous_mask is not None:
                # drop pending stop signals (already recorded) before unblocking, so they do not kill us now
                for s in pending:
                    try:
                        signal.sigtimedwait([s], 0)
                    except (OSError, ValueError):
                        pass
                signal.pthread_sigmask(signal.SIG_SETMASK, self._previous_mask)
                self._previous_mask = None
        for s, h in self._previous.items():
            try:
                signal.signal(s, h)  # type: ignore[arg-type]
            except (OSError, ValueError, TypeError):
                pass
        self._previous.clear()
