"""`notify profile doctor`: check every piece a watcher needs and give a fix for each problem."""

from __future__ import annotations

import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.errors import DnadesignError
from ..core.locks import describe_holder, read_holder
from .cursor import load_cursor
from .profile import Profile
from .secrets_ref import resolve_secret
from .spool import Spool
from .tail import parse_line
from .urls import check_url, shape_problem


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
                         f"inspect with `notify spool list --dead --spool-dir {path}`")
        return Check("spool", "ok", f"{path}: {waiting} waiting")
    return Check("spool", "ok", f"{path} (created on first use)")


def check_secret(p: Profile) -> list[Check]:
    label = f"{p.webhook.source}:{p.webhook.ref}"
    try:
        url = resolve_secret(p.webhook)
    except DnadesignError as exc:
        return [Check("secret", "fail", exc.message, exc.hint)]
    out = [Check("secret", "ok", f"{label} resolves")]
    try:
        check_url(url, allow_insecure_localhost=p.allow_insecure_localhost)
        out.append(Check("url", "ok", "https" if url.lower().startswith("https") else "http to loopback (testing)"))
    except DnadesignError as exc:
        out.append(Check("url", "fail", exc.message, exc.hint or "use an https webhook URL"))
        return out
    problem = shape_problem(p.provider, url)
    if problem:
        out.append(Check("provider", "warn", problem, f"use the incoming-webhook URL from {p.provider}, or set provider to generic"))
    else:
        out.append(Check("provider", "ok", p.provider))
    return out


def check_tls(p: Profile) -> Check:
    if p.tls_ca_bundle:
        if not Path(p.tls_ca_bundle).is_file():
            return Check("tls", "fail", f"CA bundle {p.tls_ca_bundle} does not exist", "fix tls_ca_bundle or remove it to use certifi")
        return Check("tls", "ok", f"CA bundle {p.tls_ca_bundle}")
    return Check("tls", "ok", "certifi CA bundle")


def run_doctor(p: Profile) -> list[Check]:
    """All checks for a loaded profile."""
    return [check_events(p), check_cursor(p), check_spool(p), *check_secret(p), check_tls(p)]


def as_json(checks: list[Check]) -> list[dict]:
    return [asdict(c) for c in checks]
