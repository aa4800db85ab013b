"""Webhook URL rules: https only (http only for loopback with an explicit opt-in), provider shapes, and masking
of Apprise URLs (whose every part may be a credential)."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qsl, unquote, urlsplit

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


def scheme_of(url: str) -> str:
    """The URL's scheme (safe to show), or '?'."""
    head = url.split("://", 1)[0] if "://" in url else ""
    return head.lower() if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", head or "-") else "?"


def masked_secret_url(url: str) -> str:
    """`scheme://***`: every other part of an Apprise URL may be a credential."""
    return f"{scheme_of(url)}://***"


def secret_parts(url: str) -> list[str]:
    """Every piece of `url` that could be a credential (longest first), for scrubbing free text."""
    parts = {url}
    try:
        sp = urlsplit(url)
    except ValueError:
        return [url]
    for piece in (sp.username, sp.password, sp.hostname, sp.netloc):
        if piece:
            parts.add(piece)
            parts.add(unquote(piece))
    for seg in sp.path.split("/"):
        if seg:
            parts.add(seg)
            parts.add(unquote(seg))
    for _, v in parse_qsl(sp.query, keep_blank_values=False):
        parts.add(v)
    return sorted((p for p in parts if len(p) >= 4), key=len, reverse=True)
