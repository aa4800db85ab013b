"""The notify profile: a versioned, strictly validated JSON file that wires a watcher together.

A profile never holds a webhook URL, only a reference to where the URL lives (env var, file,
keyring). Relative paths are resolved against the profile's own directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..core.atomic import atomic_write_json
from ..core.errors import ConfigError, NotFoundError

PROFILE_VERSION = 1
Provider = Literal["slack", "discord", "generic", "apprise"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class WebhookRef(_Strict):
    """Where the webhook (or Apprise) URL lives: `env` (variable name), `file` (path, mode 600) or `keyring` (service/name)."""

    source: Literal["env", "file", "keyring"]
    ref: str = Field(min_length=1)

    @field_validator("ref")
    @classmethod
    def _no_url(cls, v: str) -> str:
        if "://" in v:
            raise ValueError("must be a reference (variable name, file path or keyring service/name), not a URL")
        return v


class ProgressPolicy(_Strict):
    """Throttle for DenseGen progress: send on each `step_pct` step, at most every `min_seconds`, and a heartbeat."""

    step_pct: int = Field(default=10, ge=1, le=100)
    min_seconds: float = Field(default=60.0, ge=0)
    heartbeat_seconds: float = Field(default=1800.0, gt=0)


class DeliveryPolicy(_Strict):
    """HTTP timeouts and retry policy for one delivery."""

    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=4, ge=1, le=20)
    backoff_base: float = Field(default=0.5, ge=0)
    backoff_max: float = Field(default=30.0, ge=0)
    retry_after_max: float = Field(default=120.0, ge=0)
    min_interval: float | None = Field(default=None, ge=0)


class Profile(_Strict):
    """Version 1 notify profile (`payload_shape` and the `apprise` provider are optional additions)."""

    profile_version: Literal[1] = 1
    provider: Provider
    payload_shape: Literal["native", "incumbent"] = "native"
    events: str = Field(min_length=1)
    cursor: str = Field(min_length=1)
    spool_dir: str | None = None
    webhook: WebhookRef
    only_tools: list[str] = Field(default_factory=list)
    only_actions: list[str] = Field(default_factory=list)
    job_alerts: bool = True
    progress: ProgressPolicy = Field(default_factory=ProgressPolicy)
    delivery: DeliveryPolicy = Field(default_factory=DeliveryPolicy)
    spool_max_attempts: int = Field(default=10, ge=1)
    poll_interval: float = Field(default=0.25, gt=0)
    tls_ca_bundle: str | None = None
    allow_insecure_localhost: bool = False

    @model_validator(mode="after")
    def _shape_needs_generic(self) -> Profile:
        if self.payload_shape != "native" and self.provider != "generic":
            raise ValueError("payload_shape 'incumbent' applies to the generic provider only")
        return self

    def resolved(self, base: Path) -> Profile:
        """A copy with relative paths made absolute against `base` (the profile's directory)."""
        def fix(p: str | None) -> str | None:
            if p is None:
                return None
            q = Path(p).expanduser()
            return str(q if q.is_absolute() else (base / q).resolve())

        return self.model_copy(update={"events": fix(self.events), "cursor": fix(self.cursor),
                                       "spool_dir": fix(self.spool_dir), "tls_ca_bundle": fix(self.tls_ca_bundle)})


def format_validation_error(exc: ValidationError, where: str) -> str:
    """One line per problem, each naming the key path (e.g. `webhook.source`)."""
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "<root>"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"{loc}: {msg}")
    return f"{where}: " + "; ".join(parts)


def parse_profile(data: object, where: str = "profile") -> Profile:
    """Validate a decoded profile document; raise ConfigError naming each bad key path."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a JSON object")
    if "url" in data or "webhook_url" in data:
        raise ConfigError(f"{where}: url: profiles must not store webhook URLs",
                          hint="store a reference instead: webhook {source: env|file|keyring, ref: ...}")
    if data.get("profile_version") != PROFILE_VERSION:
        raise ConfigError(f"{where}: profile_version: expected {PROFILE_VERSION}, found {data.get('profile_version')!r}",
                          hint="recreate it with `uv run notify profile wizard`")
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where), hint="fix the profile or recreate it with `uv run notify profile wizard --force`") from None


def load_profile(path: str | Path) -> Profile:
    """Read, validate and resolve a profile file."""
    path = Path(path).expanduser()
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise NotFoundError(f"profile {path} does not exist", hint="create it with `uv run notify profile wizard --profile PATH ...`") from None
    except OSError as exc:
        raise ConfigError(f"profile {path} cannot be read: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"profile {path}: invalid JSON: {exc}") from None
    return parse_profile(data, str(path)).resolved(path.parent.resolve())


def save_profile(path: str | Path, profile: Profile) -> None:
    """Write the profile atomically with mode 600 (it names where secrets live)."""
    atomic_write_json(path, profile.model_dump(mode="json"), mode=0o600)
