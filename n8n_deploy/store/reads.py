"""What the commands that only read get from the database, and the one way they get it.

A :class:`Reader` answers ``apikey list/show``, ``server list/show/keys`` and the reading
half of ``apikey test`` with small frozen records.  It runs named statements through a
:class:`Source`: on a SQLite file at the newest revision, the standard library's
``sqlite3`` with the statements compiled in advance (``store.sqlite_reading``: a listing
imports no SQLAlchemy at all); anywhere else, SQLAlchemy Core (``store.queries.CoreSource``).
Every statement is written once, in SQLAlchemy Core, in ``store.queries``; the SQLite text
is generated from it (``store.sqlite_statements``, checked by ``make lint``).

This module imports nothing beyond the standard library.  Like the repositories, a Reader
raises typed domain errors and never prints or commits.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple, Protocol

from n8n_deploy.base.dates import stored_utc
from n8n_deploy.base.errors import AlreadyExistsError, DatabaseError, NotFoundError


class Source(Protocol):
    """Runs the statement called ``name`` (a key of ``store.queries.STATEMENTS``) with
    ``params`` in the reading unit of work's one transaction; rows of typed values.
    ``as_stored``: a source may leave booleans as SQLite holds them (0 or 1) and a column
    of timestamps as its stored text, when ``base.dates.stored_texts`` accepts the whole
    column (for writers of listings, which write text: 10,000 keys are read faster)."""

    def rows(
        self, name: str, params: Mapping[str, Any] | None = None, *, as_stored: bool = False
    ) -> Sequence[Sequence[Any]]: ...


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


#: Where StoredKey holds timestamps and its flag (what KeyListing.key reads).
_KEY_TIMES = tuple(
    map(StoredKey._fields.index, ("created_at", "last_used_at", "expires_at", "delete_after"))
)
_KEY_ACTIVE = StoredKey._fields.index("is_active")


class KeyListing(NamedTuple):
    """A listing of keys for a writer of text: each key's row (StoredKey's fields, its
    servers aside) and the servers linked to each key id.  Values may be as stored
    (``Source.rows``): ``is_active`` 0 or 1, a timestamp column either aware datetimes or
    the stored text ``base.dates.stored_texts`` accepted; ``key`` makes the StoredKey of
    a row."""

    rows: Sequence[Sequence[Any]]
    servers: Mapping[int, tuple[StoredServer, ...]]

    def key(self, row: Sequence[Any]) -> StoredKey:
        values = list(row)
        for i in _KEY_TIMES:
            if isinstance(values[i], str):
                values[i] = stored_utc(values[i])
        if values[_KEY_ACTIVE] is not None:  # as every source reads a NULL: None
            values[_KEY_ACTIVE] = bool(values[_KEY_ACTIVE])
        return StoredKey._make((*values, self.servers.get(row[0], ())))


_NAME = itemgetter(StoredKey._fields.index("name"))
#: What a stored flag may hold (True and False are 1 and 0); anything else, such as 2 or
#: 'yes' written by another program, is an unreadable row (both sources check it).
FLAG_VALUES = frozenset({0, 1})
_SERVER_NAME = itemgetter(StoredServer._fields.index("name"))


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


def unreadable_row() -> DatabaseError:
    """The error for a stored value that is not what its column holds (a timestamp that is
    not one, text that is not text): a row written by another program, or damaged.  The
    value is never quoted: it may be a key."""
    return DatabaseError(
        "The database holds a value that cannot be read (a row written by another program, "
        "or damaged)",
        hint="Correct or clear it with the sqlite3 shell or your database's own client, or "
        "restore a backup: n8n-deploy db restore PATH",
    )


def _server(row: Sequence[Any]) -> StoredServer:
    return StoredServer._make(row)


#: The statement that lists keys, by the filters given: (active given, server given).
_KEY_LISTINGS = {
    (False, False): "keys",
    (True, False): "keys_by_status",
    (False, True): "keys_on_server",
    (True, True): "keys_by_status_on_server",
}


class Reader:
    """The read queries, in one unit of work (one snapshot: see ``Database.reading``)."""

    def __init__(self, source: Source) -> None:
        self.source = source

    # -- names ---------------------------------------------------------------------------

    def key_names(self) -> list[str]:
        return [row[0] for row in self.source.rows("key_names")]

    def server_names(self) -> list[str]:
        return [row[0] for row in self.source.rows("server_names")]

    # -- keys ----------------------------------------------------------------------------

    def keys(self, *, active: bool | None = None, server_id: int | None = None) -> list[StoredKey]:
        """The stored keys by name, each with its servers (by name): two queries, however
        many keys and links."""
        listing = self._listing(active, server_id, as_stored=False)
        make, linked, none = StoredKey._make, listing.servers, ()
        return [make((*row, linked.get(row[0], none))) for row in listing.rows]

    def key_listing(
        self, *, active: bool | None = None, server_id: int | None = None
    ) -> KeyListing:
        """What ``keys`` reads, for a writer of text: values may stay as stored (KeyListing)."""
        return self._listing(active, server_id, as_stored=True)

    def _listing(self, active: bool | None, server_id: int | None, as_stored: bool) -> KeyListing:
        statement = _KEY_LISTINGS[active is not None, server_id is not None]
        params: dict[str, Any] = {}
        if active is not None:
            params["active"] = active
        if server_id is not None:
            params["server_id"] = server_id
        keyed = self.source.rows(statement, params, as_stored=as_stored)
        if not keyed:
            return KeyListing([], {})
        # In the order of the names' characters, as every listing sorts (--sort name):
        # the statements ask for no order (a database's own collation may differ: an ICU
        # locale on PostgreSQL, a UTF-16 SQLite file), rows come as stored, and keys added
        # in name order are sorted in one pass.
        keyed = sorted(keyed, key=_NAME)
        if len(keyed) == 1:
            return KeyListing(keyed, self._servers_of_keys("links_of_key", {"key_id": keyed[0][0]}))
        return KeyListing(keyed, self._servers_of_keys("links", {}))

    def find_key(self, name: str) -> StoredKey | None:
        keyed = self.source.rows("key_named", {"name": name})
        if not keyed:
            return None
        linked = self._servers_of_keys("links_of_key", {"key_id": keyed[0][0]})
        return StoredKey._make((*keyed[0], linked.get(keyed[0][0], ())))

    def key(self, name: str) -> StoredKey:
        """The key called ``name``; NotFoundError (with close names) when there is none."""
        found = self.find_key(name)
        if found is None:
            raise not_found("key", name, self.key_names())
        return found

    def _servers_of_keys(
        self, links: str, params: Mapping[str, Any]
    ) -> dict[int, tuple[StoredServer, ...]]:
        """key id -> its servers, by server name: each server read once however many keys
        it has."""
        found = self.source.rows(links, params)
        if not found:
            return {}
        alone = {server.id: (server,) for server in self.servers()}
        key_ids, server_ids = zip(*found, strict=True)
        if len(set(key_ids)) == len(key_ids):  # each key on one server, as most are: in C
            return dict(zip(key_ids, map(alone.__getitem__, server_ids), strict=True))
        linked: dict[int, list[StoredServer]] = {}
        for key_id, server_id in found:
            linked.setdefault(key_id, []).append(alone[server_id][0])
        by_name = _SERVER_NAME  # in the order of the names' characters, as servers() sorts
        return {key_id: tuple(sorted(servers, key=by_name)) for key_id, servers in linked.items()}

    # -- servers -------------------------------------------------------------------------

    def servers(self) -> list[StoredServer]:
        """Every server by name (the names' characters, whatever the database's collation:
        a UTF-16 SQLite file orders them otherwise), without its keys (link_counts counts
        them in one query)."""
        return sorted(map(_server, self.source.rows("servers")), key=_SERVER_NAME)

    def find_server(self, name: str) -> StoredServer | None:
        rows = self.source.rows("server_named", {"name": name})
        return _server(rows[0]) if rows else None

    def server(self, name: str) -> StoredServer:
        """The server called ``name``; NotFoundError (with close names) when there is none."""
        found = self.find_server(name)
        if found is None:
            raise not_found("server", name, self.server_names())
        return found

    def link_counts(self) -> dict[int, tuple[int, int]]:
        """server id -> (active keys, all keys) linked to it."""
        return {row[0]: (int(row[1] or 0), int(row[2])) for row in self.source.rows("link_counts")}
