"""What opening the database does: create a missing schema, upgrade one that is behind
when N8N_DEPLOY_AUTO_UPGRADE asks for it, refuse (exit 3) any other.

Commands call :func:`open_database` before touching data.  Creating a schema imports
Alembic (and ``store.migrations``, imported only then); a database already at the newest
revision costs one query.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine, text

from n8n_deploy.base.settings import DEFAULT_LOCK_TIMEOUT, Settings
from n8n_deploy.store.engine import (
    MYSQL_DIALECTS,
    Database,
    create_engine_for,
    enable_wal,
    engine_path,
)
from n8n_deploy.store.files import (
    check_database_place,
    fix_sqlite_permissions,
    removed_if_left_empty,
)
from n8n_deploy.store.schema import MigrationReport, SchemaState, inspect_state, refusal

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Connection


def open_database(settings: Settings) -> Database:
    """Open the configured database and make sure its schema is the one this program uses.

    A missing or empty database is created at the newest revision; a database behind it,
    newer than this program or from n8n-deploy 0.9 is refused with a SchemaError (exit
    status 3).  With ``settings.auto_upgrade`` (N8N_DEPLOY_AUTO_UPGRADE), one behind is
    backed up and upgraded instead (``Database.migration`` says what was done).
    """
    with removed_if_left_empty(settings.database_path):
        engine = create_engine_for(settings.database_url)
        database = Database(settings, engine)
        try:
            database.migration = ensure_ready(
                database, auto_upgrade=settings.auto_upgrade, lock_timeout=settings.lock_timeout
            )
            database.warnings.extend(collation_warnings(engine))
            database.before_write = _pruner(settings.actor)
        except BaseException:
            engine.dispose()
            raise
    return database


def _pruner(actor: str) -> Callable[[Connection], object]:
    """Pruning ephemeral keys past their deadline (one read when none is): what every
    writing unit of work does first (``Database.before_write``)."""

    def prune(conn: Connection) -> object:
        from n8n_deploy.store.pruning import prune_if_due

        return prune_if_due(conn, actor=actor)

    return prune


def prune_when_current(engine: Engine, actor: str) -> None:
    """What a writing unit of work does first (``_pruner``), for the ``db`` commands that
    change a database without opening it as a ``Database`` (upgrade, downgrade, restore):
    only at the newest revision, the only one whose keys have deadlines n8n-deploy
    knows."""
    if not inspect_state(engine).is_current:
        return
    try:
        with engine.execution_options(sqlite_immediate=True).connect() as conn, conn.begin():
            _pruner(actor)(conn)
    finally:
        path = engine_path(engine)
        if path is not None:
            fix_sqlite_permissions(path)


def ensure_ready(
    database: Database, *, auto_upgrade: bool = False, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> MigrationReport | None:
    """Create a missing schema; upgrade (with a backup) when ``auto_upgrade``; refuse (exit
    3) a database at any other revision.  Returns what was migrated, if anything.

    On a database server, creating the schema takes the migration lock and reads the state
    again under it (many runners may start on one new database at once), and a state that
    would be refused is read again under the lock first: it may be a schema being created."""
    engine = database.engine
    state = inspect_state(engine)
    if state.kind == "current":
        enable_wal(engine)
        return None
    from n8n_deploy.store import migrations

    if state.kind not in ("empty", "behind"):
        state = migrations.settled_state(engine, lock_timeout)
        if state.kind == "current":
            return None
    if state.kind == "empty":
        return migrations.upgrade(engine, "head", lock_timeout=lock_timeout)
    if state.kind == "behind" and auto_upgrade:
        return migrations.upgrade_database(engine, "head", lock_timeout=lock_timeout)
    error = refusal(state, backend=engine.dialect.name)
    assert error is not None
    raise error


def inspect_settings(settings: Settings) -> SchemaState:
    """The state of the configured database, without creating a missing file.  A path no
    command could create a database at is refused as every command refuses it."""
    path = settings.database_path
    if path is not None and not path.exists():
        check_database_place(path)
        return SchemaState("empty")
    engine = create_engine_for(settings.database_url, create_file=False)
    try:
        return inspect_state(engine)
    finally:
        engine.dispose()


#: The columns that must compare exactly: names and keys.
EXACT_COLUMNS = (("api_keys", "name"), ("api_keys", "api_key"), ("servers", "name"))


def collation_warnings(engine: Engine) -> list[str]:
    """On MariaDB/MySQL, a warning for each name or key column that does not compare
    exactly (revision 0004 made them utf8mb4_bin; someone may have altered them since)."""
    if engine.dialect.name not in MYSQL_DIALECTS:
        return []
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT TABLE_NAME, COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('api_keys', 'servers')"
            )
        ).all()
    found = {(table, column): collation for table, column, collation in rows}
    return [
        f"{table}.{column} compares text with {found[(table, column)]}, not utf8mb4_bin: "
        "names or keys that differ only in case, accents or emoji are taken for the same. "
        f"Fix it with: ALTER TABLE {table} CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        for table, column in EXACT_COLUMNS
        if found.get((table, column)) not in (None, "utf8mb4_bin")
    ]
