"""CLI wiring: build senders, spools and watch configurations from a profile plus command-line overrides.

This is part of the command-line layer: the transports are imported here, lazily, so `notify --help`
and the commands that send nothing never load httpx or Apprise.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ..core.errors import UsageError
from .delivery import Sender
from .filters import EventFilter, split_csv
from .profile import DeliveryPolicy, Profile, WebhookRef
from .providers import MIN_INTERVAL, PAYLOAD_SHAPES, PROVIDERS
from .ratelimit import state_path_for
from .secrets_ref import resolve_secret
from .spool import Spool
from .throttle import ProgressThrottle
from .urls import check_url
from .watch import WatchConfig


def check_provider(provider: str | None, shape: str | None = None) -> str:
    """The provider name, or a usage error naming the choices; `shape` must fit it."""
    if provider not in PROVIDERS:
        raise UsageError(f"unknown provider {provider!r}; choose {', '.join(PROVIDERS)}")
    if shape is not None and shape not in PAYLOAD_SHAPES:
        raise UsageError(f"unknown --payload-shape {shape!r}; choose {' or '.join(PAYLOAD_SHAPES)}")
    if shape not in (None, "native") and provider != "generic":
        raise UsageError("--payload-shape incumbent applies to the generic provider only")
    return provider


def check_destination(provider: str, url: str, *, allow_insecure_localhost: bool) -> str:
    """Validate a destination URL for `provider`; returns a safe description (never the URL)."""
    if provider == "apprise":
        from .apprise_channel import check_apprise_url

        return check_apprise_url(url, allow_insecure_localhost=allow_insecure_localhost)
    check_url(url, allow_insecure_localhost=allow_insecure_localhost)
    return "https" if url.lower().startswith("https") else "http to loopback (testing)"


def webhook_ref(profile: Profile | None, url_env: str | None, secret_file: str | None, keyring_ref: str | None) -> WebhookRef:
    """The webhook reference from flags (at most one) or else the profile."""
    given = [(s, r) for s, r in (("env", url_env), ("file", secret_file), ("keyring", keyring_ref)) if r]
    if len(given) > 1:
        raise UsageError("give at most one of --url-env, --secret-file, --keyring-ref")
    if given:
        return WebhookRef(source=given[0][0], ref=given[0][1])  # type: ignore[arg-type]  # source is one of the three literals
    if profile is not None:
        return profile.webhook
    raise UsageError("no webhook given", hint="pass --profile, or --url-env VAR (or --secret-file / --keyring-ref)")


def make_sender(provider: str, ref: WebhookRef, *, policy: DeliveryPolicy | None = None, ca_bundle: str | None = None,
                allow_insecure_localhost: bool = False, stop: threading.Event | None = None,
                state_path: Path | None = None) -> Sender:
    """Resolve the secret and build a Sender for `provider` (the URL lives only inside its transport).

    `state_path` is where the destination's rate limit is persisted (see `ratelimit.state_path_for`).
    """
    url = resolve_secret(ref)
    policy = policy or DeliveryPolicy()
    if provider == "apprise":
        from .apprise_channel import AppriseTransport

        transport = AppriseTransport(url, policy, allow_insecure_localhost=allow_insecure_localhost)
        return Sender(transport, policy, min_interval=MIN_INTERVAL["apprise"], state_path=state_path, stop=stop)
    from .http_transport import HttpTransport

    http = HttpTransport(url, policy, ca_bundle=ca_bundle, allow_insecure_localhost=allow_insecure_localhost)
    return Sender(http, policy, min_interval=MIN_INTERVAL.get(provider, 0.0), state_path=state_path, stop=stop)


def sender_for(profile: Profile | None, provider: str, ref: WebhookRef, *, allow_insecure_localhost: bool,
               spool_dir: str | None, cursor: str | None = None, stop: threading.Event | None = None) -> Sender:
    """`make_sender` with the profile's delivery policy and TLS bundle, its rate-limit state beside the spool (or cursor)."""
    return make_sender(provider, ref, policy=profile.delivery if profile else DeliveryPolicy(),
                       ca_bundle=profile.tls_ca_bundle if profile else None,
                       allow_insecure_localhost=allow_insecure_localhost or bool(profile and profile.allow_insecure_localhost),
                       stop=stop, state_path=state_path_for(spool_dir, cursor))


def watch_config(profile: Profile | None, *, events: str | None, cursor: str | None, spool_dir: str | None, no_spool: bool,
                 provider: str | None, only_tools: str | None, only_actions: str | None, poll_interval: float | None,
                 payload_shape: str | None = None, **kw) -> WatchConfig:
    """Merge flags over the profile into a WatchConfig (no sender yet)."""
    ev = events or (profile.events if profile else None)
    cur = cursor or (profile.cursor if profile else None)
    prov = provider or (profile.provider if profile else None)
    if not ev or not cur or not prov:
        missing = [n for n, v in (("--events", ev), ("--cursor", cur), ("--provider", prov)) if not v]
        raise UsageError(f"missing {', '.join(missing)}", hint="pass --profile PATH, or give these flags")
    shape = payload_shape or (profile.payload_shape if profile and profile.provider == prov else None) or "native"
    check_provider(prov, shape)
    sp = None if no_spool else (spool_dir or (profile.spool_dir if profile else None))
    tools = split_csv(only_tools) if only_tools is not None else (profile.only_tools if profile else [])
    actions = split_csv(only_actions) if only_actions is not None else (profile.only_actions if profile else [])
    prog = profile.progress if profile else None
    thr = ProgressThrottle(prog.step_pct, prog.min_seconds, prog.heartbeat_seconds) if prog else ProgressThrottle()
    return WatchConfig(events=Path(ev).expanduser(), cursor=Path(cur).expanduser(), provider=prov,
                       filter=EventFilter.build(tools, actions, profile.job_alerts if profile else True), throttle=thr,
                       spool=Spool(sp) if sp else None, payload_shape=shape,
                       poll_interval=poll_interval or (profile.poll_interval if profile else 0.25), **kw)
