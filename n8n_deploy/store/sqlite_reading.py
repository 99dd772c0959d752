"""Reading a SQLite file with the standard library's ``sqlite3`` alone: how the commands
that only read (``apikey list/show``, ``server list/show/keys``) answer on SQLite without
importing SQLAlchemy, whose import costs more than the whole 0.9 release took to list keys.

Only a file that is plainly ready is read this way: a plain ``sqlite:///PATH`` URL, a
regular file with content, at the newest revision (read in the same transaction as the
rows).  Anything else — no file yet, a link, a URI with options, a schema behind or ahead
of this program or from 0.9, any error — goes the ordinary way (``store.lifecycle``),
which creates, upgrades or refuses it with the usual message.  The statements are those
of ``store.queries``, compiled ahead of time (``store.sqlite_statements``); the values come
back as SQLAlchemy returns them (aware UTC timestamps, booleans).
"""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from itertools import repeat
from operator import add
from pathlib import Path
from typing import Any
from urllib.parse import quote

from n8n_deploy.base.dates import stored_texts, stored_utc
from n8n_deploy.base.errors import cannot_read
from n8n_deploy.base.text import error_text
from n8n_deploy.store.files import (
    BUSY_TIMEOUT_SECONDS,
    check_database_place,
    fix_sqlite_permissions,
)
from n8n_deploy.store.reads import FLAG_VALUES, Reader, unreadable_row
from n8n_deploy.store.schema import HEAD, VERSION_TABLE
from n8n_deploy.store.sqlite_statements import STATEMENTS

#: What each result column holds, one letter a column in ``store.sqlite_statements``
#: (written there by ``store.queries``): as stored, a boolean, a UTC timestamp, text,
#: text or NULL.
KIND_AS_STORED, KIND_BOOL, KIND_UTC, KIND_TEXT, KIND_TEXT_OR_NULL = "-", "b", "t", "S", "s"
_CONVERT: dict[str, Callable[[Any], Any]] = {KIND_BOOL: bool, KIND_UTC: stored_utc}
_TEXT_TYPES = {KIND_TEXT: frozenset({str}), KIND_TEXT_OR_NULL: frozenset({str, type(None)})}


def check_text(columns: Sequence[Sequence[Any]], kinds: str) -> None:
    """Raise the unreadable-row error when a text column holds anything but text (a blob
    or a number written by another program, a NULL where none may be), or a flag anything
    but 0 or 1 (2, 'yes': which a listing would call active and a filter neither): what the
    commands would otherwise fail on, or disagree on, each its own way.  Both sources
    check their rows with it."""
    for column, kind in zip(columns, kinds, strict=True):
        if kind == KIND_BOOL and not FLAG_VALUES.issuperset(column):
            raise unreadable_row()
        allowed = _TEXT_TYPES.get(kind)
        if allowed is None or (kind == KIND_TEXT_OR_NULL and column.count(None) == len(column)):
            continue  # not text, or NULL throughout (no key has a description): at once
        if not allowed.issuperset(map(type, column)):
            raise unreadable_row()


class SqliteSource:
    """Runs the precompiled statements on a ``sqlite3`` connection (``store.reads.Source``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def rows(
        self, name: str, params: Mapping[str, Any] | None = None, *, as_stored: bool = False
    ) -> Sequence[Sequence[Any]]:
        sql, kinds = STATEMENTS[name]
        try:
            found = self.conn.execute(sql, dict(params or {})).fetchall()
        except sqlite3.Error as exc:
            raise cannot_read(error_text(exc)) from None
        if not found:
            return found
        # Column by column: one loop a column instead of one a value (10,000 rows).
        columns: list[Sequence[Any]] = list(zip(*found, strict=True))
        check_text(columns, kinds)
        converted = False
        try:
            for i, kind in enumerate(kinds):
                column = columns[i]
                if kind == KIND_UTC and stored_texts(column):  # as SQLAlchemy writes them
                    if as_stored:
                        continue  # left as stored: see store.reads.Source
                    columns[i] = _utc_column(column)
                elif kind == KIND_BOOL and as_stored:
                    continue
                elif kind in _CONVERT:
                    convert = _CONVERT[kind]
                    columns[i] = [None if v is None else convert(v) for v in column]
                else:
                    continue
                converted = True
        except ValueError:
            raise unreadable_row() from None
        return list(zip(*columns, strict=True)) if converted else found


def _utc_column(column: Sequence[str | None]) -> list[datetime | None]:
    """Stored text that ``stored_texts`` accepted, read as aware UTC datetimes (what
    stored_utc makes of each), in C when the column has no None."""
    if None in column:
        return [None if v is None else datetime.fromisoformat(v + "+00:00") for v in column]
    return list(map(datetime.fromisoformat, map(add, column, repeat("+00:00"))))


def _is_locked(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def plain_file(database_url: str, path: Path | None) -> Path | None:
    """``path`` when the URL is a plain ``sqlite:///PATH`` and PATH a regular file (not a
    link) with content; None when the database must be opened the ordinary way."""
    if path is None or "?" in database_url or not database_url.startswith("sqlite:///"):
        return None
    try:
        found = path.lstat()
    except OSError:
        return None
    if not stat.S_ISREG(found.st_mode) or found.st_size == 0:
        return None
    return path


#: SQLite's page cache on a reading connection, in KiB (its default is 2,000): the reads
#: are scans that visit each page once, and every page the cache grows by is memory the
#: process touches for the first time, a page fault (2 µs on the development machine, a
#: 20th of a 10,000-key listing at the default).  What the reads look up twice, the
#: B-trees' upper pages, stays in it.
READ_CACHE_KIB = 256


@contextmanager
def reading_current(path: Path) -> Iterator[Reader | None]:
    """A reading unit of work on the SQLite file ``path`` (one transaction, one snapshot),
    or None when the file is not at the newest revision or cannot be read this way (the
    caller then opens it the ordinary way, which says why).  Rolled back at the end."""
    check_database_place(path)
    uri = f"file:{quote(str(path))}?mode=rw"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    except sqlite3.Error:
        yield None
        return
    try:
        try:
            conn.execute(f"PRAGMA cache_size = -{READ_CACHE_KIB}")
            conn.execute("BEGIN")
            versions = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()  # noqa: S608 - a constant
        except sqlite3.OperationalError as exc:
            if _is_locked(exc):  # waited BUSY_TIMEOUT_SECONDS already: not a second time
                raise cannot_read(error_text(exc)) from None
            versions = []
        except sqlite3.Error:
            versions = []
        if versions != [(HEAD,)]:
            yield None
            return
        yield Reader(SqliteSource(conn))
    finally:
        try:
            conn.rollback()
        finally:
            conn.close()
            fix_sqlite_permissions(path)
