"""Builders shared by the notify tests."""

from __future__ import annotations

from pathlib import Path

from dnadesign.notify.filters import EventFilter
from dnadesign.notify.http_transport import http_sender
from dnadesign.notify.profile import DeliveryPolicy, Profile, ProgressPolicy, WebhookRef, save_profile
from dnadesign.notify.spool import Spool
from dnadesign.notify.throttle import ProgressThrottle
from dnadesign.notify.watch import WatchConfig

FAST = DeliveryPolicy(connect_timeout=0.5, read_timeout=0.5, max_attempts=2, backoff_base=0.01, backoff_max=0.05, min_interval=0)


def config(tmp: Path, url: str | None, *, spool: bool = True, **kw) -> WatchConfig:
    lines: list[str] = kw.pop("emit_to", [])
    warnings: list[str] = kw.pop("warn_to", [])
    return WatchConfig(events=tmp / "ds" / ".events.log", cursor=tmp / "state" / "notify.cursor", provider=kw.pop("provider", "generic"),
                       filter=kw.pop("filter", EventFilter()), throttle=kw.pop("throttle", ProgressThrottle(10, 0, 3600)),
                       sender=http_sender(url, FAST, allow_insecure_localhost=True) if url else None,
                       spool=Spool(tmp / "spool") if spool else None, emit=lines.append, warn=warnings.append,
                       poll_interval=kw.pop("poll_interval", 0.05), **kw)


def write_profile(tmp: Path, url_env: str = "NOTIFY_TEST_URL", **kw) -> Path:
    prof = Profile(provider=kw.pop("provider", "generic"), events=str(tmp / "ds" / ".events.log"),
                   cursor=str(tmp / "state" / "notify.cursor"), spool_dir=kw.pop("spool_dir", str(tmp / "spool")),
                   webhook=WebhookRef(source="env", ref=url_env), delivery=kw.pop("delivery", FAST),
                   progress=ProgressPolicy(step_pct=10, min_seconds=0, heartbeat_seconds=3600),
                   allow_insecure_localhost=True, poll_interval=kw.pop("poll_interval", 0.05), **kw)
    path = tmp / "profile.json"
    save_profile(path, prof)
    return path
