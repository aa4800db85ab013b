"""Alert channels through Apprise (e-mail, Microsoft Teams, ntfy, Mattermost, Telegram, ...): one transport
behind the same profile, secret reference, spool, retry and dead-letter guarantees as the webhooks.

An Apprise URL carries credentials in any part (user, password, host, path, query), so it is treated
as a secret as a whole: it is never printed, logged or stored, and reasons are scrubbed of every
part of it. Apprise's own log records are kept inside this process (they never reach the root
logger) and only read to classify a failure: an HTTP 4xx other than 408/429 is permanent
(dead-lettered), a 429 is a rate limit, anything else (5xx, SMTP and network errors) is transient.
Unencrypted schemes (`json://`, `ntfy://`, `mailto://` without TLS, ...) are accepted only for a
loopback host with the explicit opt-in, like `http://` webhooks.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

import apprise

from ..core.errors import ConfigError
from ..core.secrets import scrub_urls
from .delivery import Attempt, classify_http
from .profile import DeliveryPolicy
from .ratelimit import destination_id
from .urls import is_loopback, masked_secret_url, scheme_of, secret_parts

NOTIFY_TYPES = {"started": "info", "running": "info", "info": "info", "success": "success", "failure": "failure",
                "warning": "warning"}
_STATUS = re.compile(r"\berror=(\d{3})\b")
_local = threading.local()


class _Capture(logging.Handler):
    """Collects Apprise's records for the thread that is sending; nothing is printed."""

    def emit(self, record: logging.LogRecord) -> None:
        sink = getattr(_local, "records", None)
        if sink is not None and len(sink) < 200:
            sink.append(record)


_HANDLER = _Capture(level=logging.INFO)


def _quiet_loggers() -> None:
    """Apprise's records may name hosts, recipients or URL pieces, and urllib3 (under Apprise) logs request paths
    at DEBUG: keep both out of any application log, even one turned up to DEBUG."""
    log = logging.getLogger("apprise")
    if _HANDLER not in log.handlers:
        log.addHandler(_HANDLER)
    log.propagate = False
    log.setLevel(logging.INFO)
    logging.getLogger("urllib3").setLevel(logging.WARNING)


_quiet_loggers()


def _protocols(value: Any) -> set[str]:
    if not value:
        return set()
    return {v.lower() for v in ((value,) if isinstance(value, str) else value)}


def instantiate(url: str, *, allow_insecure_localhost: bool = False) -> Any:
    """The Apprise plugin for `url`, or ConfigError (URL invalid or unsupported, or unencrypted to a non-loopback host)."""
    scheme = scheme_of(url)
    try:
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    except Exception:  # noqa: BLE001 - a plugin constructor can raise anything; the URL must not leak through it
        plugin = None
    if plugin is None:
        raise ConfigError(f"the Apprise URL {masked_secret_url(url)} is not valid or its service is not supported",
                          hint="check it against https://github.com/caronc/apprise/wiki (the scheme names the service)")
    insecure = scheme in _protocols(getattr(plugin, "protocol", None)) and not getattr(plugin, "secure", False)
    if insecure:
        host = getattr(plugin, "host", None) or ""
        if not is_loopback(str(host)):
            raise ConfigError(f"the Apprise URL {masked_secret_url(url)} is unencrypted; only encrypted schemes are allowed for non-loopback hosts",
                              hint="use the service's secure scheme (e.g. jsons://, ntfys://, mailtos://)")
        if not allow_insecure_localhost:
            raise ConfigError(f"the Apprise URL {masked_secret_url(url)} is unencrypted",
                              hint="pass --allow-insecure-localhost (loopback relays and tests only)")
    return plugin


def check_apprise_url(url: str, *, allow_insecure_localhost: bool = False) -> str:
    """Validate an Apprise URL; returns the service name (safe to show)."""
    plugin = instantiate(url, allow_insecure_localhost=allow_insecure_localhost)
    return str(getattr(plugin, "service_name", None) or scheme_of(url))


class AppriseTransport:
    """One Apprise destination. Payloads are `{"title", "body", "type"}` (see `providers.apprise`)."""

    def __init__(self, url: str, policy: DeliveryPolicy | None = None, *, allow_insecure_localhost: bool = False):
        p = policy or DeliveryPolicy()
        self._plugin = instantiate(url, allow_insecure_localhost=allow_insecure_localhost)
        self._secrets = secret_parts(url)
        self.dest = destination_id(url)
        self.service = str(getattr(self._plugin, "service_name", None) or scheme_of(url))
        # our timeouts; the policy's min_interval, when set, replaces Apprise's own per-service throttle
        self._plugin.socket_connect_timeout = p.connect_timeout
        self._plugin.socket_read_timeout = p.read_timeout
        if p.min_interval is not None:
            self._plugin.request_rate_per_sec = p.min_interval
        _quiet_loggers()  # again: an application may have reconfigured logging since the import

    def close(self) -> None:
        """Nothing to release (Apprise opens a connection per send)."""

    def _scrub(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        return scrub_urls(text)[:300]

    def post(self, payload: dict[str, Any], key: str) -> Attempt:
        """Send one notification; classify a failure from what Apprise logged."""
        records: list[logging.LogRecord] = []
        _local.records = records
        try:
            ok = self._plugin.notify(body=str(payload.get("body") or payload.get("title") or ""),
                                     title=str(payload.get("title") or ""),
                                     notify_type=apprise.NotifyType(NOTIFY_TYPES.get(str(payload.get("type")), "info")),
                                     body_format=apprise.NotifyFormat.TEXT)
        except Exception as exc:  # noqa: BLE001 - a plugin bug must become a transient failure, not a crash
            return Attempt("transient", self._scrub(f"{self.service}: {type(exc).__name__}"))
        finally:
            _local.records = None
        if ok:
            return Attempt("ok", self.service)
        status = None
        message = ""
        for rec in records:
            try:
                text = rec.getMessage()
            except Exception:  # noqa: BLE001 - a malformed log record must not stop classification
                continue
            m = _STATUS.search(text)
            if m:
                status = int(m.group(1))
            if rec.levelno >= logging.WARNING:
                message = text
        reason = self._scrub(f"{self.service}: {message or 'delivery failed'}")
        if status is None:
            return Attempt("transient", reason)
        kind = classify_http(status)
        return Attempt("transient" if kind == "ok" else kind, reason, status)
