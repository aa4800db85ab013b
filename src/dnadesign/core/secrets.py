"""Keep secrets (webhook URLs, tokens) out of output, logs, events and command lines."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "***"
_SECRET_KEY = re.compile(r"(secret|token|password|passwd|api[_-]?key|webhook|url|auth|credential|bearer|cookie|session)", re.I)
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.I)


def is_secret_key(key: str) -> bool:
    """True when a mapping key or CLI flag name suggests the value is a secret."""
    return bool(_SECRET_KEY.search(key))


def redact(value: Any) -> Any:
    """Return a copy of `value` with secret-looking keys and `--flag=value` pairs replaced by `***`."""
    if isinstance(value, dict):
        return {k: (REDACTED if isinstance(k, str) and is_secret_key(k) and v not in (None, "") and not isinstance(v, bool) else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        out: list[Any] = []
        hide_next = False
        for item in value:
            if hide_next:
                out.append(REDACTED)
                hide_next = False
                continue
            if isinstance(item, str) and item.startswith("--"):
                name, eq, _ = item.partition("=")
                if is_secret_key(name):
                    if eq:
                        out.append(f"{name}={REDACTED}")
                    else:
                        out.append(item)
                        hide_next = True
                    continue
            out.append(redact(item))
        return out
    if isinstance(value, str):
        return scrub_urls(value)
    return value


def scrub_urls(text: str) -> str:
    """Replace any URL in free text with its scheme and host only (paths often carry tokens)."""
    return _URL.sub(lambda m: mask_url(m.group(0)), text)


def mask_url(url: str) -> str:
    """`https://hooks.slack.com/services/T/B/X` -> `https://hooks.slack.com/***`."""
    m = re.match(r"^([a-z][a-z0-9+.-]*://)([^/@\s]*@)?([^/\s?#]*)", url, re.I)
    if not m:
        return REDACTED
    return f"{m.group(1)}{m.group(3)}/{REDACTED}"
