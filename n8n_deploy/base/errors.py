"""Domain errors, each carrying the exit status it maps to (``n8n_deploy.base.status``).

Library code raises these; it never prints or exits.  ``n8n_deploy.cli.root`` turns any of
them into one line on stderr and its exit status: the single place where that happens.
Messages must never contain an API key.
"""

from __future__ import annotations

from n8n_deploy.base.status import ExitStatus

__all__ = [
    "AlreadyExistsError",
    "DatabaseError",
    "InvalidKeyFormatError",
    "InvalidNameError",
    "InvalidServerUrlError",
    "KeyExpiredError",
    "KeyInactiveError",
    "LegacyDatabaseError",
    "N8nDeployError",
    "NotFoundError",
    "OperationFailed",
    "SchemaError",
    "SchemaOutOfDateError",
    "SchemaTooNewError",
    "UsageError",
]


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


def database_error_hint(said: str) -> str | None:
    """The fix for what a database driver said (its first line), when it names one."""
    if "locked" in said or "busy" in said:
        return "Another n8n-deploy command is using the database; try again in a moment"
    if "readonly" in said or "read-only" in said:
        return (
            "Check that you can write the data folder and the database file, and its -wal "
            "and -shm files (even reading a SQLite database needs them)"
        )
    if "malformed" in said or "not a database" in said:
        return "The file is damaged: move it aside, then 'n8n-deploy db restore BACKUP'"
    return None


def cannot_read(said: str) -> DatabaseError:
    """``Cannot read the database: <what the driver said>``, with its fix."""
    return DatabaseError(f"Cannot read the database: {said}", hint=database_error_hint(said))


class InvalidKeyFormatError(N8nDeployError):
    exit_status = ExitStatus.INVALID_FORMAT


class KeyExpiredError(N8nDeployError):
    exit_status = ExitStatus.KEY_EXPIRED


class KeyInactiveError(N8nDeployError):
    exit_status = ExitStatus.KEY_INACTIVE
