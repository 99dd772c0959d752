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
from urllib.parse import quote

from n8n_deploy.base.urls import sqlite_path
from n8n_deploy.store.sqlite_statements import STATEMENTS

# A Tab that waits on a writer gives up soon and completes nothing.
BUSY_TIMEOUT_SECONDS = 0.2
#: The statement of store.queries that lists each kind's names.
NAMES = {"key": "key_names", "server": "server_names"}


def stored_names(database_url: str, kind: str) -> list[str]:
    """Every stored name of ``kind`` ("key" or "server"), sorted; [] when they cannot be read."""
    statement = NAMES[kind]
    try:
        path = sqlite_path(database_url)
        if path is not None:
            return _sqlite_names(path, statement)
        if database_url.startswith("sqlite"):
            return []  # an in-memory database holds nothing between runs
        return _server_names(database_url, statement)
    except Exception:  # noqa: BLE001 - completion must never fail loudly
        return []


def _sqlite_names(path: Path, statement: str) -> list[str]:
    if not path.is_file():
        return []
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS)) as conn:
        sql, _ = STATEMENTS[statement]  # store.queries' statement, compiled for SQLite
        return [name for (name,) in conn.execute(sql) if isinstance(name, str)]


def _server_names(database_url: str, statement: str) -> list[str]:
    from n8n_deploy.store import queries
    from n8n_deploy.store.engine import create_engine_for

    engine = create_engine_for(database_url, create_file=False)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(queries.statement(statement)))
    finally:
        engine.dispose()
