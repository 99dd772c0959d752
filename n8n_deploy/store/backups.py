"""Backups and restores of a SQLite database.

A backup is made with SQLite's online backup API, not a file copy: it is consistent even
while another process writes, and it includes what still sits in the ``-wal`` file.  It is
one self-contained file (journal mode DELETE), mode 0600, written under a temporary name
and moved into place, so a half-written backup never carries the final name.

Default name, beside the database: ``<database file>.<UTC time>.bak``, e.g.
``n8n-deploy.db.20261127T084746Z.bak`` (``-2``, ``-3``... appended if that name is taken).

A restore (:func:`staged_restore`) first checks the database it would replace: one at a
revision this program does not know (a newer release wrote it) or of another program is
never touched.  It then copies the file once into a private staging copy beside the
database and checks that copy: an n8n-deploy database (this release's, an older revision,
or n8n-deploy 0.9) that passes SQLite's quick check.  What was checked, and described when
asking for confirmation, is what is restored, even if the file changes meanwhile.  Applying
it backs up the current database and copies the staged file into it with the same backup
API in one transaction: other processes see the old database or the new one, never a
mixture, and the file keeps its 0600 mode.  A restore that does not happen leaves no
staging copy, and no data folder it had to create.

A backup or restore killed part-way (SIGKILL, a power cut) cannot remove its staging copy,
a full copy of the database with every key: :func:`store.files.remove_leftovers` removes those of
processes no longer running, and the CLI calls it (and says so) on the next run.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from n8n_deploy.base import interrupts
from n8n_deploy.base.dates import utcnow
from n8n_deploy.base.errors import DatabaseError, OperationFailed, SchemaTooNewError
from n8n_deploy.base.text import counted, error_text
from n8n_deploy.base.urls import sqlite_url_for
from n8n_deploy.store.engine import create_engine_for
from n8n_deploy.store.files import (
    BUSY_TIMEOUT_SECONDS,
    PARTIAL_SUFFIX,
    RESTORE_SUFFIX,
    ensure_private_file,
    ensure_private_folder,
    fix_sqlite_permissions,
    new_private_file,
    remove_leftovers,
    remove_with_companions,
    removed_if_left_empty,
)
from n8n_deploy.store.schema import HEAD, SchemaState, inspect_state

SQLITE_HEADER = b"SQLite format 3\x00"
BACKUP_SUFFIX = ".bak"


@dataclass(frozen=True)
class DatabaseSummary:
    """What a database file holds, for confirmations and messages."""

    path: Path
    state: SchemaState
    keys: int | None
    servers: int | None

    def describe(self) -> str:
        counts = ""
        if self.keys is not None:
            counts = f", {counted(self.keys, 'API key')}, {counted(self.servers or 0, 'server')}"
        if self.state.kind == "legacy":
            return f"n8n-deploy 0.9 database{counts}"
        return f"revision {self.state.describe()}{counts}"


@dataclass(frozen=True)
class RestoreResult:
    restored: DatabaseSummary
    previous_backup: Path | None
    replaced: DatabaseSummary | None


@dataclass(frozen=True)
class StagedRestore:
    """A checked private copy of a backup, ready to replace ``database``."""

    database: Path
    incoming: DatabaseSummary  # the backup, as checked (its path is the one given)
    existing: DatabaseSummary | None  # the database it replaces; None when there is none
    copy: Path

    def apply(self) -> RestoreResult:
        """Back up the current database, then replace it with the staged copy."""
        existing = _replaceable(self.database)  # again: it may have changed meanwhile
        previous = create_backup(self.database) if existing is not None else None
        ensure_private_file(self.database)
        # The copy into the live file is the change: a signal from here on waits for the
        # command to end, so it never says "nothing was changed" after the replacement.
        with interrupts.saving():
            _copy(
                self.copy, self.database, into_live=True, wal=self.incoming.state.kind != "legacy"
            )
        fix_sqlite_permissions(self.database)
        return RestoreResult(self.incoming, previous, existing)


def default_backup_path(database: Path, now: datetime | None = None) -> Path:
    stamp = (now or utcnow()).astimezone(timezone.utc)
    return database.with_name(f"{database.name}.{stamp:%Y%m%dT%H%M%SZ}{BACKUP_SUFFIX}")


def create_backup(
    database: Path, target: Path | None = None, *, is_the_change: bool = False
) -> Path:
    """Write a consistent copy of ``database`` (0600) and return its path.

    ``target`` may be a file that does not exist yet, or a folder to write the default
    name into; by default the backup goes beside the database.  An existing file is never
    overwritten.  ``is_the_change``: the backup is what the command does (``db backup``),
    so once it is being put in place a signal waits for the command to end, which reports
    it (the backups an upgrade or a restore takes first stay interruptible)."""
    if not database.is_file():
        raise OperationFailed(
            f"No database at {database}; there is nothing to back up",
            hint="Check --data-dir / --database-url ('n8n-deploy db path')",
        )
    # Only SQLite opens the database here (it says if it is no SQLite file): an upgrade calls
    # this holding the write lock, and closing any other handle on the file would drop the
    # process's POSIX locks on it, letting another process write in the middle.
    explicit = target is not None and not target.is_dir()
    if target is None:
        target = default_backup_path(database)
    elif target.is_dir():
        target = target / default_backup_path(database).name
    target = target.expanduser().absolute()
    if explicit and target.exists():
        raise OperationFailed(
            f"{target} already exists", hint="Give a new file name, or a folder to write into"
        )
    if not target.parent.is_dir():
        raise OperationFailed(
            f"The folder {target.parent} does not exist",
            hint="Create it first, or give another path",
        )
    remove_leftovers(target.parent, target.name)  # an explicit name's own, from a crash
    partial = target.with_name(f".{target.name}.{os.getpid()}{PARTIAL_SUFFIX}")
    new_private_file(partial)
    try:
        _copy(database, partial)
        if not is_the_change:
            return _move_without_overwriting(partial, target, numbered=not explicit)
        with interrupts.saving():
            return _move_without_overwriting(partial, target, numbered=not explicit)
    finally:
        remove_with_companions(partial)


@contextmanager
def staged_restore(source: Path, database: Path) -> Iterator[StagedRestore]:
    """Check the database ``source`` would replace and a private copy of ``source`` (read
    once); yield them for confirmation and :meth:`StagedRestore.apply`.  The copy is removed
    when the block ends; if the block fails, so is a data folder made for it."""
    source = source.expanduser().absolute()
    if not source.is_file():
        raise OperationFailed(f"No file at {source}", hint="Give the path of a backup file")
    if database.exists() and os.path.samefile(source, database):
        raise OperationFailed(f"{source} is the database in use; there is nothing to restore")
    _require_sqlite_file(source)
    existing = _replaceable(database)
    with removed_if_left_empty(database):
        ensure_private_folder(database.parent)
        copy = database.with_name(f".{database.name}.{os.getpid()}{RESTORE_SUFFIX}")
        remove_with_companions(copy)
        new_private_file(copy)
        try:
            _copy(source, copy)
            yield StagedRestore(database, _check_incoming(copy, source), existing, copy)
        finally:
            remove_with_companions(copy)


def describe_database(database: Path) -> DatabaseSummary | None:
    """The live database as it is now; None when there is none yet."""
    if not database.is_file() or database.stat().st_size == 0:
        return None
    return _summarise(database, database)


def _replaceable(database: Path) -> DatabaseSummary | None:
    """The database a restore would replace; refuses (exit 3, untouched) one this program
    does not know: a newer release's, or another program's."""
    existing = describe_database(database)
    if existing is None:
        return None
    if existing.state.kind == "unknown":
        raise SchemaTooNewError(
            f"The database {database} is at revision {existing.state.revision}, which this "
            f"program does not know (newest known: {HEAD}); a newer n8n-deploy wrote it",
            hint="Nothing was changed; restore with that newer n8n-deploy, or move the "
            "file aside first",
        )
    if existing.state.kind == "foreign":
        raise SchemaTooNewError(
            f"{database} has tables but is not an n8n-deploy database",
            hint="Nothing was changed; check --data-dir / --database-url "
            "('n8n-deploy db path'), or move the file aside first",
        )
    return existing


def _check_incoming(copy: Path, source: Path) -> DatabaseSummary:
    summary = _summarise(copy, source)
    if summary.state.kind in ("empty", "foreign"):
        raise OperationFailed(
            f"{source} is not an n8n-deploy database",
            hint="Give a backup written by 'n8n-deploy db backup' or 'db upgrade'",
        )
    if summary.state.kind == "unknown":
        raise SchemaTooNewError(
            f"{source} is at revision {summary.state.revision}, which this program does "
            f"not know (newest known: {HEAD})",
            hint="Restore it with the newer n8n-deploy that wrote it; nothing was changed",
        )
    return summary


def _summarise(path: Path, shown_as: Path) -> DatabaseSummary:
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine_for(sqlite_url_for(path), create_file=False)
    try:
        with engine.connect() as conn:
            if conn.exec_driver_sql("PRAGMA quick_check").scalar() != "ok":
                raise OperationFailed(f"{shown_as} is damaged (SQLite's quick_check failed)")
        state = inspect_state(engine)
        keys = servers = None
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            if "api_keys" in tables:
                keys = int(conn.execute(text("SELECT COUNT(*) FROM api_keys")).scalar() or 0)
            if "servers" in tables:
                servers = int(conn.execute(text("SELECT COUNT(*) FROM servers")).scalar() or 0)
    except SQLAlchemyError as exc:
        raise OperationFailed(f"Cannot read {shown_as}: {error_text(exc)}") from None
    finally:
        engine.dispose()
    return DatabaseSummary(shown_as, state, keys, servers)


def _copy(source: Path, target: Path, *, into_live: bool = False, wal: bool = False) -> None:
    """Copy with the online backup API: one read transaction on ``source``, one write
    transaction on ``target``."""
    try:
        src = sqlite3.connect(source, timeout=BUSY_TIMEOUT_SECONDS)
        dst = sqlite3.connect(target, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    except sqlite3.Error as exc:
        raise DatabaseError(f"Cannot open {source}: {exc}") from None
    try:
        if into_live:
            page_size = src.execute("PRAGMA page_size").fetchone()[0]
            if dst.execute("PRAGMA page_size").fetchone()[0] != page_size:
                # A WAL database cannot change its page size: leave WAL for the copy.
                dst.execute("PRAGMA journal_mode=DELETE")
        src.backup(dst)
        dst.execute(f"PRAGMA journal_mode={'WAL' if wal else 'DELETE'}")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise DatabaseError(
                f"{target} is in use by another process",
                hint="Try again when no other n8n-deploy command is running; nothing was changed",
            ) from None
        raise DatabaseError(f"Cannot copy {source}: {exc}") from None
    except sqlite3.Error as exc:
        if "not a database" in str(exc):
            raise OperationFailed(f"{source} is not a SQLite database file") from None
        raise DatabaseError(f"Cannot copy {source}: {exc}") from None
    finally:
        dst.close()
        src.close()


def _require_sqlite_file(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise OperationFailed(f"Cannot read {path}: {exc.strerror or exc}") from None
    if header != SQLITE_HEADER:
        raise OperationFailed(
            f"{path} is not an n8n-deploy database (not a SQLite file)",
            hint="Give a backup written by 'n8n-deploy db backup' or 'db upgrade'",
        )


def _move_without_overwriting(partial: Path, target: Path, *, numbered: bool) -> Path:
    candidate = target
    for attempt in range(2, 1000):
        try:
            os.link(partial, candidate)  # fails if the name is taken: never overwrites
        except FileExistsError:
            if not numbered:
                raise OperationFailed(f"{candidate} already exists") from None
            candidate = target.with_name(
                target.name.removesuffix(BACKUP_SUFFIX) + f"-{attempt}{BACKUP_SUFFIX}"
            )
            continue
        except OSError as exc:
            if candidate.exists():  # no hard links here: move it, still never overwriting
                raise OperationFailed(f"Cannot write {candidate}: {exc.strerror or exc}") from None
            os.replace(partial, candidate)
        return candidate
    raise OperationFailed(f"Too many backups named like {target}")
