"""Webhook URL rules: https only (http only for loopback with an explicit opt-in) and provider shapes."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from ..core.errors import ConfigError
from ..core.secrets import mask_url

_PROVIDER_HOSTS = {
    "slack": (("hooks.slack.com", "hooks.slack-gov.com"), "/services/"),
    "discord": (("discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com"), "/api/webhooks/"),
}


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, allow_insecure_localhost: bool = False) -> None:
    """Raise ConfigError unless `url` is https, or http to a loopback host with the opt-in flag."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise ConfigError("webhook URL cannot be parsed", hint="check the value your secret reference points to") from None
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and host:
        if is_loopback(host) and allow_insecure_localhost:
            return
        if is_loopback(host):
            raise ConfigError(f"webhook URL {mask_url(url)} uses http", hint="pass --allow-insecure-localhost (loopback testing only)")
        raise ConfigError(f"webhook URL {mask_url(url)} uses http; only https is allowed for non-loopback hosts")
    raise ConfigError(f"webhook URL {mask_url(url)} is not an https URL", hint="check the value your secret reference points to")


def shape_problem(provider: str, url: str) -> str | None:
    """A sentence when `url` does not look like a `provider` webhook (host and path), else None."""
    rule = _PROVIDER_HOSTS.get(provider)
    if rule is None:
        return None
    parts = urlsplit(url)
    hosts, prefix = rule
    if (parts.hostname or "") not in hosts or not parts.path.startswith(prefix):
        return f"{mask_url(url)} does not look like a {provider} webhook (expected host {hosts[0]} and path {prefix}...)"
    return None
