"""POST JSON to a webhook (Slack, Discord, generic) with httpx: separate connect/read timeouts, verified TLS,
an `Idempotency-Key` header, and the answer classified for the `Sender`.

The URL lives only inside the transport; reasons are scrubbed of it.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import ssl
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import certifi
import httpx

from ..core.errors import ConfigError
from ..core.secrets import scrub_urls
from .delivery import Attempt, Sender, classify_http
from .profile import DeliveryPolicy
from .ratelimit import destination_id
from .urls import check_url, is_loopback

USER_AGENT = "dnadesign-notify/1"
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)

# httpx/httpcore log request URLs at INFO/DEBUG; a webhook URL is a secret, so keep them quiet
# even when an embedding application turns logging up.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """TLS verification against `ca_bundle` if given, else $SSL_CERT_FILE if set, else certifi's bundle."""
    ca_bundle = ca_bundle or os.environ.get("SSL_CERT_FILE") or None
    if ca_bundle:
        if not Path(ca_bundle).is_file():
            raise ConfigError(f"CA bundle {ca_bundle} does not exist", hint="pass an existing PEM file or drop --tls-ca-bundle to use certifi")
        return ssl.create_default_context(cafile=ca_bundle)
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


class HttpTransport:
    """A reusable HTTP client bound to one webhook URL."""

    def __init__(self, url: str, policy: DeliveryPolicy | None = None, *, ca_bundle: str | None = None,
                 allow_insecure_localhost: bool = False):
        check_url(url, allow_insecure_localhost=allow_insecure_localhost)
        self._url = url
        self.dest = destination_id(url)
        p = policy or DeliveryPolicy()
        timeout = httpx.Timeout(connect=p.connect_timeout, read=p.read_timeout, write=p.read_timeout, pool=p.connect_timeout)
        verify: Any = ssl_context(ca_bundle) if url.lower().startswith("https:") else True
        # Proxies from the environment (HTTPS_PROXY, NO_PROXY) matter on cluster nodes; never for loopback.
        trust_env = not is_loopback(urlsplit(url).hostname or "")
        self._client = httpx.Client(timeout=timeout, verify=verify, follow_redirects=False, trust_env=trust_env,
                                    headers={"User-Agent": USER_AGENT, "Content-Type": "application/json"})

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _scrub(self, text: str) -> str:
        return scrub_urls(text.replace(self._url, "<webhook>"))[:300]

    def post(self, payload: dict[str, Any], key: str) -> Attempt:
        """One POST, classified (network errors and timeouts are transient)."""
        body = _ENCODER.encode(payload).encode()
        try:
            resp = self._client.post(self._url, content=body, headers={"Idempotency-Key": key})
        except httpx.TimeoutException as exc:
            return Attempt("transient", f"{type(exc).__name__} (timed out)")
        except httpx.HTTPError as exc:
            return Attempt("transient", self._scrub(f"{type(exc).__name__}: {exc}"))
        except OSError as exc:
            return Attempt("transient", self._scrub(f"{type(exc).__name__}: {exc.strerror or exc}"))
        reason = f"HTTP {resp.status_code}"
        snippet = self._scrub(resp.text[:200].strip()) if resp.status_code >= 300 else ""
        if snippet:
            reason += f": {snippet}"
        return Attempt(classify_http(resp.status_code), reason, resp.status_code,
                       parse_retry_after(resp.headers.get("Retry-After")))


def http_sender(url: str, policy: DeliveryPolicy | None = None, *, min_interval: float = 0.0, ca_bundle: str | None = None,
                allow_insecure_localhost: bool = False, state_path: Path | None = None, **kw: Any) -> Sender:
    """A Sender posting JSON to `url` (the URL stays inside the transport)."""
    transport = HttpTransport(url, policy, ca_bundle=ca_bundle, allow_insecure_localhost=allow_insecure_localhost)
    return Sender(transport, policy, min_interval=min_interval, state_path=state_path, **kw)
