"""Time: the one clock (UTC, timezone-aware) and the ways a moment is written."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone

from n8n_deploy.base.errors import UsageError


def _system_clock() -> datetime:
    return datetime.now(timezone.utc)


#: Where "now" comes from: the system clock.  Tests of deadlines (ephemeral keys, policy
#: ages) replace it with a fake clock instead of sleeping.
clock: Callable[[], datetime] = _system_clock


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware.  Stored times are always UTC."""
    return clock()


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


def stored_utc(value: datetime | str) -> datetime:
    """A stored timestamp as read (naive UTC; text on SQLite) as an aware UTC datetime: how
    every timestamp comes out of the database, through SQLAlchemy or ``sqlite3``.  A value
    that is not a timestamp (a row written by another program) raises ValueError."""
    if isinstance(value, str):
        if len(value) == len(_STORED_SHAPE) and value[10] == " ":
            # As SQLAlchemy stores it on SQLite (naive UTC, microseconds): read as UTC at
            # once (a listing of 10,000 keys reads 30,000 of them).
            try:
                return datetime.fromisoformat(value + "+00:00")
            except ValueError:
                pass
        value = datetime.fromisoformat(value)  # a row written another way (or ValueError)
    elif not isinstance(value, datetime):
        raise ValueError(f"a stored timestamp is a {type(value).__name__}")
    return as_utc(value)


#: How a timestamp is stored as text on SQLite (naive UTC, microseconds), as SQLAlchemy
#: writes it: the stored text of a moment, and every value ``stored_texts`` accepts.
_STORED_SHAPE = "2026-12-03 06:50:48.784958"
#: Its form, each digit written 0: what _DIGIT_AS_0 makes of every stored text.
_STORED_FORM = re.sub("[0-9]", "0", _STORED_SHAPE).encode("ascii")
_DIGIT_AS_0 = bytes.maketrans(b"123456789", b"000000000")


def stored_texts(values: Sequence[object]) -> bool:
    """Whether every value but None is a timestamp stored as text in the one shape SQLite
    holds them in (``_STORED_SHAPE``) and a real moment: then ``isos_from_stored`` and the
    text comparisons of ``stored_text(now)`` answer as the datetimes would.  Two scans of
    them all and one parse each, in C: a listing checks 10,000 values a column."""
    texts = [v for v in values if v is not None] if None in values else values
    if not texts:
        return True
    try:
        lines = "\n".join(texts)  # type: ignore[arg-type]
        form = (_STORED_FORM + b"\n") * len(texts)
        if not lines.isascii() or lines.encode("ascii").translate(_DIGIT_AS_0) != form[:-1]:
            return False
        if " 24:" in lines:  # which a newer Python reads as midnight of the next day
            return False
        return all(map(datetime.fromisoformat, texts))  # type: ignore[arg-type]
    except TypeError:  # a value that is not text at all
        return False
    except ValueError:  # 2026-02-30: in shape, but no moment
        return False


def _fields(value: datetime) -> tuple[int, int, int, int, int, int]:
    """Year to second of ``value`` in UTC: every way a moment is written formats these
    (%-formatting the fields is twice as fast as isoformat, four times strftime, and a
    listing writes 10,000 rows)."""
    value = as_utc(value)
    return value.year, value.month, value.day, value.hour, value.minute, value.second


def stored_text(value: datetime) -> str:
    """A moment as SQLite holds it (naive UTC): compares with stored text as the moments
    compare."""
    value = as_utc(value)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (*_fields(value), value.microsecond)  # noqa: UP031


def isos_from_stored(texts: Sequence[str], quote: str = "") -> list[str]:
    """``iso_utc`` of each timestamp as stored (values ``stored_texts`` accepted), between
    two ``quote``, without reading them as datetimes first (a listing writes 20,000: one
    comprehension): ``2025-09-15 10:30:00.123456`` -> ``2025-09-15T10:30:00Z``."""
    return [f"{quote}{text[:10]}T{text[11:19]}Z{quote}" for text in texts]


def iso_utc(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with a Z, to the second: ``2025-09-15T10:30:00Z``."""
    if value is None:
        return None
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % _fields(value)  # noqa: UP031


def human_time(value: datetime | None, *, never: str = "Never") -> str:
    """``2025-09-15 10:30:00`` (UTC), as in the reference's tables."""
    if value is None:
        return never
    return "%04d-%02d-%02d %02d:%02d:%02d" % _fields(value)  # noqa: UP031


def human_date(value: datetime | None, *, never: str = "Never") -> str:
    """``2025-09-15`` (UTC)."""
    if value is None:
        return never
    return "%04d-%02d-%02d" % _fields(value)[:3]  # noqa: UP031


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
#: The most days any option or policy rule counts (a century): more overflows a date.
MAX_DAYS = 36_500
#: The longest --ttl: an ephemeral key is meant for one pipeline, not for a year.
MAX_TTL = timedelta(days=366)
#: How far back ``--since 30d`` may reach: a century (the audit trail keeps years).
MAX_SINCE = timedelta(days=36525)


def parse_duration(raw: str, option: str = "--ttl", maximum: timedelta = MAX_TTL) -> timedelta:
    """``2h``, ``90m``, ``1d12h``, ``45s``, ``2w``: ASCII digits, each unit at most once, a
    positive span of at most a year; a usage error naming the option otherwise."""
    import re

    text = raw.strip().lower().replace(" ", "")
    parts = re.findall(r"([0-9]+)([smhdw])", text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise UsageError(
            f"{option} {raw!r}: not a duration",
            hint=f"Write it as a number and a unit (s, m, h, d, w), e.g. {option} 2h or 1d12h",
        )
    units = [u for _, u in parts]
    twice = next((u for u in units if units.count(u) > 1), None)
    if twice is not None:
        raise UsageError(
            f"{option} {raw!r}: the unit '{twice}' is given twice",
            hint=f"Give each unit once, e.g. {option} 1d12h",
        )
    limit = int(maximum.total_seconds())
    # A number longer than any limit is too large as it is (and int() refuses 4,300 digits).
    seconds = sum(int(n) * _UNITS[u] if len(n) <= 20 else limit + 1 for n, u in parts)
    span = timedelta(seconds=min(seconds, limit + 1))
    if not timedelta(0) < span <= maximum:
        raise UsageError(
            f"{option} {raw!r}: must be more than 0 and at most {maximum.days} days",
            hint=f"e.g. {option} 2h",
        )
    return span


def parse_moment(raw: str, option: str) -> datetime:
    """An ISO-8601 date or date and time (``2026-12-31``, ``2026-12-31T18:00``,
    ``...Z`` or ``+01:00``), as aware UTC; without a zone it is UTC."""
    text = raw.strip()
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        return as_utc(value)
    except (ValueError, OverflowError):
        raise UsageError(
            f"{option} {raw!r}: not a date",
            hint=f"Write it as ISO 8601 (UTC unless a zone is given), e.g. {option} "
            f"2026-12-31 or {option} 2026-12-31T18:00:00Z",
        ) from None


def parse_since(raw: str, option: str = "--since") -> datetime:
    """A moment (``parse_moment``) or a span back from now (``7d``, ``12h``)."""
    text = raw.strip()
    if text and text[-1:].lower() in _UNITS and text[:1].isdigit() and "-" not in text:
        return utcnow() - parse_duration(text, option, MAX_SINCE)
    return parse_moment(text, option)
