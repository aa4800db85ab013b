"""`notify profile doctor`: check every piece a watcher needs and give a fix for each problem."""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.errors import DnadesignError
from ..core.locks import describe_holder, read_holder
from .cursor import load_cursor
from .profile import Profile
from .ratelimit import state_path_for
from .runtime import check_destination
from .secrets_ref import resolve_secret
from .spool import Spool
from .tail import parse_line
from .urls import masked_secret_url, shape_problem
from .wizard import default_cursor, sibling_profiles


@dataclass(frozen=True)
class Check:
    """One doctor finding: status is ok, warn or fail; `fix` says what to do."""

    name: str
    status: str
    detail: str
    fix: str | None = None


def _writable_dir(path: Path) -> tuple[bool, Path]:
    """Whether `path` (or, if missing, its nearest existing ancestor) is a writable directory."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK), probe


def check_events(p: Profile) -> Check:
    """The events file exists, is readable and looks like a USR event log."""
    path = Path(p.events)
    if not path.exists():
        return Check("events", "warn", f"{path} does not exist yet",
                     "start the DenseGen/USR run that writes it; `usr-events watch --follow` waits for it")
    if not os.access(path, os.R_OK):
        return Check("events", "fail", f"{path} is not readable", f"check permissions: chmod u+r {path}")
    with open(path, "rb") as fh:
        first = fh.readline(1 << 20)
    if first.endswith(b"\n") and parse_line(first.rstrip(b"\n"), 0, len(first)).event is None:
        return Check("events", "fail", f"{path} does not look like a USR .events.log (first line is not an event)",
                     "point --events at <usr_root>/<dataset>/.events.log")
    return Check("events", "ok", f"{path} ({path.stat().st_size} bytes)")


def check_cursor(p: Profile) -> Check:
    """The cursor's directory is writable and the cursor (if any) is valid and not past the end."""
    path = Path(p.cursor)
    ok, probe = _writable_dir(path.parent)
    if not ok:
        return Check("cursor", "fail", f"cannot write the cursor in {probe}", f"mkdir -p {path.parent} and make it writable, or choose another --cursor")
    try:
        state = load_cursor(path)
    except DnadesignError as exc:
        return Check("cursor", "fail", exc.message, exc.hint)
    if state is None:
        return Check("cursor", "ok", f"{path} (new; the first watch starts at the beginning unless --from-end)")
    ev = Path(p.events)
    if ev.exists() and ev.stat().st_size < state.offset:
        return Check("cursor", "warn", f"{path} is at byte {state.offset} but {ev} has {ev.stat().st_size} bytes (truncated or replaced)",
                     "the watcher will detect this and restart from the beginning of the new file")
    holder = read_holder(path.with_name(path.name + ".lock"))
    running = f"; a watcher holds it: {describe_holder(holder)}" if holder else ""
    return Check("cursor", "ok", f"{path} at byte {state.offset}{running}")


def check_spool(p: Profile) -> Check:
    """The spool is writable and private; reports its backlog and dead letters."""
    if not p.spool_dir:
        return Check("spool", "warn", "no spool directory: a failed delivery stops the watcher with exit 1",
                     "recreate the profile with --spool-dir DIR to keep undelivered payloads")
    path = Path(p.spool_dir)
    ok, probe = _writable_dir(path)
    if not ok:
        return Check("spool", "fail", f"cannot write the spool in {probe}", f"mkdir -p {path} && chmod 700 {path}")
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            return Check("spool", "fail", f"{path} has mode {mode:o}; payloads must stay private", f"chmod 700 {path}")
        sp = Spool(path)
        waiting, dead = len(sp.files()), len(sp.files(dead=True))
        if dead:
            return Check("spool", "warn", f"{path}: {waiting} waiting, {dead} dead-lettered",
                         f"inspect with `uv run notify spool list --dead --spool-dir {path}`")
        return Check("spool", "ok", f"{path}: {waiting} waiting")
    return Check("spool", "ok", f"{path} (created on first use)")


def check_secret(p: Profile) -> list[Check]:
    """The secret reference resolves, and the URL it names is acceptable for the provider."""
    label = f"{p.webhook.source}:{p.webhook.ref}"
    try:
        url = resolve_secret(p.webhook)
    except DnadesignError as exc:
        return [Check("secret", "fail", exc.message, exc.hint)]
    out = [Check("secret", "ok", f"{label} resolves")]
    try:
        what = check_destination(p.provider, url, allow_insecure_localhost=p.allow_insecure_localhost)
        out.append(Check("url", "ok", f"{what} ({masked_secret_url(url)})" if p.provider == "apprise" else what))
    except DnadesignError as exc:
        out.append(Check("url", "fail", exc.message, exc.hint or "use an https webhook URL"))
        return out
    problem = shape_problem(p.provider, url)
    if problem:
        out.append(Check("provider", "warn", problem, f"use the incoming-webhook URL from {p.provider}, or set provider to generic"))
    else:
        out.append(Check("provider", "ok", p.provider + (f" ({p.payload_shape} payload)" if p.provider == "generic" else "")))
    return out


def check_sharing(p: Profile, profile_path: Path) -> Check:
    """No other profile in the directory uses this profile's cursor (they would skip each other's events)."""
    mine = Path(p.cursor).absolute()
    for other_path, other in sibling_profiles(Path(profile_path).absolute()):
        if Path(other.cursor).absolute() == mine:
            own = default_cursor(Path(profile_path).absolute())
            return Check("sharing", "fail", f"profile {other_path} uses the same cursor {mine}: each watcher would skip "
                         "events the other one handled",
                         f"give this profile its own cursor: cp {mine} {own}, then set \"cursor\" in {profile_path} to {own}")
    return Check("sharing", "ok", "no other profile here uses this cursor")


def check_rate_limit(p: Profile) -> Check | None:
    """Report a destination rate limit still in force (recorded after a 429)."""
    path = state_path_for(p.spool_dir, p.cursor)
    if path is None or not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        limits = [v for v in (data.get("destinations") or {}).values() if isinstance(v, dict)]
    except (OSError, ValueError, AttributeError):
        return None
    now = time.time()
    later = [v for v in limits if float(v.get("not_before") or 0) > now]
    if not later:
        return None
    until = max(float(v["not_before"]) for v in later)
    return Check("ratelimit", "warn", f"the destination asked for a pause until {time.strftime('%H:%M:%S UTC', time.gmtime(until))} "
                 "(HTTP 429); sends wait for it", "nothing to do; if it keeps happening, raise delivery.min_interval in the profile")


def check_tls(p: Profile) -> Check:
    """The configured CA bundle exists (certifi otherwise)."""
    if p.tls_ca_bundle:
        if not Path(p.tls_ca_bundle).is_file():
            return Check("tls", "fail", f"CA bundle {p.tls_ca_bundle} does not exist", "fix tls_ca_bundle or remove it to use certifi")
        return Check("tls", "ok", f"CA bundle {p.tls_ca_bundle}")
    return Check("tls", "ok", "certifi CA bundle")


def run_doctor(p: Profile, profile_path: str | Path | None = None) -> list[Check]:
    """All checks for a loaded profile (`profile_path` enables the shared-cursor check)."""
    checks = [check_events(p), check_cursor(p), check_spool(p), *check_secret(p), check_tls(p)]
    if profile_path is not None:
        checks.append(check_sharing(p, Path(profile_path)))
    limit = check_rate_limit(p)
    if limit is not None:
        checks.append(limit)
    return checks


def as_json(checks: list[Check]) -> list[dict]:
    """Checks as plain dicts for `--json`."""
    return [asdict(c) for c in checks]
