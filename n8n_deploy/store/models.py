"""SQLAlchemy 2.x declarative models: ApiKey, Server and their many-to-many link.

The tables follow the documented n8n-deploy schema (``api_keys``, ``servers``,
``server_api_keys``).  Alembic owns every change to them: after editing a model, add a
revision under ``migrations/versions`` (``tests/test_migrations.py`` fails until the two agree).

Timestamps are stored as naive UTC and always come back timezone-aware (UTC).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    false,
    true,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator, TypeEngine

from n8n_deploy.base.dates import utcnow
from n8n_deploy.store import tables

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NAME_LENGTH = 255  # column size; the CLI accepts names of at most 100 characters
URL_LENGTH = 2048


#: MariaDB/MySQL tables are utf8mb4 with a binary collation (revision 0004), so that
#: names and keys compare exactly, as on SQLite and PostgreSQL.
MYSQL_TABLE_OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


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
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        parsed: datetime = (
            datetime.fromisoformat(value) if isinstance(value, str) else value
        )  # str: a hand-written row (SQLite stores text)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class ServerApiKey(Base):
    """A link between a server and an API key (the ``server_api_keys`` junction table)."""

    __tablename__ = tables.SERVER_API_KEYS
    __table_args__ = MYSQL_TABLE_OPTIONS

    server_id: Mapped[int] = mapped_column(
        ForeignKey("servers.id", ondelete="CASCADE"), primary_key=True
    )
    api_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"ServerApiKey(server_id={self.server_id}, api_key_id={self.api_key_id})"


class ApiKey(Base):
    __tablename__ = tables.API_KEYS
    __table_args__ = {"sqlite_autoincrement": True, **MYSQL_TABLE_OPTIONS}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    # Plain text, as documented: protected by file permissions and never printed.
    api_key: Mapped[str] = mapped_column(Text)
    # secret_hash(api_key), unique: two entries never hold one key (revision 0005).  NULL
    # only for a duplicate carried over from a database made before that rule.
    secret_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    # The JWT's exp, decoded when the key is stored (revision 0002); None: no known expiry.
    expires_at: Mapped[datetime | None]
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # An ephemeral key's deadline (apikey add --ttl): deleted by the next prune after it
    # (revision 0007).  None: an ordinary key, kept until deleted.
    delete_after: Mapped[datetime | None]

    servers: Mapped[list[Server]] = relationship(
        secondary="server_api_keys",
        back_populates="api_keys",
        order_by="Server.name",
        passive_deletes=True,
    )

    def __repr__(self) -> str:
        # Never include the key itself: reprs end up in tracebacks and logs.
        return f"ApiKey(id={self.id!r}, name={self.name!r}, is_active={self.is_active!r})"

    __str__ = __repr__


class Server(Base):
    __tablename__ = tables.SERVERS
    __table_args__ = {"sqlite_autoincrement": True, **MYSQL_TABLE_OPTIONS}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    # None: created by "apikey add --server NAME" before its URL was known (revision 0006).
    url: Mapped[str | None] = mapped_column(String(URL_LENGTH))
    description: Mapped[str | None] = mapped_column(Text)
    skip_ssl_verify: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set on every change of the record (revision 0003).
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    api_keys: Mapped[list[ApiKey]] = relationship(
        secondary="server_api_keys",
        back_populates="servers",
        order_by="ApiKey.name",
        passive_deletes=True,
    )

    def __repr__(self) -> str:
        return f"Server(id={self.id!r}, name={self.name!r}, url={self.url!r})"


class KeyEvent(Base):
    """One change to a key, for its history (revision 0007): when, who, what, and the key's
    name at the time.  No foreign key: events outlive their key.  Never the key itself."""

    __tablename__ = tables.KEY_EVENTS
    __table_args__ = (
        Index("ix_key_events_at", "at"),
        Index("ix_key_events_key_id", "key_id"),
        Index("ix_key_events_key_name", "key_name"),
        {"sqlite_autoincrement": True, **MYSQL_TABLE_OPTIONS},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    key_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    key_id: Mapped[int | None]
    # The other name involved: the new key of a rotation, the new name of a rename.
    other_name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    # The server a test or a link concerns: its name, or the URL tested with --server-url.
    server: Mapped[str | None] = mapped_column(String(URL_LENGTH))
    outcome: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(NAME_LENGTH))
    # Made by revision 0007 from a key's created_at, not recorded when it happened.
    reconstructed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    def __repr__(self) -> str:
        return f"KeyEvent(id={self.id!r}, kind={self.kind!r}, key_name={self.key_name!r})"


class RegistrySetting(Base):
    """A setting shared by everyone using the database: the team's audit policy
    (``policy set``) and when keys were last pruned (revision 0007)."""

    __tablename__ = tables.REGISTRY_SETTINGS
    __table_args__ = MYSQL_TABLE_OPTIONS

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(NAME_LENGTH))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(NAME_LENGTH))

    def __repr__(self) -> str:
        return f"RegistrySetting(name={self.name!r}, value={self.value!r})"
