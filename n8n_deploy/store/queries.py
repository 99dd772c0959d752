"""Every read statement n8n-deploy runs, written once, in SQLAlchemy Core over
``store.metadata``'s tables, and named: ``store.reads.Reader`` asks for them by name.

Each statement's shape is fixed; what varies (a name, an id, active or not) is a bound
parameter.  So the same statement runs through SQLAlchemy on every database
(:class:`CoreSource`) and, compiled once for SQLite ahead of time, through the standard
library's ``sqlite3`` on a SQLite file (``store.sqlite_statements`` is generated from
:data:`STATEMENTS` by ``make docs``; ``make lint`` fails when the two differ).  The ORM
repositories, which write, select with the same criteria (:func:`key_named`,
:func:`key_criteria`).  No query is written twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, Integer, String, bindparam, case, func, literal_column, select

from n8n_deploy.store.metadata import UTCDateTime, api_keys, server_api_keys, servers
from n8n_deploy.store.reads import unreadable_row
from n8n_deploy.store.sqlite_reading import (
    KIND_AS_STORED,
    KIND_BOOL,
    KIND_TEXT,
    KIND_TEXT_OR_NULL,
    KIND_UTC,
    check_text,
)

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Connection, Select

_SERVER_COLUMNS = (
    servers.c.id,
    servers.c.name,
    servers.c.url,
    servers.c.description,
    servers.c.skip_ssl_verify,
    servers.c.created_at,
    servers.c.updated_at,
)
_KEY_COLUMNS = (
    api_keys.c.id,
    api_keys.c.name,
    api_keys.c.api_key,
    api_keys.c.description,
    api_keys.c.created_at,
    api_keys.c.last_used_at,
    api_keys.c.expires_at,
    api_keys.c.is_active,
    api_keys.c.delete_after,
)


def key_named(name: str) -> ColumnElement[bool]:
    """The criterion of the key called ``name`` (exact comparison on every database)."""
    criterion: ColumnElement[bool] = api_keys.c.name == bindparam("name", name)
    return criterion


def server_named(name: str) -> ColumnElement[bool]:
    """The criterion of the server called ``name``."""
    criterion: ColumnElement[bool] = servers.c.name == bindparam("name", name)
    return criterion


def key_criteria(
    *, active: bool | None = None, server_id: int | None = None
) -> list[ColumnElement[bool]]:
    """Which keys a listing selects: all, the active or inactive ones, those linked to the
    server with id ``server_id``.  The values are bound parameters (``active``,
    ``server_id``): the statement's shape depends only on which filters are given."""
    where: list[ColumnElement[bool]] = []
    if active is not None:
        where.append(api_keys.c.is_active == bindparam("active", active, type_=Boolean))
    if server_id is not None:
        linked = select(server_api_keys.c.api_key_id).where(
            server_api_keys.c.server_id == bindparam("server_id", server_id, type_=Integer)
        )
        where.append(api_keys.c.id.in_(linked))
    return where


def _keys(*where: ColumnElement[bool]) -> Select[Any]:
    """Keys as the table holds them, in no order: ``Reader`` sorts every listing by the
    names' characters, the one order of every database.  Sorted here as well, SQLite
    walked its name index and fetched each row from wherever it was stored, a page at a
    time (a third of a 10,000-key listing's fetch when keys were added in no name
    order), where the table read in its own order is one pass."""
    return select(*_KEY_COLUMNS).where(*where)


def _links(*where: ColumnElement[bool]) -> Select[Any]:
    """Each link as (key id, server id), by server name: the servers are read once each
    (``servers``), not once a link (a listing of 10,000 keys has as many links)."""
    return (
        select(server_api_keys.c.api_key_id, server_api_keys.c.server_id)
        .join(servers, servers.c.id == server_api_keys.c.server_id)
        .where(*where)
        .order_by(servers.c.name, server_api_keys.c.api_key_id)
    )


def _link_counts() -> Select[Any]:
    """server id, active keys, all keys: per server with links."""
    return (
        select(
            server_api_keys.c.server_id,
            # Literal 1 and 0, not parameters: the counts need none.
            func.sum(
                case(
                    (api_keys.c.is_active.is_(True), literal_column("1")),
                    else_=literal_column("0"),
                )
            ),
            func.count(),
        )
        .join(api_keys, api_keys.c.id == server_api_keys.c.api_key_id)
        .group_by(server_api_keys.c.server_id)
        .order_by(server_api_keys.c.server_id)
    )


#: Every read statement, by the name ``store.reads.Reader`` runs it by.
STATEMENTS: dict[str, Callable[[], Select[Any]]] = {
    "key_names": lambda: select(api_keys.c.name).order_by(api_keys.c.name),
    "server_names": lambda: select(servers.c.name).order_by(servers.c.name),
    "keys": lambda: _keys(*key_criteria()),
    "keys_by_status": lambda: _keys(*key_criteria(active=True)),
    "keys_on_server": lambda: _keys(*key_criteria(server_id=0)),
    "keys_by_status_on_server": lambda: _keys(*key_criteria(active=True, server_id=0)),
    "key_named": lambda: _keys(key_named("")),
    "links": _links,
    "links_of_key": lambda: _links(server_api_keys.c.api_key_id == bindparam("key_id", 0)),
    "servers": lambda: select(*_SERVER_COLUMNS).order_by(servers.c.name),
    "server_named": lambda: select(*_SERVER_COLUMNS).where(server_named("")),
    "link_counts": _link_counts,
}


@cache
def statement(name: str) -> Select[Any]:
    """The statement called ``name``, built once per run."""
    return STATEMENTS[name]()


class CoreSource:
    """Runs the statements through SQLAlchemy Core on ``conn`` (any database)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def rows(
        self, name: str, params: Mapping[str, Any] | None = None, *, as_stored: bool = False
    ) -> Sequence[Sequence[Any]]:
        # as_stored: SQLAlchemy types every value as it reads it, whatever is asked.
        try:
            found = self.conn.execute(statement(name), dict(params or {})).all()
        except (ValueError, TypeError):  # a result processor: a stored value is not one
            raise unreadable_row() from None
        if found:
            check_text(list(zip(*found, strict=True)), _kinds(name))
        return found


# -- the statements compiled for SQLite ahead of time ----------------------------------


def _column_kind(column: Any) -> str:
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return KIND_UTC
    if isinstance(kind, Boolean):
        return KIND_BOOL
    if isinstance(kind, String):  # Text too
        return KIND_TEXT_OR_NULL if getattr(column, "nullable", True) else KIND_TEXT
    return KIND_AS_STORED


@cache
def _kinds(name: str) -> str:
    return "".join(_column_kind(column) for column in statement(name).selected_columns)


def sqlite_statements() -> dict[str, tuple[str, str]]:
    """name -> (the statement's SQLite text with ``:name`` parameters, one kind letter per
    result column): what ``store.sqlite_statements`` holds."""
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect(paramstyle="named")
    compiled = {}
    for name in STATEMENTS:
        stmt = statement(name)
        text = str(stmt.compile(dialect=dialect))
        compiled[name] = (" ".join(text.split()), _kinds(name))
    return compiled


def _chunks(text: str, width: int = 80) -> list[str]:
    """``text`` in pieces of about ``width`` characters, cut before spaces."""
    chunks: list[str] = []
    for word in text.split(" "):
        if chunks and len(chunks[-1]) + len(word) + 1 <= width:
            chunks[-1] += " " + word
        else:
            chunks.append(word if not chunks else " " + word)
    return chunks


def sqlite_statements_module() -> str:
    """The text of ``n8n_deploy/store/sqlite_statements.py`` (written by ``make docs``)."""
    lines = [
        '"""The read statements of ``store.queries`` compiled for SQLite: GENERATED by',
        "``make docs`` (docs/generate.py) from ``store.queries.STATEMENTS``; do not edit.",
        "",
        "name -> (SQL with ``:name`` parameters, one letter per result column: ``-`` as",
        "stored, ``b`` a boolean, ``t`` a UTC timestamp).  ``make lint`` fails when this file",
        'and the Core statements differ."""',
        "",
        "STATEMENTS: dict[str, tuple[str, str]] = {",
    ]
    for name, (text, kinds) in sqlite_statements().items():
        lines.append(f"    {json.dumps(name)}: (")
        lines.extend(f"        {json.dumps(chunk)}" for chunk in _chunks(text))
        lines[-1] += ","
        lines.append(f"        {json.dumps(kinds)},")
        lines.append("    ),")
    lines.append("}")
    return "\n".join(lines) + "\n"
