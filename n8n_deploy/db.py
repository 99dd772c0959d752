"""Engine and session creation: the only module that knows which database is behind the URL.

SQLite (the default) gets: ``foreign_keys=ON``, WAL journalling, a busy timeout, real
transactions that include DDL (so a failed migration rolls back), and a file created
0600 inside a 0700 folder whatever the umask.  WAL is switched on for a new file and after
a migration (:func:`enable_wal`), never merely by opening: a database this program refuses
(newer revision, n8n-deploy 0.9) is left byte-for-byte as it was.  SQL errors never carry
bound parameters (``hide_parameters``), so an API key cannot leak through an exception
message.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from n8n_deploy.config import Settings, mask_url_password, sqlite_path_from_url
from n8n_deploy.errors import DatabaseError, UsageError

if TYPE_CHECKING:
    from n8n_deploy.migrate import MigrationReport

BUSY_TIMEOUT_SECONDS = 15.0
FOLDER_MODE = 0o700
FILE_MODE = 0o600


def ensure_private_folder(folder: Path) -> None:
    """Create ``folder`` (and missing parents) with mode 0700; leave an existing one alone."""
    if folder.is_dir():
        return
    try:
        folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        os.chmod(folder, FOLDER_MODE)  # mkdir's mode is filtered by the umask
    except OSError as exc:
        raise DatabaseError(
            f"Cannot create the data folder {folder}: {exc.strerror or exc}",
            hint="Choose another folder with --data-dir or N8N_DEPLOY_DATA_DIR",
        ) from None


def ensure_private_file(path: Path) -> None:
    """Create an empty SQLite file with mode 0600 before SQLite does (SQLite would use 0644)."""
    ensure_private_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    except OSError as exc:
        raise DatabaseError(f"Cannot create the database {path}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


@contextmanager
def removed_if_left_empty(path: Path | None) -> Iterator[None]:
    """Around a block that may create the SQLite file ``path``: when the block fails, a file
    it created that still holds no table is removed, with the folders made for it, so a
    failed command leaves nothing behind.  A file that existed before is never touched."""
    if path is None or path.exists():
        yield
        return
    missing = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    try:
        yield
    except BaseException:
        if _remove_if_empty(path):
            for folder in missing:  # deepest first; a folder someone filled meanwhile stays
                with contextlib.suppress(OSError):
                    folder.rmdir()
        raise


def _remove_if_empty(path: Path) -> bool:
    """Remove ``path`` (and its -wal/-shm) if it holds no table; False if it does, or if
    another process is writing it (it may be creating the schema right now)."""
    if not path.exists():
        return True
    try:
        conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    except sqlite3.Error:
        return False
    removed = False
    try:
        conn.execute("BEGIN IMMEDIATE")  # nobody else is writing while we look and remove
        if conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0:
            path.unlink()
            removed = True
        conn.execute("ROLLBACK")
    except (sqlite3.Error, OSError):
        pass
    finally:
        conn.close()
    if removed:
        for companion in (Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
            with contextlib.suppress(FileNotFoundError):
                companion.unlink()
    return removed


def is_sqlite_url(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine_for(url: str, *, foreign_keys: bool = True, create_file: bool = True) -> Engine:
    """An engine for ``url``.  ``foreign_keys=False`` is for migrations that rebuild tables."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UsageError(
            f"Not a database URL: {mask_url_password(url)}",
            hint="Use e.g. sqlite:////path/to/n8n-deploy.db or postgresql://user@host/db",
        ) from None
    path = sqlite_path_from_url(url)
    if path is not None:
        if create_file:
            ensure_private_file(path)
        elif not path.exists():
            raise DatabaseError(f"No database at {path}")
    kwargs: dict[str, Any] = {"hide_parameters": True, "future": True}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_SECONDS}
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, ImportError, SQLAlchemyError) as exc:
        raise DatabaseError(
            f"Cannot use the database URL {mask_url_password(url)}: {type(exc).__name__}"
        ) from None
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, foreign_keys=foreign_keys)
    return engine


def _configure_sqlite(engine: Engine, *, foreign_keys: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin, so
        # that DDL is transactional too (pysqlite would otherwise run it in autocommit).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
            if _is_file_database(dbapi_connection) and _is_new_file(cursor):
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
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
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


def fix_sqlite_permissions(path: Path) -> None:
    """Make the database and its -wal/-shm companions 0600 (owner only)."""
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            mode = stat.S_IMODE(candidate.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            os.chmod(candidate, FILE_MODE)


class Database:
    """An opened database: an engine and a way to run a unit of work in a session."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        #: What opening it migrated (a new database, or N8N_DEPLOY_AUTO_UPGRADE), if anything.
        self.migration: MigrationReport | None = None
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self._writer_sessions = sessionmaker(
            bind=engine.execution_options(sqlite_immediate=True), expire_on_commit=False
        )

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A unit of work: committed when the block ends normally, rolled back otherwise
        (including Ctrl-C), so nothing is ever half-written."""
        factory = self._writer_sessions if write else self._sessions
        session = factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
            path = self.settings.database_path
            if path is not None:
                fix_sqlite_permissions(path)

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(settings: Settings, *, prepare: bool = True) -> Database:
    """Open the configured database and make sure its schema is the one this program uses.

    With ``prepare`` (the default) a missing or empty database is created at the newest
    revision; a database behind it, newer than this program or from n8n-deploy 0.9 is
    refused with a SchemaError (exit status 3).  With N8N_DEPLOY_AUTO_UPGRADE set, one
    behind is backed up and upgraded instead (``Database.migration`` says what was done).
    """
    from n8n_deploy import migrate

    with removed_if_left_empty(settings.database_path):
        engine = create_engine_for(settings.database_url)
        database = Database(settings, engine)
        if prepare:
            try:
                database.migration = migrate.ensure_ready(database)
            except BaseException:
                engine.dispose()
                raise
    return database
