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

import sys
from collections.abc import Collection, Sequence
from itertools import chain
from typing import IO, TYPE_CHECKING

from n8n_deploy.base.text import (
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


def one_screen() -> bool:
    """Whether stdout and stderr are both a terminal (one screen): what goes to stderr
    for a log beside the report would only repeat it there."""
    return _is_tty(sys.stdout) and _is_tty(sys.stderr)


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


#: The column of a table that ``--unmask`` shows whole (``json_writer.KEY_FIELD``: of a record).
KEY_COLUMN = "Key"
#: A folding column at a terminal (a full key, long text): the room it is given when
#: columns are left out to fit, and the least it takes (a masked key's) before a name folds.
_FOLDED_ROOM, _FOLDED_LEAST = 44, len("********abcd")


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
    folding: Collection[str] = (),
) -> None:
    """A boxed table (rich) on stdout; ``plain`` uses ASCII borders for scripts and logs.

    Columns named in ``keep_whole`` are never wrapped, even in a narrow terminal (names,
    dates, masked keys).  Columns named in ``folding`` (long text: a message, details)
    fold over lines and are counted at a few words' width when the table is fitted; a
    full key (``unmask``) is one of them.  At a terminal too narrow for every column, the
    columns in ``droppable`` are left out, least important (first) first, until the table
    fits, and a note on stderr names them and ``how_to_see`` them; ``wide`` keeps every
    column.  When piped, nothing is ever wrapped, truncated or left out.

    The title goes on its own line followed by a blank line, as in the reference output.
    Every cell is sanitised; ``unmask`` lets the full keys of the ``Key`` column through
    (``--unmask``), and only those: a key in a name or description stays hidden.
    """
    shown_whole = headers.index(KEY_COLUMN) if unmask and KEY_COLUMN in headers else -1
    if needs_sanitizing(" ".join(chain.from_iterable(rows))):  # one search for the table
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
    # A full key (--unmask, some 270 characters) and long text are never kept whole: they
    # fold over lines, given _FOLDED_ROOM when columns are left out to fit, and never make
    # a name fold.
    folded = {i for i, header in enumerate(headers) if header in folding or i == shown_whole}
    for i in folded:
        widths[i] = min(widths[i], _FOLDED_ROOM)

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
    for i in folded:
        widths[i] = min(widths[i], _FOLDED_LEAST)
    squeezed = _is_tty(sys.stdout) and not wide and needed(shown) > out.width
    for i in shown:
        whole = (
            headers[i] in keep_whole and not (squeezed and headers[i] == "Name") and i not in folded
        ) or not _is_tty(sys.stdout)
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
        import textwrap

        said = (
            f"({', '.join(hidden)} not shown at this width"
            + (f": {how_to_see}" if how_to_see else ": --wide shows every column")
            + ")"
        )
        # On the terminal the table was fitted to: as many lines as it takes, whole words.
        note(textwrap.fill(said, out.width, break_long_words=False, break_on_hyphens=False))


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
