"""How every ``--json`` document is written: pretty JSON on stdout, secrets hidden and
the characters a terminal would act on escaped.

The bytes are those of ``json.dumps(data, indent=2, ensure_ascii=False)`` of the data
with its secrets hidden (``tests/test_json_output.py`` holds them to it), but not written
by it: the json module indents in pure Python (a second for 10,000 keys).  Here each
object or array whose members are all plain values (strings, numbers, booleans, null,
timestamps, empty containers) is written by the json module's C encoder in one call, its
item separator carrying the line break and the indent; only the nested containers of an
object (a key's list of servers) are written by Python.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from json.encoder import encode_basestring as _encode_string  # the C one, ensure_ascii=False
from typing import Any, TypeVar, cast

from n8n_deploy.base.dates import iso_utc
from n8n_deploy.base.text import C0_CONTROLS, UNSAFE_CHARACTERS, hide_secrets, may_hold_secrets

#: The field of a JSON record that ``--unmask`` shows whole.
KEY_FIELD = "api_key"

T = TypeVar("T")

_printed = False
_CHUNK = 256  # array items written at once: one write per item costs more than encoding


def print_json(data: Any, *, unmask: bool = False) -> None:
    """Pretty JSON on stdout and nothing else (UTF-8 kept as is).

    Every string is cleared of secrets (keys, except the ``api_key`` fields with
    ``unmask``; URL passwords); the characters a terminal would act on are written as JSON
    escapes (``\\u001b``, ``\\u202e``), so the document means the same and shows nothing.
    An array is written a few hundred items at a time, each item's lines one level
    deeper: never the whole document in memory at once (10,000 keys)."""
    global _printed
    if isinstance(data, list) and data:
        print_json_items(data, _item_texts, _as_it_is, unmask=unmask)
        return
    keys = not unmask
    text = _plain(data, "")
    sys.stdout.write(_escaped(_hidden(data, "", keys) if may_hold_secrets(text) else text) + "\n")
    _printed = True


def print_json_items(
    items: Sequence[T],
    texts: Callable[[Sequence[T]], Sequence[str | None]],
    record: Callable[[T], Any],
    *,
    unmask: bool = False,
) -> None:
    """A JSON array of ``record(item)`` for each item, as print_json writes it.  ``texts``
    gives the text of each item of a few hundred at a time, where it can vouch for it: the
    JSON of ``record(item)`` with its lines after the first indented by two spaces, in
    which hiding secrets would change nothing (a writer of thousands of rows that knows
    their shape).  Where it gives None, the record is written with its secrets hidden."""
    global _printed
    write = sys.stdout.write
    keys = not unmask
    if not items:
        write("[]\n")
        _printed = True
        return
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        found = texts(chunk)
        written = (
            [
                _hidden(record(item), "  ", keys) if item_text is None else item_text
                for item, item_text in zip(chunk, found, strict=True)
            ]
            if None in found
            else cast("list[str]", found)
        )
        write(("[\n  " if start == 0 else ",\n  ") + _escaped(",\n  ".join(written)))
    write("\n]\n")
    _printed = True


def _item_texts(items: Sequence[Any]) -> list[str | None]:
    return [_item_text(item) for item in items]


def _item_text(item: Any) -> str | None:
    text = _plain(item, "  ")
    return None if may_hold_secrets(text) else text


def _as_it_is(item: Any) -> Any:
    return item


def json_printed(reset: bool = False) -> bool:
    """Whether this run printed a JSON document already (``reset``: forget it, at the
    start of a run)."""
    global _printed
    printed = _printed
    if reset:
        _printed = False
    return printed


def json_moment(value: datetime) -> str:
    """How a datetime is written in JSON: ISO-8601 UTC with a Z."""
    written = iso_utc(value)
    assert written is not None
    return written


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return json_moment(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _plain(value: Any, indent: str) -> str:
    """``value`` as JSON, nothing hidden: for a value that may_hold_secrets then clears,
    the same text as hidden (hiding leaves text without a hint as it is)."""
    try:
        return _indented(value, indent)
    except _Unusual:
        return _by_json_module(value, indent)


def _hidden(value: Any, indent: str, keys: bool) -> str:
    hidden = hide_json_secrets(value, keys=keys)
    try:
        return _indented(hidden, indent)
    except _Unusual:
        return _by_json_module(hidden, indent)


def _by_json_module(value: Any, indent: str) -> str:
    text = json.dumps(value, ensure_ascii=False, indent=2, default=_default)
    return text.replace("\n", "\n" + indent)


def hide_json_secrets(data: Any, *, keys: bool) -> Any:
    """``data`` with every string (names of object members too) cleared of secrets; the
    characters are left to the JSON escapes.  ``keys=False`` (``--unmask``) spares the
    ``api_key`` fields alone."""
    if isinstance(data, str):
        return hide_secrets(data)
    if isinstance(data, dict):
        return {
            hide_json_secrets(k, keys=True): (
                hide_secrets(v, keys=False)
                if not keys and k == KEY_FIELD and isinstance(v, str)
                else hide_json_secrets(v, keys=keys)
            )
            for k, v in data.items()
        }
    if isinstance(data, (list, tuple)):
        return [hide_json_secrets(v, keys=keys) for v in data]
    return data


class _Unusual(Exception):
    """A value _indented leaves to the json module (an object member named by a number)."""


#: What the C encoder writes alike with and without indent=2: every value but a container
#: with members.
_PLAIN_TYPES = frozenset({str, int, float, bool, type(None), datetime})
_CONTAINERS = (dict, list, tuple)
_Encode = Callable[[Any], str]
_flat_encoders: dict[str, _Encode] = {}


def _flat(indent: str) -> _Encode:
    """The C encoder writing a container of plain values with its members on lines of their
    own, indented by ``indent``, brackets included: ``{"a": 1,\\n<indent>"b": 2}``."""
    encode = _flat_encoders.get(indent)
    if encode is None:
        encode = _flat_encoders[indent] = _c_encoder(",\n" + indent)
    return encode


def _c_encoder(item_separator: str) -> _Encode:
    make = getattr(json.encoder, "c_make_encoder", None)  # not in the type stubs
    if make is None:  # a Python built without _json: the same text, slower
        encoder = json.JSONEncoder(
            ensure_ascii=False, separators=(item_separator, ": "), default=_default
        )
        return encoder.encode
    # markers, default, encoder, indent, key and item separators, sort_keys, skipkeys,
    # allow_nan: as json.dumps(ensure_ascii=False) passes them, bar the separators.
    c_encode = make(None, _default, _encode_string, None, ": ", item_separator, False, False, True)

    def encode(value: Any) -> str:
        return "".join(c_encode(value, 0))

    return encode


_scalar = _c_encoder(", ")
_positions: dict[tuple[type, ...], tuple[int, ...]] = {}


def _not_plain(types: tuple[type, ...]) -> tuple[int, ...]:
    """Where the members of these types that are not plain values stand: the objects of
    a listing have a few shapes, each looked at once."""
    found = _positions.get(types)
    if found is None:
        if len(_positions) > 1000:  # a document of many shapes: keep memory bounded
            _positions.clear()
        found = _positions[types] = tuple(
            i for i, kind in enumerate(types) if kind not in _PLAIN_TYPES
        )
    return found


def _indented(value: Any, indent: str) -> str:
    """``json.dumps(value, indent=2, ensure_ascii=False)``, its lines after the first
    indented by ``indent``.  Raises _Unusual for what it leaves to the json module."""
    cls = value.__class__
    if cls is str:
        return _encode_string(value)
    if not isinstance(value, _CONTAINERS) or not value:
        return _scalar(value)
    inner = indent + "  "
    if isinstance(value, dict):
        types = tuple(map(type, value.values()))
        if _PLAIN_TYPES.issuperset(types):
            return "{\n" + inner + _flat(inner)(value)[1:-1] + "\n" + indent + "}"
        items = list(value.items())
        nested = [
            i for i in _not_plain(types) if items[i][1] and isinstance(items[i][1], _CONTAINERS)
        ]
        if not nested:  # empty containers only: written alike
            return "{\n" + inner + _flat(inner)(value)[1:-1] + "\n" + indent + "}"
        parts = []
        done = 0
        for i in nested:
            if i > done:  # the plain members before it, in one call
                parts.append(_flat(inner)(dict(items[done:i]))[1:-1])
            name, member = items[i]
            if not isinstance(name, str):
                raise _Unusual  # the json module's way of naming it by a number
            parts.append(_encode_string(name) + ": " + _indented(member, inner))
            done = i + 1
        if done < len(items):
            parts.append(_flat(inner)(dict(items[done:]))[1:-1])
        return "{\n" + inner + (",\n" + inner).join(parts) + "\n" + indent + "}"
    if _PLAIN_TYPES.issuperset(map(type, value)):
        return "[\n" + inner + _flat(inner)(value)[1:-1] + "\n" + indent + "]"
    parts = [_indented(member, inner) for member in value]
    return "[\n" + inner + (",\n" + inner).join(parts) + "\n" + indent + "]"


#: The json module escapes C0 controls inside strings itself (and writes its own line
#: feeds between values); these it would write as they are.
_JSON_UNSAFE = re.compile(f"[{UNSAFE_CHARACTERS.removeprefix(C0_CONTROLS)}]")


def _escaped(text: str) -> str:
    if text.isascii() and "\x7f" not in text:  # two scans in C, far faster than the regex
        return text
    return _JSON_UNSAFE.sub(_json_escape, text)


def _json_escape(match: re.Match[str]) -> str:
    """A character as a JSON escape; beyond U+FFFF, as its UTF-16 surrogate pair."""
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
