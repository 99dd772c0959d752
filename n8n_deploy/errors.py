"""Domain errors and the exit statuses they map to.

Library code raises these; it never prints or exits.  ``n8n_deploy.cli`` turns any of them
into one line on stderr and the exit status below: the single place where that happens.
Messages must never contain an API key.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Exit statuses are a contract with scripts and CI jobs (documented in README.md)."""

    SUCCESS = 0
    FAILED = 1  # not found, already exists, refused
    USAGE = 2  # bad option or argument
    SCHEMA = 3  # database schema out of date, or newer than this program
    KEY_REJECTED = 4  # server answered 401/403
    UNREACHABLE = 5  # DNS, refused connection, TLS, timeout
    INVALID_FORMAT = 6  # not a JWT or legacy n8n API key
    KEY_EXPIRED = 7  # expired, or expiring sooner than asked
    UNEXPECTED_RESPONSE = 8  # 404, 5xx, not JSON, redirect
    KEY_INACTIVE = 9  # deactivated key
    INTERRUPTED = 130  # Ctrl-C


class N8nDeployError(Exception):
    """Base of every error a user can see.  ``str(error)`` is the one-line message."""

    exit_status: ExitStatus = ExitStatus.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class OperationFailed(N8nDeployError):
    """A request that cannot be carried out as asked (refused, conflicting, ...)."""


class NotFoundError(OperationFailed):
    def __init__(
        self,
        kind: str,
        name: str,
        suggestions: list[str] | None = None,
        *,
        hint: str | None = None,
    ) -> None:
        self.kind = kind
        self.name = name
        self.suggestions = list(suggestions or [])
        if self.suggestions:
            hint = "Did you mean: " + ", ".join(f"'{s}'" for s in self.suggestions) + "?"
        super().__init__(f"{kind} '{name}' not found", hint=hint)


class AlreadyExistsError(OperationFailed):
    def __init__(self, kind: str, name: str, *, hint: str | None = None) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"{kind} '{name}' already exists", hint=hint)


class UsageError(N8nDeployError):
    """Bad input that the user can fix by changing the command line."""

    exit_status = ExitStatus.USAGE


class InvalidNameError(UsageError):
    pass


class InvalidServerUrlError(UsageError):
    pass


class SchemaError(N8nDeployError):
    """The database is not at the revision this program works with."""

    exit_status = ExitStatus.SCHEMA


class SchemaOutOfDateError(SchemaError):
    pass


class SchemaTooNewError(SchemaError):
    pass


class LegacyDatabaseError(SchemaError):
    pass


class DatabaseError(OperationFailed):
    """The database could not be opened, read or written."""


class InvalidKeyFormatError(N8nDeployError):
    exit_status = ExitStatus.INVALID_FORMAT


class KeyExpiredError(N8nDeployError):
    exit_status = ExitStatus.KEY_EXPIRED


class KeyInactiveError(N8nDeployError):
    exit_status = ExitStatus.KEY_INACTIVE


class KeyRejectedError(N8nDeployError):
    exit_status = ExitStatus.KEY_REJECTED


class ServerUnreachableError(N8nDeployError):
    exit_status = ExitStatus.UNREACHABLE


class UnexpectedResponseError(N8nDeployError):
    exit_status = ExitStatus.UNEXPECTED_RESPONSE
