"""`notify profile wizard`: build a profile from flags, prompting (secrets hidden) only on a terminal.

Each profile gets its own cursor and spool by default (`<profile stem>.cursor`, `<profile stem>.spool`
beside the profile), so two profiles in one directory never share a position or a queue. Re-running
the wizard on an existing profile keeps that profile's cursor and spool. A cursor written by older
versions under the shared default name (`notify.cursor`) is carried over once, by copy, when no
other profile still uses it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.atomic import atomic_write_with
from ..core.errors import ConfigError, DnadesignError, UsageError
from .cursor import load_cursor
from .filters import split_csv
from .profile import DeliveryPolicy, Profile, ProgressPolicy, WebhookRef, load_profile, save_profile
from .secrets_ref import resolve_secret, store_secret_file, store_secret_keyring
from .spool import ensure_private_dir

Prompt = Callable[[str, bool], str]
CheckUrl = Callable[[str], None]
LEGACY_CURSOR = "notify.cursor"  # the default of older versions, shared by every profile in a directory


def default_secret_file(profile: Path) -> Path:
    """Where `--secret-source file` stores the URL when no --secret-file is given."""
    return Path.home() / ".config" / "dnadesign" / "notify" / f"{profile.stem}.webhook"


def default_cursor(profile: Path) -> Path:
    """`<dir>/<profile stem>.cursor`: one cursor per profile."""
    return profile.with_name(f"{profile.stem}.cursor")


def default_spool(profile: Path) -> Path:
    """`<dir>/<profile stem>.spool`: one spool per profile."""
    return profile.with_name(f"{profile.stem}.spool")


def sibling_profiles(profile_path: Path) -> list[tuple[Path, Profile]]:
    """The other valid profiles in the same directory (unreadable or unrelated JSON files are ignored)."""
    out: list[tuple[Path, Profile]] = []
    try:
        candidates = sorted(profile_path.parent.glob("*.json"))
    except OSError:
        return out
    for p in candidates:
        if p.resolve() == profile_path.resolve():
            continue
        try:
            out.append((p, load_profile(p)))
        except DnadesignError:
            continue
    return out


def _previous(profile_path: Path) -> Profile | None:
    if not profile_path.exists():
        return None
    try:
        return load_profile(profile_path)
    except DnadesignError:
        return None


def build_profile(*, profile_path: Path, provider: str, events: str, cursor: str | None, spool_dir: str | None,
                  no_spool: bool, secret_source: str, url_env: str | None, secret_file: str | None,
                  keyring_ref: str | None, only_tools: str | None, only_actions: str | None,
                  progress: dict[str, Any], tls_ca_bundle: str | None, allow_insecure_localhost: bool,
                  prompt: Prompt | None, webhook_from_stdin: bool, check_url: CheckUrl,
                  payload_shape: str = "native") -> tuple[Profile, list[str]]:
    """Validate the inputs, provision the secret reference, and return the profile plus notes.

    `check_url(url)` validates a destination URL for `provider` (https rules, or Apprise's).
    """
    notes: list[str] = []
    previous = _previous(profile_path)
    if cursor:
        cursor_p = Path(cursor).expanduser()
    elif previous is not None:
        cursor_p = Path(previous.cursor)
    else:
        cursor_p = default_cursor(profile_path)
    if no_spool:
        spool_p = None
    elif spool_dir:
        spool_p = Path(spool_dir).expanduser()
    elif previous is not None and previous.spool_dir:
        spool_p = Path(previous.spool_dir)
    else:
        spool_p = default_spool(profile_path)
    for other_path, other in sibling_profiles(profile_path):
        if Path(other.cursor).absolute() == cursor_p.absolute():
            raise UsageError(f"cursor {cursor_p} is already used by profile {other_path}; two profiles must not share a cursor",
                             hint=f"choose another --cursor (the default is {default_cursor(profile_path)})")
        if spool_p is not None and other.spool_dir and Path(other.spool_dir).absolute() == spool_p.absolute():
            notes.append(f"spool {spool_p} is shared with profile {other_path}: a drain of either sends both profiles' payloads")

    def new_url() -> str:
        if webhook_from_stdin:
            value = sys.stdin.readline().strip()
        elif prompt is not None:
            value = prompt(f"{'Apprise' if provider == 'apprise' else 'Webhook'} URL (input hidden)", True).strip()
        else:
            value = ""
        if not value:
            raise UsageError(f"the {'Apprise' if provider == 'apprise' else 'webhook'} URL is needed to store the secret",
                             hint="run on a terminal to be prompted, or pipe it in with --webhook-from-stdin")
        check_url(value)
        return value

    ref: WebhookRef
    if secret_source == "env":
        if not url_env:
            url_env = prompt("Environment variable holding the webhook URL", False).strip() if prompt else ""
        if not url_env:
            raise UsageError("--url-env VAR is required with --secret-source env")
        ref = WebhookRef(source="env", ref=url_env)
        if os.environ.get(url_env):
            check_url(resolve_secret(ref))
        else:
            notes.append(f"{url_env} is not set in this shell: export {url_env}=<webhook URL> before watching")
    elif secret_source == "file":
        path = Path(secret_file).expanduser() if secret_file else default_secret_file(profile_path)
        ref = WebhookRef(source="file", ref=str(path.resolve()))
        if not path.exists():
            store_secret_file(path, new_url())
            notes.append(f"webhook stored in {path} (mode 600)")
        else:
            check_url(resolve_secret(ref))
    elif secret_source == "keyring":
        ref = WebhookRef(source="keyring", ref=keyring_ref or f"dnadesign.notify/{profile_path.stem}")
        try:
            resolve_secret(ref)
        except ConfigError as exc:
            if "optional `keyring` package" in exc.message:
                raise
            store_secret_keyring(ref.ref, new_url())
            notes.append(f"webhook stored in the keyring as {ref.ref}")
    else:
        raise UsageError(f"unknown --secret-source {secret_source!r}; choose env, file or keyring")

    prof = Profile(provider=provider, payload_shape=payload_shape,  # type: ignore[arg-type]  # validated by pydantic
                   events=str(Path(events).expanduser().absolute()), cursor=str(cursor_p.absolute()),
                   spool_dir=str(spool_p.absolute()) if spool_p else None, webhook=ref,
                   only_tools=split_csv(only_tools), only_actions=split_csv(only_actions),
                   progress=ProgressPolicy(**{k: v for k, v in progress.items() if v is not None}),
                   delivery=previous.delivery if previous is not None else DeliveryPolicy(),
                   tls_ca_bundle=str(Path(tls_ca_bundle).absolute()) if tls_ca_bundle else None,
                   allow_insecure_localhost=allow_insecure_localhost)
    if not Path(prof.events).exists():
        notes.append(f"events file {prof.events} does not exist yet (fine before the run starts)")
    return prof, notes


def adopt_legacy_cursor(profile_path: Path, prof: Profile) -> str | None:
    """Carry an older shared `notify.cursor` over to this profile's new cursor (by copy), when it is safe.

    Safe means: this profile's cursor does not exist yet, the legacy cursor is readable and tracks the
    same events file, and no other profile in the directory still uses it. Returns a note, or None.
    """
    legacy = profile_path.with_name(LEGACY_CURSOR)
    target = Path(prof.cursor)
    if target.exists() or not legacy.is_file() or target.absolute() == legacy.absolute():
        return None
    if any(Path(o.cursor).absolute() == legacy.absolute() for _, o in sibling_profiles(profile_path)):
        return (f"{legacy} belongs to another profile; this profile keeps its own position in {target} "
                "(its first watch reads the log from the start unless you pass --from-end)")
    try:
        state = load_cursor(legacy)
    except DnadesignError:
        return None
    if state is None or Path(state.events).absolute() != Path(prof.events).absolute():
        return None
    atomic_write_with(target, lambda tmp: shutil.copyfile(legacy, tmp), mode=0o600)
    return f"continuing from the older shared cursor {legacy} (copied to {target}; the old file can be removed)"


def write_profile(profile_path: Path, prof: Profile, force: bool) -> list[str]:
    """Create the cursor directory and the private spool directory, carry a legacy cursor over, write the profile."""
    if profile_path.exists() and not force:
        raise UsageError(f"profile {profile_path} already exists", hint="pass --force to overwrite it")
    Path(prof.cursor).parent.mkdir(parents=True, exist_ok=True)
    if prof.spool_dir:
        ensure_private_dir(Path(prof.spool_dir))
    note = adopt_legacy_cursor(profile_path, prof)
    save_profile(profile_path, prof)
    return [note] if note else []


def next_steps(profile_path: Path) -> list[str]:
    """The commands to run after the wizard, as the runbooks write them."""
    p = shlex.quote(str(profile_path))
    return [f"uv run notify profile doctor --profile {p}",
            f"uv run notify usr-events watch --profile {p} --dry-run",
            f"uv run notify usr-events watch --profile {p} --follow",
            f"uv run notify spool drain --profile {p}"]
