"""Schema state and migrations, run from code with Alembic.

Commands call :func:`ensure_ready` before touching data.  It reads the revision stamped
in the database with one query and compares it with :data:`HEAD`, so ordinary commands
never import Alembic; only creating, upgrading or downgrading a database does.
``tests/test_migrations.py`` checks that HEAD and KNOWN_REVISIONS match the scripts.

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
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from n8n_deploy.config import auto_upgrade_enabled
from n8n_deploy.errors import (
    DatabaseError,
    LegacyDatabaseError,
    N8nDeployError,
    OperationFailed,
    SchemaError,
    SchemaOutOfDateError,
    SchemaTooNewError,
    UsageError,
)

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection, Engine

    from n8n_deploy.config import Settings
    from n8n_deploy.db import Database
    from n8n_deploy.legacy import LegacyReport

#: Every revision this program ships, oldest first.  Keep in step with migrations/versions.
KNOWN_REVISIONS: tuple[str, ...] = ("0001", "0002", "0003")
HEAD = KNOWN_REVISIONS[-1]
FIRST = KNOWN_REVISIONS[0]

VERSION_TABLE = "alembic_version"
MANAGED_TABLES = ("api_keys", "servers", "server_api_keys")

StateKind = Literal["empty", "current", "behind", "unknown", "legacy", "foreign"]


@dataclass(frozen=True)
class SchemaState:
    kind: StateKind
    revision: str | None = None
    legacy_version: int | None = None
    tables: frozenset[str] = frozenset()

    @property
    def is_current(self) -> bool:
        return self.kind == "current"

    @property
    def upgrade_needed(self) -> bool:
        return self.kind in ("behind", "legacy")

    def describe(self) -> str:
        """The revision as people read it: ``0002``, ``0.9 (schema version 8)``, ``none``."""
        if self.kind == "legacy":
            return f"0.9 (schema version {self.legacy_version})"
        return self.revision or "none"


@dataclass(frozen=True)
class Revision:
    """A revision this program ships."""

    revision: str
    description: str


@dataclass(frozen=True)
class Step:
    """One migration step that was applied."""

    source: str  # a revision, or "base"
    target: str
    description: str

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}: {self.description}"


@dataclass
class MigrationReport:
    """What an upgrade or downgrade did (nothing, when ``steps`` is empty and no 0.9 import)."""

    before: SchemaState
    after: str | None
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    backup: Path | None = None
    legacy: LegacyReport | None = None

    @property
    def changed(self) -> bool:
        return bool(self.steps) or self.legacy is not None


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


def resolve_revision(revision: str) -> str:
    """``head`` or a known revision id; anything else is a usage error (exit 2)."""
    wanted = revision.strip()
    if wanted.lower() == "head":
        return HEAD
    if wanted in KNOWN_REVISIONS:
        return wanted
    raise UsageError(
        f"Unknown revision '{revision}'",
        hint=f"This program knows {', '.join(KNOWN_REVISIONS)} (see 'n8n-deploy db history')",
    )


def _position(revision: str | None) -> int:
    return -1 if revision is None else KNOWN_REVISIONS.index(revision)


def database_path(engine: Engine) -> Path | None:
    """The SQLite file behind ``engine``; None for other databases and memory."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    return Path(str(engine.url.database)).expanduser().absolute()


# -- reading the state -------------------------------------------------------------------


def inspect_state(engine: Engine) -> SchemaState:
    """Which schema the database has, without changing it."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with engine.connect() as conn:
            return _inspect_connection(conn)
    except SQLAlchemyError as exc:
        raise DatabaseError(f"Cannot read the database: {_short(exc)}") from None


def inspect_settings(settings: Settings) -> SchemaState:
    """The state of the configured database, without creating a missing file."""
    from n8n_deploy.db import create_engine_for

    path = settings.database_path
    if path is not None and not path.exists():
        return SchemaState("empty")
    engine = create_engine_for(settings.database_url, create_file=False)
    try:
        return inspect_state(engine)
    finally:
        engine.dispose()


def _inspect_connection(conn: Connection) -> SchemaState:
    from sqlalchemy import inspect, text

    tables = frozenset(inspect(conn).get_table_names())
    if VERSION_TABLE in tables:
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        revision = rows[0][0] if rows else None
        if revision is None:
            kind: StateKind = "empty" if not tables & set(MANAGED_TABLES) else "foreign"
            return SchemaState(kind, tables=tables)
        if revision == HEAD:
            return SchemaState("current", revision, tables=tables)
        if revision in KNOWN_REVISIONS:
            return SchemaState("behind", revision, tables=tables)
        return SchemaState("unknown", revision, tables=tables)
    if "schema_info" in tables and "api_keys" in tables:
        version = conn.execute(text("SELECT MAX(version) FROM schema_info")).scalar()
        return SchemaState("legacy", legacy_version=version, tables=tables)
    if not tables:
        return SchemaState("empty")
    return SchemaState("foreign", tables=tables)


def refusal(state: SchemaState) -> SchemaError | None:
    """The error a command that needs the newest schema raises for ``state`` (exit 3)."""
    if state.kind == "current":
        return None
    if state.kind == "empty":
        return SchemaOutOfDateError(
            "The database has no schema yet",
            hint="Run 'n8n-deploy db init' (any command that stores data creates it too)",
        )
    if state.kind == "behind":
        return SchemaOutOfDateError(
            f"The database is at revision {state.revision}; this program needs {HEAD}",
            hint="Run 'n8n-deploy db upgrade' (it makes a backup first), "
            "or set N8N_DEPLOY_AUTO_UPGRADE=1",
        )
    if state.kind == "unknown":
        return SchemaTooNewError(
            f"The database is at revision {state.revision}, which this program does not know "
            f"(newest known: {HEAD}); it was upgraded by a newer n8n-deploy",
            hint="Upgrade n8n-deploy (pip install -U n8n-deploy); the database was not changed",
        )
    if state.kind == "legacy":
        return LegacyDatabaseError(
            f"The database was made by n8n-deploy 0.9 (schema version {state.legacy_version})",
            hint="Run 'n8n-deploy db upgrade' to carry it forward (a backup is made first)",
        )
    return SchemaTooNewError(
        "The database has tables but is not an n8n-deploy database",
        hint="Point --data-dir or --database-url at an n8n-deploy database",
    )


def ensure_ready(database: Database) -> MigrationReport | None:
    """Create a missing schema; upgrade (with a backup) when N8N_DEPLOY_AUTO_UPGRADE is set;
    refuse (exit 3) a database at any other revision.  Returns what was migrated, if anything.
    """
    from n8n_deploy.db import enable_wal

    engine = database.engine
    state = inspect_state(engine)
    if state.kind == "current":
        enable_wal(engine)
        return None
    if state.kind == "empty":
        return upgrade(engine, "head")
    if state.kind == "behind" and auto_upgrade_enabled():
        return upgrade_database(engine, "head")
    error = refusal(state)
    assert error is not None
    raise error


# -- upgrading and downgrading -------------------------------------------------------------


def upgrade_database(
    engine: Engine, revision: str = "head", *, backup: bool = True
) -> MigrationReport:
    """Upgrade to ``revision`` (default: the newest), backing up a SQLite file first.

    Carries an n8n-deploy 0.9 database forward too.  Refuses (exit 3) a database at a
    revision this program does not know, and leaves it untouched.
    """
    target = resolve_revision(revision)
    state = inspect_state(engine)
    _refuse_unmigratable(state)
    if state.kind in ("current", "behind"):
        if _position(state.revision) == _position(target):
            return MigrationReport(before=state, after=state.revision)
        if _position(state.revision) > _position(target):
            raise UsageError(
                f"The database is at revision {state.revision}, which is newer than {target}",
                hint=f"To go back, run 'n8n-deploy db downgrade {target}'",
            )
    return _run_migration(engine, target, upgrade=True, backup=backup)


def downgrade_database(engine: Engine, revision: str, *, backup: bool = True) -> MigrationReport:
    """Downgrade to ``revision``, backing up a SQLite file first; every row is kept.

    The first revision is the floor: below it there is no schema to keep rows in.
    """
    state = inspect_state(engine)
    target = downgrade_target(state, revision)
    if target is None:
        return MigrationReport(before=state, after=state.revision)
    return _run_migration(engine, target, upgrade=False, backup=backup)


def downgrade_revision(revision: str) -> str:
    """The known revision ``db downgrade REVISION`` goes to; ``base`` and unknown ones are
    usage errors (exit 2), found before the database is even opened."""
    if revision.strip().lower() == "base":
        raise UsageError(
            f"n8n-deploy does not downgrade below its first revision ({FIRST}): "
            "that would delete every key and server",
            hint=f"Give a revision from {FIRST} to {HEAD} (see 'n8n-deploy db history')",
        )
    return resolve_revision(revision)


def downgrade_target(state: SchemaState, revision: str) -> str | None:
    """The revision a downgrade of a database in ``state`` goes to; None when it is there
    already.  Raises for everything a downgrade refuses, before anything is asked or done."""
    target = downgrade_revision(revision)
    _refuse_unmigratable(state)
    if state.kind == "legacy":
        raise LegacyDatabaseError(
            "The database was made by n8n-deploy 0.9 and has no revision to downgrade from",
            hint="Run 'n8n-deploy db upgrade' first",
        )
    if state.kind == "empty":
        raise OperationFailed("The database has no schema yet; there is nothing to downgrade")
    if _position(state.revision) == _position(target):
        return None
    if _position(state.revision) < _position(target):
        raise UsageError(
            f"The database is at revision {state.revision}, which is older than {target}",
            hint=f"To go forward, run 'n8n-deploy db upgrade {target}'",
        )
    return target


def upgrade(engine: Engine, revision: str = "head") -> MigrationReport:
    """Upgrade in one transaction, without a backup (a new database, or tests)."""
    return _run_migration(engine, revision, upgrade=True)


def downgrade(engine: Engine, revision: str) -> MigrationReport:
    """Downgrade in one transaction, without a backup; ``base`` drops every table."""
    return _run_migration(engine, revision, upgrade=False)


def _refuse_unmigratable(state: SchemaState) -> None:
    if state.kind in ("unknown", "foreign"):
        error = refusal(state)
        assert error is not None
        raise error


def _backup_before_migrating(engine: Engine, state: SchemaState) -> Path | None:
    """Call holding the write lock, before writing: the backup is read on its own
    connection, which the lock does not block (see the module's docstring)."""
    from n8n_deploy.backup import create_backup

    path = database_path(engine)
    if path is None or not path.exists() or not state.tables:
        return None  # nothing worth keeping yet, or not a file (use the server's own tools)
    return create_backup(path)


def _run_migration(
    engine: Engine, revision: str, *, upgrade: bool, backup: bool = False
) -> MigrationReport:
    from alembic import command
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    from n8n_deploy import legacy
    from n8n_deploy.db import enable_wal, fix_sqlite_permissions

    target = None if revision == "base" else resolve_revision(revision)
    steps: list[Step] = []
    notes: list[str] = []
    report = MigrationReport(before=SchemaState("empty"), after=None, steps=steps, notes=notes)
    try:
        with _migration_connection(engine) as conn:
            # Read the state again under the write lock: another process may have migrated
            # the database while this one was waiting for it.
            state = _inspect_connection(conn)
            report.before = state
            report.after = state.revision
            _refuse_unmigratable(state)
            here = -1 if state.kind in ("empty", "legacy") else _position(state.revision)
            if (here >= _position(target)) if upgrade else (here <= _position(target)):
                return report
            if backup:
                report.backup = _backup_before_migrating(engine, state)
            config = alembic_config(conn)
            config.attributes["on_version_apply"] = _step_recorder(steps)
            config.attributes["notes"] = notes
            if not upgrade:
                command.downgrade(config, target or "base")
            else:
                if state.kind == "legacy":
                    report.legacy = legacy.import_legacy(
                        conn, create_first_revision=lambda: command.upgrade(config, FIRST)
                    )
                command.upgrade(config, target or "head")
            report.after = _inspect_connection(conn).revision
    except N8nDeployError:
        raise
    except OperationalError as exc:
        if "locked" in str(exc.orig):
            raise DatabaseError(
                "The database is locked by another n8n-deploy process (an upgrade may be "
                "in progress)",
                hint="Try again when it has finished; nothing was changed",
            ) from None
        raise _failed(_short(exc)) from None
    except SQLAlchemyError as exc:
        raise _failed(_short(exc)) from None
    except Exception as exc:
        # A bug in a migration script: report its type only (its text could quote data).
        raise _failed(type(exc).__name__) from exc
    enable_wal(engine)
    path = database_path(engine)
    if path is not None:
        fix_sqlite_permissions(path)
    return report


def _failed(reason: str) -> DatabaseError:
    return DatabaseError(
        f"The migration failed ({reason})",
        hint="It was rolled back: the database is at its previous revision with every row",
    )


def _step_recorder(steps: list[Step]) -> Callable[..., None]:
    def record(*, step: Any, **_: Any) -> None:
        source = ",".join(step.source_revision_ids) or "base"
        target = ",".join(step.destination_revision_ids) or "base"
        script = step.up_revision
        doc = ((script.doc if script is not None else "") or "").strip().rstrip(".")
        steps.append(Step(source, target, doc if step.is_upgrade else f"undo: {doc}"))

    return record


@contextmanager
def _migration_connection(engine: Engine) -> Iterator[Connection]:
    """One connection, foreign keys off (batch rebuilds must not cascade), one transaction
    holding the write lock, and a foreign key check before it commits."""
    from n8n_deploy.db import create_engine_for

    url = engine.url.render_as_string(hide_password=False)
    migration_engine = engine
    sqlite = engine.dialect.name == "sqlite"
    if sqlite:
        migration_engine = create_engine_for(url, foreign_keys=False).execution_options(
            sqlite_immediate=True
        )
    try:
        with migration_engine.connect() as conn, conn.begin():
            sequences = _sqlite_sequences(conn) if sqlite else {}
            yield conn
            if sqlite:
                _check_links(conn)
                _keep_sequences(conn, sequences)
    finally:
        if migration_engine is not engine:
            migration_engine.engine.dispose()


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


def _short(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return text[:200]
