"""Compare names and keys exactly, and keep microseconds, on MariaDB and MySQL.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

A MariaDB or MySQL server's default collation compares text case- and accent-insensitively
and treats every emoji as equal: ``emoji 🚀`` was refused as a duplicate of ``emoji 🔑``, and
``apikey delete 'emoji 🚀'`` could act on the other key.  Its DATETIME drops microseconds.
The upgrade converts the three tables to utf8mb4 with the binary collation
``utf8mb4_bin`` (exact comparison, as on SQLite and PostgreSQL) and every timestamp to
DATETIME(6).  Exact comparison is stricter, so no stored row can conflict.  On SQLite and
PostgreSQL, which already behave so, it changes nothing.  The downgrade changes nothing
either: earlier revisions work the same with exact comparison, and converting back could
merge names that differ only in case.  Each statement can be run again (MariaDB cannot
roll DDL back, so a revision that failed part-way is finished by running it again).
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = ("api_keys", "servers", "server_api_keys")
TIMESTAMPS = (
    ("api_keys", "created_at", False),
    ("api_keys", "last_used_at", True),
    ("api_keys", "expires_at", True),
    ("servers", "created_at", False),
    ("servers", "updated_at", False),
    ("server_api_keys", "created_at", False),
)


def upgrade() -> None:
    if op.get_bind().dialect.name not in ("mysql", "mariadb"):
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    for table, column, nullable in TIMESTAMPS:
        null = "NULL" if nullable else "NOT NULL"
        op.execute(f"ALTER TABLE {table} MODIFY {column} DATETIME(6) {null}")


def downgrade() -> None:
    pass
