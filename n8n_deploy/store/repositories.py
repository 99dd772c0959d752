"""Repositories: every query n8n-deploy runs goes through these classes.

They take an open SQLAlchemy session (see ``Database.session``), raise typed domain errors
(``NotFoundError``, ``AlreadyExistsError``, ...) and never print, exit or commit: the caller
owns the unit of work, so a command that fails half-way stores nothing.  Every change to a
key records its event (``store.events``) in that same unit of work: one home for "what
happened to a key", so no command can change a key and forget to say so.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from n8n_deploy.base.dates import utcnow
from n8n_deploy.base.errors import AlreadyExistsError, NotFoundError, OperationFailed, UsageError
from n8n_deploy.base.keyformat import key_info_or_none
from n8n_deploy.base.text import key_pieces
from n8n_deploy.store import queries, reads, usage
from n8n_deploy.store.events import EventRepository
from n8n_deploy.store.metadata import api_keys, servers
from n8n_deploy.store.models import ApiKey, Server, ServerApiKey, secret_hash


class _Named:
    """Errors that name an entry and say what to do next (the wording: store.reads)."""

    kind = ""  # "key" or "server", as store.reads.KINDS

    def __init__(self, session: Session) -> None:
        self.session = session
        self.events = EventRepository(session)

    def reader(self) -> reads.Reader:
        """The read queries, on this session's connection (its transaction)."""
        return reads.Reader(queries.CoreSource(self.session.connection()))

    def names(self) -> list[str]:
        raise NotImplementedError

    def refuse_key_pieces(self, what: str, text: str | None, *new_secrets: str) -> None:
        """Refuse (exit 2, without showing it) a name, description or URL that holds a
        piece of a stored key or of one being stored: every listing would print it, where
        the key itself is masked.  One query, only for text with long enough runs."""
        pieces = key_pieces(text or "")
        if not pieces:
            return
        found = any(piece in secret for secret in new_secrets for piece in pieces)
        if not found:
            holds = or_(*(api_keys.c.api_key.contains(p, autoescape=True) for p in pieces))
            found = (
                self.session.execute(select(api_keys.c.id).where(holds).limit(1)).first()
                is not None
            )
        if found:
            raise UsageError(
                f"The {what} holds a piece of an API key",
                hint=f"Choose another {what}; the key was not stored or shown",
            )

    def _not_found(self, name: str) -> NotFoundError:
        return reads.not_found(self.kind, name, self.names())

    def _exists(self, name: str) -> AlreadyExistsError:
        return reads.already_exists(self.kind, name)


class ApiKeyRepository(_Named):
    kind = "key"

    def names(self) -> list[str]:
        return self.reader().key_names()

    def find(self, name: str) -> ApiKey | None:
        stmt = select(ApiKey).where(queries.key_named(name)).options(selectinload(ApiKey.servers))
        return self.session.scalars(stmt).one_or_none()

    def get(self, name: str) -> ApiKey:
        key = self.find(name)
        if key is None:
            raise self._not_found(name)
        return key

    def find_by_secret(self, secret: str) -> ApiKey | None:
        stmt = select(ApiKey).where(ApiKey.secret_hash == secret_hash(secret)).limit(1)
        found = self.session.scalars(stmt).first()
        if found is None:  # a duplicate carried from before revision 0005 has no hash
            stmt = select(ApiKey).where(ApiKey.api_key == secret).limit(1)
            found = self.session.scalars(stmt).first()
        return found

    def list(self, *, active: bool | None = None, server: Server | None = None) -> list[ApiKey]:
        """The keys as ORM objects, to change them (commands that only read use
        ``store.reads.Reader.keys``, which selects by the same criteria)."""
        where = queries.key_criteria(active=active, server_id=server.id if server else None)
        stmt = (
            select(ApiKey)
            .where(*where)
            .options(selectinload(ApiKey.servers))
            .order_by(api_keys.c.name)
        )
        return list(self.session.scalars(stmt))

    def add(
        self,
        name: str,
        secret: str,
        *,
        description: str | None = None,
        servers: Sequence[Server] = (),
        delete_after: datetime | None = None,
    ) -> ApiKey:
        """Store a new key (already cleaned and format-checked by the caller); with
        ``delete_after``, an ephemeral one (deleted by the first prune after it)."""
        if self.find(name) is not None:
            raise self._exists(name)
        self.refuse_key_pieces("name", name, secret)
        self.refuse_key_pieces("description", description, secret)
        twin = self.find_by_secret(secret)
        if twin is not None:
            raise self._stored_as(twin)
        info = key_info_or_none(secret)
        key = ApiKey(
            name=name,
            api_key=secret,
            secret_hash=secret_hash(secret),
            description=description or None,
            expires_at=info.expires_at if info else None,
            delete_after=delete_after,
        )
        try:
            with self.session.begin_nested():  # a lost race leaves the session usable
                self.session.add(key)
                key.servers.extend(servers)
                self.session.flush()
                detail = None
                if delete_after is not None:
                    detail = f"ephemeral: deleted after {delete_after:%Y-%m-%d %H:%M:%S} UTC"
                self.events.record(
                    "added",
                    key,
                    server=", ".join(s.name for s in servers) or None,
                    detail=detail,
                )
                self.session.flush()
        except IntegrityError as exc:
            # Another process stored the same name or the same key a moment ago: the
            # database's unique constraints decide, whatever was read before.
            if "secret_hash" in str(exc.orig):
                twin = self.find_by_secret(secret)
                raise (self._stored_as(twin) if twin else self._exists(name)) from None
            raise self._exists(name) from None
        return key

    def update(
        self, key: ApiKey, *, name: str | None = None, description: str | None = None
    ) -> ApiKey:
        """Rename the key and/or set its description (``""`` clears it)."""
        self.refuse_key_pieces("name", name)
        self.refuse_key_pieces("description", description)
        if name is not None and name != key.name:
            if self.find(name) is not None:
                raise self._exists(name)
            self.events.record("renamed", key, other_name=name)
            key.name = name
        if description is not None and (description or None) != key.description:
            key.description = description or None
            self.events.record(
                "described", key, detail="description set" if description else "cleared"
            )
        try:
            with self.session.begin_nested():
                self.session.flush()
        except IntegrityError:
            raise self._exists(name or key.name) from None
        return key

    def servers_left_without_an_active_key(self, key: ApiKey) -> tuple[str, ...]:
        """The servers ``key`` is linked to on which no other key is active: what retiring
        it leaves without a working key (the rotation script's last step, gone wrong)."""
        return tuple(
            server.name
            for server in key.servers
            if not any(k.id != key.id and k.is_active for k in server.api_keys)
        )

    def _stored_as(self, twin: ApiKey) -> OperationFailed:
        return OperationFailed(
            f"This key is already stored as '{twin.name}'",
            hint=f"Use the existing entry, or delete it first: "
            f"n8n-deploy apikey delete {shlex.quote(twin.name)}",
        )

    def set_active(self, key: ApiKey, active: bool) -> bool:
        """Returns False when the key already had that status."""
        if key.is_active == active:
            return False
        key.is_active = active
        self.events.record("activated" if active else "deactivated", key)
        self.session.flush()
        return True

    def mark_names_used(self, names: Iterable[str], when: datetime | None = None) -> int:
        """Set ``last_used_at`` of the named keys in one UPDATE, however many (``apikey test
        --all``); how many were set (``store.usage``, which the test command runs without
        the ORM)."""
        return usage.mark_names_used(self.session.connection(), names, when)

    def mark_used(self, key: ApiKey, when: datetime | None = None) -> bool:
        """Set ``last_used_at``; False when the key was deleted meanwhile (by another
        process: one UPDATE by id, so a concurrent delete is not an error)."""
        moment = when or utcnow()
        done = self.session.execute(
            update(ApiKey)
            .where(ApiKey.id == key.id)
            .values(last_used_at=moment)
            .execution_options(synchronize_session=False)
        )
        set_committed_value(key, "last_used_at", moment)
        return bool(getattr(done, "rowcount", 1))

    def delete(self, key: ApiKey, *, detail: str | None = None) -> None:
        """Delete the key; its server links go with it (ON DELETE CASCADE).  Its events
        stay: the history outlives the key."""
        linked = ", ".join(server.name for server in key.servers) or None
        self.events.record("deleted", key, server=linked, detail=detail)
        self.session.delete(key)
        self.session.flush()

    def record_checks(
        self, checks: Sequence[tuple[str, str | None, str, str | None]], passed: Iterable[str]
    ) -> int:
        """``store.usage.record_checks`` in this session's transaction: the ``tested``
        events of (key name, server, outcome, detail) and ``last_used_at`` of ``passed``."""
        from n8n_deploy.store.events import session_actor

        conn = self.session.connection()
        return usage.record_checks(conn, checks, passed, session_actor(self.session))


class ServerRepository(_Named):
    kind = "server"

    def names(self) -> list[str]:
        return self.reader().server_names()

    def find(self, name: str) -> Server | None:
        # Its keys are loaded only if asked for (server show): linking a key to a server
        # must not read every key already linked to it, or bulk adds grow quadratically.
        stmt = select(Server).where(queries.server_named(name))
        return self.session.scalars(stmt).one_or_none()

    def get(self, name: str) -> Server:
        server = self.find(name)
        if server is None:
            raise self._not_found(name)
        return server

    def find_by_url(self, url: str, *, exclude: Server | None = None) -> Server | None:
        """The first server (by name) whose stored, normalised URL equals ``url``,
        other than ``exclude``."""
        stmt = select(Server).where(Server.url == url).order_by(Server.name).limit(1)
        if exclude is not None:
            stmt = stmt.where(Server.id != exclude.id)
        return self.session.scalars(stmt).first()

    def list(self) -> list[Server]:
        """Every server by name, without its keys (count_links counts them in one query)."""
        return list(self.session.scalars(select(Server).order_by(servers.c.name)))

    def count_links(self) -> dict[int, tuple[int, int]]:
        """server id -> (active keys, all keys) linked to it (``Reader.link_counts``)."""
        return self.reader().link_counts()

    def create(
        self,
        name: str,
        url: str | None,
        *,
        description: str | None = None,
        skip_ssl_verify: bool = False,
    ) -> Server:
        """Store a new server (name cleaned and URL normalised by the caller); ``url`` None
        for a server whose URL is not known yet (``apikey add --server NAME``)."""
        if self.find(name) is not None:
            raise self._exists(name)
        self.refuse_key_pieces("server name", name)
        self.refuse_key_pieces("server URL", url)
        self.refuse_key_pieces("description", description)
        server = Server(
            name=name, url=url, description=description or None, skip_ssl_verify=skip_ssl_verify
        )
        self.session.add(server)
        try:
            self.session.flush()
        except IntegrityError:
            raise self._exists(name) from None
        return server

    def update(
        self,
        server: Server,
        *,
        name: str | None = None,
        url: str | None = None,
        description: str | None = None,
        skip_ssl_verify: bool | None = None,
    ) -> Server:
        self.refuse_key_pieces("server name", name)
        self.refuse_key_pieces("server URL", url)
        self.refuse_key_pieces("description", description)
        if name is not None and name != server.name:
            if self.find(name) is not None:
                raise self._exists(name)
            server.name = name
        if url is not None:
            server.url = url
        if description is not None:
            server.description = description or None
        if skip_ssl_verify is not None:
            server.skip_ssl_verify = skip_ssl_verify
        try:
            self.session.flush()
        except IntegrityError:
            raise self._exists(name or server.name) from None
        return server

    def delete(self, server: Server) -> None:
        """Delete the server and its links; the keys themselves stay (each records being
        unlinked)."""
        for key in server.api_keys:
            self.events.record("unlinked", key, server=server.name, detail="server deleted")
        self.session.delete(server)
        self.session.flush()

    def link(self, key: ApiKey, server: Server) -> bool:
        """Link ``key`` to ``server``; False when they were linked already."""
        if self._link_row(key, server) is not None:
            return False
        self.session.add(ServerApiKey(server_id=server.id, api_key_id=key.id))
        self.events.record("linked", key, server=server.name)
        self.session.flush()
        self.session.expire(key, ["servers"])
        self.session.expire(server, ["api_keys"])
        return True

    def unlink(self, key: ApiKey, server: Server) -> bool:
        """Remove the link; False when there was none."""
        row = self._link_row(key, server)
        if row is None:
            return False
        self.session.delete(row)
        self.events.record("unlinked", key, server=server.name)
        self.session.flush()
        self.session.expire(key, ["servers"])
        self.session.expire(server, ["api_keys"])
        return True

    def _link_row(self, key: ApiKey, server: Server) -> ServerApiKey | None:
        return self.session.get(ServerApiKey, (server.id, key.id))
