"""Storing keys and servers for tests through the repositories (not through the CLI), and
reading back what a command left in the database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from n8n_deploy.store.engine import Database
from n8n_deploy.store.repositories import ApiKeyRepository, ServerRepository


def add_server(database: Database, name: str, url: str, *, skip_ssl_verify: bool = False) -> None:
    with database.session(write=True) as session:
        ServerRepository(session).create(name, url, skip_ssl_verify=skip_ssl_verify)


def add_key(
    database: Database,
    name: str,
    secret: str,
    servers: Sequence[str] = (),
    *,
    active: bool = True,
) -> None:
    with database.session(write=True) as session:
        keys, known = ApiKeyRepository(session), ServerRepository(session)
        key = keys.add(name, secret)
        for server in servers:
            known.link(key, known.get(server))
        if not active:
            keys.set_active(key, False)


@dataclass
class StoredKey:
    name: str
    secret: str
    is_active: bool
    last_used_at: datetime | None
    servers: list[str]
    description: str | None


def stored(database: Database, name: str) -> StoredKey | None:
    with database.session() as session:
        key = ApiKeyRepository(session).find(name)
        if key is None:
            return None
        return StoredKey(
            key.name,
            key.api_key,
            key.is_active,
            key.last_used_at,
            [s.name for s in key.servers],
            key.description,
        )


def key_names(database: Database) -> list[str]:
    with database.session() as session:
        return ApiKeyRepository(session).names()
