"""Let a server exist before its URL is known (servers.url may be NULL).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

The reference's ``apikey add - --name prod_key --server "Production Server 🚀"`` creates
the server when it does not exist, and nothing on that line says where the server is.
Such a server is now stored without a URL, shown as having none in every listing, and
``apikey test`` on it fails naming ``server update NAME --url URL``.  The upgrade changes
no row but one with an empty URL (what the downgrade wrote), which has none again.  The
downgrade gives a server without a URL an empty one (which earlier revisions cannot test
against either) and reports it; every server and link is kept.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

servers = sa.table("servers", sa.column("name", sa.String()), sa.column("url", sa.String()))


def upgrade() -> None:
    with op.batch_alter_table("servers", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.alter_column("url", existing_type=sa.String(length=2048), nullable=True)
    # An empty URL is what the downgrade gave a server without one: it has none again.
    op.get_bind().execute(servers.update().where(servers.c.url == "").values(url=None))


def downgrade() -> None:
    bind = op.get_bind()
    names = [
        row[0] for row in bind.execute(sa.select(servers.c.name).where(servers.c.url.is_(None)))
    ]
    if names:
        bind.execute(servers.update().where(servers.c.url.is_(None)).values(url=""))
        config = op.get_context().config
        if config is not None:
            shown = ", ".join(f"'{name}'" for name in names)
            config.attributes.setdefault("notes", []).append(
                f"servers without a URL kept with an empty one: {shown}"
            )
    with op.batch_alter_table("servers", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.alter_column("url", existing_type=sa.String(length=2048), nullable=False)
