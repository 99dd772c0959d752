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

import binascii
import json
import operator
import re
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# -- frozen: how this revision reads a key's expiry.  A revision never imports n8n_deploy,
# so that a later change to the program cannot change what it does.

# Three base64url parts: the header, the claims and the signature.
_JWT = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+")
_STANDARD_ALPHABET = bytes.maketrans(b"-_", b"+/")
_MAX_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z
_EPOCH = datetime(1970, 1, 1)  # naive UTC, as the column holds it


_DECODER = json.JSONDecoder()  # json.loads' own, as configured by default
_JSON_WHITESPACE = " \t\n\r"


def _decoded(part: str) -> Any:
    """JSON in one base64url part (which ``_JWT`` matched, so ASCII): what
    ``json.loads(base64.urlsafe_b64decode(part + padding))`` gives, in C but for the parse."""
    padded = (part + "=" * (-len(part) % 4)).encode("ascii")
    data = binascii.a2b_base64(padded.translate(_STANDARD_ALPHABET))
    if data[:1] != b"{" or data[1:2] in (b"", b"\x00"):
        return json.loads(data)
    # An object in UTF-8 (json.loads reads bytes without a byte order mark or a NUL first
    # as UTF-8): what json.loads does with it, without its own work on every call (half
    # of the time of reading 10,000 keys).
    text = data.decode("utf-8", "surrogatepass")
    value, end = _DECODER.raw_decode(text)
    if text[end:].strip(_JSON_WHITESPACE):
        raise ValueError("extra data after the JSON value")
    return value


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
    parts = _JWT.fullmatch(secret.strip())
    if parts is None:
        return None
    header, payload = parts.groups()
    usable = headers.get(header) if headers is not None else None
    if usable is None:
        usable = _usable_header(header)
        if headers is not None:
            headers[header] = usable
    if not usable:
        return None
    try:
        claims = _decoded(payload)
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(claims, dict):
        return None
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    if exp != exp or exp < 0 or exp > _MAX_TIMESTAMP:  # NaN, negative, absurd
        return None
    return _EPOCH + timedelta(seconds=int(exp))


api_keys = sa.table(
    "api_keys",
    sa.column("id", sa.Integer()),
    sa.column("api_key", sa.Text()),
    sa.column("expires_at", sa.DateTime()),
)


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
        kind = compiled.binds[name].type
        values = [row[name] for row in rows]
        convert = _converter(
            kind, kind.dialect_impl(conn.dialect).bind_processor(conn.dialect), values
        )
        columns.append(
            values if convert is None else [None if v is None else convert(v) for v in values]
        )
    conn.exec_driver_sql(str(compiled), list(zip(*columns, strict=True)))


_STORED_MOMENT = operator.methodcaller("isoformat", " ", "microseconds")


def _converter(kind: Any, processor: Any, values: list[Any]) -> Any:
    """``processor``; for naive datetimes ``isoformat(" ", "microseconds")`` where, tried on
    the first, it gives the processor's text (SQLite's DateTime: a tenth of the time)."""
    if processor is None or not isinstance(kind, sa.DateTime):
        return processor
    moments = [v for v in values if v is not None]
    if (
        moments
        and all(type(v) is datetime and v.tzinfo is None for v in moments)
        and processor(moments[0]) == _STORED_MOMENT(moments[0])
    ):
        return _STORED_MOMENT
    return processor


def upgrade() -> None:
    # Present when a run that failed part-way on MariaDB/MySQL (whose DDL cannot be rolled
    # back) is finished: the revision then does the rest.
    if "expires_at" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("api_keys")}:
        with op.batch_alter_table("api_keys") as batch:
            batch.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
    conn = op.get_bind()
    updates = []
    headers: dict[str, bool] = {}
    for key_id, secret in _fetch_all(conn, sa.select(api_keys.c.id, api_keys.c.api_key)):
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
