"""JSON is written without the json module's indenting encoder (pure Python: a second for
10,000 keys); it must be byte for byte ``json.dumps(..., indent=2, ensure_ascii=False)``
of the data with its secrets hidden, whatever the data holds."""

from __future__ import annotations

import io
import json
import random
import re
from datetime import datetime, timedelta, timezone
from enum import IntEnum
from typing import Any

import pytest

from n8n_deploy.base.dates import stored_text, stored_utc
from n8n_deploy.base.text import may_hold_secrets
from n8n_deploy.cli import json_writer, views
from n8n_deploy.store.reads import KeyListing, StoredServer
from tests.helpers import make_jwt

STRINGS = [
    "",
    "x",
    "prod_key",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl",
    "n8n_api_0123456789abcdef0123",
    "postgresql://user:secret@host/db?token=abc",
    'a\u2028b\x1b[31m\n\t"\\',
    "é🔑\u202e\ufeff",
    "👩\u200d💻",
]


class _Level(IntEnum):
    HIGH = 3


def _any_string(rng: random.Random) -> str:
    if rng.random() < 0.6:
        return rng.choice(STRINGS)
    return "".join(chr(rng.randint(0, 0x3000)) for _ in range(rng.randint(0, 6)))


def _value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth < 3 and roll < 0.25:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if depth < 3 and roll < 0.45:
        names: list[Any] = [_any_string(rng) if rng.random() < 0.95 else 1 for _ in range(4)]
        return {name: _value(rng, depth + 1) for name in names[: rng.randint(0, 4)]}
    if depth < 3 and roll < 0.5:
        return tuple(_value(rng, depth + 1) for _ in range(rng.randint(0, 3)))
    moment = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(
        seconds=rng.randint(0, 10**8), microseconds=rng.randint(0, 999_999)
    )
    return rng.choice(
        [None, True, False, rng.randint(-(10**20), 10**20), _Level.HIGH, 1.5, moment]
        + [_any_string(rng)] * 4
    )


def _as_json_writes_it(data: Any, unmask: bool) -> str:
    def dumped(value: Any) -> str:
        text = json.dumps(
            json_writer.hide_json_secrets(value, keys=not unmask),
            ensure_ascii=False,
            indent=2,
            default=json_writer._default,
        )
        return json_writer._JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)

    if isinstance(data, list) and data:
        items = (dumped(item).replace("\n", "\n  ") for item in data)
        return "[\n  " + ",\n  ".join(items) + "\n]\n"
    return dumped(data) + "\n"


@pytest.mark.parametrize("unmask", [False, True])
def test_json_is_what_the_json_module_would_write(
    unmask: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(14)
    for _ in range(3000):
        data = _value(rng)
        out = io.StringIO()
        monkeypatch.setattr("sys.stdout", out)
        json_writer.print_json(data, unmask=unmask)
        assert out.getvalue() == _as_json_writes_it(data, unmask), data


def _stored_moment(rng: random.Random) -> datetime:
    return datetime(2020, 1, 1, tzinfo=timezone.utc) + timedelta(
        seconds=rng.randint(0, 10**9), microseconds=rng.randint(0, 999_999)
    )


def _listing(
    rng: random.Random, as_stored: bool, hostile: bool, lively_after: datetime | None = None
) -> KeyListing:
    """Rows as a Source gives them: as SQLite stores them (text, 0 or 1) or typed; unless
    ``hostile``, what people wrote holds odd characters but nothing like a secret.  With
    ``lively_after``, every key is active and none expires before it, but perhaps one."""

    def _string(rng: random.Random) -> Any:
        if rng.random() < 0.02:
            return 7  # not text: a row written by another program
        text = _any_string(rng)
        return text if hostile or not may_hold_secrets(text) else "x\u202e"

    servers = [
        StoredServer(
            i, _string(rng) or "s", None, None, False, _stored_moment(rng), _stored_moment(rng)
        )
        for i in range(1, 4)
    ]

    def moment(maybe: bool, after: datetime | None = None) -> datetime | str | None:
        if maybe and rng.random() < 0.4:
            return None
        value = _stored_moment(rng)
        if after is not None:
            value = after + (value - datetime(2020, 1, 1, tzinfo=timezone.utc)) / 10**4
        return stored_text(value) if as_stored else value

    once_expired = rng.randrange(60)  # a row past lively_after (none when beyond the rows)

    rows = []
    linked = {}
    for key_id in range(1, 40):
        active = rng.random() < 0.7 or lively_after is not None
        expires_after = lively_after if key_id != once_expired else None
        rows.append(
            (
                key_id,
                _string(rng),
                rng.choice(
                    [make_jwt(exp_days=3), "n8n_api_" + "a" * 80, "short", _any_string(rng)]
                ),
                None if rng.random() < 0.4 else _string(rng),
                None if rng.random() < 0.02 else moment(False),  # NULL: a damaged row
                moment(True),
                moment(True, expires_after),
                None
                if rng.random() < 0.02 and lively_after is None
                else int(active)
                if as_stored
                else active,
                moment(True),
            )
        )
        if rng.random() < 0.6:
            linked[key_id] = tuple(rng.sample(servers, rng.randint(1, 3)))
    return KeyListing(rows, linked)


@pytest.mark.parametrize("as_stored", [True, False])
def test_a_key_listing_is_written_as_its_records_would_be(
    as_stored: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(15)
    now = stored_utc(stored_text(_stored_moment(rng)))
    statuses: set[frozenset[str]] = set()  # the statuses of each listing
    for i in range(150):
        lively_after = now if i % 3 == 2 else None  # all keys active: decided at once
        listing = _listing(rng, as_stored, hostile=i % 2 == 0, lively_after=lively_after)
        fast, careful = io.StringIO(), io.StringIO()
        monkeypatch.setattr("sys.stdout", fast)
        views.print_key_listing(listing, now=now)
        monkeypatch.setattr("sys.stdout", careful)
        json_writer.print_json(
            [views.key_record(listing.key(row), now=now) for row in listing.rows]
        )
        assert fast.getvalue() == careful.getvalue()
        statuses.add(frozenset(re.findall(r'"status": "(\w+)"', fast.getvalue())))
    assert frozenset({"active"}) in statuses  # every key active, each written so
    assert frozenset({"active", "expired"}) in statuses
    assert any({"expired", "inactive"} <= found for found in statuses)
