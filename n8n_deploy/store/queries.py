"""Every read query n8n-deploy runs, in SQLAlchemy Core over ``store.metadata``'s tables.

Commands that only read (``apikey list/show/get``, ``server list/show/keys``, the reading
half of ``apikey test --all``) use :class:`Reader` on a connection from
``Database.reading()`` and get small frozen records back, without importing
``sqlalchemy.orm``.  The ORM repositories, which write, ask the same queries for names
and not-found errors.  No query is written twice: a repository that needs one of these
reads it from here.

Like the repositories, a Reader raises typed domain errors and never prints or commits.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from sqlalchemy import case, func, select

from n8n_deploy.base.errors import AlreadyExistsError, NotFoundError
from n8n_deploy.store.metadata import api_keys, server_api_keys, servers

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Connection


class ServerLike(Protocol):
    """What showing a server needs: a stored record here, or an ORM ``Server``."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def url(self) -> str | None: ...
    @property
    def description(self) -> str | None: ...
    @property
    def skip_ssl_verify(self) -> bool: ...
    @property
    def created_at(self) -> datetime: ...


class KeyLike(Protocol):
    """What showing a key needs: a stored record here, or an ORM ``ApiKey``."""

    @property
    def name(self) -> str: ...
    @property
    def api_key(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def last_used_at(self) -> datetime | None: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def is_active(self) -> bool: ...
    @property
    def delete_after(self) -> datetime | None: ...
    @property
    def servers(self) -> Sequence[ServerLike]: ...


class StoredServer(NamedTuple):
    """A stored server as read (immutable; a tuple, so 10,000 rows are made fast)."""

    id: int
    name: str
    url: str | None
    description: str | None
    skip_ssl_verify: bool
    created_at: datetime
    updated_at: datetime


class StoredKey(NamedTuple):
    """A stored key as read, with its servers by name (immutable)."""

    id: int
    name: str
    api_key: str
    description: str | None
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    is_active: bool
    delete_after: datetime | None  # an ephemeral key's deadline (revision 0007)
    servers: tuple[StoredServer, ...]

    def __repr__(self) -> str:
        # Never include the key itself: reprs end up in tracebacks and logs.
        return f"StoredKey(id={self.id!r}, name={self.name!r}, is_active={self.is_active!r})"


_SERVER_COLUMNS = (
    servers.c.id,
    servers.c.name,
    servers.c.url,
    servers.c.description,
    servers.c.skip_ssl_verify,
    servers.c.created_at,
    servers.c.updated_at,
)
_KEY_COLUMNS = (
    api_keys.c.id,
    api_keys.c.name,
    api_keys.c.api_key,
    api_keys.c.description,
    api_keys.c.created_at,
    api_keys.c.last_used_at,
    api_keys.c.expires_at,
    api_keys.c.is_active,
    api_keys.c.delete_after,
)


def _server(row: Sequence[Any]) -> StoredServer:
    return StoredServer._make(row)


def key_named(name: str) -> ColumnElement[bool]:
    """The criterion of the key called ``name`` (exact comparison on every database)."""
    criterion: ColumnElement[bool] = api_keys.c.name == name
    return criterion


def server_named(name: str) -> ColumnElement[bool]:
    """The criterion of the server called ``name``."""
    criterion: ColumnElement[bool] = servers.c.name == name
    return criterion


def key_criteria(
    *, active: bool | None = None, server_id: int | None = None
) -> list[ColumnElement[bool]]:
    """Which keys a listing selects: all, the active or inactive ones, those linked to the
    server with id ``server_id``.  Listed by name."""
    where: list[ColumnElement[bool]] = []
    if active is not None:
        where.append(api_keys.c.is_active.is_(active))
    if server_id is not None:
        linked = select(server_api_keys.c.api_key_id).where(
            server_api_keys.c.server_id == server_id
        )
        where.append(api_keys.c.id.in_(linked))
    return where


def suggest(name: str, candidates: Sequence[str]) -> list[str]:
    """Stored names close to ``name``: a typo (prod_ky) or the start of a name
    (Production for "Production Server"), not any name that shares a suffix."""
    folded = {c.casefold(): c for c in candidates}
    if name.casefold() in folded:
        return [folded[name.casefold()]]
    starts = [c for c in candidates if c.casefold().startswith(name.casefold()) and name]
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.85)
    return list(dict.fromkeys([*starts, *close]))[:3]


#: kind -> (what it is called in errors, the command group that lists it)
KINDS = {"key": ("API key", "apikey"), "server": ("Server", "server")}


def not_found(kind: str, name: str, names: Sequence[str]) -> NotFoundError:
    """The error for a ``kind`` ("key" or "server") called ``name`` that is not stored,
    naming the close ones among ``names`` and what to do next."""
    label, group = KINDS[kind]
    return NotFoundError(
        label,
        name,
        suggest(name, names),
        hint=f"See the stored names with: n8n-deploy {group} list",
    )


def already_exists(kind: str, name: str) -> AlreadyExistsError:
    label, group = KINDS[kind]
    return AlreadyExistsError(
        label,
        name,
        hint=f"Choose another name, or see the stored one: "
        f"n8n-deploy {group} show {shlex.quote(name)}",
    )


class Reader:
    """The read queries, on one connection (one snapshot: see ``Database.reading``)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- names ---------------------------------------------------------------------------

    def key_names(self) -> list[str]:
        return list(self.conn.scalars(select(api_keys.c.name).order_by(api_keys.c.name)))

    def server_names(self) -> list[str]:
        return list(self.conn.scalars(select(servers.c.name).order_by(servers.c.name)))

    # -- keys ----------------------------------------------------------------------------

    def keys(self, *, active: bool | None = None, server_id: int | None = None) -> list[StoredKey]:
        """The stored keys by name, each with its servers (by name): two queries, however
        many keys and links."""
        return self._keys(key_criteria(active=active, server_id=server_id))

    def find_key(self, name: str) -> StoredKey | None:
        found = self._keys([key_named(name)])
        return found[0] if found else None

    def key(self, name: str) -> StoredKey:
        """The key called ``name``; NotFoundError (with close names) when there is none."""
        found = self.find_key(name)
        if found is None:
            raise not_found("key", name, self.key_names())
        return found

    def _keys(self, where: Sequence[ColumnElement[bool]]) -> list[StoredKey]:
        rows = self.conn.execute(select(*_KEY_COLUMNS).where(*where).order_by(api_keys.c.name))
        keyed = rows.all()
        if not keyed:
            return []
        # The links as id pairs, by server name; each linked server read once (however
        # many keys it has) by the same criteria.
        linked = (
            select(server_api_keys.c.api_key_id, server_api_keys.c.server_id)
            .join(servers, servers.c.id == server_api_keys.c.server_id)
            .order_by(servers.c.name)
        )
        if len(keyed) == 1:
            linked = linked.where(server_api_keys.c.api_key_id == keyed[0][0])
        elif where:
            linked = linked.where(
                server_api_keys.c.api_key_id.in_(select(api_keys.c.id).where(*where))
            )
        pairs = self.conn.execute(linked).all()
        known: dict[int, StoredServer] = {}
        if pairs:
            used = select(linked.subquery().c.server_id)
            for row in self.conn.execute(select(*_SERVER_COLUMNS).where(servers.c.id.in_(used))):
                known[row[0]] = _server(row)
        links: dict[int, list[StoredServer]] = {}
        for key_id, server_id in pairs:
            links.setdefault(key_id, []).append(known[server_id])
        make, none = StoredKey._make, ()
        return [make((*row, tuple(links.get(row[0], none)))) for row in keyed]

    # -- servers -------------------------------------------------------------------------

    def servers(self) -> list[StoredServer]:
        """Every server by name, without its keys (link_counts counts them in one query)."""
        rows = self.conn.execute(select(*_SERVER_COLUMNS).order_by(servers.c.name))
        return [_server(row) for row in rows]

    def find_server(self, name: str) -> StoredServer | None:
        row = self.conn.execute(select(*_SERVER_COLUMNS).where(server_named(name))).first()
        return _server(row) if row is not None else None

    def server(self, name: str) -> StoredServer:
        """The server called ``name``; NotFoundError (with close names) when there is none."""
        found = self.find_server(name)
        if found is None:
            raise not_found("server", name, self.server_names())
        return found

    def link_counts(self) -> dict[int, tuple[int, int]]:
        """server id -> (active keys, all keys) linked to it."""
        stmt = (
            select(
                server_api_keys.c.server_id,
                func.sum(case((api_keys.c.is_active.is_(True), 1), else_=0)),
                func.count(),
            )
            .join(api_keys, api_keys.c.id == server_api_keys.c.api_key_id)
            .group_by(server_api_keys.c.server_id)
        )
        return {row[0]: (int(row[1] or 0), int(row[2])) for row in self.conn.execute(stmt)}
