"""The stored names of keys or servers, for Tab completion: fast, quiet and read-only.

On a SQLite file they are read with the standard library's ``sqlite3`` (about 20 ms, where
importing SQLAlchemy's ORM costs several hundred), opened read-only so a Tab never creates,
upgrades or locks anything; on a database server through SQLAlchemy Core, with no ORM.  Any
trouble (no database yet, locked, damaged, from another release) completes nothing: the
caller gets an empty list, never an error.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from n8n_deploy.base.urls import sqlite_path
from n8n_deploy.store import tables

if TYPE_CHECKING:
    from sqlalchemy.sql.expression import ColumnClause

# A Tab that waits on a writer gives up soon and completes nothing.
BUSY_TIMEOUT_SECONDS = 0.2
TABLES = {"key": tables.API_KEYS, "server": tables.SERVERS}


def stored_names(database_url: str, kind: str) -> list[str]:
    """Every stored name of ``kind`` ("key" or "server"), sorted; [] when they cannot be read."""
    table = TABLES[kind]
    try:
        path = sqlite_path(database_url)
        if path is not None:
            return _sqlite_names(path, table)
        if database_url.startswith("sqlite"):
            return []  # an in-memory database holds nothing between runs
        return _server_names(database_url, table)
    except Exception:  # noqa: BLE001 - completion must never fail loudly
        return []


def _sqlite_names(path: Path, table: str) -> list[str]:
    if not path.is_file():
        return []
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS)) as conn:
        name = tables.NAME_COLUMN
        # Only our own constant names go into this statement; no input reaches it.
        rows = conn.execute(f'SELECT "{name}" FROM "{table}" ORDER BY "{name}"')  # noqa: S608
        return [name for (name,) in rows if isinstance(name, str)]


def _server_names(database_url: str, table: str) -> list[str]:
    from sqlalchemy import column, select
    from sqlalchemy import table as table_clause

    from n8n_deploy.store.engine import create_engine_for

    engine = create_engine_for(database_url, create_file=False)
    try:
        name: ColumnClause[str] = column(tables.NAME_COLUMN)
        with engine.connect() as conn:
            return list(conn.scalars(select(name).select_from(table_clause(table)).order_by(name)))
    finally:
        engine.dispose()
