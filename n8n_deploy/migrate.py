"""Schema state and migrations, run from code with Alembic.

Commands call :func:`ensure_ready` before touching data.  It reads the revision stamped
in the database with one query and compares it with :data:`HEAD`, so ordinary commands
never import Alembic; only creating or upgrading a database does.
``tests/test_migrations.py`` checks that HEAD and KNOWN_REVISIONS match the scripts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from n8n_deploy.config import auto_upgrade_enabled
from n8n_deploy.errors import (
    DatabaseError,
    LegacyDatabaseError,
    SchemaOutOfDateError,
    SchemaTooNewError,
)

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Engine

    from n8n_deploy.db import Database

#: Every revision this program ships, oldest first.  Keep in step with migrations/versions.
KNOWN_REVISIONS: tuple[str, ...] = ("0001",)
HEAD = KNOWN_REVISIONS[-1]

VERSION_TABLE = "alembic_version"
MANAGED_TABLES = ("api_keys", "servers", "server_api_keys")

StateKind = Literal["empty", "current", "behind", "unknown", "legacy", "foreign"]


@dataclass(frozen=True)
class SchemaState:
    kind: StateKind
    revision: str | None = None
    legacy_version: int | None = None

    @property
    def is_current(self) -> bool:
        return self.kind == "current"


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


def inspect_state(engine: Engine) -> SchemaState:
    """Which schema the database has, without changing it."""
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            if VERSION_TABLE in tables:
                rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
                revision = rows[0][0] if rows else None
                if revision is None:
                    return SchemaState("empty" if not tables & set(MANAGED_TABLES) else "foreign")
                if revision == HEAD:
                    return SchemaState("current", revision)
                if revision in KNOWN_REVISIONS:
                    return SchemaState("behind", revision)
                return SchemaState("unknown", revision)
            if "schema_info" in tables and "api_keys" in tables:
                version = conn.execute(text("SELECT MAX(version) FROM schema_info")).scalar()
                return SchemaState("legacy", legacy_version=version)
            if not tables:
                return SchemaState("empty")
            return SchemaState("foreign")
    except SQLAlchemyError as exc:
        raise DatabaseError(f"Cannot read the database: {_short(exc)}") from None


def ensure_ready(database: Database) -> SchemaState:
    """Create a missing schema; refuse (exit 3) a database at any other revision."""
    state = inspect_state(database.engine)
    if state.kind == "current":
        return state
    if state.kind == "empty":
        upgrade(database.engine, "head")
        return inspect_state(database.engine)
    if state.kind == "behind":
        if auto_upgrade_enabled():
            upgrade(database.engine, "head")
            return inspect_state(database.engine)
        raise SchemaOutOfDateError(
            f"The database is at revision {state.revision}; this program needs {HEAD}",
            hint="Run 'n8n-deploy db upgrade' (it makes a backup first), "
            "or set N8N_DEPLOY_AUTO_UPGRADE=1",
        )
    if state.kind == "unknown":
        raise SchemaTooNewError(
            f"The database is at revision {state.revision}, which this program does not know "
            f"(newest known: {HEAD}); it was upgraded by a newer n8n-deploy",
            hint="Upgrade n8n-deploy (pip install -U n8n-deploy); the database was not changed",
        )
    if state.kind == "legacy":
        raise LegacyDatabaseError(
            f"The database was made by n8n-deploy 0.9 (schema version {state.legacy_version})",
            hint="Run 'n8n-deploy db upgrade' to carry it forward (a backup is made first)",
        )
    raise SchemaTooNewError(
        "The database has tables but is not an n8n-deploy database",
        hint="Point --data-dir or --database-url at an n8n-deploy database",
    )


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade in one transaction: a failure leaves the previous revision and every row."""
    from alembic import command

    with _migration_connection(engine) as conn:
        command.upgrade(alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    with _migration_connection(engine) as conn:
        command.downgrade(alembic_config(conn), revision)


@contextmanager
def _migration_connection(engine: Engine) -> Iterator[object]:
    """One connection, foreign keys off (batch rebuilds must not cascade), one transaction
    holding the write lock, and a foreign key check before it commits."""
    from sqlalchemy import text

    from n8n_deploy.db import create_engine_for

    url = engine.url.render_as_string(hide_password=False)
    migration_engine = engine
    if engine.dialect.name == "sqlite":
        migration_engine = create_engine_for(url, foreign_keys=False).execution_options(
            sqlite_immediate=True
        )
    try:
        with migration_engine.connect() as conn, conn.begin():
            yield conn
            if engine.dialect.name == "sqlite":
                problems = conn.execute(text("PRAGMA foreign_key_check")).all()
                managed = [row for row in problems if row[0] in MANAGED_TABLES]
                if managed:
                    raise DatabaseError(
                        f"Migration left {len(managed)} rows with broken links; "
                        "rolled back, nothing changed"
                    )
    finally:
        if migration_engine is not engine:
            migration_engine.engine.dispose()


def _short(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return text[:200]
