"""Engine and session creation: the only module that knows which database is behind the URL.

SQLite (the default) gets: ``foreign_keys=ON``, WAL journalling, a busy timeout, real
transactions that include DDL (so a failed migration rolls back), and a file created
0600 inside a 0700 folder whatever the umask.  WAL is switched on for a new file (by an
engine allowed to create it) and after a migration (:func:`enable_wal`), never merely by
opening: a database this program refuses (newer revision, n8n-deploy 0.9), or an empty
file a read-only command looks at, is left byte-for-byte as it was.  SQL errors never carry
bound parameters (``hide_parameters``), so an API key cannot leak through an exception
message.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from n8n_deploy.base import interrupts
from n8n_deploy.base.errors import DatabaseError, UsageError
from n8n_deploy.base.urls import mask_url_password, sqlite_path
from n8n_deploy.store.files import (
    BUSY_TIMEOUT_SECONDS,
    check_database_place,
    ensure_private_file,
    fix_sqlite_permissions,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from n8n_deploy.base.settings import Settings
    from n8n_deploy.store.reads import Reader
    from n8n_deploy.store.schema import MigrationReport

T = TypeVar("T")
#: How long to wait for a database server to accept a connection.
CONNECT_TIMEOUT_SECONDS = 10


#: The driver each database URL scheme is served by, and the extra that installs it.
DRIVERS: dict[str, tuple[str, str, str]] = {
    # scheme: (SQLAlchemy driver name, extra to install, what it is called)
    "postgresql": ("postgresql+psycopg", "postgresql", "PostgreSQL"),
    "postgres": ("postgresql+psycopg", "postgresql", "PostgreSQL"),
    "postgresql+psycopg": ("postgresql+psycopg", "postgresql", "PostgreSQL"),
    "mysql": ("mysql+pymysql", "mysql", "MySQL"),
    "mysql+pymysql": ("mysql+pymysql", "mysql", "MySQL"),
    "mariadb": ("mariadb+pymysql", "mysql", "MariaDB"),
    "mariadb+pymysql": ("mariadb+pymysql", "mysql", "MariaDB"),
}
URL_EXAMPLES = (
    "sqlite:////path/to/n8n-deploy.db, postgresql://USER:PASSWORD@HOST/DB or "
    "mysql://USER:PASSWORD@HOST/DB"
)
#: MariaDB and MySQL dialect names (``mysql://`` and ``mariadb://`` URLs).
MYSQL_DIALECTS = ("mysql", "mariadb")
#: The query options of a SQLite URL that the pysqlite driver takes (SQLAlchemy's own list).
_PYSQLITE_OPTIONS = frozenset(
    {"timeout", "isolation_level", "detect_types", "check_same_thread", "cached_statements"}
)


def database_url(url: str) -> URL:
    """``url`` parsed, with the driver n8n-deploy uses for its scheme.

    A URL that cannot be read is a usage error (exit 2) that never repeats the URL: it may
    hold a password.  So is a scheme n8n-deploy does not serve."""
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 - a port that is not a number raises here
    except (ArgumentError, ValueError, TypeError) as exc:
        why = "its port is not a number" if isinstance(exc, ValueError) else "not a URL"
        raise UsageError(
            f"The database URL cannot be read ({why}); it is not shown, as it may hold a password",
            hint=f"Use e.g. {URL_EXAMPLES}; percent-encode special characters in the "
            "password (@ is %40, / is %2F)",
        ) from None
    if parsed.host is not None and ("@" in parsed.host or "/" in parsed.host):
        raise UsageError(
            "The database URL has an '@' or '/' in its user name or password; it is not "
            "shown, as it may hold a password",
            hint="Percent-encode them in the URL: @ is %40, / is %2F",
        )
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed
    known = DRIVERS.get(parsed.drivername)
    if known is None:
        raise UsageError(
            f"n8n-deploy does not work with '{parsed.drivername}' database URLs",
            hint=f"Use SQLite, PostgreSQL or MariaDB/MySQL, e.g. {URL_EXAMPLES}",
        )
    parsed = parsed.set(drivername=known[0])
    if backend in MYSQL_DIALECTS and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed


def create_engine_for(url: str, *, foreign_keys: bool = True, create_file: bool = True) -> Engine:
    """An engine for ``url``.  ``foreign_keys=False`` is for migrations that rebuild tables."""
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite" and "uri" not in parsed.query:
        ignored = sorted(set(parsed.query) - _PYSQLITE_OPTIONS)
        if ignored:  # SQLAlchemy would only warn (two lines) and open the file anyway
            raise DatabaseError(
                f"The SQLite URL has options the driver does not take: {', '.join(ignored)}",
                hint="Remove them (a SQLite file has no password or user), or add uri=true "
                "for SQLite's own URI options",
            )
    path = sqlite_path(url)
    if path is not None:
        if create_file:
            ensure_private_file(path)
        elif not path.exists():
            check_database_place(path)  # a link to nothing, a file for a folder: say so
            raise DatabaseError(f"No database at {path}")
    kwargs: dict[str, Any] = {"hide_parameters": True, "future": True}
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_SECONDS}
    elif backend in MYSQL_DIALECTS:
        # No gap locks between concurrent writers (REPEATABLE READ's), as on PostgreSQL.
        kwargs["isolation_level"] = "READ COMMITTED"
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    else:
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    try:
        engine = create_engine(parsed, **kwargs)
    except ImportError:
        _, extra, name = DRIVERS[parsed.drivername]
        raise DatabaseError(
            f"The {name} driver is not installed",
            hint=f"Install it with: pip install 'n8n-deploy[{extra}]'",
        ) from None
    except (ArgumentError, SQLAlchemyError) as exc:
        raise DatabaseError(
            f"Cannot use the database URL {mask_url_password(url)}: {type(exc).__name__}"
        ) from None
    if engine.dialect.name == "sqlite":
        # Only an engine that may create the file may turn an empty one into a database:
        # switching to WAL writes the file's header, and a read-only command must leave even
        # a zero-byte file byte-for-byte as it was.
        _configure_sqlite(engine, foreign_keys=foreign_keys, new_file_wal=create_file)
    return engine


def _configure_sqlite(engine: Engine, *, foreign_keys: bool, new_file_wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin, so
        # that DDL is transactional too (pysqlite would otherwise run it in autocommit).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
            if new_file_wal and _is_file_database(dbapi_connection) and _is_new_file(cursor):
                cursor.execute("PRAGMA journal_mode=WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front: concurrent writers wait (busy timeout)
        # instead of failing half-way through.
        if connection.get_execution_options().get("sqlite_immediate"):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


def _is_file_database(dbapi_connection: Any) -> bool:
    cursor = dbapi_connection.cursor()
    try:
        rows = cursor.execute("PRAGMA database_list").fetchall()
    finally:
        cursor.close()
    return any(row[1] == "main" and row[2] for row in rows)


def _is_new_file(cursor: Any) -> bool:
    return bool(cursor.execute("PRAGMA page_count").fetchone()[0] == 0)


def enable_wal(engine: Engine) -> None:
    """Switch a SQLite file to WAL journalling (persistent; a no-op when it already is).
    Best effort: another connection holding the file open simply postpones it."""
    if engine_path(engine) is None:
        return
    try:
        # The raw connection (autocommit): journal modes cannot change inside a transaction.
        raw = engine.raw_connection()
    except SQLAlchemyError:
        return
    try:
        cursor = raw.cursor()
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
        finally:
            cursor.close()
    except engine.dialect.loaded_dbapi.Error:
        pass
    finally:
        raw.close()


class Database:
    """An opened database: an engine, and a way to run a unit of work that reads (Core:
    :meth:`reading`) or one that writes (the ORM, in a session)."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        #: What opening it migrated (a new database, or N8N_DEPLOY_AUTO_UPGRADE), if anything.
        self.migration: MigrationReport | None = None
        #: What the user should know about the database as it was opened.
        self.warnings: list[str] = []
        # A reading unit of work sees one snapshot (several queries, e.g. keys and then
        # their links, agree even while others write); writers read the latest committed
        # rows (READ COMMITTED), as SQLite's single writer always does.
        self._reader = engine
        if engine.dialect.name != "sqlite":
            self._reader = engine.execution_options(isolation_level="REPEATABLE READ")
        self._writer = engine.execution_options(sqlite_immediate=True)
        # Made on first use: a command that only reads never imports sqlalchemy.orm.
        self._factories: dict[bool, sessionmaker[Session]] = {}
        #: Run first, in a writing transaction of its own, before every writing unit of
        #: work, ORM or Core (lifecycle: pruning ephemeral keys past their deadline).
        self.before_write: Callable[[Connection], object] | None = None

    @contextmanager
    def reading(self) -> Iterator[Reader]:
        """A unit of work that only reads: the read queries (``store.reads.Reader``) on a
        Core connection in one transaction (one snapshot); rolled back at the end."""
        from n8n_deploy.store.queries import CoreSource
        from n8n_deploy.store.reads import Reader

        try:
            with self._reader.connect() as conn, conn.begin():
                yield Reader(CoreSource(conn))
        finally:
            path = self.settings.database_path
            if path is not None:
                fix_sqlite_permissions(path)

    @contextmanager
    def session(self, *, write: bool = False, before_write: bool = True) -> Iterator[Session]:
        """A unit of work: committed when the block ends normally, rolled back otherwise
        (including Ctrl-C), so nothing is ever half-written.  A writing one is preceded by
        the ``before_write`` hook (pruning) in a transaction of its own, unless told not
        to: what it deletes stays deleted even when the command then fails."""
        factory = self._factories.get(write)
        if factory is None:
            from sqlalchemy.orm import sessionmaker

            bind = self._writer if write else self._reader
            info = {"actor": self.settings.actor}  # who the audit trail records
            factory = self._factories[write] = sessionmaker(
                bind=bind, expire_on_commit=False, info=info
            )
        if write and before_write:
            self._before_write()
        session = factory()
        try:
            yield session
            if write:
                with interrupts.saving():  # Ctrl-C from here on cannot say "nothing changed"
                    session.commit()
            else:
                session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
            path = self.settings.database_path
            if path is not None:
                fix_sqlite_permissions(path)

    @contextmanager
    def writing(self, *, before_write: bool = True) -> Iterator[Connection]:
        """A writing unit of work on a Core connection (no ORM): committed when the block
        ends normally, rolled back otherwise, and preceded by the ``before_write`` hook, as
        :meth:`session`."""
        if before_write:
            self._before_write()
        try:
            with self._writer.connect() as conn:
                transaction = conn.begin()
                try:
                    yield conn
                except BaseException:
                    transaction.rollback()
                    raise
                with interrupts.saving():  # Ctrl-C from here on cannot say "nothing changed"
                    transaction.commit()
        finally:
            path = self.settings.database_path
            if path is not None:
                fix_sqlite_permissions(path)

    def _before_write(self) -> None:
        """The ``before_write`` hook in a writing transaction of its own, committed: what it
        deletes stays deleted even when the unit of work after it fails."""
        if self.before_write is None:
            return
        hook = self.before_write
        # Not under the interrupt guard: this is the program's own bookkeeping, not the
        # command's change, and a Ctrl-C during the command after it must still stop it.
        try:
            with self._writer.connect() as conn, conn.begin():
                hook(conn)
        finally:
            path = self.settings.database_path
            if path is not None:
                fix_sqlite_permissions(path)

    def write(self, work: Callable[[Session], T], *, before_write: bool = True) -> T:
        """Run ``work`` in a writing unit of work, and run it again (at most
        WRITE_ATTEMPTS times, after a short pause) when the server gave up on it because
        of another writer: a deadlock or a serialization failure.  ``work`` must be
        repeatable: it reads what it needs inside the session it is given."""

        def once() -> T:
            with self.session(write=True, before_write=before_write) as session:
                return work(session)

        return self._retried(once)

    def write_rows(self, work: Callable[[Connection], T], *, before_write: bool = True) -> T:
        """:meth:`write` on a Core connection (:meth:`writing`), for a statement or two
        that need no ORM."""

        def once() -> T:
            with self.writing(before_write=before_write) as conn:
                return work(conn)

        return self._retried(once)

    def _retried(self, once: Callable[[], T]) -> T:
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                return once()
            except DBAPIError as exc:
                if not is_write_conflict(exc):
                    raise
                if attempt == WRITE_ATTEMPTS:
                    raise DatabaseError(
                        f"Other n8n-deploy commands kept writing the same rows: this one gave "
                        f"up after {WRITE_ATTEMPTS} attempts; nothing was changed",
                        hint="Run it again",
                    ) from None
                time.sleep(0.05 * attempt + random.random() * 0.05)  # noqa: S311
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.engine.dispose()


#: How often a unit of work that lost to a concurrent writer is tried (Database.write).
WRITE_ATTEMPTS = 4
#: PostgreSQL's serialization_failure and deadlock_detected; MariaDB/MySQL's deadlock and
#: lock wait timeout.
_CONFLICT_SQLSTATES = ("40001", "40P01")
_CONFLICT_ERRNOS = (1213, 1205)


def is_write_conflict(exc: DBAPIError) -> bool:
    """Whether the server refused a unit of work because of another writer (it can be run
    again as it is), rather than because of what it does."""
    original = exc.orig
    if getattr(original, "sqlstate", None) in _CONFLICT_SQLSTATES:
        return True
    args: tuple[object, ...] = tuple(getattr(original, "args", ()))
    return bool(args) and args[0] in _CONFLICT_ERRNOS


def engine_path(engine: Engine) -> Path | None:
    """The SQLite file behind ``engine``; None for other databases and memory."""
    return sqlite_path(engine.url.render_as_string(hide_password=False))
