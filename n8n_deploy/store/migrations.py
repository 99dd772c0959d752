"""Running migrations with Alembic: upgrades, downgrades and the 0.9 import.

Every migration (upgrade, downgrade, and the import of an n8n-deploy 0.9 database) runs on
one connection in one ``BEGIN IMMEDIATE`` transaction with foreign keys off: SQLite's DDL is
transactional, so a failure part-way leaves the previous revision and every row; a second
process starting an upgrade at the same time waits for the first (busy timeout) and then
finds nothing left to do.  :func:`upgrade_database` and :func:`downgrade_database` write a
backup of a SQLite file first, once they hold the write lock and have found, reading the
state again, that there is something to do: a process that waited for another's upgrade
writes no backup.  The backup is read through a second connection: SQLite's backup API
refuses a source connection that is in a write transaction, and a reader is never blocked
by the write lock this one holds before it has written anything.

Alembic is imported only when a migration runs or the scripts are listed.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from n8n_deploy.base import interrupts
from n8n_deploy.base.errors import DatabaseError, N8nDeployError, UsageError
from n8n_deploy.base.text import error_text
from n8n_deploy.store import legacy
from n8n_deploy.store.backups import create_backup
from n8n_deploy.store.engine import MYSQL_DIALECTS, create_engine_for, enable_wal, engine_path
from n8n_deploy.store.files import fix_sqlite_permissions
from n8n_deploy.store.locks import DEFAULT_LOCK_TIMEOUT, migration_lock
from n8n_deploy.store.schema import (
    FIRST,
    MANAGED_TABLES,
    MigrationReport,
    Revision,
    SchemaState,
    Step,
    downgrade_target,
    inspect_connection,
    inspect_state,
    position,
    refuse_unmigratable,
    resolve_revision,
)

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection, Engine

# Alembic imports Mako (the templates of `alembic revision`), and Mako, finding Pygments
# (which rich brings), loads a syntax highlighter for its HTML error pages: a quarter of
# Alembic's import time, in every migration, for a page this program never renders.
# Without it Mako escapes such a page as plain text.
sys.modules.setdefault("mako.ext.pygmentplugin", None)  # type: ignore[arg-type]


def script_location() -> Path:
    """The migrations folder: n8n_deploy.migrations when installed (or in a checkout)."""
    return Path(str(resources.files("n8n_deploy.migrations")))


def alembic_config(connection: object | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def shipped_revisions() -> list[Revision]:
    """The revisions in the migration scripts, newest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return [
        Revision(rev.revision, (rev.doc or "").strip().rstrip("."))
        for rev in script.walk_revisions()
    ]


# -- upgrading and downgrading -------------------------------------------------------------


def upgrade_database(
    engine: Engine,
    revision: str = "head",
    *,
    backup: bool = True,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> MigrationReport:
    """Upgrade to ``revision`` (default: the newest), backing up a SQLite file first.

    Carries an n8n-deploy 0.9 database forward too.  Refuses (exit 3) a database at a
    revision this program does not know, and leaves it untouched.  On a database server
    the upgrade holds the migration lock; waiting for it longer than ``lock_timeout``
    seconds is an error naming who holds it.
    """
    target = resolve_revision(revision)
    state = settled_state(engine, lock_timeout)
    refuse_unmigratable(state)
    if state.kind in ("current", "behind"):
        if position(state.revision) == position(target):
            return MigrationReport(before=state, after=state.revision)
        if position(state.revision) > position(target):
            raise UsageError(
                f"The database is at revision {state.revision}, which is newer than {target}",
                hint=f"To go back, run 'n8n-deploy db downgrade {target}'",
            )
    return _run_migration(engine, target, upgrade=True, backup=backup, lock_timeout=lock_timeout)


def downgrade_database(
    engine: Engine,
    revision: str,
    *,
    backup: bool = True,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> MigrationReport:
    """Downgrade to ``revision``, backing up a SQLite file first; every row is kept.

    The first revision is the floor: below it there is no schema to keep rows in.
    """
    state = settled_state(engine, lock_timeout)
    target = downgrade_target(state, revision)
    if target is None:
        return MigrationReport(before=state, after=state.revision)
    return _run_migration(engine, target, upgrade=False, backup=backup, lock_timeout=lock_timeout)


def upgrade(
    engine: Engine, revision: str = "head", *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> MigrationReport:
    """Upgrade without a backup (a new database, or tests), under the migration lock."""
    return _run_migration(engine, revision, upgrade=True, lock_timeout=lock_timeout)


def downgrade(engine: Engine, revision: str) -> MigrationReport:
    """Downgrade without a backup; ``base`` drops every table."""
    return _run_migration(engine, revision, upgrade=False)


def settled_state(engine: Engine, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> SchemaState:
    """The state, read again under the migration lock when it looks like something this
    program would refuse: on a server, it may be a schema another process is creating."""
    state = inspect_state(engine)
    if state.kind in ("foreign", "unknown") and engine.dialect.name != "sqlite":
        return locked_state(engine, lock_timeout)
    return state


def _backup_before_migrating(path: Path | None, state: SchemaState) -> Path | None:
    """Call holding the write lock, before writing: the backup is read on its own
    connection, which the lock does not block (see the module's docstring)."""
    if path is None or not path.exists() or not state.tables:
        return None  # nothing worth keeping yet, or not a file (use the server's own tools)
    return create_backup(path)


def _run_migration(
    engine: Engine,
    revision: str,
    *,
    upgrade: bool,
    backup: bool = False,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> MigrationReport:
    from alembic import command
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    target = None if revision == "base" else resolve_revision(revision)
    path = engine_path(engine)  # the SQLite file, if it is one: resolved once
    transactional = engine.dialect.name not in MYSQL_DIALECTS
    steps: list[Step] = []
    notes: list[str] = []
    report = MigrationReport(before=SchemaState("empty"), after=None, steps=steps, notes=notes)
    try:
        with _migration_connection(engine, lock_timeout) as conn:
            # Read the state again under the lock: another process may have migrated the
            # database while this one was waiting for it.
            state = inspect_connection(conn)
            report.before = state
            report.after = state.revision
            refuse_unmigratable(state)
            here = -1 if state.kind in ("empty", "legacy") else position(state.revision)
            if (here >= position(target)) if upgrade else (here <= position(target)):
                return report
            if backup:
                report.backup = _backup_before_migrating(path, state)
            if not transactional:
                conn.commit()  # MariaDB/MySQL: Alembic commits each revision on its own
            config = alembic_config(conn)
            config.attributes["on_version_apply"] = _step_recorder(steps, kept=not transactional)
            config.attributes["notes"] = notes
            config.attributes["transaction_per_migration"] = not transactional
            if not upgrade:
                command.downgrade(config, target or "base")
            else:
                if state.kind == "legacy":
                    report.legacy = legacy.import_legacy(
                        conn, create_first_revision=lambda: command.upgrade(config, FIRST)
                    )
                command.upgrade(config, target or "head")
            report.after = inspect_connection(conn).revision
            if not transactional:
                with interrupts.saving(hold=False):  # MariaDB/MySQL: the upgrade is kept
                    conn.commit()
    except N8nDeployError:
        raise
    except OperationalError as exc:
        if "locked" in str(exc.orig):
            raise DatabaseError(
                "The database is locked by another n8n-deploy process (an upgrade may be "
                "in progress)",
                hint="Try again when it has finished; nothing was changed",
            ) from None
        raise _failed(engine, error_text(exc), report, transactional) from None
    except SQLAlchemyError as exc:
        raise _failed(engine, error_text(exc), report, transactional) from None
    except Exception as exc:
        if isinstance(exc, engine.dialect.loaded_dbapi.Error):
            # The driver's own error, from a bulk read on its cursor (the 0.9 import, a
            # revision's 10,000 rows): what SQLAlchemy would have wrapped, said alike.
            raise _failed(engine, error_text(exc), report, transactional) from None
        # A bug in a migration script: report its type only (its text could quote data).
        raise _failed(engine, type(exc).__name__, report, transactional) from exc
    enable_wal(engine)
    if path is not None:
        fix_sqlite_permissions(path)
    return report


#: sqlite3's error for text that is not UTF-8 (0.9 files written by other tools).
_NOT_UTF8 = re.compile(r"Could not decode to UTF-8 column '(?P<column>[A-Za-z_][A-Za-z0-9_]*)'")


def _failed(
    engine: Engine, reason: str, report: MigrationReport, transactional: bool
) -> DatabaseError:
    """The error for a migration that failed: rolled back where the database's DDL is
    transactional; elsewhere (MariaDB/MySQL) the revision it really reached, read again."""
    if transactional:
        undecodable = _NOT_UTF8.search(reason)
        if undecodable is not None:
            column = undecodable["column"]
            return DatabaseError(
                f"The migration failed ({reason}): a value in that column is not UTF-8 "
                "text (another program wrote it); the database was rolled back, every row "
                "kept",
                hint=f"Find it with the sqlite3 shell (SELECT rowid, hex({column}) FROM "  # noqa: S608 - advice, never run
                f"api_keys; or FROM servers), correct or clear it, then run the command again",
            )
        return DatabaseError(
            f"The migration failed ({reason})",
            hint="It was rolled back: the database is at its previous revision with every row",
        )
    try:
        reached = inspect_state(engine).describe()
    except N8nDeployError:
        reached = "unknown (it could not be read)"
    done = ", ".join(step.target for step in report.steps) or "none"
    return DatabaseError(
        f"The migration failed ({reason}); revisions applied before it: {done}; the "
        f"database is now at revision {reached}",
        hint="MariaDB and MySQL cannot roll schema changes back, so each revision is "
        "applied and recorded on its own. Fix the cause and run the command again; see "
        "docs/database.md if the failed revision left part of its changes behind",
    )


def _step_recorder(steps: list[Step], *, kept: bool) -> Callable[..., None]:
    """Records each revision applied in ``steps``; ``kept``: the database has committed it
    already (MariaDB/MySQL), so an interrupt from then on says a change is kept."""

    def record(*, step: Any, **_: Any) -> None:
        source = ",".join(step.source_revision_ids) or "base"
        target = ",".join(step.destination_revision_ids) or "base"
        script = step.up_revision
        doc = ((script.doc if script is not None else "") or "").strip().rstrip(".")
        steps.append(Step(source, target, doc if step.is_upgrade else f"undo: {doc}"))
        if kept:
            interrupts.note_saved()

    return record


@contextmanager
def _migration_connection(engine: Engine, lock_timeout: float) -> Iterator[Connection]:
    """One connection holding the migration lock.

    SQLite: foreign keys off (batch rebuilds must not cascade), one transaction holding
    the file's write lock, and a foreign key check before it commits.  PostgreSQL: the
    advisory lock, then one transaction (its DDL is transactional).  MariaDB/MySQL: the
    named lock, outside any transaction (the caller commits each revision)."""
    dialect = engine.dialect.name
    if dialect == "sqlite":
        url = engine.url.render_as_string(hide_password=False)
        migration_engine = create_engine_for(url, foreign_keys=False).execution_options(
            sqlite_immediate=True
        )
        try:
            with migration_engine.connect() as conn:
                transaction = conn.begin()
                try:
                    sequences = _sqlite_sequences(conn)
                    yield conn
                    _check_links(conn)
                    _keep_sequences(conn, sequences)
                except BaseException:
                    transaction.rollback()
                    raise
                with interrupts.saving(hold=False):  # a Ctrl-C now: the upgrade is kept
                    transaction.commit()
        finally:
            migration_engine.dispose()
        return
    with engine.connect() as conn, migration_lock(conn, lock_timeout):
        if dialect in MYSQL_DIALECTS:
            yield conn
        else:
            transaction = conn.begin()
            try:
                yield conn
            except BaseException:
                transaction.rollback()
                raise
            with interrupts.saving(hold=False):
                transaction.commit()


def locked_state(engine: Engine, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> SchemaState:
    """The schema state read while holding the migration lock: on a server, a process that
    is creating or upgrading the schema right now has finished when this returns (on
    MariaDB a schema half-created would otherwise look like another program's)."""
    if engine.dialect.name == "sqlite":
        return inspect_state(engine)  # SQLite's migrations are one transaction
    with engine.connect() as conn, migration_lock(conn, lock_timeout):
        state = inspect_connection(conn)
        conn.commit()
        return state


def _check_links(conn: Connection) -> None:
    from sqlalchemy import inspect

    present = set(inspect(conn).get_table_names())
    broken = 0
    for table in MANAGED_TABLES:
        if table in present:
            broken += len(conn.exec_driver_sql(f"PRAGMA foreign_key_check({table})").all())
    if broken:
        raise DatabaseError(
            f"The migration left {broken} rows with broken links; rolled back, nothing changed"
        )


def _sqlite_sequences(conn: Connection) -> dict[str, int]:
    """AUTOINCREMENT counters of our tables: a table rebuild would otherwise reset them to
    the highest id in use, and ids of deleted rows (which 0.9's own tables may still
    reference) could be handed out again."""
    exists = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'"
    ).first()
    if exists is None:
        return {}
    rows = conn.exec_driver_sql("SELECT name, seq FROM sqlite_sequence").all()
    return {name: int(seq) for name, seq in rows if name in MANAGED_TABLES and seq is not None}


def _keep_sequences(conn: Connection, saved: dict[str, int]) -> None:
    from sqlalchemy import text

    for name, seq in saved.items():
        create_sql = conn.execute(
            text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :n"), {"n": name}
        ).scalar()
        if not create_sql or "AUTOINCREMENT" not in create_sql.upper():
            continue
        current = conn.execute(
            text("SELECT seq FROM sqlite_sequence WHERE name = :n"), {"n": name}
        ).scalar()
        if current is None:
            conn.execute(
                text("INSERT INTO sqlite_sequence (name, seq) VALUES (:n, :s)"),
                {"n": name, "s": seq},
            )
        elif int(current) < seq:
            conn.execute(
                text("UPDATE sqlite_sequence SET seq = :s WHERE name = :n"), {"n": name, "s": seq}
            )
