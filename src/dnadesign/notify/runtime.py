"""Build senders, spools and watch configurations from a profile plus command-line overrides."""

from __future__ import annotations

import threading
from pathlib import Path

from ..core.errors import UsageError
from .delivery import Sender
from .filters import EventFilter, split_csv
from .profile import DeliveryPolicy, Profile, WebhookRef
from .providers import MIN_INTERVAL
from .secrets_ref import resolve_secret
from .spool import Spool
from .throttle import ProgressThrottle
from .watch import WatchConfig


def webhook_ref(profile: Profile | None, url_env: str | None, secret_file: str | None, keyring_ref: str | None) -> WebhookRef:
    """The webhook reference from flags (at most one) or else the profile."""
    given = [(s, r) for s, r in (("env", url_env), ("file", secret_file), ("keyring", keyring_ref)) if r]
    if len(given) > 1:
        raise UsageError("give at most one of --url-env, --secret-file, --keyring-ref")
    if given:
        return WebhookRef(source=given[0][0], ref=given[0][1])  # type: ignore[arg-type]
    if profile is not None:
        return profile.webhook
    raise UsageError("no webhook given", hint="pass --profile, or --url-env VAR (or --secret-file / --keyring-ref)")


def make_sender(provider: str, ref: WebhookRef, *, policy: DeliveryPolicy | None = None, ca_bundle: str | None = None,
                allow_insecure_localhost: bool = False, stop: threading.Event | None = None) -> Sender:
    """Resolve the secret and build a Sender (the URL lives only inside the Sender)."""
    url = resolve_secret(ref)
    return Sender(url, policy or DeliveryPolicy(), min_interval=MIN_INTERVAL.get(provider, 0.0), ca_bundle=ca_bundle,
                  allow_insecure_localhost=allow_insecure_localhost, stop=stop)


def watch_config(profile: Profile | None, *, events: str | None, cursor: str | None, spool_dir: str | None, no_spool: bool,
                 provider: str | None, only_tools: str | None, only_actions: str | None, poll_interval: float | None,
                 **kw) -> WatchConfig:
    """Merge flags over the profile into a WatchConfig (no sender yet)."""
    ev = events or (profile.events if profile else None)
    cur = cursor or (profile.cursor if profile else None)
    prov = provider or (profile.provider if profile else None)
    if not ev or not cur or not prov:
        missing = [n for n, v in (("--events", ev), ("--cursor", cur), ("--provider", prov)) if not v]
        raise UsageError(f"missing {', '.join(missing)}", hint="pass --profile PATH, or give these flags")
    if prov not in ("slack", "discord", "generic"):
        raise UsageError(f"unknown provider {prov!r}; choose slack, discord or generic")
    sp = None if no_spool else (spool_dir or (profile.spool_dir if profile else None))
    tools = split_csv(only_tools) if only_tools is not None else (profile.only_tools if profile else [])
    actions = split_csv(only_actions) if only_actions is not None else (profile.only_actions if profile else [])
    prog = profile.progress if profile else None
    thr = ProgressThrottle(prog.step_pct, prog.min_seconds, prog.heartbeat_seconds) if prog else ProgressThrottle()
    return WatchConfig(events=Path(ev).expanduser(), cursor=Path(cur).expanduser(), provider=prov,
                       filter=EventFilter.build(tools, actions, profile.job_alerts if profile else True), throttle=thr,
                       spool=Spool(sp) if sp else None,
                       poll_interval=poll_interval or (profile.poll_interval if profile else 0.25), **kw)
