"""Alembic environment.

Run from code by ``n8n_deploy.store.migrations`` (which passes an open connection inside one
transaction, foreign keys off so batch table rebuilds cannot cascade), or by a developer
with the ``alembic`` command, in which case the database is resolved like the CLI does.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

# The Core tables (the ORM classes map these same objects): migrating imports no ORM.
from n8n_deploy.store.metadata import metadata

config = context.config
target_metadata = metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite can only ALTER by rebuilding the table
        compare_type=True,
        # n8n_deploy.store.migrations records each step applied, to print it.
        on_version_apply=config.attributes.get("on_version_apply"),
        # MariaDB/MySQL cannot roll DDL back: each revision is committed on its own, so
        # that the revision recorded is always the one the schema is at.
        transaction_per_migration=config.attributes.get("transaction_per_migration", False),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from n8n_deploy.base.settings import resolve_settings
    from n8n_deploy.store.engine import create_engine_for

    url = config.get_main_option("sqlalchemy.url") or resolve_settings().database_url
    engine = create_engine_for(url, foreign_keys=False)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("n8n-deploy migrations run online only (alembic upgrade head)")
run_migrations_online()
