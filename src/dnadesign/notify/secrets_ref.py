"""Resolve a webhook reference (env var, mode-600 file, keyring) to the URL without ever echoing it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..core.errors import ConfigError
from .profile import WebhookRef

KEYRING_DEFAULT_SERVICE = "dnadesign.notify"


def _keyring():
    try:
        import keyring
    except ImportError:
        raise ConfigError("the keyring secret source needs the optional `keyring` package",
                          hint="install it with `uv pip install 'dnadesign[keyring]'`, or use --secret-source env|file") from None
    return keyring


def split_keyring_ref(ref: str) -> tuple[str, str]:
    """`service/name` -> (service, name); a bare name uses the default service."""
    service, sep, name = ref.rpartition("/")
    return (service, name) if sep and service else (KEYRING_DEFAULT_SERVICE, ref)


def check_secret_file(path: Path) -> None:
    """Raise ConfigError unless `path` is a regular file readable only by its owner (mode 600 or 400)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"secret file {path} does not exist", hint="create it with `uv run notify profile wizard --secret-source file`") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"secret file {path} is not a regular file")
    if st.st_mode & 0o077:
        raise ConfigError(f"secret file {path} has mode {stat.S_IMODE(st.st_mode):o}; it must be readable only by you",
                          hint=f"run `chmod 600 {path}`")


def resolve_secret(ref: WebhookRef) -> str:
    """Return the webhook URL named by `ref`; errors say where it was looked up, never the value."""
    if ref.source == "env":
        value = os.environ.get(ref.ref, "").strip()
        if not value:
            raise ConfigError(f"environment variable {ref.ref} is not set or empty",
                              hint=f"export {ref.ref}=<webhook URL> in the shell or job script that runs notify")
        return value
    if ref.source == "file":
        path = Path(ref.ref).expanduser()
        check_secret_file(path)
        try:
            text = path.read_text(encoding="utf-8", errors="strict")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"secret file {path} cannot be read ({type(exc).__name__})") from None
        value = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        if not value:
            raise ConfigError(f"secret file {path} is empty", hint="write the webhook URL on its first line")
        return value
    service, name = split_keyring_ref(ref.ref)
    try:
        value = _keyring().get_password(service, name)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - keyring backends raise their own types (no DBus, locked keychain)
        raise ConfigError(f"keyring lookup {service}/{name} failed ({type(exc).__name__})",
                          hint="unlock the keyring, or use --secret-source file") from None
    if not value:
        raise ConfigError(f"keyring has no secret for {service}/{name}", hint="store it with `uv run notify profile wizard --secret-source keyring`")
    return value


def store_secret_file(path: Path, value: str) -> None:
    """Create or replace a secret file with mode 600 (never world- or group-readable, even briefly)."""
    path = path.expanduser()
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (value.strip() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def store_secret_keyring(ref: str, value: str) -> None:
    """Store the URL in the system keyring under `service/name`."""
    service, name = split_keyring_ref(ref)
    _keyring().set_password(service, name, value.strip())
