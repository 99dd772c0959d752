"""Make "one secret, one entry" a rule of the database: api_keys.secret_hash, unique.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

The program refused to store a key that was already stored under another name by reading
first, but eight runners adding one key at once on a database server stored several
copies.  The upgrade adds ``secret_hash`` (the SHA-256 of the key, hexadecimal; it cannot
be turned back into the key) and fills it for every stored key; a unique constraint then
lets the database itself refuse a second copy.  Should a database already hold the same key
twice (made before this rule, or by hand), the oldest entry gets the hash and the others
keep none (NULL, which the constraint allows); they are reported and can be deleted.
The downgrade drops the column; every key is kept.
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

api_keys = sa.table(
    "api_keys",
    sa.column("id", sa.Integer()),
    sa.column("name", sa.String()),
    sa.column("api_key", sa.Text()),
    sa.column("secret_hash", sa.String()),
)


def _hash(secret: str) -> str:
    """Frozen: a revision never imports n8n_deploy."""
    return hashlib.sha256(secret.strip().encode("utf-8")).hexdigest()


def _note(message: str) -> None:
    config = op.get_context().config
    if config is not None:
        config.attributes.setdefault("notes", []).append(message)


def _fetch_all(conn: Any, statement: Any) -> list[Any]:
    """``conn.execute(statement).all()``; on SQLite the driver's own rows, without
    SQLAlchemy making a row object of each (10,000 keys; the columns read need no
    conversion on SQLite)."""
    if conn.dialect.name != "sqlite":
        return list(conn.execute(statement).all())
    cursor = conn.connection.cursor()
    try:
        cursor.execute(str(statement.compile(dialect=conn.dialect)))
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _execute_many(conn: Any, statement: Any, rows: list[dict[str, Any]]) -> None:
    """``conn.execute(statement, rows)``; on SQLite the rows reach the driver as tuples in
    one executemany, each column converted by SQLAlchemy's own bind processor (the same
    stored bytes), instead of SQLAlchemy processing a dictionary per row (10,000 keys)."""
    if conn.dialect.name != "sqlite" or conn.dialect.paramstyle != "qmark":
        conn.execute(statement, rows)
        return
    compiled = statement.compile(dialect=conn.dialect)
    columns = []
    for name in compiled.positiontup or ():
        processor = (
            compiled.binds[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        )
        values = [row[name] for row in rows]
        if processor is not None:
            values = [None if v is None else processor(v) for v in values]
        columns.append(values)
    conn.exec_driver_sql(str(compiled), list(zip(*columns, strict=True)))


def upgrade() -> None:
    bind = op.get_bind()
    columns = {c["name"] for c in sa.inspect(bind).get_columns("api_keys")}
    if "secret_hash" not in columns:  # present when a failed run is finished (MariaDB)
        with op.batch_alter_table("api_keys") as batch:
            batch.add_column(sa.Column("secret_hash", sa.String(length=64), nullable=True))
    owner: dict[str, str] = {}
    updates = []
    rows = _fetch_all(bind, sa.select(api_keys.c.id, api_keys.c.name, api_keys.c.api_key))
    for key_id, name, secret in sorted(rows, key=lambda row: row[0]):
        digest = _hash(secret) if isinstance(secret, str) else None
        if digest is not None and digest in owner:
            _note(f"API key '{name}' holds the same key as '{owner[digest]}'; delete one of them")
            digest = None
        if digest is not None:
            owner[digest] = name
        updates.append({"key_id": key_id, "digest": digest})
    if updates:
        _execute_many(
            bind,
            api_keys.update()
            .where(api_keys.c.id == sa.bindparam("key_id"))
            .values(secret_hash=sa.bindparam("digest")),
            updates,
        )
    with op.batch_alter_table("api_keys", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.create_unique_constraint(op.f("uq_api_keys_secret_hash"), ["secret_hash"])


def downgrade() -> None:
    with op.batch_alter_table("api_keys", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_constraint(op.f("uq_api_keys_secret_hash"), type_="unique")
        batch.drop_column("secret_hash")
