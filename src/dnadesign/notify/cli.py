"""`notify` command line: a thin layer over profile, watch, spool and delivery.

Start-up matters (`notify --help` runs on busy login nodes): this module imports only typer and
the tiny core error helpers at the top; pydantic, httpx, Apprise, rich and the doctor are imported
inside the commands that need them. Help is plain text (no rich boxes): option names are never
cut, and flags show no value placeholder.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from ..core.cli import handled, run_app
from ..core.errors import UsageError
from ..core.secrets import scrub_urls


class _Group(TyperGroup):
    """A command group whose --help flag defaults to False when absent.

    Typer leaves it None and then coerces that None through a pydantic adapter, which costs more
    CPU (about 0.17 s) than the rest of `notify <group> <command> --help` together.
    """

    def get_help_option(self, ctx):
        opt = super().get_help_option(ctx)
        if opt is not None and opt.default is None:
            opt.default = False
        return opt


app = typer.Typer(name="notify", cls=_Group, no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  help="Watch a USR .events.log and send alerts reliably: Slack, Discord, generic JSON webhooks, "
                       "and e-mail, Teams, ntfy, Mattermost, Telegram... through Apprise.")
profile_app = typer.Typer(cls=_Group, no_args_is_help=True, rich_markup_mode=None, help="Create, check and show notify profiles.")
events_app = typer.Typer(cls=_Group, no_args_is_help=True, rich_markup_mode=None, help="Watch USR event logs.")
spool_app = typer.Typer(cls=_Group, no_args_is_help=True, rich_markup_mode=None, help="Inspect and replay undelivered payloads.")
app.add_typer(profile_app, name="profile")
app.add_typer(events_app, name="usr-events")
app.add_typer(spool_app, name="spool")

PROVIDER_HELP = "slack, discord, generic (JSON webhook) or apprise (an Apprise URL: mailtos://, workflows:// for Teams, ntfys://, tgram://...)"
ProfileOpt = Annotated[Path | None, typer.Option("--profile", "-p", help="Profile JSON file (written by `profile wizard`).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
InsecureOpt = Annotated[bool, typer.Option("--allow-insecure-localhost",
                                           help="Allow unencrypted delivery (http://, json://, mailto://...) to a loopback host: "
                                                "local relays and tests only.")]
UrlEnvOpt = Annotated[str | None, typer.Option("--url-env", help="Name of the environment variable that holds the webhook or "
                                                                 "Apprise URL (overrides the profile).")]
SecretFileOpt = Annotated[str | None, typer.Option("--secret-file", help="File (mode 600) whose first line is the webhook or "
                                                                         "Apprise URL (overrides the profile).")]
KeyringOpt = Annotated[str | None, typer.Option("--keyring-ref", help="Keyring entry service/name holding the URL "
                                                                      "(needs the optional keyring extra; overrides the profile).")]
SpoolDirOpt = Annotated[str | None, typer.Option("--spool-dir", help="Spool directory for payloads that could not be delivered "
                                                                     "(overrides the profile).")]
OnlyToolsOpt = Annotated[str | None, typer.Option("--only-tools", help="Comma-separated actor tools to notify about, "
                                                                       "e.g. densegen (default: the profile's, else all).")]
OnlyActionsOpt = Annotated[str | None, typer.Option("--only-actions", help="Comma-separated event actions to notify about, "
                                                                           "e.g. densegen_health,materialize (default: the "
                                                                           "profile's, else all; job alerts always pass).")]
ShapeOpt = Annotated[str | None, typer.Option("--payload-shape", help="Body of the generic provider: native (default) or "
                                                                      "incumbent (the older dnadesign notify's JSON, for "
                                                                      "existing receivers).")]


def _say(msg: str) -> None:
    typer.echo(scrub_urls(msg), err=True)


def _print_json(obj: object) -> None:
    from ..core.console import print_json

    print_json(obj)


def _prompt(text: str, hidden: bool) -> str:
    return typer.prompt(text, hide_input=hidden, default="", show_default=False)


def _install_stop(stop) -> None:
    import contextlib
    import signal

    def handler(signum, frame):
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):
            signal.signal(sig, handler)


# ---------------------------------------------------------------------------------------- profile
@profile_app.command("wizard")
@handled
def profile_wizard(
    profile: ProfileOpt = None,
    provider: Annotated[str | None, typer.Option(help=PROVIDER_HELP + ".")] = None,
    events: Annotated[str | None, typer.Option(help="The dataset's .events.log (uv run dense inspect run --usr-events-path "
                                                    "prints it).")] = None,
    cursor: Annotated[str | None, typer.Option(help="Cursor file (default: <profile name>.cursor beside the profile; "
                                                    "an existing profile keeps its own).")] = None,
    spool_dir: Annotated[str | None, typer.Option("--spool-dir", help="Spool directory (default: <profile name>.spool "
                                                                      "beside the profile).")] = None,
    no_spool: Annotated[bool, typer.Option("--no-spool", help="No spool: a failed delivery stops the watcher.")] = False,
    secret_source: Annotated[str, typer.Option("--secret-source", help="Where the URL lives: env, file or keyring.")] = "env",
    url_env: Annotated[str | None, typer.Option("--url-env", help="With --secret-source env: the variable that holds the URL.")] = None,
    secret_file: Annotated[str | None, typer.Option("--secret-file", help="With --secret-source file: the file (mode 600) "
                                                                          "to read, or to create from a hidden prompt.")] = None,
    keyring_ref: Annotated[str | None, typer.Option("--keyring-ref", help="With --secret-source keyring: service/name "
                                                                          "of the entry.")] = None,
    webhook_from_stdin: Annotated[bool, typer.Option("--webhook-from-stdin", help="Read the URL to store from stdin "
                                                                                  "(never from the command line).")] = False,
    only_tools: OnlyToolsOpt = None,
    only_actions: OnlyActionsOpt = None,
    payload_shape: ShapeOpt = None,
    progress_step_pct: Annotated[int | None, typer.Option("--progress-step-pct", min=1, max=100,
                                                          help="Send DenseGen progress every N percent (default 10).")] = None,
    progress_min_seconds: Annotated[float | None, typer.Option("--progress-min-seconds", min=0,
                                                               help="At least this many seconds between progress "
                                                                    "messages (default 60).")] = None,
    progress_heartbeat_seconds: Annotated[float | None, typer.Option("--progress-heartbeat-seconds", min=0.001,
                                                                     help="A progress message at least this often "
                                                                          "(default 1800).")] = None,
    tls_ca_bundle: Annotated[str | None, typer.Option("--tls-ca-bundle", help="PEM CA bundle for https webhooks "
                                                                              "(default: $SSL_CERT_FILE, else certifi).")] = None,
    allow_insecure_localhost: InsecureOpt = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing profile (it keeps its cursor and spool).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a profile (and provision the secret reference); prompts only on a terminal."""
    from ..core.console import interactive
    from . import wizard as wizard_mod
    from .runtime import check_destination, check_provider

    ask = _prompt if interactive() and not as_json else None
    if profile is None:
        profile = Path(ask("Profile path", False)) if ask else None
    if provider is None:
        provider = (ask("Provider (slack, discord, generic, apprise)", False) if ask else "") or None
    if events is None:
        events = (ask("Events file (.events.log)", False) if ask else "") or None
    missing = [n for n, v in (("--profile", profile), ("--provider", provider), ("--events", events)) if not v]
    if missing or profile is None or provider is None or events is None:
        raise UsageError(f"missing {', '.join(missing)}")
    check_provider(provider, payload_shape)
    profile = profile.expanduser().absolute()
    prov = provider

    def check(url: str) -> None:
        check_destination(prov, url, allow_insecure_localhost=allow_insecure_localhost)

    prof, notes = wizard_mod.build_profile(
        profile_path=profile, provider=provider, events=events, cursor=cursor, spool_dir=spool_dir, no_spool=no_spool,
        secret_source=secret_source, url_env=url_env, secret_file=secret_file, keyring_ref=keyring_ref,
        only_tools=only_tools, only_actions=only_actions, payload_shape=payload_shape or "native",
        progress={"step_pct": progress_step_pct, "min_seconds": progress_min_seconds, "heartbeat_seconds": progress_heartbeat_seconds},
        tls_ca_bundle=tls_ca_bundle, allow_insecure_localhost=allow_insecure_localhost, prompt=ask,
        webhook_from_stdin=webhook_from_stdin, check_url=check)
    notes += wizard_mod.write_profile(profile, prof, force)
    steps = wizard_mod.next_steps(profile)
    if as_json:
        _print_json({"ok": True, "profile": str(profile), "provider": prof.provider, "events": prof.events,
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
    from . import doctor as doctor_mod
    from .profile import load_profile

    if profile is None:
        raise UsageError("--profile is required")
    prof = load_profile(profile)
    checks = doctor_mod.run_doctor(prof, profile)
    ok = all(c.status != "fail" for c in checks)
    if as_json:
        _print_json({"ok": ok, "profile": str(profile), "checks": doctor_mod.as_json(checks)})
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
    import json

    from .profile import load_profile

    if profile is None:
        raise UsageError("--profile is required")
    data = load_profile(profile).model_dump(mode="json")
    if as_json:
        _print_json(data)
    else:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))


# ---------------------------------------------------------------------------------------- watch
@events_app.command("watch")
@handled
def usr_events_watch(
    profile: ProfileOpt = None,
    events: Annotated[str | None, typer.Option(help="Events file to read (overrides the profile).")] = None,
    cursor: Annotated[str | None, typer.Option(help="Cursor file that records how far the log was handled "
                                                    "(overrides the profile).")] = None,
    spool_dir: SpoolDirOpt = None,
    no_spool: Annotated[bool, typer.Option("--no-spool", help="Ignore the profile's spool: a failed delivery stops "
                                                              "with exit 1.")] = False,
    provider: Annotated[str | None, typer.Option(help=PROVIDER_HELP + " (overrides the profile).")] = None,
    url_env: UrlEnvOpt = None,
    secret_file: SecretFileOpt = None,
    keyring_ref: KeyringOpt = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep polling for new events.")] = False,
    poll_interval: Annotated[float | None, typer.Option("--poll-interval", min=0.01, help="Seconds between polls "
                                                                                         "(default 0.25).")] = None,
    idle_timeout: Annotated[float | None, typer.Option("--idle-timeout", min=0.01, help="Exit 0 after this many seconds "
                                                                                       "without new lines.")] = None,
    from_start: Annotated[bool, typer.Option("--from-start", help="Start a new cursor at the beginning.")] = False,
    from_end: Annotated[bool, typer.Option("--from-end", help="Start a new cursor at the end (skip history).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print payloads; send nothing; keep the cursor.")] = False,
    advance_cursor: Annotated[bool, typer.Option("--advance-cursor", help="With --dry-run: do advance the cursor.")] = False,
    only_tools: OnlyToolsOpt = None,
    only_actions: OnlyActionsOpt = None,
    payload_shape: ShapeOpt = None,
    stop_on_terminal_status: Annotated[bool, typer.Option("--stop-on-terminal-status", help="Exit after a completed or "
                                                                                            "failed message.")] = False,
    status_every: Annotated[float | None, typer.Option("--status-every", help="Seconds between liveness lines on stderr "
                                                                              "with --follow (default 600).")] = 600.0,
    allow_insecure_localhost: InsecureOpt = False,
    as_json: JsonOpt = False,
    metrics_dir: Annotated[Path | None, typer.Option("--metrics-dir", metavar="DIR", help="Write Prometheus textfile metrics here (node_exporter's textfile directory).")] = None,
) -> None:
    """Read events after the cursor and notify; with --follow keep polling (works on NFS).

    With --follow, a line ending in "ready" on stderr says the watcher holds its cursor and is polling.
    """
    import json
    import threading

    from .profile import load_profile
    from .runtime import sender_for, watch_config, webhook_ref
    from .watch import run_watch
    from .watch_metrics import WatchMetrics

    if from_start and from_end:
        raise UsageError("--from-start and --from-end are exclusive")
    if advance_cursor and not dry_run:
        raise UsageError("--advance-cursor only applies to --dry-run")
    prof = load_profile(profile) if profile else None
    stop = threading.Event()
    cfg = watch_config(prof, events=events, cursor=cursor, spool_dir=spool_dir, no_spool=no_spool, provider=provider,
                       only_tools=only_tools, only_actions=only_actions, poll_interval=poll_interval,
                       payload_shape=payload_shape, dry_run=dry_run, advance_on_dry_run=advance_cursor, follow=follow,
                       idle_timeout=idle_timeout, stop_on_terminal=stop_on_terminal_status,
                       start="start" if from_start else "end" if from_end else None,
                       stop=stop, status_every=status_every if follow else None,
                       on_ready=(lambda what: _say(f"notify: {what}; ready")) if follow else None)
    if not dry_run:
        ref = webhook_ref(prof, url_env, secret_file, keyring_ref)
        cfg.sender = sender_for(prof, cfg.provider, ref, allow_insecure_localhost=allow_insecure_localhost,
                                spool_dir=str(cfg.spool.path) if cfg.spool else None, cursor=str(cfg.cursor), stop=stop)
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
        sys.stdout.write(json.dumps({"ok": True, **summary.to_json()}) + "\n")
        sys.stdout.flush()
    else:
        sys.stdout.flush()
        _say(f"notify: {summary.lines} lines read; delivered {summary.delivered}, spooled {summary.spooled}, "
             f"dead-lettered {summary.dead_lettered}, printed {summary.printed}, throttled {summary.suppressed}, "
             f"filtered {summary.filtered}, malformed {summary.malformed}; "
             + (f"read up to byte {summary.offset}, cursor not advanced (dry run)" if dry_run and not advance_cursor
                else f"cursor at byte {summary.offset}") + f" ({summary.stopped})")


# ---------------------------------------------------------------------------------------- spool
def _spool_from(profile: Path | None, spool_dir: str | None):
    from .profile import load_profile
    from .spool import Spool

    prof = load_profile(profile) if profile else None
    d = spool_dir or (prof.spool_dir if prof else None)
    if not d:
        raise UsageError("no spool directory", hint="pass --spool-dir DIR or a --profile that has spool_dir")
    return Spool(d), prof


@spool_app.command("drain")
@handled
def spool_drain(
    profile: ProfileOpt = None,
    spool_dir: SpoolDirOpt = None,
    provider: Annotated[str | None, typer.Option(help="Provider of the destination (default: the profile's).")] = None,
    url_env: UrlEnvOpt = None,
    secret_file: SecretFileOpt = None,
    keyring_ref: KeyringOpt = None,
    max_attempts: Annotated[int | None, typer.Option("--max-attempts", min=1, help="Dead-letter a payload after this many "
                                                                                   "recorded attempts (default: profile, "
                                                                                   "else 10).")] = None,
    lock_timeout: Annotated[float, typer.Option("--lock-timeout", min=0, help="Seconds to wait for another drain.")] = 60.0,
    keep_going: Annotated[bool, typer.Option("--keep-going", help="Continue past transient failures (a rate limit "
                                                                  "still stops the drain).")] = False,
    allow_insecure_localhost: InsecureOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Replay spooled payloads under a lock (never two drains at once); exit 1 if any remain.

    A destination's rate limit (429 Retry-After) recorded by the watcher or an earlier drain is honoured.
    """
    import threading

    from .runtime import check_provider, sender_for, webhook_ref

    sp, prof = _spool_from(profile, spool_dir)
    ref = webhook_ref(prof, url_env, secret_file, keyring_ref)
    prov = check_provider(provider or (prof.provider if prof else "generic"))
    stop = threading.Event()
    sender = sender_for(prof, prov, ref, allow_insecure_localhost=allow_insecure_localhost, spool_dir=str(sp.path), stop=stop)
    _install_stop(stop)
    limit = max_attempts or (prof.spool_max_attempts if prof else 10)

    def send(entry):
        if entry.provider != prov:
            _say(f"warning: {entry.path.name} was formatted for {entry.provider}; sending it to the {prov} destination")
        return sender.deliver(entry.payload, entry.key)

    try:
        report = sp.drain(send, max_attempts=limit, lock_timeout=lock_timeout, keep_going=keep_going, stop=stop.is_set)
    finally:
        sender.close()
    if as_json:
        _print_json({"ok": report.failed == 0 and report.remaining == 0, **report.to_json()})
    else:
        for d in report.details:
            _say(f"{d.get('outcome')}: {d.get('key', d.get('file'))}: {d.get('reason')}")
        _say(f"delivered {report.delivered}, dead-lettered {report.dead_lettered + report.unreadable}, "
             f"failed {report.failed}, remaining {report.remaining}"
             + ("; the destination is rate limiting: drain again later" if report.rate_limited else ""))
    if report.remaining:
        raise typer.Exit(1)


@spool_app.command("list")
@handled
def spool_list(
    profile: ProfileOpt = None,
    spool_dir: Annotated[str | None, typer.Option("--spool-dir", help="Spool directory to list (default: the profile's).")] = None,
    dead: Annotated[bool, typer.Option("--dead", help="List the dead-letter folder instead.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show what is waiting in the spool (or dead-lettered)."""
    sp, _ = _spool_from(profile, spool_dir)
    rows = []
    for item in sp.entries(dead=dead):
        rows.append({"file": item[0].name, "error": item[1]} if isinstance(item, tuple) else item.summary())
    if as_json:
        _print_json({"spool_dir": str(sp.path), "dead": dead, "count": len(rows), "entries": rows})
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
    message: Annotated[str, typer.Option("--message", "-m", help="Message text: what happened.")] = "",
    title: Annotated[str | None, typer.Option(help="Title (default: '<tool> <status>').")] = None,
    tool: Annotated[str, typer.Option(help="Tool name shown in the message.")] = "job",
    run_id: Annotated[str | None, typer.Option("--run-id", help="Run id (default $DNADESIGN_RUN_ID).")] = None,
    next_step: Annotated[str | None, typer.Option("--next", help="What the reader should do about it.")] = None,
    profile: ProfileOpt = None,
    provider: Annotated[str | None, typer.Option(help=PROVIDER_HELP + " (default: the profile's).")] = None,
    payload_shape: ShapeOpt = None,
    url_env: UrlEnvOpt = None,
    secret_file: SecretFileOpt = None,
    keyring_ref: KeyringOpt = None,
    spool_dir: Annotated[str | None, typer.Option("--spool-dir", help="Spool the message if it cannot be delivered "
                                                                      "(default: the profile's).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the payload; send nothing.")] = False,
    allow_insecure_localhost: InsecureOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Post one message (for job scripts). The host and the batch job are added to it.

    Exit 0 when delivered or spooled for a later drain; 1 when it was rejected (dead-lettered) or could
    be neither delivered nor spooled.
    """
    import os
    import socket
    import uuid

    from ..core.errors import DeliveryError
    from ..core.events import job_block
    from .payloads import Message, job_label
    from .profile import load_profile
    from .providers import format_message
    from .runtime import check_provider, sender_for, webhook_ref
    from .spool import Spool

    if status not in ("started", "running", "success", "failure", "info"):
        raise UsageError(f"unknown --status {status!r}; choose started, running, success, failure or info")
    prof = load_profile(profile) if profile else None
    prov = provider or (prof.provider if prof else None)
    if prov is None:
        raise UsageError("pass --provider slack|discord|generic|apprise (or --profile)")
    shape = payload_shape or (prof.payload_shape if prof and prof.provider == prov else None) or "native"
    check_provider(prov, shape)
    run_id = run_id or os.environ.get("DNADESIGN_RUN_ID")
    msg = Message(key=uuid.uuid4().hex, status=status, title=scrub_urls(title or f"{tool} {status}"), text=scrub_urls(message),
                  tool=tool, run_id=run_id, host=socket.gethostname(), job=job_label(job_block() or {}),
                  next_step=scrub_urls(next_step) if next_step else None, terminal=status in ("success", "failure"))
    payload = format_message(prov, msg, shape)
    if dry_run:
        _print_json({"key": msg.key, "provider": prov, "payload": payload})
        return
    ref = webhook_ref(prof, url_env, secret_file, keyring_ref)
    sd = spool_dir or (prof.spool_dir if prof else None)
    with sender_for(prof, prov, ref, allow_insecure_localhost=allow_insecure_localhost, spool_dir=sd) as sender:
        result = sender.deliver(payload, msg.key)
    outcome = "delivered"
    where: Path | None = None
    if not result.ok:
        if not sd:
            raise DeliveryError(f"message not delivered after {result.attempts} attempt(s): {result.reason}",
                                hint="check the destination with `uv run notify profile doctor`, or pass --spool-dir to keep it")
        where = Spool(sd).put(msg.key, prov, payload, reason=result.reason, attempts=result.attempts, dead=result.permanent)
        outcome = "dead-lettered" if result.permanent else "spooled"
    if as_json:
        _print_json({"ok": result.ok or outcome == "spooled", "outcome": outcome, "key": msg.key, "attempts": result.attempts,
                     "reason": result.reason, **({"file": str(where)} if where else {})})
    elif outcome == "dead-lettered":
        _say(f"notify: error: message rejected by the destination ({result.reason}); kept in {where}. "
             "Fix the destination (`uv run notify profile doctor`), then resend it.")
    else:
        _say(f"Notification {outcome}" + ("" if result.ok else f" ({result.reason}); `uv run notify spool drain` sends it later") + ".")
    if outcome == "dead-lettered":
        raise typer.Exit(1)


def main() -> None:
    """Console script entry point."""
    run_app(app, "notify")


if __name__ == "__main__":
    main()
