"""The tables as SQLAlchemy Core ``Table`` objects: the one definition of the schema.

``store.models`` maps its ORM classes onto these very objects (``__table__``), and
``store.queries`` reads them with Core alone (and, compiled for SQLite ahead of time,
``store.sqlite_reading`` with the standard library): a command that only reads never imports
``sqlalchemy.orm`` (importing it and configuring the mappers costs more than the whole
0.9 release took to list keys).  Alembic owns every change to them: after editing a table,
add a revision under ``migrations/versions`` (``tests/test_migrations.py`` fails until the
two agree).

Timestamps are stored as naive UTC and always come back timezone-aware (UTC).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    true,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

from n8n_deploy.base.dates import stored_utc, utcnow
from n8n_deploy.store import tables
from n8n_deploy.store.reads import FLAG_VALUES, unreadable_row

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NAME_LENGTH = 255  # column size; the CLI accepts names of at most 100 characters
URL_LENGTH = 2048


# MariaDB/MySQL tables are utf8mb4 with a binary collation (revisions 0004 and 0007), so
# that names and keys compare exactly, as on SQLite and PostgreSQL.  Only the migrations
# create tables, and they say so themselves; it is not repeated here as table options,
# because SQLAlchemy checks an option naming a dialect by importing that dialect: 11 ms
# of every command, MySQL's dialect on a SQLite file.


def secret_hash(secret: str) -> str:
    """What makes "one secret, one entry" a rule of the database itself: the SHA-256 of
    the key, in a unique column (revision 0005).  It cannot be turned back into the key."""
    return hashlib.sha256(secret.strip().encode("utf-8")).hexdigest()


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC; returns aware UTC.  Naive input is taken to be UTC already.
    Microseconds are kept on every engine (DATETIME(6) on MariaDB/MySQL, revision 0004)."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects import mysql

            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        # str: a hand-written row (SQLite stores text)
        return None if value is None else stored_utc(value)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        """Reading a value that is no moment (``2026-02-30``, a number, a blob: a row another
        program wrote) is the unreadable-row error, one line, on every path that loads it
        (the ORM's included), not a ValueError deep in the driver's conversion."""
        process = super().result_processor(dialect, coltype)
        if process is None:
            return None

        def read(value: Any) -> Any:
            try:
                return process(value)
            except (ValueError, TypeError, OverflowError):
                raise unreadable_row() from None

        return read


class StoredFlag(Boolean):
    """A flag, stored 0 or 1 where the database has no boolean type.  Anything else (2,
    'yes': a row another program wrote) is the unreadable-row error when it is read, on
    every path, where SQLAlchemy's Boolean would read it as true and the filters, which
    compare with 1, as neither active nor inactive."""

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        process = super().result_processor(dialect, coltype)  # type: ignore[no-untyped-call]

        def read(value: Any) -> Any:
            if value is not None and value not in FLAG_VALUES:
                raise unreadable_row()
            return value if process is None else process(value)

        return read


metadata = MetaData(naming_convention=NAMING_CONVENTION)

api_keys = Table(
    tables.API_KEYS,
    metadata,
    Column("id", Integer, primary_key=True),
    Column(tables.NAME_COLUMN, String(NAME_LENGTH), nullable=False, unique=True),
    # Plain text, as documented: protected by file permissions and never printed.
    Column("api_key", Text, nullable=False),
    # secret_hash(api_key), unique: two entries never hold one key (revision 0005).  NULL
    # only for a duplicate carried over from a database made before that rule.
    Column("secret_hash", String(64), nullable=True, unique=True),
    Column("description", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    Column("last_used_at", UTCDateTime(), nullable=True),
    # The JWT's exp, decoded when the key is stored (revision 0002); None: no known expiry.
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("is_active", StoredFlag(), nullable=False, default=True, server_default=true()),
    # An ephemeral key's deadline (apikey add --ttl): deleted by the first prune after it
    # (revision 0007).  None: an ordinary key, kept until deleted.
    Column("delete_after", UTCDateTime(), nullable=True),
    sqlite_autoincrement=True,
)

servers = Table(
    tables.SERVERS,
    metadata,
    Column("id", Integer, primary_key=True),
    Column(tables.NAME_COLUMN, String(NAME_LENGTH), nullable=False, unique=True),
    # None: created by "apikey add --server NAME" before its URL was known (revision 0006).
    Column("url", String(URL_LENGTH), nullable=True),
    Column("description", Text, nullable=True),
    Column("skip_ssl_verify", StoredFlag(), nullable=False, default=False, server_default=false()),
    Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    # Set on every change of the record (revision 0003).
    Column("updated_at", UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow),
    sqlite_autoincrement=True,
)

#: The many-to-many link between servers and API keys.
server_api_keys = Table(
    tables.SERVER_API_KEYS,
    metadata,
    Column(
        "server_id",
        Integer,
        ForeignKey(f"{tables.SERVERS}.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "api_key_id",
        Integer,
        ForeignKey(f"{tables.API_KEYS}.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
)

#: The audit trail (revision 0007): one row per change to a key, with when, who, and the
#: key's name at the time.  No foreign key: events outlive their key.  Never the key.
key_events = Table(
    tables.KEY_EVENTS,
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime(), nullable=False, default=utcnow),
    Column("kind", String(32), nullable=False),
    Column("key_name", String(NAME_LENGTH), nullable=False),
    Column("key_id", Integer, nullable=True),
    # The other name involved: the new key of a rotation, the new name of a rename.
    Column("other_name", String(NAME_LENGTH), nullable=True),
    # The server(s) a test, link or change concerns ("A, B"), or the URL tested.
    Column("server", String(URL_LENGTH), nullable=True),
    Column("outcome", String(32), nullable=True),
    Column("detail", Text, nullable=True),
    Column("actor", String(NAME_LENGTH), nullable=False),
    # Made by revision 0007 from a key's created_at, not recorded when it happened.
    Column("reconstructed", StoredFlag(), nullable=False, default=False, server_default=false()),
    Index("ix_key_events_at", "at"),
    Index("ix_key_events_key_id", "key_id"),
    Index("ix_key_events_key_name", "key_name"),
    sqlite_autoincrement=True,
)

#: Settings shared by everyone using the database: the team's audit policy (``policy
#: set``), revision 0007.  A ``prune.last_at`` row left by earlier builds is never read.
registry_settings = Table(
    tables.REGISTRY_SETTINGS,
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(NAME_LENGTH), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow),
    Column("updated_by", String(NAME_LENGTH), nullable=False),
)
