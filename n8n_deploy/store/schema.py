"""Schema state: which revision a database is at, and what a command does about it.

Reading the state takes one query of ``alembic_version`` (or 0.9's ``schema_info``) and
never imports Alembic, so ordinary commands stay fast; running migrations is
``n8n_deploy.store.migrations``.  ``tests/test_migrations.py`` checks that
KNOWN_REVISIONS matches the scripts under ``migrations/versions``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from n8n_deploy.base.errors import (
    LegacyDatabaseError,
    OperationFailed,
    SchemaError,
    SchemaOutOfDateError,
    SchemaTooNewError,
    UsageError,
    cannot_read,
)
from n8n_deploy.base.text import error_text

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from n8n_deploy.store.legacy import LegacyReport


#: Every revision this program ships, oldest first.  Keep in step with migrations/versions.
KNOWN_REVISIONS: tuple[str, ...] = ("0001", "0002", "0003", "0004", "0005", "0006", "0007")
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


def position(revision: str | None) -> int:
    return -1 if revision is None else KNOWN_REVISIONS.index(revision)


# -- reading the state -------------------------------------------------------------------


def inspect_state(engine: Engine) -> SchemaState:
    """Which schema the database has, without changing it."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with engine.connect() as conn:
            return inspect_connection(conn)
    except SQLAlchemyError as exc:
        raise cannot_read(error_text(exc)) from None


def inspect_connection(conn: Connection) -> SchemaState:
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


#: What backs a server database up before an upgrade (n8n-deploy backs up SQLite itself).
SERVER_BACKUP_TOOLS = {
    "postgresql": "pg_dump",
    "mysql": "mysqldump (mariadb-dump)",
    "mariadb": "mariadb-dump",
}


def backup_advice(backend: str) -> str:
    """How an upgrade of a database on ``backend`` is backed up, for hints."""
    if backend == "sqlite":
        return "it makes a backup first"
    tool = SERVER_BACKUP_TOOLS.get(backend, "the database server's own tools")
    return f"back the database up first with {tool}: n8n-deploy backs up only SQLite files"


def refusal(state: SchemaState, backend: str = "sqlite") -> SchemaError | None:
    """The error a command that needs the newest schema raises for ``state`` (exit 3);
    ``backend`` (the SQLAlchemy dialect name) decides what the hints say about backups."""
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
            hint=f"Run 'n8n-deploy db upgrade' ({backup_advice(backend)}), "
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
            hint=f"Run 'n8n-deploy db upgrade' to carry it forward ({backup_advice(backend)})",
        )
    return SchemaTooNewError(
        "The database has tables but is not an n8n-deploy database",
        hint="Point --data-dir or --database-url at an n8n-deploy database",
    )


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
    refuse_unmigratable(state)
    if state.kind == "legacy":
        raise LegacyDatabaseError(
            "The database was made by n8n-deploy 0.9 and has no revision to downgrade from",
            hint="Run 'n8n-deploy db upgrade' first",
        )
    if state.kind == "empty":
        raise OperationFailed("The database has no schema yet; there is nothing to downgrade")
    if position(state.revision) == position(target):
        return None
    if position(state.revision) < position(target):
        raise UsageError(
            f"The database is at revision {state.revision}, which is older than {target}",
            hint=f"To go forward, run 'n8n-deploy db upgrade {target}'",
        )
    return target


def refuse_unmigratable(state: SchemaState) -> None:
    if state.kind in ("unknown", "foreign"):
        error = refusal(state)
        assert error is not None
        raise error
