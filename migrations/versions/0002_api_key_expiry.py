"""Cache each key's expiry date (api_keys.expires_at) for listing and sorting.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Listing keys used to decode every stored JWT to show its expiry; the date is now stored
beside the key, in UTC, and kept up to date by ApiKeyRepository.add.  The upgrade fills it
for the keys already stored by decoding their ``exp`` claim without verifying the signature
(only the server can); a legacy ``n8n_api_`` key, a JWT without ``exp``, or a malformed or
absurd ``exp`` gives NULL (no known expiry), never an error.  The downgrade drops the column
(the dates can be decoded from the keys again); every key and link is kept.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from n8n_deploy.keys import key_info_or_none

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

api_keys = sa.table(
    "api_keys",
    sa.column("id", sa.Integer()),
    sa.column("api_key", sa.Text()),
    sa.column("expires_at", sa.DateTime()),
)


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
    conn = op.get_bind()
    updates = []
    for key_id, secret in conn.execute(sa.select(api_keys.c.id, api_keys.c.api_key)):
        info = key_info_or_none(secret) if isinstance(secret, str) else None
        if info is not None and info.expires_at is not None:
            updates.append({"key_id": key_id, "expires": info.expires_at.replace(tzinfo=None)})
    if updates:
        conn.execute(
            api_keys.update()
            .where(api_keys.c.id == sa.bindparam("key_id"))
            .values(expires_at=sa.bindparam("expires")),
            updates,
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("expires_at")
