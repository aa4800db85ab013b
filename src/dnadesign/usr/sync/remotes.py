"""Remote profiles: where another USR root lives, on a host reached over SSH or at a mounted path.

Profiles are stored as YAML at `$USR_REMOTES_PATH`, else `~/.config/dnadesign/remotes.yaml`
(`$XDG_CONFIG_HOME` is honoured). The file is rewritten atomically with mode 600:

```yaml
version: 1
remotes:
  project:
    type: path                 # a root on a filesystem this machine mounts (NFS, project space)
    base_dir: /mnt/project/usr
  bu-scc:
    type: ssh                  # the default
    host: scc1.bu.edu          # or an ~/.ssh/config alias
    user: alice                # optional (ssh config / login name otherwise)
    port: 22                   # optional
    identity_file: ~/.ssh/id_ed25519   # optional
    base_dir: /projectnb/lab/usr       # absolute, or ~/... on the remote
    ssh_config: null           # optional: passed as `ssh -F`
    known_hosts: null          # optional: passed as UserKnownHostsFile
    ssh_options: []            # optional: extra `-o Key=Value` options, e.g. ServerAliveInterval=5
    batch_mode: true           # false allows interactive (MFA) authentication of the first connection
```
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ...core.atomic import atomic_write_text
from ...core.errors import ConfigError, InputError, NotFoundError

REMOTES_ENV = "USR_REMOTES_PATH"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_HOST = re.compile(r"^[A-Za-z0-9_.:%\[\]-]+$")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_REMOTE_PATH_CHARS = re.compile(r"^[A-Za-z0-9_./~+@:=,-]+$")
_SSH_OPTION = re.compile(r"^[A-Za-z][A-Za-z0-9]*=[^\n\r]*$")
TYPES = ("ssh", "path")
_SSH_ONLY = ("host", "user", "port", "identity_file", "ssh_config", "known_hosts")


def remotes_path() -> Path:
    """The profile file: `$USR_REMOTES_PATH`, else `$XDG_CONFIG_HOME/dnadesign/remotes.yaml`."""
    env = os.environ.get(REMOTES_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "dnadesign" / "remotes.yaml"


def check_local_path(path: str, what: str = "base_dir") -> str:
    """A directory on this machine for a path remote: absolute or `~/...`, one line, no `..` components."""
    if not path or "\n" in path or "\r" in path or "\0" in path:
        raise ConfigError(f"{what} {path!r} is not a usable path")
    if not (path.startswith(("/", "~/")) or path == "~"):
        raise ConfigError(f"{what} {path!r} must be absolute or start with ~/", hint="e.g. /mnt/project/usr")
    if any(p == ".." for p in path.split("/")):
        raise ConfigError(f"{what} {path!r} must not contain '..'")
    return path.rstrip("/") if len(path) > 1 else path


def parse_location(location: str) -> str:
    """The directory of a path remote given as `/abs/path`, `~/path` or `file:///abs/path`."""
    if location.startswith("file://"):
        rest = location[len("file://"):]
        if not rest.startswith("/"):
            raise ConfigError(f"{location!r} is not a file:// URL of this machine", hint="use file:///absolute/path")
        location = rest
    return check_local_path(location, "the remote path")


def check_remote_path(path: str, what: str = "base_dir") -> str:
    """A remote directory: absolute or `~/...`, safe characters, no `..` components."""
    if not path or not _REMOTE_PATH_CHARS.match(path):
        raise ConfigError(f"{what} {path!r} contains characters that are not allowed",
                          hint="use letters, digits and / . _ - ~ + @ : = , only")
    if not (path.startswith(("/", "~/")) or path == "~"):
        raise ConfigError(f"{what} {path!r} must be absolute or start with ~/", hint="e.g. /projectnb/lab/usr or ~/usr")
    if any(p == ".." for p in path.split("/")):
        raise ConfigError(f"{what} {path!r} must not contain '..'")
    return path.rstrip("/") if len(path) > 1 else path


@dataclass
class RemoteProfile:
    """One remote: `type` ssh (host + base_dir on it) or path (base_dir on a filesystem mounted here)."""

    name: str
    host: str | None
    base_dir: str
    type: str = "ssh"
    user: str | None = None
    port: int | None = None
    identity_file: str | None = None
    ssh_config: str | None = None
    known_hosts: str | None = None
    ssh_options: list[str] = field(default_factory=list)
    batch_mode: bool = True

    def __post_init__(self) -> None:
        where = f"remote {self.name!r}"
        if not _NAME.match(self.name or ""):
            raise ConfigError(f"invalid remote name {self.name!r}", hint="use letters, digits, '_', '.', '-'")
        if self.type not in TYPES:
            raise ConfigError(f"{where}: type must be ssh or path, not {self.type!r}")
        if self.type == "path":
            given = [k for k in _SSH_ONLY if getattr(self, k) is not None] + (["ssh_options"] if self.ssh_options else [])
            if given:
                raise ConfigError(f"{where}: {given[0]} does not apply to a path remote", hint="remove it, or use type: ssh")
            self.base_dir = check_local_path(str(self.base_dir), f"{where}: base_dir")
            return
        if not self.host or not _HOST.match(self.host) or self.host.startswith("-"):
            raise ConfigError(f"{where}: invalid host {self.host!r}", hint="give a host name, address or ~/.ssh/config alias")
        if self.user is not None and not _USER.match(self.user):
            raise ConfigError(f"{where}: invalid user {self.user!r}")
        if self.port is not None:
            try:
                self.port = int(self.port)
            except (TypeError, ValueError):
                raise ConfigError(f"{where}: port must be a number, not {self.port!r}") from None
            if not 0 < self.port < 65536:
                raise ConfigError(f"{where}: port {self.port} is out of range")
        self.base_dir = check_remote_path(str(self.base_dir), f"{where}: base_dir")
        for opt in self.ssh_options:
            if not _SSH_OPTION.match(opt):
                raise ConfigError(f"{where}: ssh option {opt!r} is not Key=Value", hint="e.g. ServerAliveInterval=5")

    @property
    def destination(self) -> str:
        """`user@host` (or `host`) for ssh/rsync."""
        return f"{self.user}@{self.host}" if self.user else str(self.host)

    @property
    def location(self) -> str:
        """Where the remote root is, for messages: `host:base_dir` or the mounted path."""
        return self.base_dir if self.type == "path" else f"{self.destination}:{self.base_dir}"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("name")
        return d

    @classmethod
    def from_dict(cls, name: str, d: Any) -> RemoteProfile:
        if not isinstance(d, dict):
            raise ConfigError(f"remotes.{name} must be a mapping")
        known = {"host", "base_dir", "user", "port", "identity_file", "ssh_config", "known_hosts", "ssh_options", "batch_mode", "type"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"remotes.{name}.{unknown[0]} is not a known profile key",
                              hint=f"known keys: {', '.join(sorted(known))}")
        kind = d.get("type", "ssh")
        if kind not in TYPES:
            raise ConfigError(f"remotes.{name}.type must be ssh or path, not {kind!r}")
        for key in ("host", "base_dir") if kind == "ssh" else ("base_dir",):
            if not d.get(key):
                raise ConfigError(f"remotes.{name}.{key} is missing", hint=f"set it with `usr remotes add {name} --{key.replace('_', '-')} ...`")
        opts = d.get("ssh_options") or []
        if not isinstance(opts, list):
            raise ConfigError(f"remotes.{name}.ssh_options must be a list of Key=Value strings")
        return cls(name=name, host=str(d["host"]) if d.get("host") is not None else None, base_dir=str(d["base_dir"]), type=kind,
                   user=d.get("user"), port=d.get("port"), identity_file=d.get("identity_file"), ssh_config=d.get("ssh_config"),
                   known_hosts=d.get("known_hosts"), ssh_options=[str(o) for o in opts], batch_mode=bool(d.get("batch_mode", True)))


def load_profiles(path: Path | None = None) -> dict[str, RemoteProfile]:
    """Every profile in the remotes file ({} when the file does not exist)."""
    path = path or remotes_path()
    if not path.exists():
        return {}
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}", hint="fix the file or remove it") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("remotes", {}), dict):
        raise ConfigError(f"{path}: expected a mapping with a 'remotes' key")
    return {name: RemoteProfile.from_dict(str(name), body) for name, body in (doc.get("remotes") or {}).items()}


def save_profiles(profiles: dict[str, RemoteProfile], path: Path | None = None) -> Path:
    """Rewrite the remotes file atomically (mode 600); returns its path."""
    path = path or remotes_path()
    doc = {"version": 1, "remotes": {name: _prune(p.as_dict()) for name, p in sorted(profiles.items())}}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, yaml.safe_dump(doc, sort_keys=False), mode=0o600)
    return path


def _prune(d: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in d.items() if v not in (None, []) or k == "base_dir"}
    if out.get("type") == "path":
        out.pop("batch_mode", None)
    return out


def get_profile(name: str, path: Path | None = None) -> RemoteProfile:
    """The profile called `name`; NotFoundError (with how to add it) when there is none."""
    if not _NAME.match(name or ""):
        raise InputError(f"invalid remote name {name!r}", hint="see `usr remotes list`")
    profiles = load_profiles(path)
    if name not in profiles:
        where = path or remotes_path()
        raise NotFoundError(f"no remote named {name!r} in {where}",
                            hint=f"add it with `usr remotes add {name} --host HOST --base-dir DIR` (SSH) or "
                                 f"`usr remotes add {name} /mounted/path` (or set ${REMOTES_ENV})")
    return profiles[name]
