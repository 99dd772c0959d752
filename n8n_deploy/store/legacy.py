"""Carrying a database made by n8n-deploy 0.9.x forward.

That release used raw SQL, no Alembic: its own ``schema_info`` table (version 8 in 0.9.1),
``servers`` with ``is_active``/``last_used``, ``api_keys`` without ``last_used_at``, and a
``server_api_keys`` link table with a surrogate ``id`` and an ``is_primary`` flag.  It never
turned on foreign keys, so links can point at deleted keys or servers.

:func:`import_legacy` runs inside the migration transaction of :mod:`n8n_deploy.store.migrations`:
it reads the three tables this project manages, drops them, lets Alembic create the first
revision, and writes every row back (ids kept, so 0.9's own tables that refer to server ids
still point at the same servers).  The migration then continues to the newest revision.
If anything fails, the transaction rolls back and the file is as it was.

Rules (documented in docs/database.md):

* Timestamps: 0.9 stored naive local time (``2026-11-27 08:47:46.912096``).  They are read
  as local time of the machine running the upgrade (the ``TZ`` environment variable is
  honoured, as the C library reads it; in the repeated hour when clocks go back, the first
  occurrence is taken) and stored as UTC.  A timestamp with an explicit offset is converted
  with that offset.
  An unreadable or missing ``created_at`` becomes the time of the upgrade and is reported.
* ``last_used_at`` starts empty (0.9 did not record it for keys).
* Link rows whose key or server no longer exists are dropped and counted.
* Everything else 0.9 held in the rows carried over and this release has no place for
  (``servers.is_active`` false, ``servers.last_used``, ``server_api_keys.is_primary``, any
  unknown column with values) is reported; the backup written first keeps it.
* Names are kept as stored.  Two keys (or servers) with the same name, which 0.9 did not
  allow but a hand-made file may hold, stop the import: the error names them and the fix.
* A blob where text is carried (a name, key, URL or description of a hand-edited file)
  stops the import the same way: the error names the row and the fix.
* Other tables (``workflows``, ``configurations``, ``dependencies``, ``n8n_folders``,
  ``folder_mappings``, ``server_credentials``, and ``schema_info``, which keeps 0.9's
  history) are left exactly as they were, rows and definitions.
"""

from __future__ import annotations

import operator
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import chain
from typing import TYPE_CHECKING, Any

from n8n_deploy.base.dates import utcnow
from n8n_deploy.base.errors import LegacyDatabaseError, OperationFailed
from n8n_deploy.base.text import counted

if TYPE_CHECKING:
    from sqlalchemy import Connection

LEGACY_TABLES = ("servers", "api_keys", "server_api_keys")
REQUIRED_COLUMNS = {
    "servers": ("id", "name", "url"),
    "api_keys": ("id", "name", "api_key"),
    "server_api_keys": ("server_id", "api_key_id"),
}
# Columns carried over, and columns this release has no place for (reported when used).
CARRIED_COLUMNS = {
    "servers": ("id", "name", "url", "description", "skip_ssl_verify", "created_at"),
    "api_keys": ("id", "name", "api_key", "description", "is_active", "created_at"),
    "server_api_keys": ("server_id", "api_key_id", "created_at"),
}
STRUCTURAL_COLUMNS = {"server_api_keys": ("id",)}  # the surrogate id: links need none
NOT_INTERNAL = ("alembic_version", "sqlite_sequence")


@dataclass
class LegacyReport:
    """What the import of a 0.9 database carried, dropped and left alone."""

    schema_version: int | None
    servers: int = 0
    keys: int = 0
    links: int = 0
    orphan_links: int = 0
    duplicate_links: int = 0
    untouched: dict[str, int] = field(default_factory=dict)  # table -> rows
    not_carried: list[str] = field(default_factory=list)


def to_utc(value: Any, offsets: dict[str, timedelta] | None = None) -> datetime | None:
    """A 0.9 timestamp as naive UTC (how this release stores time); None if unreadable.

    Naive values are local time of this machine (``TZ`` honoured).  ``offsets`` remembers
    the local offset of each minute met (clocks change on whole minutes), so 10,000 rows
    ask the C library a few times, not 10,000."""
    if isinstance(value, datetime):
        parsed, text = value, None
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    try:
        if parsed.tzinfo is None and offsets is not None:
            minute = _minute_of(parsed, text)
            offset = offsets.get(minute)
            if offset is None:
                start = parsed.replace(second=0, microsecond=0)
                offset = offsets[minute] = _local_to_utc(start) - start
            return parsed + offset
        return _local_to_utc(parsed)
    except (OverflowError, OSError, ValueError):
        return None


def _minute_of(parsed: datetime, text: str | None) -> str:
    """The minute of a naive timestamp, as a key: the text's first 16 characters where they
    are ``YYYY-MM-DD HH:MM`` (any separator), which ``fromisoformat`` read as this minute;
    else the minute written out."""
    if text is not None and len(text) >= 16 and text[4] == "-" and text[13] == ":":
        return text[:16]
    return parsed.replace(second=0, microsecond=0).isoformat()


def _local_to_utc(value: datetime) -> datetime:
    # astimezone() reads a naive value as local time (the C library's, which follows TZ).
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def import_legacy(conn: Connection, *, create_first_revision: Callable[[], None]) -> LegacyReport:
    """Replace 0.9's three tables with the first revision's, keeping every row that can be
    kept; call inside the migration transaction (foreign keys off)."""
    from sqlalchemy import inspect, text

    tables = set(inspect(conn).get_table_names())
    version = conn.execute(text("SELECT MAX(version) FROM schema_info")).scalar()
    report = LegacyReport(schema_version=version)
    columns = {t: _columns(conn, t) for t in LEGACY_TABLES if t in tables}
    for table, needed in REQUIRED_COLUMNS.items():
        missing = [c for c in needed if table in columns and c not in columns[table]]
        if missing:
            raise LegacyDatabaseError(
                f"Unrecognised n8n-deploy 0.9 database: table {table} has no column "
                f"{', '.join(missing)}",
                hint="Nothing was changed; please report this with the output of "
                "'sqlite3 <file> .schema'",
            )
    rows = {t: _rows(conn, t, columns[t]) for t in columns}
    _refuse_blobs(rows)
    report.untouched = {
        t: int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {_quote(t)}").scalar() or 0)  # noqa: S608
        for t in sorted(tables - set(LEGACY_TABLES) - set(NOT_INTERNAL))
        if not t.startswith("sqlite_")
    }

    now = utcnow().replace(tzinfo=None)
    unreadable = 0
    offsets: dict[str, timedelta] = {}

    def created(row: dict[str, Any]) -> datetime:
        nonlocal unreadable
        value = to_utc(row.get("created_at"), offsets)
        if value is None:
            unreadable += 1
            return now
        return value

    servers = [
        {
            "id": row["id"],
            "name": str(row["name"]),
            "url": str(row["url"]),
            "description": row.get("description"),
            "skip_ssl_verify": _flag(row.get("skip_ssl_verify"), default=False),
            "created_at": created(row),
        }
        for row in rows.get("servers", [])
    ]
    keys = [
        {
            "id": row["id"],
            "name": str(row["name"]),
            "api_key": str(row["api_key"]),
            "description": row.get("description"),
            "is_active": _flag(row.get("is_active"), default=True),
            "created_at": created(row),
            # last_used_at is left out: NULL, as 0.9 never recorded it (and a NULL bound
            # 10,000 times costs the driver an adapter lookup each).
        }
        for row in rows.get("api_keys", [])
    ]
    _refuse_duplicate_names("server", "servers", servers)
    _refuse_duplicate_names("API key", "api_keys", keys)
    server_ids = {s["id"] for s in servers}
    key_ids = {k["id"] for k in keys}
    links: dict[tuple[Any, Any], dict[str, Any]] = {}
    kept_link_rows: list[dict[str, Any]] = []  # every row of a link that is carried
    for row in rows.get("server_api_keys", []):
        pair = (row["server_id"], row["api_key_id"])
        if pair[0] not in server_ids or pair[1] not in key_ids:
            report.orphan_links += 1
            continue
        kept_link_rows.append(row)
        if pair in links:
            report.duplicate_links += 1
        else:
            links[pair] = {"server_id": pair[0], "api_key_id": pair[1], "created_at": created(row)}
    kept = {**rows, "server_api_keys": kept_link_rows}
    _report_unused({t: kept[t] for t in rows}, columns, report)
    if unreadable:
        report.not_carried.append(
            f"{counted(unreadable, 'creation time')} could not be read; "
            f"{'it is' if unreadable == 1 else 'they are'} set to the time of this upgrade"
        )

    for table in LEGACY_TABLES:
        if table in columns:
            conn.exec_driver_sql(f"DROP TABLE {_quote(table)}")
    create_first_revision()
    _insert(conn, "servers", servers)
    _insert(conn, "api_keys", keys)
    _insert(conn, "server_api_keys", list(links.values()))
    report.servers, report.keys, report.links = len(servers), len(keys), len(links)
    return report


def _refuse_duplicate_names(kind: str, table: str, rows: list[dict[str, Any]]) -> None:
    """0.9 kept names unique, but a file made or edited by hand may not have: name the rows
    and the fix, instead of failing on the UNIQUE constraint of this release."""
    ids: dict[str, list[Any]] = {}
    for row in rows:
        ids.setdefault(row["name"], []).append(row["id"])
    clashes = [(name, sorted(found)) for name, found in ids.items() if len(found) > 1]
    if not clashes:
        return
    shown = "; ".join(
        f"{kind} name {_shown(name)} is used by rows {', '.join(str(i) for i in found)}"
        for name, found in clashes[:5]
    )
    if len(clashes) > 5:
        shown += f"; and {counted(len(clashes) - 5, 'more name')}"
    name, found = clashes[0]
    renamed = _shown(f"{name} ({found[1]})", quote=False).replace("'", "''")
    # Shown to the user to run by hand, never executed here.
    fix = f"UPDATE {table} SET name = '{renamed}' WHERE id = {found[1]}"  # noqa: S608
    raise OperationFailed(
        f"Cannot carry the n8n-deploy 0.9 database forward: {kind} names must be unique, "
        f"but {shown}",
        hint="Nothing was changed. Give each row its own name in the 0.9 file, e.g. with "
        f"sqlite3: {fix}; then run 'n8n-deploy db upgrade' again",
    )


#: The text columns carried over: a value another program wrote there as a blob would
#: otherwise become the text of its Python form (b'...').
_TEXT_COLUMNS = {
    "servers": ("name", "url", "description"),
    "api_keys": ("name", "api_key", "description"),
}


def _refuse_blobs(rows: dict[str, list[dict[str, Any]]]) -> None:
    """Stop the import at a blob where text is carried (0.9 wrote text; a file edited by
    hand may hold one): name the row and the fix, never the value (it may be a key)."""
    for table, names in _TEXT_COLUMNS.items():
        for row in rows.get(table, []):
            for name in names:
                if isinstance(row.get(name), (bytes, bytearray, memoryview)):
                    row_id = row.get("id")
                    fix = f"UPDATE {table} SET {name} = CAST({name} AS TEXT) WHERE id = {row_id}"  # noqa: S608 - advice, never run
                    raise OperationFailed(
                        f"Cannot carry the n8n-deploy 0.9 database forward: {table}.{name} "
                        f"of row {row_id} is a blob, not text",
                        hint="Nothing was changed. Make it text, e.g. with sqlite3: "
                        f"{fix}; then run 'n8n-deploy db upgrade' again",
                    )


def _shown(text: str, *, quote: bool = True) -> str:
    """A stored name on one line: control characters escaped."""
    safe = "".join(repr(ch)[1:-1] if unicodedata.category(ch) == "Cc" else ch for ch in text)
    return f"'{safe}'" if quote else safe


def _columns(conn: Connection, table: str) -> list[str]:
    return [row[1] for row in conn.exec_driver_sql(f"PRAGMA table_info({_quote(table)})")]


def _rows(conn: Connection, table: str, columns: Sequence[str]) -> list[dict[str, Any]]:
    select = ", ".join(_quote(c) for c in columns)
    # The driver's own cursor, in this transaction: 10,000 rows become dictionaries here
    # without becoming SQLAlchemy rows first (its errors are reported as SQLAlchemy's are,
    # by store.migrations).
    cursor = conn.connection.cursor()
    try:
        cursor.execute(f"SELECT {select} FROM {_quote(table)}")  # noqa: S608
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    finally:
        cursor.close()


def _report_unused(
    rows: dict[str, list[dict[str, Any]]], columns: dict[str, list[str]], report: LegacyReport
) -> None:
    """Name every value 0.9 held that this release has no place for, in the rows it carries
    (a dropped link is counted as dropped, not for what it held)."""
    servers = rows.get("servers", [])
    inactive = [str(s["name"]) for s in servers if not _flag(s.get("is_active"), default=True)]
    if inactive:
        report.not_carried.append(
            "servers marked inactive in 0.9 are ordinary servers now (this release has no "
            f"inactive servers): {', '.join(inactive)}"
        )
    last_used = sum(1 for s in servers if s.get("last_used") is not None)
    if last_used:
        report.not_carried.append(
            f"when {counted(last_used, 'server')} {'was' if last_used == 1 else 'were'} last "
            "used (servers.last_used) is not kept"
        )
    primary = len(
        {
            (link["server_id"], link["api_key_id"])
            for link in rows.get("server_api_keys", [])
            if _flag(link.get("is_primary"), False)
        }
    )
    if primary:
        report.not_carried.append(
            f"{counted(primary, 'link')} {'was' if primary == 1 else 'were'} marked primary "
            "(is_primary); this release has no primary key per server"
        )
    handled = {"servers": ("is_active", "last_used"), "server_api_keys": ("is_primary",)}
    for table, names in columns.items():
        known = CARRIED_COLUMNS[table] + STRUCTURAL_COLUMNS.get(table, ()) + handled.get(table, ())
        for column in names:
            if column in known:
                continue
            used = sum(1 for row in rows[table] if row.get(column) is not None)
            if used:
                report.not_carried.append(
                    f"column {table}.{column} ({counted(used, 'value')}) has no place in "
                    "this release"
                )


def _insert(conn: Connection, table: str, values: list[dict[str, Any]]) -> None:
    import sqlalchemy as sa

    if not values:
        return
    types: dict[str, Any] = {
        "created_at": sa.DateTime(),
        "last_used_at": sa.DateTime(),
        "is_active": sa.Boolean(),
        "skip_ssl_verify": sa.Boolean(),
    }
    names = list(values[0])
    target = sa.table(table, *(sa.column(name, types.get(name)) for name in names))
    if conn.dialect.name == "sqlite" and conn.dialect.paramstyle == "qmark":
        # 10,000 rows: SQLAlchemy's own conversion of the values (DateTime to its stored
        # text, Boolean to 0/1), a column at a time, without a parameter dictionary per row
        # to process; then as many rows a statement as SQLite takes parameters (half the
        # time of an executemany, a statement a row).
        columns = [
            _stored(types.get(name), conn.dialect, [row[name] for row in values]) for name in names
        ]
        rows = list(zip(*columns, strict=True))
        at_once = max(1, _SQLITE_VARIABLES // len(names))
        statements: dict[int, str] = {}  # rows -> its statement: two at most
        for start in range(0, len(rows), at_once):
            chunk = rows[start : start + at_once]
            if len(chunk) not in statements:
                statements[len(chunk)] = _many_rows_insert(table, names, len(chunk))
            conn.exec_driver_sql(statements[len(chunk)], tuple(chain.from_iterable(chunk)))
        return
    for start in range(0, len(values), 500):
        conn.execute(sa.insert(target), values[start : start + 500])


#: Bound values one SQLite statement may hold: 999 before SQLite 3.32, the least any
#: Python's sqlite3 may be built with.
_SQLITE_VARIABLES = 999


def _many_rows_insert(table: str, names: list[str], rows: int) -> str:
    """SQLite's INSERT of ``rows`` rows of ``names`` into ``table`` (positional parameters:
    the values of row after row, in ``names``' order).  Written here: SQLAlchemy takes
    7 ms to compile one of a thousand parameters, what this statement saves on 10,000."""
    marks = "(" + ", ".join("?" * len(names)) + ")"
    columns = ", ".join(map(_quote, names))
    return f"INSERT INTO {_quote(table)} ({columns}) VALUES {', '.join([marks] * rows)}"  # noqa: S608 - our names


def _stored(kind: Any, dialect: Any, values: list[Any]) -> list[Any]:
    """``values`` as the driver is to receive them: converted by the bind processor of
    ``kind`` (a SQLAlchemy type, or None for none).  Naive datetimes go through
    ``isoformat(" ", "microseconds")`` instead where, tried on the first of them, it gives
    the processor's text (SQLite's DateTime: a tenth of the time, 25,000 values)."""
    import sqlalchemy as sa

    processor = sa.types.to_instance(kind).dialect_impl(dialect).bind_processor(dialect)
    if processor is None:
        return values
    if isinstance(kind, sa.DateTime):
        moments = [v for v in values if v is not None]
        if all(type(v) is datetime and v.tzinfo is None for v in moments) and (
            not moments or processor(moments[0]) == _STORED_MOMENT(moments[0])
        ):
            return [None if v is None else _STORED_MOMENT(v) for v in values]
    return [None if v is None else processor(v) for v in values]


_STORED_MOMENT = operator.methodcaller("isoformat", " ", "microseconds")


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, (int, float)):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "true", "t", "yes", "y", "on"):
        return True
    if text in ("0", "false", "f", "no", "n", "off", ""):
        return False
    return default


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
