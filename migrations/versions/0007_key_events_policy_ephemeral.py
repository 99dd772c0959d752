"""Key hygiene: an audit trail of key events, the team's policy, and ephemeral keys.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

- ``key_events``: one row per change to a key (added, tested, rotated, activated,
  deactivated, deleted, read, linked, unlinked, described, renamed, pruned), with when
  (UTC), who, and the key's name at the time.  No foreign key: events outlive their key.
  Never the key itself.
- ``registry_settings``: the team's audit policy (``policy set``) and the moment keys were
  last pruned, shared by everyone using the database.
- ``api_keys.delete_after``: the deadline of an ephemeral key (``apikey add --ttl``).

So that history starts complete, the upgrade gives every key one ``added`` event at its
``created_at``, marked as reconstructed (who added it is not known).  The downgrade drops
the two tables and the column: the history and the policy are lost, and ephemeral keys
become ordinary keys (reported).  Each step is skipped when already done, so a revision
that failed part-way on MariaDB (which cannot roll DDL back) is finished by running it
again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

MYSQL = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def _timestamp() -> sa.types.TypeEngine[object]:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


api_keys = sa.table(
    "api_keys",
    sa.column("id", sa.Integer()),
    sa.column("name", sa.String()),
    sa.column("created_at", sa.DateTime()),
    sa.column("delete_after", sa.DateTime()),
)
key_events = sa.table(
    "key_events",
    sa.column("at", sa.DateTime()),
    sa.column("kind", sa.String()),
    sa.column("key_name", sa.String()),
    sa.column("key_id", sa.Integer()),
    sa.column("actor", sa.String()),
    sa.column("detail", sa.Text()),
    sa.column("reconstructed", sa.Boolean()),
)


def upgrade() -> None:
    bind = op.get_bind()
    present = set(sa.inspect(bind).get_table_names())
    if "key_events" not in present:
        op.create_table(
            "key_events",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("at", _timestamp(), nullable=False),
            sa.Column("kind", sa.String(length=32), nullable=False),
            sa.Column("key_name", sa.String(length=255), nullable=False),
            sa.Column("key_id", sa.Integer(), nullable=True),
            sa.Column("other_name", sa.String(length=255), nullable=True),
            sa.Column("server", sa.String(length=2048), nullable=True),
            sa.Column("outcome", sa.String(length=32), nullable=True),
            sa.Column("detail", sa.Text(), nullable=True),
            sa.Column("actor", sa.String(length=255), nullable=False),
            sa.Column("reconstructed", sa.Boolean(), server_default=sa.false(), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_key_events")),
            sqlite_autoincrement=True,
            **MYSQL,
        )
        op.create_index(op.f("ix_key_events_at"), "key_events", ["at"])
        op.create_index(op.f("ix_key_events_key_id"), "key_events", ["key_id"])
        op.create_index(op.f("ix_key_events_key_name"), "key_events", ["key_name"])
        # History starts complete: each key was added at its created_at, by someone.
        bind.execute(
            key_events.insert().from_select(
                ["at", "kind", "key_name", "key_id", "actor", "detail", "reconstructed"],
                sa.select(
                    api_keys.c.created_at,
                    sa.literal("added"),
                    api_keys.c.name,
                    api_keys.c.id,
                    sa.literal("unknown"),
                    sa.literal("reconstructed when the audit trail was introduced"),
                    sa.true(),
                ),
            )
        )
    if "registry_settings" not in present:
        op.create_table(
            "registry_settings",
            sa.Column("name", sa.String(length=64), nullable=False),
            sa.Column("value", sa.String(length=255), nullable=False),
            sa.Column("updated_at", _timestamp(), nullable=False),
            sa.Column("updated_by", sa.String(length=255), nullable=False),
            sa.PrimaryKeyConstraint("name", name=op.f("pk_registry_settings")),
            **MYSQL,
        )
    columns = {c["name"] for c in sa.inspect(bind).get_columns("api_keys")}
    if "delete_after" not in columns:
        op.add_column("api_keys", sa.Column("delete_after", _timestamp(), nullable=True))


def downgrade() -> None:
    bind = op.get_bind()
    ephemeral = [
        row[0]
        for row in bind.execute(
            sa.select(api_keys.c.name).where(api_keys.c.delete_after.is_not(None))
        )
    ]
    if ephemeral:
        config = op.get_context().config
        if config is not None:
            shown = ", ".join(f"'{name}'" for name in ephemeral)
            config.attributes.setdefault("notes", []).append(
                f"ephemeral keys kept as ordinary keys (no deadline): {shown}"
            )
    with op.batch_alter_table("api_keys", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("delete_after")
    op.drop_table("registry_settings")
    op.drop_index(op.f("ix_key_events_key_name"), table_name="key_events")
    op.drop_index(op.f("ix_key_events_key_id"), table_name="key_events")
    op.drop_index(op.f("ix_key_events_at"), table_name="key_events")
    op.drop_table("key_events")
