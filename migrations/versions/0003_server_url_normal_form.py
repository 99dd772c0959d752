"""Store server URLs in normal form, and record when a server last changed (servers.updated_at).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Lookups by URL (N8N_SERVER_URL, a server given by URL, duplicate checks) compare normalised
URLs (scheme and host lower-cased, default port and trailing slash dropped), but rows
written by n8n-deploy 0.9 or by hand hold URLs as typed, so ``HTTPS://n8n.example.com/``
never matched.  The upgrade rewrites each URL to its normal form; one that cannot be read
as an http(s) URL is left as stored and reported.  ``updated_at`` (UTC, set on every change
of the record) starts as the creation time, or the time of this upgrade for a server whose
URL was rewritten.  The downgrade drops ``updated_at`` and keeps the normalised URLs (they
address the same servers); every server and link is kept.
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

from n8n_deploy.config import mask_url_password
from n8n_deploy.errors import InvalidServerUrlError
from n8n_deploy.output import counted
from n8n_deploy.validation import normalize_server_url

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

servers = sa.table(
    "servers",
    sa.column("id", sa.Integer()),
    sa.column("name", sa.String()),
    sa.column("url", sa.String()),
    sa.column("created_at", sa.DateTime()),
    sa.column("updated_at", sa.DateTime()),
)


def _note(message: str) -> None:
    """Tell whoever runs the migration (n8n_deploy.migrate prints these)."""
    config = op.get_context().config
    if config is not None:
        config.attributes.setdefault("notes", []).append(message)


def upgrade() -> None:
    with op.batch_alter_table("servers") as batch:
        batch.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))
    conn = op.get_bind()
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    rows = conn.execute(sa.select(servers.c.id, servers.c.name, servers.c.url)).all()
    rewritten = 0
    for server_id, name, url in rows:
        normal = url
        try:
            normal = normalize_server_url(url) if isinstance(url, str) else url
        except InvalidServerUrlError:
            shown = mask_url_password(url)  # never print a password kept in a URL
            _note(f"server '{name}': URL {shown!r} is not an http(s) URL; left as stored")
        changed = normal != url
        rewritten += changed
        conn.execute(
            servers.update()
            .where(servers.c.id == server_id)
            .values(url=normal, updated_at=now if changed else servers.c.created_at)
        )
    if rewritten:
        _note(f"{counted(rewritten, 'server URL')} rewritten in normal form")
    with op.batch_alter_table("servers", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.alter_column("updated_at", existing_type=sa.DateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("servers", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("updated_at")
