"""Alembic owns the schema: one head, up and down cleanly, and the models agree with it,
on every engine (SQLite, PostgreSQL, MariaDB: the ``engine`` fixture)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from n8n_deploy.store import migrations as migrate
from n8n_deploy.store import schema
from n8n_deploy.store.engine import create_engine_for
from n8n_deploy.store.models import Base


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(migrate.alembic_config())


def _schema(engine: sa.Engine) -> dict[str, object]:
    inspector = sa.inspect(engine)
    return {
        table: (
            sorted(
                (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
            ),
            inspector.get_pk_constraint(table)["constrained_columns"],
            sorted(
                (fk["constrained_columns"][0], fk["referred_table"], fk["options"].get("ondelete"))
                for fk in inspector.get_foreign_keys(table)
            ),
            sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
        )
        for table in sorted(inspector.get_table_names())
    }


def test_there_is_a_single_head_and_the_code_knows_every_revision() -> None:
    script = script_directory()
    assert script.get_heads() == [schema.HEAD]
    shipped = [rev.revision for rev in script.walk_revisions()]
    assert list(reversed(shipped)) == list(schema.KNOWN_REVISIONS)


def test_upgrade_from_empty_creates_the_documented_tables(engine: str) -> None:
    made = create_engine_for(engine)
    migrate.upgrade(made, "head")
    tables = set(sa.inspect(made).get_table_names())
    assert {"api_keys", "servers", "server_api_keys", "alembic_version"} <= tables
    assert schema.inspect_state(made).kind == "current"
    made.dispose()


def test_downgrade_to_base_and_up_again_gives_the_same_schema(engine: str) -> None:
    made = create_engine_for(engine)
    migrate.upgrade(made, "head")
    first = _schema(made)
    migrate.downgrade(made, "base")
    assert set(sa.inspect(made).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(made, "head")
    assert _schema(made) == first
    made.dispose()


def test_models_match_what_the_migrations_create(engine: str) -> None:
    made = create_engine_for(engine)
    migrate.upgrade(made, "head")
    with made.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    made.dispose()
    assert diff == []


def test_the_link_table_cascades_from_both_sides(engine: str) -> None:
    made = create_engine_for(engine)
    migrate.upgrade(made, "head")
    fks = sa.inspect(made).get_foreign_keys("server_api_keys")
    assert {(fk["referred_table"], fk["options"].get("ondelete")) for fk in fks} == {
        ("api_keys", "CASCADE"),
        ("servers", "CASCADE"),
    }
    made.dispose()
