"""SQLAlchemy 2.x ORM classes: ApiKey, Server and their many-to-many link, for writing.

Each class maps a Core table of ``store.metadata`` (``__table__``): the schema is defined
once, there.  Commands that change data use these classes through the repositories;
commands that only read use ``store.reads`` over the same tables (``store.queries``),
without the ORM.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import DeclarativeBase, Mapped, relationship

from n8n_deploy.store import metadata as schema
from n8n_deploy.store.metadata import secret_hash

__all__ = [
    "ApiKey",
    "Base",
    "KeyEvent",
    "RegistrySetting",
    "Server",
    "ServerApiKey",
    "secret_hash",
]


class Base(DeclarativeBase):
    metadata = schema.metadata


class ServerApiKey(Base):
    """A link between a server and an API key (the ``server_api_keys`` junction table)."""

    __table__ = schema.server_api_keys

    server_id: Mapped[int]
    api_key_id: Mapped[int]
    created_at: Mapped[datetime]

    def __repr__(self) -> str:
        return f"ServerApiKey(server_id={self.server_id}, api_key_id={self.api_key_id})"


class ApiKey(Base):
    __table__ = schema.api_keys

    id: Mapped[int]
    name: Mapped[str]
    api_key: Mapped[str]
    secret_hash: Mapped[str | None]
    description: Mapped[str | None]
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    is_active: Mapped[bool]
    delete_after: Mapped[datetime | None]

    servers: Mapped[list[Server]] = relationship(
        secondary=schema.server_api_keys,
        back_populates="api_keys",
        order_by=schema.servers.c.name,
        passive_deletes=True,
    )

    def __repr__(self) -> str:
        # Never include the key itself: reprs end up in tracebacks and logs.
        return f"ApiKey(id={self.id!r}, name={self.name!r}, is_active={self.is_active!r})"

    __str__ = __repr__


class Server(Base):
    __table__ = schema.servers

    id: Mapped[int]
    name: Mapped[str]
    url: Mapped[str | None]
    description: Mapped[str | None]
    skip_ssl_verify: Mapped[bool]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    api_keys: Mapped[list[ApiKey]] = relationship(
        secondary=schema.server_api_keys,
        back_populates="servers",
        order_by=schema.api_keys.c.name,
        passive_deletes=True,
    )

    def __repr__(self) -> str:
        return f"Server(id={self.id!r}, name={self.name!r}, url={self.url!r})"


class KeyEvent(Base):
    """One change to a key, for its history (revision 0007); see ``metadata.key_events``."""

    __table__ = schema.key_events

    id: Mapped[int]
    at: Mapped[datetime]
    kind: Mapped[str]
    key_name: Mapped[str]
    key_id: Mapped[int | None]
    other_name: Mapped[str | None]
    server: Mapped[str | None]
    outcome: Mapped[str | None]
    detail: Mapped[str | None]
    actor: Mapped[str]
    reconstructed: Mapped[bool]

    def __repr__(self) -> str:
        return f"KeyEvent(id={self.id!r}, kind={self.kind!r}, key_name={self.key_name!r})"


class RegistrySetting(Base):
    """A setting shared by everyone using the database (revision 0007)."""

    __table__ = schema.registry_settings

    name: Mapped[str]
    value: Mapped[str]
    updated_at: Mapped[datetime]
    updated_by: Mapped[str]

    def __repr__(self) -> str:
        return f"RegistrySetting(name={self.name!r}, value={self.value!r})"
