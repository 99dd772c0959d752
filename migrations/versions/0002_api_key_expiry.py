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

import base64
import binascii
import json
import re
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# -- frozen: how this revision reads a key's expiry.  A revision never imports n8n_deploy,
# so that a later change to the program cannot change what it does.

_PART = re.compile(r"[A-Za-z0-9_-]+")
_MAX_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z


def _decoded(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _usable_header(part: str) -> bool:
    """Whether a JWT header decodes to an object with a non-empty ``alg``."""
    try:
        header = _decoded(part)
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(header, dict) and isinstance(header.get("alg"), str) and bool(header["alg"])


def expiry_of(secret: str, headers: dict[str, bool] | None = None) -> datetime | None:
    """The ``exp`` of a JWT as naive UTC, decoded without verifying the signature; None
    for a legacy key, a JWT without a usable ``exp``, or anything that is not a JWT.
    ``headers`` remembers what each header decoded to: the keys of one n8n share one."""
    parts = secret.strip().split(".")
    if len(parts) != 3 or not all(_PART.fullmatch(part) for part in parts):
        return None
    usable = headers.get(parts[0]) if headers is not None else None
    if usable is None:
        usable = _usable_header(parts[0])
        if headers is not None:
            headers[parts[0]] = usable
    if not usable:
        return None
    try:
        claims = _decoded(parts[1])
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(claims, dict):
        return None
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    if exp != exp or exp < 0 or exp > _MAX_TIMESTAMP:  # NaN, negative, absurd
        return None
    return datetime.fromtimestamp(int(exp), tz=timezone.utc).replace(tzinfo=None)


api_keys = sa.table(
    "api_keys",
    sa.column("id", sa.Integer()),
    sa.column("api_key", sa.Text()),
    sa.column("expires_at", sa.DateTime()),
)


def _execute_many(conn: Any, statement: Any, rows: list[dict[str, Any]]) -> None:
    """``conn.execute(statement, rows)``; on SQLite the rows reach the driver as tuples in
    one executemany, each value converted by SQLAlchemy's own bind processor (the same
    stored bytes), instead of SQLAlchemy processing a dictionary per row (10,000 keys)."""
    if conn.dialect.name != "sqlite" or conn.dialect.paramstyle != "qmark":
        conn.execute(statement, rows)
        return
    compiled = statement.compile(dialect=conn.dialect)
    names = list(compiled.positiontup or ())
    convert = [
        compiled.binds[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        for name in names
    ]
    conn.exec_driver_sql(
        str(compiled),
        [
            tuple(
                value if processor is None or value is None else processor(value)
                for processor, value in zip(convert, (row[name] for name in names), strict=True)
            )
            for row in rows
        ],
    )


def upgrade() -> None:
    # Present when a run that failed part-way on MariaDB/MySQL (whose DDL cannot be rolled
    # back) is finished: the revision then does the rest.
    if "expires_at" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("api_keys")}:
        with op.batch_alter_table("api_keys") as batch:
            batch.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
    conn = op.get_bind()
    updates = []
    headers: dict[str, bool] = {}
    for key_id, secret in conn.execute(sa.select(api_keys.c.id, api_keys.c.api_key)):
        expires = expiry_of(secret, headers) if isinstance(secret, str) else None
        if expires is not None:
            updates.append({"key_id": key_id, "expires": expires})
    if updates:
        _execute_many(
            conn,
            api_keys.update()
            .where(api_keys.c.id == sa.bindparam("key_id"))
            .values(expires_at=sa.bindparam("expires")),
            updates,
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("expires_at")
