"""Builders shared by the notify tests."""

from __future__ import annotations

from pathlib import Path

from dnadesign.core.events import Actor, make_event
from dnadesign.notify.filters import EventFilter
from dnadesign.notify.http_transport import http_sender
from dnadesign.notify.profile import DeliveryPolicy, Profile, ProgressPolicy, WebhookRef, save_profile
from dnadesign.notify.spool import Spool
from dnadesign.notify.throttle import ProgressThrottle
from dnadesign.notify.watch import WatchConfig

# Generous timeouts: a loaded CI node must not turn a slow local reply into a retry. Tests of timeouts set their own.
FAST = DeliveryPolicy(connect_timeout=5, read_timeout=10, max_attempts=2, backoff_base=0.01, backoff_max=0.05, min_interval=0)


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


JOB = {"scheduler": "slurm", "job_id": "41", "task_id": "3", "state": "running", "exit_code": None, "signal": None}


def densegen_actor(host: str = "node17", tool: str = "densegen") -> Actor:
    """An actor as DenseGen writes it, on a fixed host."""
    a = Actor.current(tool, run_id="demo-run")
    return Actor(a.tool, a.run_id, a.correlation_id, host, a.pid, a.user)


def densegen_health(status: str, job: dict | None = JOB, **args) -> dict:
    """A `densegen_health` event shaped like the pipeline's (args: status, outcome, reason, signal), 40/100 done."""
    metrics = {"generated": 40, "quota": 100, "percent": 40.0, "plan": "p1"}
    return make_event("densegen_health", "densegen/demo", densegen_actor(), args={"status": status, **args}, metrics=metrics, job=job)

