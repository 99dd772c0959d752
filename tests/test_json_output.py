"""JSON is written without the json module's indenting encoder (pure Python: a second for
10,000 keys); it must be byte for byte ``json.dumps(..., indent=2, ensure_ascii=False)``
of the data with its secrets hidden, whatever the data holds."""

from __future__ import annotations

import io
import json
import random
from datetime import datetime, timedelta, timezone
from enum import IntEnum
from typing import Any

import pytest

from n8n_deploy.cli import output

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


def _string(rng: random.Random) -> str:
    if rng.random() < 0.6:
        return rng.choice(STRINGS)
    return "".join(chr(rng.randint(0, 0x3000)) for _ in range(rng.randint(0, 6)))


def _value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth < 3 and roll < 0.25:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if depth < 3 and roll < 0.45:
        names: list[Any] = [_string(rng) if rng.random() < 0.95 else 1 for _ in range(4)]
        return {name: _value(rng, depth + 1) for name in names[: rng.randint(0, 4)]}
    if depth < 3 and roll < 0.5:
        return tuple(_value(rng, depth + 1) for _ in range(rng.randint(0, 3)))
    moment = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(
        seconds=rng.randint(0, 10**8), microseconds=rng.randint(0, 999_999)
    )
    return rng.choice(
        [None, True, False, rng.randint(-(10**20), 10**20), _Level.HIGH, 1.5, moment]
        + [_string(rng)] * 4
    )


def _as_json_writes_it(data: Any, unmask: bool) -> str:
    def dumped(value: Any) -> str:
        text = json.dumps(
            output._hide_secrets(value, keys=not unmask),
            ensure_ascii=False,
            indent=2,
            default=output._json_default,
        )
        return output._JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)

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
        output.print_json(data, unmask=unmask)
        assert out.getvalue() == _as_json_writes_it(data, unmask), data
