"""`notify` command line: a thin layer over profile, watch, spool and delivery."""

from __future__ import annotations

import json
import os
import signal
import threading
import uuid
from pathlib import Path
from typing import Annotated

import typer

from ..core.cli import handled, run_app
from ..core.console import interactive, print_json
from ..core.errors import DeliveryError, UsageError
from ..core.secrets import scrub_urls
from . import doctor as doctor_mod
from . import wizard as wizard_mod
from .payloads import Message
from .profile import DeliveryPolicy, load_profile
from .providers import format_message
from .runtime import make_sender, watch_config, webhook_ref
from .spool import Spool, SpoolEntry
from .watch import run_watch
from .watch_metrics import WatchMetrics

app = typer.Typer(name="notify", no_args_is_help=True, add_completion=False,
                  help="Watch a USR .events.log and post webhooks (Slack, Discord, generic JSON) reliably.")
profile_app = typer.Typer(no_args_is_help=True, help="Create, check and show notify profiles.")
events_app = typer.Typer(no_args_is_help=True, help="Watch USR event logs.")
spool_app = typer.Typer(no_args_is_help=True, help="Inspect and replay undelivered payloads.")
app.add_typer(profile_app, name="profile")
app.add_typer(events_app, name="usr-events")
app.add_typer(spool_app, name="spool")

ProfileOpt = Annotated[Path | None, typer.Option("--profile", "-p", help="Profile JSON file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
InsecureOpt = Annotated[bool, typer.Option("--allow-insecure-localhost", help="Allow http:// to a loopback host (tests only).")]


def _say(msg: str) -> None:
    typer.echo(scrub_urls(msg), err=True)


def _prompt(text: str, hidden: bool) -> str:
    return typer.prompt(text, hide_input=hidden, default="", show_default=False)


# ---------------------------------------------------------------------------------------- profile
@profile_app.command("wizard")
@handled
def profile_wizard(
    profile: ProfileOpt = None,
    provider: Annotated[str | None, typer.Option(help="slack, discord or generic.")] = None,
    events: Annotated[str | None, typer.Option(help="The dataset's .events.log.")] = None,
    cursor: Annotated[str | None, typer.Option(help="Cursor file (default: notify.cursor beside the profile).")] = None,
    spool_dir: Annotated[str | None, typer.Option("--spool-dir", help="Spool directory (default: notify_spool beside the profile).")] = None,
    no_spool: Annotated[bool, typer.Option("--no-spool", help="No spool: a failed delivery stops the watcher.")] = False,
    secret_source: Annotated[str, typer.Option("--secret-source", help="env, file or keyring.")] = "env",
    url_env: Annotated[str | None, typer.Option("--url-env", help="Env var holding the webhook URL.")] = None,
    secret_file: Annotated[str | None, typer.Option("--secret-file", help="File holding the webhook URL (mode 600).")] = None,
    keyring_ref: Annotated[str | None, typer.Option("--keyring-ref", help="Keyring service/name.")] = None,
    webhook_from_stdin: Annotated[bool, typer.Option("--webhook-from-stdin", help="Read the URL to store from stdin.")] = False,
    only_tools: Annotated[str | None, typer.Option("--only-tools", help="Comma-separated actor tools.")] = None,
    only_actions: Annotated[str | None, typer.Option("--only-actions", help="Comma-separated actions.")] = None,
    progress_step_pct: Annotated[int | None, typer.Option("--progress-step-pct", min=1, max=100)] = None,
    progress_min_seconds: Annotated[float | None, typer.Option("--progress-min-seconds", min=0)] = None,
    progress_heartbeat_seconds: Annotated[float | None, typer.Option("--progress-heartbeat-seconds", min=0.001)] = None,
    tls_ca_bundle: Annotated[str | None, typer.Option("--tls-ca-bundle", help="PEM CA bundle (default: certifi).")] = None,
    allow_insecure_localhost: InsecureOpt = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing profile.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a profile (and provision the secret reference); prompts only on a terminal."""
    ask = _prompt if interactive() and not as_json else None
    if profile is None:
        profile = Path(ask("Profile path", False)) if ask else None
    if provider is None:
        provider = (ask("Provider (slack, discord, generic)", False) if ask else "") or None
    if events is None:
        events = (ask("Events file (.events.log)", False) if ask else "") or None
    missing = [n for n, v in (("--profile", profile), ("--provider", provider), ("--events", events)) if not v]
    if missing:
        raise UsageError(f"missing {', '.join(missing)}")
    if provider not in ("slack", "discord", "generic"):
        raise UsageError(f"unknown provider {provider!r}; choose slack, discord or generic")
    assert profile is not None and events is not None
    profile = profile.expanduser().absolute()
    prof, notes = wizard_mod.build_profile(
        profile_path=profile, provider=provider, events=events, cursor=cursor, spool_dir=spool_dir, no_spool=no_spool,
        secret_source=secret_source, url_env=url_env, secret_file=secret_file, keyring_ref=keyring_ref,
        only_tools=only_tools, only_actions=only_actions,
        progress={"step_pct": progress_step_pct, "min_seconds": progress_min_seconds, "heartbeat_seconds": progress_heartbeat_seconds},
        tls_ca_bundle=tls_ca_bundle, allow_insecure_localhost=allow_insecure_localhost, prompt=ask,
        webhook_from_stdin=webhook_from_stdin)
    wizard_mod.write_profile(profile, prof, force)
    steps = wizard_mod.next_steps(profile)
    if as_json:
        print_json({"ok": True, "profile": str(profile), "provider": prof.provider, "events": prof.events,
                    "cursor": prof.cursor, "spool_dir": prof.spool_dir, "webhook": prof.webhook.model_dump(),
                    "notes": notes, "next_steps": steps})
        return
    typer.echo(f"Profile written: {profile}")
    for n in notes:
        typer.echo(f"note: {n}")
    typer.echo("Next steps:")
    for i, s in enumerate(steps, 1):
        typer.echo(f"  {i}. {s}")


@profile_app.command("doctor")
@handled
def profile_doctor(profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """Check the events file, cursor and spool, the secret and the URL; print a fix for each problem."""
    if profile is None:
        raise UsageError("--profile is required")
    prof = load_profile(profile)
    checks = doctor_mod.run_doctor(prof)
    ok = all(c.status != "fail" for c in checks)
    if as_json:
        print_json({"ok": ok, "profile": str(profile), "checks": doctor_mod.as_json(checks)})
    else:
        for c in checks:
            typer.echo(f"{c.status.upper():4}  {c.name:8} {c.detail}" + (f"\n      fix: {c.fix}" if c.fix and c.status != "ok" else ""))
        typer.echo("Profile OK." if ok else "Profile has problems (see FAIL lines).")
    if not ok:
        raise typer.Exit(1)


@profile_app.command("show")
@handled
def profile_show(profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """Print the validated profile (it holds a secret reference, never the URL)."""
    if profile is None:
        raise UsageError("--profile is required")
    data = load_profile(profile).model_dump(mode="json")
    if as_json:
        print_json(data)
    else:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))


# ---------------------------------------------------------------------------------------- watch
def _install_stop(stop: threading.Event) -> None:
    def handler(signum, frame):
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        try:
            signal.signal(sig, handler)
        except (ValueError, OSError):
            pass


@events_app.command("watch")
@handled
def usr_events_watch(
    profile: ProfileOpt = None,
    events: Annotated[str | None, typer.Option(help="Events file (overrides the profile).")] = None,
    cursor: Annotated[str | None, typer.Option(help="Cursor file (overrides the profile).")] = None,
    spool_dir: Annotated[str | None, typer.Option("--spool-dir")] = None,
    no_spool: Annotated[bool, typer.Option("--no-spool", help="Ignore the profile's spool.")] = False,
    provider: Annotated[str | None, typer.Option(help="slack, discord or generic.")] = None,
    url_env: Annotated[str | None, typer.Option("--url-env")] = None,
    secret_file: Annotated[str | None, typer.Option("--secret-file")] = None,
    keyring_ref: Annotated[str | None, typer.Option("--keyring-ref")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep polling for new events.")] = False,
    poll_interval: Annotated[float | None, typer.Option("--poll-interval", min=0.01, help="Seconds between polls (default 0.25).")] = None,
    idle_timeout: Annotated[float | None, typer.Option("--idle-timeout", min=0.01, help="Exit 0 after this many seconds without new lines.")] = None,
    from_start: Annotated[bool, typer.Option("--from-start", help="Start a new cursor at the beginning.")] = False,
    from_end: Annotated[bool, typer.Option("--from-end", help="Start a new cursor at the end (skip history).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print payloads; send nothing; keep the cursor.")] = False,
    advance_cursor: Annotated[bool, typer.Option("--advance-cursor", help="With --dry-run: do advance the cursor.")] = False,
    only_tools: Annotated[str | None, typer.Option("--only-tools")] = None,
    only_actions: Annotated[str | None, typer.Option("--only-actions")] = None,
    stop_on_terminal_status: Annotated[bool, typer.Option("--stop-on-terminal-status", help="Exit after a completed/failed message.")] = False,
    status_every: Annotated[float | None, typer.Option("--status-every", help="Seconds between liveness lines on stderr (follow).")] = 600.0,
    allow_insecure_localhost: InsecureOpt = False,
    as_json: JsonOpt = False,
    metrics_dir: Annotated[Path | None, typer.Option("--metrics-dir", metavar="DIR", help="Write Prometheus textfile metrics here (node_exporter's textfile directory).")] = None,
) -> None:
    """Read events after the cursor and notify; with --follow keep polling (works on NFS)."""
    if from_start and from_end:
        raise UsageError("--from-start and --from-end are exclusive")
    if advance_cursor and not dry_run:
        raise UsageError("--advance-cursor only applies to --dry-run")
    prof = load_profile(profile) if profile else None
    stop = threading.Event()
    cfg = watch_config(prof, events=events, cursor=cursor, spool_dir=spool_dir, no_spool=no_spool, provider=provider,
                       only_tools=only_tools, only_actions=only_actions, poll_interval=poll_interval,
                       dry_run=dry_run, advance_on_dry_run=advance_cursor, follow=follow, idle_timeout=idle_timeout,
                       stop_on_terminal=stop_on_terminal_status, start="start" if from_start else "end" if from_end else None,
                       stop=stop, status_every=status_every if follow else None)
    if not dry_run:
        ref = webhook_ref(prof, url_env, secret_file, keyring_ref)
        cfg.sender = make_sender(cfg.provider, ref, policy=prof.delivery if prof else DeliveryPolicy(),
                                 ca_bundle=prof.tls_ca_bundle if prof else None,
                                 allow_insecure_localhost=allow_insecure_localhost or bool(prof and prof.allow_insecure_localhost),
                                 stop=stop)
        if cfg.spool is not None:
            cfg.spool.ensure()
    _install_stop(stop)
    try:
        with WatchMetrics(metrics_dir, cfg):
            summary = run_watch(cfg)
    finally:
        if cfg.sender is not None:
            cfg.sender.close()
    if as_json:
        import sys

        sys.stdout.write(json.dumps({"ok": True, **summary.to_json()}) + "\n")
        sys.stdout.flush()
    else:
        import sys

        sys.stdout.flush()
        _say(f"notify: {summary.lines} lines read; delivered {summary.delivered}, spooled {summary.spooled}, "
             f"dead-lettered {summary.dead_lettered}, printed {summary.printed}, throttled {summary.suppressed}, "
             f"filtered {summary.filtered}, malformed {summary.malformed}; "
             + (f"read up to byte {summary.offset}, cursor not advanced (dry run)" if dry_run and not advance_cursor
                else f"cursor at byte {summary.offset}") + f" ({summary.stopped})")


# ---------------------------------------------------------------------------------------- spool
def _spool_from(profile: Path | None, spool_dir: str | None) -> tuple[Spool, object]:
    prof = load_profile(profile) if profile else None
    d = spool_dir or (prof.spool_dir if prof else None)
    if not d:
        raise UsageError("no spool directory", hint="pass --spool-dir DIR or a --profile that has spool_dir")
    return Spool(d), prof


@spool_app.command("drain")
@handled
def spool_drain(
    profile: ProfileOpt = None,
    spool_dir: Annotated[str | None, typer.Option("--spool-dir")] = None,
    provider: Annotated[str | None, typer.Option(help="Provider of the webhook (default: profile).")] = None,
    url_env: Annotated[str | None, typer.Option("--url-env")] = None,
    secret_file: Annotated[str | None, typer.Option("--secret-file")] = None,
    keyring_ref: Annotated[str | None, typer.Option("--keyring-ref")] = None,
    max_attempts: Annotated[int | None, typer.Option("--max-attempts", min=1, help="Dead-letter after this many recorded attempts.")] = None,
    lock_timeout: Annotated[float, typer.Option("--lock-timeout", min=0, help="Seconds to wait for another drain.")] = 60.0,
    keep_going: Annotated[bool, typer.Option("--keep-going", help="Continue past transient failures.")] = False,
    allow_insecure_localhost: InsecureOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Replay spooled payloads under a lock (never two drains at once); exit 1 if any remain."""
    sp, prof = _spool_from(profile, spool_dir)
    ref = webhook_ref(prof, url_env, secret_file, keyring_ref)  # type: ignore[arg-type]
    prov = provider or (prof.provider if prof else "generic")  # type: ignore[union-attr]
    stop = threading.Event()
    sender = make_sender(prov, ref, policy=prof.delivery if prof else DeliveryPolicy(),  # type: ignore[union-attr]
                         ca_bundle=prof.tls_ca_bundle if prof else None,  # type: ignore[union-attr]
                         allow_insecure_localhost=allow_insecure_localhost or bool(prof and prof.allow_insecure_localhost),  # type: ignore[union-attr]
                         stop=stop)
    _install_stop(stop)
    limit = max_attempts or (prof.spool_max_attempts if prof else 10)  # type: ignore[union-attr]

    def send(entry: SpoolEntry):
        if entry.provider != prov:
            _say(f"warning: {entry.path.name} was formatted for {entry.provider}; sending it to the {prov} webhook")
        return sender.deliver(entry.payload, entry.key)

    try:
        report = sp.drain(send, max_attempts=limit, lock_timeout=lock_timeout, keep_going=keep_going, stop=stop.is_set)
    finally:
        sender.close()
    if as_json:
        print_json({"ok": report.failed == 0 and report.remaining == 0, **report.to_json()})
    else:
        for d in report.details:
            _say(f"{d.get('outcome')}: {d.get('key', d.get('file'))}: {d.get('reason')}")
        _say(f"delivered {report.delivered}, dead-lettered {report.dead_lettered + report.unreadable}, "
             f"failed {report.failed}, remaining {report.remaining}")
    if report.remaining:
        raise typer.Exit(1)


@spool_app.command("list")
@handled
def spool_list(
    profile: ProfileOpt = None,
    spool_dir: Annotated[str | None, typer.Option("--spool-dir")] = None,
    dead: Annotated[bool, typer.Option("--dead", help="List the dead-letter folder instead.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show what is waiting in the spool (or dead-lettered)."""
    sp, _ = _spool_from(profile, spool_dir)
    rows = []
    for item in sp.entries(dead=dead):
        rows.append({"file": item[0].name, "error": item[1]} if isinstance(item, tuple) else item.summary())
    if as_json:
        print_json({"spool_dir": str(sp.path), "dead": dead, "count": len(rows), "entries": rows})
        return
    if not rows:
        typer.echo("Nothing " + ("dead-lettered." if dead else "waiting."))
        return
    for r in rows:
        typer.echo(f"{r.get('created', '?')}  {r.get('key', r.get('file'))}  attempts={r.get('attempts', '?')}  "
                   f"{r.get('reason') or r.get('last_error') or r.get('error') or ''}")
    typer.echo(f"{len(rows)} {'dead-lettered' if dead else 'waiting'}")


# ---------------------------------------------------------------------------------------- send
@app.command("send")
@handled
def send(
    status: Annotated[str, typer.Option(help="started, running, success, failure or info.")] = "info",
    message: Annotated[str, typer.Option("--message", "-m", help="Message text.")] = "",
    title: Annotated[str | None, typer.Option(help="Title (default: '<tool> <status>').")] = None,
    tool: Annotated[str, typer.Option(help="Tool name shown in the message.")] = "job",
    run_id: Annotated[str | None, typer.Option("--run-id", help="Run id (default $DNADESIGN_RUN_ID).")] = None,
    profile: ProfileOpt = None,
    provider: Annotated[str | None, typer.Option(help="slack, discord or generic (default: profile).")] = None,
    url_env: Annotated[str | None, typer.Option("--url-env")] = None,
    secret_file: Annotated[str | None, typer.Option("--secret-file")] = None,
    keyring_ref: Annotated[str | None, typer.Option("--keyring-ref")] = None,
    spool_dir: Annotated[str | None, typer.Option("--spool-dir", help="Spool the message if it cannot be delivered.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the payload; send nothing.")] = False,
    allow_insecure_localhost: InsecureOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Post one message (for job scripts); exit 1 if it was neither delivered nor spooled."""
    if status not in ("started", "running", "success", "failure", "info"):
        raise UsageError(f"unknown --status {status!r}; choose started, running, success, failure or info")
    prof = load_profile(profile) if profile else None
    prov = provider or (prof.provider if prof else None)
    if prov not in ("slack", "discord", "generic"):
        raise UsageError("pass --provider slack|discord|generic (or --profile)")
    run_id = run_id or os.environ.get("DNADESIGN_RUN_ID")
    msg = Message(key=uuid.uuid4().hex, status=status, title=title or f"{tool} {status}", text=scrub_urls(message),
                  tool=tool, run_id=run_id)
    payload = format_message(prov, msg)
    if dry_run:
        print_json({"key": msg.key, "provider": prov, "payload": payload})
        return
    ref = webhook_ref(prof, url_env, secret_file, keyring_ref)
    with make_sender(prov, ref, policy=prof.delivery if prof else DeliveryPolicy(), ca_bundle=prof.tls_ca_bundle if prof else None,
                     allow_insecure_localhost=allow_insecure_localhost or bool(prof and prof.allow_insecure_localhost)) as sender:
        result = sender.deliver(payload, msg.key)
    outcome = "delivered"
    if not result.ok:
        sd = spool_dir or (prof.spool_dir if prof else None)
        if not sd:
            raise DeliveryError(f"message not delivered after {result.attempts} attempt(s): {result.reason}",
                                hint="check the webhook with `notify profile doctor`, or pass --spool-dir to keep it")
        Spool(sd).put(msg.key, prov, payload, reason=result.reason, attempts=result.attempts, dead=result.permanent)
        outcome = "dead-lettered" if result.permanent else "spooled"
    if as_json:
        print_json({"ok": result.ok, "outcome": outcome, "key": msg.key, "attempts": result.attempts, "reason": result.reason})
    else:
        _say(f"Notification {outcome}" + ("" if result.ok else f" ({result.reason})") + ".")


def main() -> None:
    """Console script entry point."""
    run_app(app, "notify")


if __name__ == "__main__":
    main()
