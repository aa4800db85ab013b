"""`notify profile wizard`: build a profile from flags, prompting (secrets hidden) only on a terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, UsageError
from .filters import split_csv
from .profile import DeliveryPolicy, Profile, ProgressPolicy, WebhookRef, save_profile
from .secrets_ref import resolve_secret, store_secret_file, store_secret_keyring
from .spool import ensure_private_dir
from .urls import check_url

Prompt = Callable[[str, bool], str]


def default_secret_file(profile: Path) -> Path:
    return Path.home() / ".config" / "dnadesign" / "notify" / f"{profile.stem}.webhook"


def build_profile(*, profile_path: Path, provider: str, events: str, cursor: str | None, spool_dir: str | None,
                  no_spool: bool, secret_source: str, url_env: str | None, secret_file: str | None,
                  keyring_ref: str | None, only_tools: str | None, only_actions: str | None,
                  progress: dict[str, Any], tls_ca_bundle: str | None, allow_insecure_localhost: bool,
                  prompt: Prompt | None, webhook_from_stdin: bool) -> tuple[Profile, list[str]]:
    """Validate the inputs, provision the secret reference, and return the profile plus notes."""
    notes: list[str] = []
    base = profile_path.parent
    cursor_p = Path(cursor).expanduser() if cursor else base / "notify.cursor"
    spool_p = None if no_spool else (Path(spool_dir).expanduser() if spool_dir else base / "notify_spool")

    def new_url() -> str:
        if webhook_from_stdin:
            value = sys.stdin.readline().strip()
        elif prompt is not None:
            value = prompt("Webhook URL (input hidden)", True).strip()
        else:
            value = ""
        if not value:
            raise UsageError("the webhook URL is needed to store the secret",
                             hint="run on a terminal to be prompted, or pipe it in with --webhook-from-stdin")
        check_url(value, allow_insecure_localhost=allow_insecure_localhost)
        return value

    if secret_source == "env":
        if not url_env:
            url_env = prompt("Environment variable holding the webhook URL", False).strip() if prompt else ""
        if not url_env:
            raise UsageError("--url-env VAR is required with --secret-source env")
        ref = WebhookRef(source="env", ref=url_env)
        if os.environ.get(url_env):
            check_url(resolve_secret(ref), allow_insecure_localhost=allow_insecure_localhost)
        else:
            notes.append(f"{url_env} is not set in this shell: export {url_env}=<webhook URL> before watching")
    elif secret_source == "file":
        path = Path(secret_file).expanduser() if secret_file else default_secret_file(profile_path)
        ref = WebhookRef(source="file", ref=str(path.resolve()))
        if not path.exists():
            store_secret_file(path, new_url())
            notes.append(f"webhook stored in {path} (mode 600)")
        else:
            check_url(resolve_secret(ref), allow_insecure_localhost=allow_insecure_localhost)
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

    prof = Profile(provider=provider, events=str(Path(events).expanduser().absolute()), cursor=str(cursor_p.absolute()),
                   spool_dir=str(spool_p.absolute()) if spool_p else None, webhook=ref,
                   only_tools=split_csv(only_tools), only_actions=split_csv(only_actions),
                   progress=ProgressPolicy(**{k: v for k, v in progress.items() if v is not None}),
                   delivery=DeliveryPolicy(), tls_ca_bundle=str(Path(tls_ca_bundle).absolute()) if tls_ca_bundle else None,
                   allow_insecure_localhost=allow_insecure_localhost)
    if not Path(prof.events).exists():
        notes.append(f"events file {prof.events} does not exist yet (fine before the run starts)")
    return prof, notes


def write_profile(profile_path: Path, prof: Profile, force: bool) -> None:
    """Create the cursor directory and the private spool directory, then write the profile."""
    if profile_path.exists() and not force:
        raise UsageError(f"profile {profile_path} already exists", hint="pass --force to overwrite it")
    Path(prof.cursor).parent.mkdir(parents=True, exist_ok=True)
    if prof.spool_dir:
        ensure_private_dir(Path(prof.spool_dir))
    save_profile(profile_path, prof)


def next_steps(profile_path: Path) -> list[str]:
    p = str(profile_path)
    return [f"notify profile doctor --profile {p}",
            f"notify usr-events watch --profile {p} --dry-run",
            f"notify usr-events watch --profile {p} --follow",
            f"notify spool drain --profile {p}"]
