"""What a key check concluded: its outcome, each check's line, and the result record.

Each outcome maps to one exit status (``EXIT_STATUS``; the statuses themselves and their
ranking live in ``n8n_deploy.base.status``).  A result never holds the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Literal

from n8n_deploy.base.dates import iso_utc
from n8n_deploy.base.status import ExitStatus


class Outcome(str, Enum):
    """What a check concluded; each maps to one exit status (``EXIT_STATUS``)."""

    VALID = "valid"
    INVALID_FORMAT = "invalid_format"
    EXPIRED = "expired"
    EXPIRING_SOON = "expiring_soon"
    REJECTED = "rejected"  # 401
    FORBIDDEN = "forbidden"  # 403: the key lacks the workflow:list scope
    UNEXPECTED_RESPONSE = "unexpected_response"  # 404, 5xx, 3xx, 2xx that is not the API
    UNREACHABLE = "unreachable"  # DNS, refused, TLS, timeout
    INVALID_SERVER_URL = "invalid_server_url"  # a stored URL that cannot be normalised
    MISSING_SCOPES = "missing_scopes"  # authenticates, but lacks a scope --require asked for
    UNKNOWN_SCOPES = "unknown_scopes"  # a required scope could be neither read nor probed
    # A check that could not run at all (reported by n8n_deploy.apikeys.check in the same shape).
    NOT_TESTED = "not_tested"  # no server to test against, or no active key at all
    NOT_FOUND = "not_found"  # no key (or server) of that name
    INACTIVE = "inactive"  # a deactivated key is not tested


EXIT_STATUS: dict[Outcome, ExitStatus] = {
    Outcome.VALID: ExitStatus.SUCCESS,
    Outcome.INVALID_FORMAT: ExitStatus.INVALID_FORMAT,
    Outcome.EXPIRED: ExitStatus.KEY_EXPIRED,
    Outcome.EXPIRING_SOON: ExitStatus.KEY_EXPIRED,
    Outcome.REJECTED: ExitStatus.KEY_REJECTED,
    Outcome.FORBIDDEN: ExitStatus.KEY_REJECTED,
    Outcome.UNEXPECTED_RESPONSE: ExitStatus.UNEXPECTED_RESPONSE,
    Outcome.UNREACHABLE: ExitStatus.UNREACHABLE,
    # Not tested against that server (as with no server at all): its stored URL, e.g. one
    # carried over from n8n-deploy 0.9, is not one a request can be sent to.
    Outcome.INVALID_SERVER_URL: ExitStatus.FAILED,
    Outcome.MISSING_SCOPES: ExitStatus.KEY_REJECTED,
    # Not verified, as with no server: never a pass (--allow-unknown-scopes accepts it).
    Outcome.UNKNOWN_SCOPES: ExitStatus.FAILED,
    Outcome.NOT_TESTED: ExitStatus.FAILED,
    Outcome.NOT_FOUND: ExitStatus.FAILED,
    Outcome.INACTIVE: ExitStatus.KEY_INACTIVE,
}

#: Outcomes decided without any server: the same for every server a key is tested against.
LOCAL_FAILURES = frozenset({Outcome.INVALID_FORMAT, Outcome.EXPIRED, Outcome.EXPIRING_SOON})

# Check names, in the order they are shown (the reference's order).
FORMAT, REACHABLE, AUTHENTICATION, EXPIRY = "format", "reachable", "authentication", "expiry"
SCOPES = "scopes"
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass(frozen=True)
class Check:
    """One line of the report: ``name`` is format/reachable/authentication/expiry."""

    name: str
    status: str  # passed | failed | skipped
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "message": self.message}


ScopeSource = Literal["discover", "probes"]


@dataclass(frozen=True)
class ScopeReport:
    """What is known of a key's scopes on one server.  ``held`` is every scope the key
    holds when ``source`` is ``discover``; with ``probes``, the ones a probe found.
    ``licence`` maps a scope to the feature the server's licence lacks for it."""

    source: ScopeSource | None
    held: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    licence: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "scopes": list(self.held),
            "missing_scopes": list(self.missing),
            "unknown_scopes": list(self.unknown),
            "licence": dict(self.licence),
        }


@dataclass(frozen=True)
class ValidationResult:
    """Everything one check found out.  It never holds the key.  ``server_url`` is None
    when no server was involved (a local check failed before one was chosen)."""

    server_url: str | None
    outcome: Outcome
    message: str
    hint: str | None = None
    checks: tuple[Check, ...] = ()
    key_kind: str | None = None
    expires_at: datetime | None = None
    http_status: int | None = None
    location: str | None = None
    cause: str | None = None  # why unreachable: dns, refused, tls, timeout, connect, ...
    elapsed: float = 0.0
    attempts: int = 0
    warnings: tuple[str, ...] = ()
    scopes: ScopeReport | None = None  # with --require: what is known of the key's scopes

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.VALID

    @property
    def exit_status(self) -> ExitStatus:
        return EXIT_STATUS[self.outcome]

    @property
    def contacted(self) -> bool:
        return self.attempts > 0

    @property
    def failed_locally(self) -> bool:
        """A check of the key itself (format, expiry) failed: no server would change that."""
        return self.outcome in LOCAL_FAILURES

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape (docs/ci.md)."""
        return {
            "server_url": self.server_url,
            "valid": self.ok,
            "outcome": self.outcome.value,
            "exit_status": int(self.exit_status),
            "message": self.message,
            "hint": self.hint,
            "http_status": self.http_status,
            "location": self.location,
            "cause": self.cause,
            "key_kind": self.key_kind,
            "expires_at": iso_utc(self.expires_at),
            "elapsed_seconds": round(self.elapsed, 3),
            "attempts": self.attempts,
            "checks": [c.to_dict() for c in self.checks],
            "warnings": list(self.warnings),
            # With --require: what the key holds when known (null otherwise), and which
            # required scopes it lacks or could not be checked.
            "scopes": list(self.scopes.held) if self.scopes and self.scopes.source else None,
            "scope_source": self.scopes.source if self.scopes else None,
            "missing_scopes": list(self.scopes.missing) if self.scopes else [],
            "unknown_scopes": list(self.scopes.unknown) if self.scopes else [],
        }
