"""Deliver one payload through a transport with classified retries, backoff and the destination's rate limit.

A transport (HTTP webhook in `http_transport`, Apprise channels in `apprise_channel`) makes one
attempt and classifies it: ok, transient (retried: network errors, timeouts, resets, 5xx),
permanent (not retried: other 4xx and 3xx; the caller dead-letters it) or rate_limited (429: its
Retry-After becomes the destination's not-before time, see `ratelimit`). The `Sender` owns the
policy. No result, exception or log line ever holds the destination URL.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from .profile import DeliveryPolicy
from .ratelimit import RateGate

Kind = Literal["ok", "transient", "permanent", "rate_limited"]


@dataclass(frozen=True)
class Attempt:
    """One try at one destination: its classification, a short reason, the HTTP status and Retry-After if any."""

    kind: Kind
    reason: str
    status: int | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class Result:
    """Outcome of one delivery: ok, or a failure that is `permanent` (dead-letter) or transient (spool, retry later).

    `attempts` counts the posts actually made; `rate_limited` says the destination asked us to wait.
    """

    ok: bool
    attempts: int
    status: int | None = None
    reason: str = ""
    permanent: bool = False
    rate_limited: bool = False


class Transport(Protocol):
    """One destination. `dest` is a non-secret id (see `ratelimit.destination_id`)."""

    dest: str

    def post(self, payload: dict[str, Any], key: str) -> Attempt: ...

    def close(self) -> None: ...


def classify_http(status: int) -> Kind:
    """2xx ok; 429 rate_limited; 408 and 5xx transient; other 3xx/4xx permanent."""
    if 200 <= status < 300:
        return "ok"
    if status == 429:
        return "rate_limited"
    if status == 408 or status >= 500:
        return "transient"
    return "permanent"


def _utc_clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(epoch))


class Sender:
    """Retry policy, backoff and rate limit around one transport (one destination)."""

    def __init__(self, transport: Transport, policy: DeliveryPolicy | None = None, *, min_interval: float = 0.0,
                 state_path: Path | None = None, sleep: Callable[[float], Any] | None = None,
                 stop: threading.Event | None = None, rng: random.Random | None = None):
        self.transport = transport
        self.policy = policy or DeliveryPolicy()
        interval = self.policy.min_interval if self.policy.min_interval is not None else min_interval
        self.gate = RateGate(transport.dest, state_path, min_interval=interval)
        self._stop = stop
        self._sleep = sleep or self._interruptible_sleep
        self._rng = rng or random.Random()

    def _interruptible_sleep(self, seconds: float) -> None:
        if self._stop is not None:
            self._stop.wait(seconds)
        else:
            time.sleep(seconds)

    def _stopped(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    def close(self) -> None:
        """Release the transport's connections."""
        self.transport.close()

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _backoff(self, attempt: int) -> float:
        p = self.policy
        ceiling = min(p.backoff_max, p.backoff_base * (2 ** (attempt - 1)))
        return ceiling * (0.5 + self._rng.random() / 2)  # jitter in [ceiling/2, ceiling]

    def deliver(self, payload: dict[str, Any], key: str, max_attempts: int | None = None) -> Result:
        """Post up to `max_attempts` times; stop early on success, a permanent failure or a long rate limit.

        Before every post the destination's rate limit is honoured: a wait up to
        `policy.retry_after_max` is slept (interruptibly), a longer one returns a transient,
        `rate_limited` result without posting.
        """
        allowed = max_attempts or self.policy.max_attempts
        limit = self.policy.retry_after_max
        posts = 0
        last: Attempt | None = None
        while posts < allowed:
            if posts > 0 and self._stopped():
                break
            wait = self.gate.wait_seconds()
            if wait > limit:
                why = f"rate limited by the destination until {_utc_clock(time.time() + wait)}"
                return Result(False, posts, last.status if last else 429, why + (f" ({last.reason})" if last else ""),
                              rate_limited=True)
            if wait > 0:
                self._sleep(wait)
                if self._stopped():  # never post early because we were told to stop
                    if posts == 0:
                        return Result(False, 0, None, "stopped while waiting for the destination's rate limit",
                                      rate_limited=True)
                    break
            last = self.transport.post(payload, key)
            posts += 1
            self.gate.posted()
            if last.kind == "ok":
                return Result(True, posts, last.status, last.reason)
            if last.kind == "permanent":
                return Result(False, posts, last.status, last.reason, permanent=True)
            if last.kind == "rate_limited":
                asked = self.gate.rate_limited(last.retry_after, last.reason)
                if asked > limit:
                    return Result(False, posts, last.status, f"{last.reason} (Retry-After {asked:.0f}s exceeds {limit:.0f}s)",
                                  rate_limited=True)
                continue  # the gate makes the next try wait
            if posts < allowed:
                self._sleep(self._backoff(posts))
        if last is None:
            return Result(False, 0, None, "stopped before the first attempt")
        return Result(False, posts, last.status, last.reason, rate_limited=last.kind == "rate_limited")
