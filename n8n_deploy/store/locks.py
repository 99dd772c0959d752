"""The migration lock on a database server: one process at a time creates, upgrades or
downgrades the schema; the others wait, then find the work done.

PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``, polled until the
bound).  MariaDB and MySQL: ``GET_LOCK``, which waits on the server up to the bound.
SQLite needs none: its migrations hold the file's write lock (``BEGIN IMMEDIATE``).
Either lock is held by the connection that runs the migration and released when it is
given back (or when the process dies: the server drops a dead session's locks).  A lock
that cannot be had within the bound is an error naming who holds it, never a hang.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import text

from n8n_deploy.base.errors import DatabaseError
from n8n_deploy.base.settings import DEFAULT_LOCK_TIMEOUT

__all__ = ["DEFAULT_LOCK_TIMEOUT", "LockTimeoutError", "migration_lock"]

if TYPE_CHECKING:
    from sqlalchemy import Connection

#: The advisory lock's two keys on PostgreSQL ("n8", "dp"), and its name on MariaDB.
PG_LOCK_KEYS = (0x6E38, 0x6470)
MYSQL_LOCK_NAME = "n8n-deploy:migrations"
#: How often a waiting PostgreSQL session asks for the lock again.
POLL_SECONDS = 0.1


class LockTimeoutError(DatabaseError):
    """Another process held the migration lock for longer than the bound."""


@contextmanager
def migration_lock(conn: Connection, timeout: float) -> Iterator[None]:
    """Hold the migration lock on ``conn`` for the block (a no-op on SQLite).  The
    connection is left outside any transaction, so the block decides where they go."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        _take_pg(conn, timeout)
        release = "SELECT pg_advisory_unlock(:a, :b)"
        params: dict[str, object] = {"a": PG_LOCK_KEYS[0], "b": PG_LOCK_KEYS[1]}
    elif dialect in ("mysql", "mariadb"):
        _take_mysql(conn, timeout)
        release, params = "SELECT RELEASE_LOCK(:name)", {"name": MYSQL_LOCK_NAME}
    else:
        yield
        return
    conn.commit()  # the lock belongs to the session, not to this transaction
    try:
        yield
    finally:
        if conn.in_transaction():
            conn.rollback()
        conn.execute(text(release), params)
        conn.commit()


def _take_pg(conn: Connection, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        taken = conn.execute(
            text("SELECT pg_try_advisory_lock(:a, :b)"),
            {"a": PG_LOCK_KEYS[0], "b": PG_LOCK_KEYS[1]},
        ).scalar()
        if taken:
            return
        conn.commit()
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, _pg_holder(conn))
        time.sleep(POLL_SECONDS)


def _take_mysql(conn: Connection, timeout: float) -> None:
    taken = conn.execute(
        text("SELECT GET_LOCK(:name, :seconds)"),
        {"name": MYSQL_LOCK_NAME, "seconds": max(0, round(timeout))},
    ).scalar()
    if taken != 1:
        holder = _mysql_holder(conn)
        conn.commit()
        raise _timed_out(timeout, holder)


def _pg_holder(conn: Connection) -> str:
    row = conn.execute(
        text(
            "SELECT a.pid, a.usename, a.application_name, a.client_addr, "
            "EXTRACT(EPOCH FROM now() - a.backend_start) "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid = :a AND l.objid = :b AND l.objsubid = 2"
        ),
        {"a": PG_LOCK_KEYS[0], "b": PG_LOCK_KEYS[1]},
    ).first()
    conn.commit()
    if row is None:
        return "another session (it has just let go: try again)"
    pid, user, application, address, seconds = row
    where = f" from {address}" if address else ""
    name = f"{application} " if application else ""
    return f"{name}(server process {pid}, user {user}{where}, connected {int(seconds or 0)} s)"


def _mysql_holder(conn: Connection) -> str:
    holder = conn.execute(text("SELECT IS_USED_LOCK(:name)"), {"name": MYSQL_LOCK_NAME}).scalar()
    if holder is None:
        return "another session (it has just let go: try again)"
    row = conn.execute(
        text("SELECT USER, HOST, TIME FROM information_schema.PROCESSLIST WHERE ID = :id"),
        {"id": holder},
    ).first()
    if row is None:
        return f"connection {holder}"
    user, host, seconds = row
    return f"connection {holder} (user {user} from {host}, busy {seconds} s)"


def _timed_out(timeout: float, holder: str) -> LockTimeoutError:
    return LockTimeoutError(
        f"Another n8n-deploy is creating or migrating this database: its lock is held by "
        f"{holder}, and was not free within {timeout:g} s",
        hint="Nothing was changed. Try again when it has finished, or allow a longer wait "
        "with N8N_DEPLOY_LOCK_TIMEOUT=SECONDS",
    )
