"""Time: the one clock (UTC, timezone-aware) and the ways a moment is written."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, timezone
from functools import cache, partial
from operator import is_not

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
_WIDTH = len(_STORED_SHAPE)
#: Stored texts a line each: where a line's characters start (its width and line break).
_STRIDE = _WIDTH + 1
#: Where the characters of a stored text stand that its ISO-8601 form keeps, in place
#: (the date and the time to the second; the space between them becomes a T).
_ISO_KEEPS = (*range(10), *range(11, 19))
#: The stored texts of no moment, by their digits (the shape holds, each field digits):
#: each rule a few (place, digits) that all hold.  Year 0000; month 00 or above 12; day
#: 00 or above 31; hour above 23 (which a newer Python reads as the next day's midnight);
#: minute or second above 59.
_OUT_OF_RANGE = (
    ((0, "0"), (1, "0"), (2, "0"), (3, "0")),
    ((5, "23456789"),),
    ((5, "0"), (6, "0")),
    ((5, "1"), (6, "3456789")),
    ((8, "456789"),),
    ((8, "0"), (9, "0")),
    ((8, "3"), (9, "23456789")),
    ((11, "3456789"),),
    ((11, "2"), (12, "456789")),
    ((14, "6789"),),
    ((17, "6789"),),
)
#: Days 29 to 31, which some months have and others not: such dates are read one by one.
_LATE_DAYS = (((8, "3"),), ((8, "2"), (9, "9")))
_NOT_NONE = partial(is_not, None)
#: Values checked at once: a few pages of text, which the next ones reuse.
_CHECKED_AT_ONCE = 1024


def stored_texts(values: Sequence[object]) -> bool:
    """Whether every value but None is a timestamp stored as text in the one shape SQLite
    holds them in (``_STORED_SHAPE``) and a real moment: then ``isos_from_stored`` and the
    text comparisons of ``stored_text(now)`` answer as the datetimes would.  A listing
    checks 10,000 values a column: a thousand at a time, in C, each rule of them all at
    once (``_matching``); only a date late in its month is read as a date."""
    nulls = values.count(None)
    if nulls == len(values):  # a column no key has a value in (last used, deadline)
        return True
    texts = list(filter(_NOT_NONE, values)) if nulls else values
    return all(
        _stored(texts[start : start + _CHECKED_AT_ONCE])
        for start in range(0, len(texts), _CHECKED_AT_ONCE)
    )


def _stored(texts: Sequence[object]) -> bool:
    try:
        lines = "\n".join(texts)  # type: ignore[arg-type]
    except TypeError:  # a value that is not text at all
        return False
    if not lines.isascii():
        return False
    text = lines.encode("ascii")
    if text.translate(_DIGIT_AS_0) != ((_STORED_FORM + b"\n") * len(texts))[:-1]:
        return False
    if _matching(text, _OUT_OF_RANGE):
        return False
    late = _matching(text, _LATE_DAYS).to_bytes(len(texts), "big")
    at = late.find(1)
    try:
        while at >= 0:  # 2026-02-30 and 2026-04-31 are in range, and no day
            date.fromisoformat(lines[at * _STRIDE : at * _STRIDE + 10])
            at = late.find(1, at + 1)
    except ValueError:
        return False
    return True


def _matching(text: bytes, rules: Sequence[Sequence[tuple[int, str]]]) -> int:
    """Of stored texts a line each, which match a rule: a number whose byte i (from the
    left) is 1 where the i-th text does, 0 where it does not.  Each place of all the texts
    is one slice with a step; each test of its digits one translation and one ``and``."""
    found = 0
    for rule in rules:
        matches = -1  # every bit set: all texts, until a test leaves some out
        for place, digits in rule:
            matches &= int.from_bytes(text[place::_STRIDE].translate(_digits(digits)), "big")
        found |= matches
    return found


@cache
def _digits(digits: str) -> bytes:
    """The table that translates each of ``digits`` to the byte 1, any other digit to 0."""
    return bytes.maketrans(b"0123456789", bytes(str(d) in digits for d in range(10)))


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
    two ``quote``, without reading them as datetimes first: ``2025-09-15 10:30:00.123456``
    -> ``2025-09-15T10:30:00Z``.  A listing writes 20,000: the texts are all one width, so
    each character a timestamp keeps is copied for all of them at once (a slice with a
    step, in C), and the lines made are split apart: a third of a comprehension's time."""
    if not texts:
        return []
    stored = "".join(texts).encode("ascii")
    if len(stored) != len(texts) * _WIDTH:  # never, of values stored_texts accepted
        raise ValueError("not timestamps as stored")
    line = f"{quote}0000-00-00T00:00:00Z{quote}\n".encode("ascii")
    written = bytearray(line * len(texts))
    for at in _ISO_KEEPS:
        written[len(quote) + at :: len(line)] = stored[at::_WIDTH]
    return written[:-1].decode("ascii").split("\n")


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
