"""Time: the one clock (UTC, timezone-aware) and the ways a moment is written."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware.  Stored times are always UTC."""
    return datetime.now(timezone.utc)


def local_zone_name() -> str:
    """How this machine's local time zone is named (``CET``), for messages."""
    return datetime.now().astimezone().tzname() or "local time"


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive value is taken to be UTC already."""
    if value.tzinfo is timezone.utc:  # as stored values come back: nothing to convert
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def iso_utc(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with a Z: ``2025-09-15T10:30:00Z``."""
    if value is None:
        return None
    return as_utc(value).isoformat(timespec="seconds").replace("+00:00", "Z")


def human_time(value: datetime | None, *, never: str = "Never") -> str:
    """``2025-09-15 10:30:00`` (UTC), as in the reference's tables."""
    if value is None:
        return never
    return as_utc(value).strftime("%Y-%m-%d %H:%M:%S")


def human_date(value: datetime | None, *, never: str = "Never") -> str:
    """``2025-09-15`` (UTC)."""
    if value is None:
        return never
    return as_utc(value).strftime("%Y-%m-%d")
