"""Presentation: tables, JSON and one-line messages.

Data goes to stdout; messages, warnings and progress go to stderr.  Rich is imported only
when a table is actually drawn.  Colour follows NO_COLOR (given to :func:`configure` from
the settings by the root command) and is off when stdout is not a terminal; when piped,
tables are never wrapped or truncated.

Everything printed here passes through :func:`n8n_deploy.base.text.sanitize`, whatever
the data's source: keys, URL passwords, control, bidi and line-separator characters never
reach the terminal or a log as they are.  Only ``--unmask`` (``unmask=True``) lets keys
through; the raw key of ``apikey get`` is written by that command itself.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Collection, Sequence
from datetime import datetime
from json.encoder import encode_basestring as _encode_string  # the C one, ensure_ascii=False
from typing import IO, TYPE_CHECKING, Any

from n8n_deploy.base.dates import iso_utc
from n8n_deploy.base.text import (
    C0_CONTROLS,
    UNSAFE_CHARACTERS,
    hide_secrets,
    may_hold_secrets,
    needs_sanitizing,
    sanitize,
)

if TYPE_CHECKING:
    from rich.console import Console

ICONS = {
    "key": "🔑",
    "server": "🖥️",
    "ok": "✅",
    "check": "✓",
    "fail": "❌",
    "cross": "✗",
    "warn": "⚠️",
    "inactive": "🚫",
    "expired": "⌛",
    "test": "🧪",
    "trash": "🗑️",
}


def icon(name: str, emoji: bool) -> str:
    """The emoji for ``name`` followed by a space, or nothing in --no-emoji mode."""
    return f"{ICONS[name]} " if emoji else ""


def _is_tty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


_no_color = False


def configure(*, no_color: bool) -> None:
    """Set once per run from the settings (NO_COLOR)."""
    global _no_color
    _no_color = no_color


def color_enabled(stream: IO[str]) -> bool:
    return not _no_color and _is_tty(stream)


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # Rich would exit with status 1; the CLI stops quietly instead (cli.root).
            self.quiet = True
            raise BrokenPipeError

    stream = sys.stderr if stderr else sys.stdout
    tty = _is_tty(stream)
    return _Console(
        file=stream,
        no_color=not color_enabled(stream),
        color_system="auto" if color_enabled(stream) else None,
        highlight=False,
        emoji=False,  # never turn ":text:" in user data into emoji
        markup=False,
        soft_wrap=not tty,
        width=None if tty else 100_000,  # piped: never wrap or truncate
        force_terminal=None if tty else False,
    )


#: The column (of a table) and the field (of a JSON record) that ``--unmask`` shows whole.
KEY_COLUMN = "Key"
KEY_FIELD = "api_key"


def print_table(
    title: str | None,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    plain: bool = False,
    keep_whole: Collection[str] = (),
    droppable: Sequence[str] = (),
    wide: bool = False,
    how_to_see: str = "",
    unmask: bool = False,
) -> None:
    """A boxed table (rich) on stdout; ``plain`` uses ASCII borders for scripts and logs.

    Columns named in ``keep_whole`` are never wrapped, even in a narrow terminal (names,
    dates, masked keys).  At a terminal too narrow for every column, the columns in
    ``droppable`` are left out, least important (first) first, until the table fits, and a
    note on stderr names them and ``how_to_see`` them; ``wide`` keeps every column.  When
    piped, nothing is ever wrapped, truncated or left out.

    The title goes on its own line followed by a blank line, as in the reference output.
    Every cell is sanitised; ``unmask`` lets the full keys of the ``Key`` column through
    (``--unmask``), and only those: a key in a name or description stays hidden.
    """
    shown_whole = headers.index(KEY_COLUMN) if unmask and KEY_COLUMN in headers else -1
    rows = [
        [sanitize(cell, keys=i != shown_whole) for i, cell in enumerate(row)]
        if needs_sanitizing(" ".join(row))
        else row
        for row in rows
    ]
    if not _is_tty(sys.stdout):
        # Piped or in a log: every column whole, so the table is plain arithmetic; rich
        # takes ~0.6 ms a row to lay out, 6 s for 10,000 keys.  Same bytes (a test compares).
        if title:
            say(title)
            say("")
        write_plain_table(sys.stdout, headers, rows, ascii_borders=plain)
        sys.stdout.flush()
        return
    from rich import box
    from rich.cells import cell_len
    from rich.table import Table

    shown = list(range(len(headers)))
    out = console()
    widths = [
        max([cell_len(headers[i]), *(cell_len(row[i]) for row in rows)])
        for i in range(len(headers))
    ]

    def needed(columns: list[int]) -> int:
        return sum(widths[i] + 3 for i in columns) + 1  # borders and padding

    if _is_tty(sys.stdout) and wide:
        out.width = max(out.width, needed(shown))  # wider than the terminal, as asked
    elif _is_tty(sys.stdout):
        for name in droppable:
            if needed(shown) <= out.width:
                break
            if name in headers:
                shown.remove(headers.index(name))
    if title:
        say(title)
        say("")
    table = Table(
        box=box.ASCII2 if plain else box.SQUARE,
        show_lines=False,
        header_style="" if plain else "bold",
    )
    # Still too wide with every droppable column gone: names fold rather than be cropped.
    squeezed = _is_tty(sys.stdout) and not wide and needed(shown) > out.width
    for i in shown:
        whole = (headers[i] in keep_whole and not (squeezed and headers[i] == "Name")) or (
            not _is_tty(sys.stdout)
        )
        table.add_column(
            headers[i],
            overflow="fold",
            no_wrap=whole,
            min_width=max(cell_len(row[i]) for row in rows) if whole and rows else None,
        )
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    out.print(table)
    hidden = [headers[i] for i in range(len(headers)) if i not in shown]
    if hidden:
        note(
            f"({', '.join(hidden)} not shown at this width"
            + (f": {how_to_see}" if how_to_see else ": --wide shows every column")
            + ")"
        )


# (left, fill, cross, right) of the top, header-separator and bottom rules, and the
# vertical bar: rich's box.SQUARE and box.ASCII2, as they print a table without wrapping.
_BORDERS = {
    False: ("┌─┬┐", "├─┼┤", "└─┴┘", "│"),
    True: ("+-++", "+-++", "+-++", "|"),
}


def write_plain_table(
    stream: IO[str],
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    ascii_borders: bool = False,
) -> None:
    """A boxed table with every cell whole (no terminal to fit), written line by line."""
    from rich.cells import cell_len

    columns: list[list[str]] = []
    widths: list[int] = []
    for column in zip(headers, *rows, strict=True):
        joined = "".join(column)
        if joined.isascii() and joined.isprintable():
            # Printable ASCII is one cell a character (rich agrees): padding is ljust.
            width = max(map(len, column))
            columns.append([cell.ljust(width) for cell in column])
        else:
            cells = [cell_len(cell) for cell in column]
            width = max(cells)
            # A column 0 cells wide (only zero-width characters in it) is cropped to nothing.
            columns.append(
                [
                    cell + " " * (width - n) if width else ""
                    for cell, n in zip(column, cells, strict=True)
                ]
            )
        widths.append(width)
    top, middle, bottom, bar = _BORDERS[ascii_borders]

    def rule(parts: str) -> str:
        left, fill, cross, right = parts[0], parts[1], parts[2], parts[3]
        return left + cross.join(fill * (w + 2) for w in widths) + right + "\n"

    between = f" {bar} "
    lines = [f"{bar} {between.join(cells)} {bar}\n" for cells in zip(*columns, strict=True)]
    stream.write(rule(top) + lines[0] + rule(middle))
    stream.write("".join(lines[1:]))
    stream.write(rule(bottom))


_json_printed = False
_JSON_CHUNK = 256  # array items written at once


def print_json(data: Any, *, unmask: bool = False) -> None:
    """Pretty JSON on stdout and nothing else (UTF-8 kept as is).

    Every string is sanitised for secrets (keys, except the ``api_key`` fields with
    ``unmask``; URL passwords); the
    characters a terminal would act on are written as JSON escapes (``\\u001b``,
    ``\\u202e``), so the document means the same and shows nothing.  An array is written
    item by item: the same bytes as ``json.dumps(data, indent=2)`` (each item's lines one
    level deeper), without holding the whole document in memory at once (10,000 keys)."""
    global _json_printed
    write = sys.stdout.write
    keys = not unmask
    names: dict[Any, str] = {}

    plain: dict[Any, str] = {}

    def dumped(value: Any, indent: str = "") -> str:
        try:
            # Written as it is first: when nothing in it may be a secret (one search for
            # the whole item), that is what hiding would write too.
            text = _encoded(value, unmask, indent, plain, hide=False)
            if may_hold_secrets(text):
                text = _encoded(value, unmask, indent, names)
        except _Unusual:
            text = json.dumps(
                _hide_secrets(value, keys=keys),
                ensure_ascii=False,
                indent=2,
                default=_json_default,
            ).replace("\n", "\n" + indent)
        return _JSON_UNSAFE.sub(_json_escape, text)

    if isinstance(data, list) and data:
        # Written a few hundred items at a time: one write per item costs more than the
        # encoding (10,000 keys), the whole document at once holds it all in memory.
        chunk: list[str] = []
        for index, item in enumerate(data):
            chunk.append(("[\n  " if index == 0 else ",\n  ") + dumped(item, "  "))
            if len(chunk) == _JSON_CHUNK:
                write("".join(chunk))
                chunk = []
        write("".join(chunk) + "\n]")
    else:
        write(dumped(data))
    write("\n")
    _json_printed = True


def _json_escape(match: re.Match[str]) -> str:
    """A character as a JSON escape; beyond U+FFFF, as its UTF-16 surrogate pair."""
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


class _Unusual(Exception):
    """A value _encoded leaves to the json module (a float, a key that is not a string)."""


def _encoded(
    value: Any, unmask: bool, indent: str, names: dict[Any, str], *, hide: bool = True
) -> str:
    """``json.dumps(value, indent=2, ensure_ascii=False)`` of ``_hide_secrets(value,
    keys=not unmask)``, with its lines after the first indented by ``indent``: the same
    bytes, written with the C string encoder (json's own indenting encoder is pure Python:
    a second for 10,000 keys).  ``names`` remembers the names of objects, encoded.  With
    ``hide`` False, nothing is hidden (for text that may_hold_secrets clears).
    Raises _Unusual for what it does not write itself."""
    if isinstance(value, str):
        return _encode_string(hide_secrets(value) if hide else value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    inner = indent + "  "
    if isinstance(value, dict):
        if not value:
            return "{}"
        if not hide:
            parts = []
            for name, item in value.items():
                encoded = names.get(name)
                if encoded is None:
                    if not isinstance(name, str):
                        raise _Unusual
                    encoded = names[name] = _encode_string(name)
                cls = item.__class__
                if cls is str:
                    parts.append(f"{encoded}: {_encode_string(item)}")
                elif item is None:
                    parts.append(f"{encoded}: null")
                elif cls is bool:
                    parts.append(f"{encoded}: {'true' if item else 'false'}")
                elif cls is list and item and all(v.__class__ is str for v in item):
                    deeper = inner + "  "  # a list of names, as every listing has
                    listed = (",\n" + deeper).join(map(_encode_string, item))
                    parts.append(f"{encoded}: [\n{deeper}{listed}\n{inner}]")
                else:
                    parts.append(f"{encoded}: {_encoded(item, unmask, inner, names, hide=False)}")
            return "{\n" + inner + (",\n" + inner).join(parts) + "\n" + indent + "}"
        # Hidden first, as a dict: two names hidden alike make one entry, as in json.
        # Every item of a listing has the same names: each is hidden and encoded once.
        hidden: dict[str, tuple[Any, Any]] = {}
        for name, item in value.items():
            encoded = names.get(name)
            if encoded is None:
                if not isinstance(name, str):
                    raise _Unusual
                encoded = names[name] = _encode_string(hide_secrets(name))
            hidden[encoded] = (name, item)
        parts = [
            # A string, the common case, without a call of its own; with --unmask the
            # api_key fields alone are shown whole.
            f"{encoded}: "
            + _encode_string(hide_secrets(item, keys=not (unmask and name == KEY_FIELD)))
            if item.__class__ is str
            else f"{encoded}: {_encoded(item, unmask, inner, names)}"
            for encoded, (name, item) in hidden.items()
        ]
        return "{\n" + inner + (",\n" + inner).join(parts) + "\n" + indent + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        parts = [_encoded(item, unmask, inner, names, hide=hide) for item in value]
        return "[\n" + inner + (",\n" + inner).join(parts) + "\n" + indent + "]"
    if isinstance(value, datetime):
        return _encode_string(_json_moment(value))  # as _json_default: no secret there
    raise _Unusual


#: json.dumps escapes C0 controls inside strings itself (and writes its own line feeds
#: between values); these it would write as they are.
_JSON_UNSAFE = re.compile(f"[{UNSAFE_CHARACTERS.removeprefix(C0_CONTROLS)}]")


def _hide_secrets(data: Any, *, keys: bool) -> Any:
    """``data`` with every string (keys of objects too) cleared of secrets; the characters
    are left to the JSON escapes.  ``keys=False`` (``--unmask``) spares the ``api_key``
    fields alone."""
    if isinstance(data, str):
        return hide_secrets(data)
    if isinstance(data, dict):
        return {
            _hide_secrets(k, keys=True): (
                hide_secrets(v, keys=False)
                if not keys and k == KEY_FIELD and isinstance(v, str)
                else _hide_secrets(v, keys=keys)
            )
            for k, v in data.items()
        }
    if isinstance(data, (list, tuple)):
        return [_hide_secrets(v, keys=keys) for v in data]
    return data


def json_printed(reset: bool = False) -> bool:
    """Whether this run printed a JSON document already (``reset``: forget it, at the
    start of a run)."""
    global _json_printed
    printed = _json_printed
    if reset:
        _json_printed = False
    return printed


def _json_moment(value: datetime) -> str:
    """How a datetime is written in JSON: ISO-8601 UTC with a Z."""
    written = iso_utc(value)
    assert written is not None
    return written


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def say(message: str, *, unmask: bool = False) -> None:
    """A result line for people, on stdout (e.g. "API key 'x' added"); ``unmask`` lets a
    full key through (``--unmask``)."""
    sys.stdout.write(sanitize(message, keys=not unmask, newlines=True) + "\n")
    sys.stdout.flush()


def note(message: str) -> None:
    """Progress or information, on stderr."""
    sys.stderr.write(sanitize(message, newlines=True) + "\n")
    sys.stderr.flush()


def warn(message: str, *, emoji: bool = True) -> None:
    sys.stderr.write(f"{icon('warn', emoji)}Warning: {sanitize(message, newlines=True)}\n")
    sys.stderr.flush()


def error_line(message: str, hint: str | None = None) -> str:
    text = f"Error: {message}"
    if hint:
        text += f". {hint}" if not message.endswith((".", "?", "!")) else f" {hint}"
    return text


class ProgressBar:
    """One line on stderr, redrawn in place: ``label [#####.....] 12/100 · 1 failed``.

    For a terminal only (the caller checks): lines printed with :meth:`above` stay on the
    screen above the bar, and :meth:`close` erases the bar, so what follows starts on a
    clean line.  The bar itself is ``#`` and ``.``: it reads the same with --no-emoji.
    """

    def __init__(self, label: str, stream: IO[str] | None = None) -> None:
        self.label = sanitize(label)
        self.stream = stream if stream is not None else sys.stderr
        self.shown = False

    def update(self, finished: int, total: int, failed: int = 0) -> None:
        import shutil

        counts = f" {finished}/{total}" + (f" · {failed} failed" if failed else "")
        room = shutil.get_terminal_size().columns - len(self.label) - len(counts) - 4
        width = max(0, min(30, room))
        filled = width * finished // total if total else width
        bar = f" [{'#' * filled}{'.' * (width - filled)}]" if width >= 5 else ""
        self.stream.write(f"\r\x1b[K{self.label}{bar}{counts}")
        self.stream.flush()
        self.shown = True

    def above(self, message: str) -> None:
        text = sanitize(message, newlines=True)
        self.stream.write(("\r\x1b[K" if self.shown else "") + text + "\n")
        self.stream.flush()
        self.shown = False

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False
