"""Error types and exit codes shared by `dense`, `usr` and `notify`.

Every handled failure is a `DnadesignError`: one sentence saying what is wrong and where, plus an
optional hint saying what to do next. CLIs render it as one line on stderr and exit with
`exit_code`; no traceback is shown for a user mistake.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes used by all three tools (see docs/architecture.md)."""

    OK = 0
    FAILURE = 1  # handled failure: bad input, unmet quota, delivery failed and not spooled
    USAGE = 2  # command-line usage error
    DIFFERS = 3  # `usr diff`: the two sides differ (like diff(1))


class DnadesignError(Exception):
    """A handled failure with a user-facing message and an optional next step."""

    exit_code: int = ExitCode.FAILURE

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        """One line for stderr: the problem, then what to do."""
        text = self.message.rstrip(".") + "."
        if self.hint:
            hint = self.hint.rstrip(".")
            text += " " + hint[:1].upper() + hint[1:] + ("" if hint.endswith(("?", "!")) else ".")
        return text


class UsageError(DnadesignError):
    """The command line itself is wrong (exit 2)."""

    exit_code = ExitCode.USAGE


class InputError(DnadesignError):
    """A user-supplied file, value or id is invalid."""


class DatasetIdError(InputError):
    """A dataset id is not `namespace/name` with safe characters."""


class ConfigError(InputError):
    """A configuration or profile file is invalid; the message names the key path."""


class NotFoundError(DnadesignError):
    """A dataset, record, file or profile does not exist."""


class ConflictError(DnadesignError):
    """The operation would conflict with stored state (duplicate id, type change, ...)."""


class LockTimeoutError(DnadesignError):
    """Another process holds a lock for longer than we were willing to wait."""


class IntegrityError(DnadesignError):
    """Stored data does not match its manifest (hash, row count, id)."""


class RemoteError(DnadesignError):
    """An SSH/rsync remote failed or is misconfigured."""


class DeliveryError(DnadesignError):
    """A webhook delivery failed."""
