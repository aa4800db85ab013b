"""POST one JSON payload with separate connect/read timeouts, classified retries and backoff.

Retried: network errors, timeouts, connection resets, 5xx, and 429 (honouring Retry-After).
Not retried: other 4xx and 3xx (permanent: the caller dead-letters them). The webhook URL never
appears in a result, exception or log line; every request carries `Idempotency-Key`.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..core.errors import ConfigError
from ..core.secrets import scrub_urls
from .profile import DeliveryPolicy
from .urls import check_url, is_loopback

USER_AGENT = "dnadesign-notify/1"
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)

# httpx/httpcore log request URLs at INFO/DEBUG; a webhook URL is a secret, so keep them quiet
# even when an embedding application turns logging up.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


@dataclass(frozen=True)
class Result:
    """Outcome of one delivery: ok, or a failure that is `permanent` (dead-letter) or transient (spool/retry later)."""

    ok: bool
    attempts: int
    status: int | None = None
    reason: str = ""
    permanent: bool = False


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """TLS verification against `ca_bundle` if given, else $SSL_CERT_FILE if set, else certifi's bundle."""
    ca_bundle = ca_bundle or os.environ.get("SSL_CERT_FILE") or None
    if ca_bundle:
        if not Path(ca_bundle).is_file():
            raise ConfigError(f"CA bundle {ca_bundle} does not exist", hint="pass an existing PEM file or drop --tls-ca-bundle to use certifi")
        return ssl.create_default_context(cafile=ca_bundle)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or HTTP date); None if absent or invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if dt is None:
        return None
    return max(0.0, dt.timestamp() - (time.time() if now is None else now))


class Sender:
    """A reusable HTTP client bound to one webhook URL and retry policy."""

    def __init__(self, url: str, policy: DeliveryPolicy | None = None, *, min_interval: float = 0.0,
                 ca_bundle: str | None = None, allow_insecure_localhost: bool = False,
                 sleep: Callable[[float], Any] | None = None, stop: threading.Event | None = None,
                 rng: random.Random | None = None):
        check_url(url, allow_insecure_localhost=allow_insecure_localhost)
        self._url = url
        self.policy = policy or DeliveryPolicy()
        self.min_interval = self.policy.min_interval if self.policy.min_interval is not None else min_interval
        self._stop = stop
        self._sleep = sleep or self._interruptible_sleep
        self._rng = rng or random.Random()
        self._last_post = 0.0
        p = self.policy
        timeout = httpx.Timeout(connect=p.connect_timeout, read=p.read_timeout, write=p.read_timeout, pool=p.connect_timeout)
        verify: Any = ssl_context(ca_bundle) if url.lower().startswith("https:") else True
        # Proxies from the environment (HTTPS_PROXY, NO_PROXY) matter on cluster nodes; never for loopback.
        trust_env = not is_loopback(urlsplit(url).hostname or "")
        self._client = httpx.Client(timeout=timeout, verify=verify, follow_redirects=False, trust_env=trust_env,
                                    headers={"User-Agent": USER_AGENT, "Content-Type": "application/json"})

    def _interruptible_sleep(self, seconds: float) -> None:
        if self._stop is not None:
            self._stop.wait(seconds)
        else:
            time.sleep(seconds)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _backoff(self, attempt: int) -> float:
        p = self.policy
        ceiling = min(p.backoff_max, p.backoff_base * (2 ** (attempt - 1)))
        return ceiling * (0.5 + self._rng.random() / 2)  # jitter in [ceiling/2, ceiling]

    def _scrub(self, text: str) -> str:
        return scrub_urls(text.replace(self._url, "<webhook>"))[:300]

    def post_once(self, body: bytes, key: str) -> tuple[int | None, str, float | None]:
        """One attempt: (HTTP status or None on a network error, reason, Retry-After seconds)."""
        gap = time.monotonic() - self._last_post
        if self.min_interval and gap < self.min_interval:
            self._sleep(self.min_interval - gap)
        self._last_post = time.monotonic()
        try:
            resp = self._client.post(self._url, content=body, headers={"Idempotency-Key": key})
        except httpx.TimeoutException as exc:
            return None, f"{type(exc).__name__} (timed out)", None
        except httpx.HTTPError as exc:
            return None, self._scrub(f"{type(exc).__name__}: {exc}"), None
        except OSError as exc:
            return None, self._scrub(f"{type(exc).__name__}: {exc.strerror or exc}"), None
        reason = f"HTTP {resp.status_code}"
        snippet = self._scrub(resp.text[:200].strip()) if resp.status_code >= 300 else ""
        if snippet:
            reason += f": {snippet}"
        return resp.status_code, reason, parse_retry_after(resp.headers.get("Retry-After"))

    def deliver(self, payload: dict[str, Any], key: str, max_attempts: int | None = None) -> Result:
        """Try up to `max_attempts` times; stop early on success or a permanent failure."""
        body = _ENCODER.encode(payload).encode()
        attempts_allowed = max_attempts or self.policy.max_attempts
        reason, status = "", None
        for attempt in range(1, attempts_allowed + 1):
            if self._stop is not None and self._stop.is_set() and attempt > 1:
                break
            status, reason, retry_after = self.post_once(body, key)
            if status is not None and 200 <= status < 300:
                return Result(True, attempt, status, reason)
            if status is not None and status != 429 and (300 <= status < 500):
                return Result(False, attempt, status, reason, permanent=True)
            if attempt == attempts_allowed:
                break
            delay = self._backoff(attempt)
            if status == 429 and retry_after is not None:
                if retry_after > self.policy.retry_after_max:
                    reason += f" (Retry-After {retry_after:.0f}s exceeds {self.policy.retry_after_max:.0f}s)"
                    break
                delay = max(delay, retry_after)
            self._sleep(delay)
        return Result(False, attempt, status, reason)
