"""Adding an API key: every check, then one unit of work that stores the key and its server.

``plan_new_key`` checks everything that needs no database (name, key format and expiry,
description, server name, server URL), so bad input is refused before the database is even
opened.  ``store_new_key`` then does the database part inside the caller's session (one
transaction: the key, a server created for it and the link are stored together or not at
all).  ``add_key`` does both.  Nothing here prints; warnings are returned for the caller to
show.  The key itself never appears in a message, a warning or a repr.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from n8n_deploy.base.dates import human_date
from n8n_deploy.base.errors import InvalidServerUrlError, NotFoundError, OperationFailed
from n8n_deploy.base.keyformat import EXPIRY_WARNING_DAYS, KeyInfo, check_key
from n8n_deploy.base.names import clean_description, clean_name
from n8n_deploy.base.settings import SERVER_URL_ENV
from n8n_deploy.base.urls import normalize_server_url, server_url_warnings, url_host_label
from n8n_deploy.store.models import ApiKey, Server
from n8n_deploy.store.repositories import ApiKeyRepository, ServerRepository

SERVER_URL_SOURCE = SERVER_URL_ENV


@dataclass(frozen=True)
class NewKey:
    """A key that passed every check that needs no database."""

    name: str
    secret: str = field(repr=False)
    info: KeyInfo = field(repr=False)
    description: str | None = None
    server_name: str | None = None
    server_url: str | None = None  # normalised
    warnings: tuple[str, ...] = ()
    delete_after: datetime | None = None  # an ephemeral key's deadline (--ttl)


@dataclass
class AddedKey:
    """What ``store_new_key`` did: the stored key, the server it was linked to (if any),
    whether that server was created for it, and warnings for the user."""

    key: ApiKey
    server: Server | None = None
    server_created: bool = False
    warnings: list[str] = field(default_factory=list)


def plan_new_key(
    name: str,
    raw_key: str,
    *,
    description: str | None = None,
    server: str | None = None,
    server_url: str | None = None,
    now: datetime | None = None,
    delete_after: datetime | None = None,
) -> NewKey:
    """Clean and check a key about to be added (``delete_after``: an ephemeral key's
    deadline).

    Raises InvalidNameError (bad name), UsageError (empty key or description with control
    characters), InvalidKeyFormatError (not a JWT or legacy key), KeyExpiredError (its
    ``exp`` has passed) and InvalidServerUrlError (``server_url`` is not a base URL).
    """
    clean = clean_name(name)
    secret, info = check_key(raw_key, now=now)
    warnings = [f"API key '{clean}': {problem}" for problem in info.problems]
    if info.expires_at is not None and info.expires_within(EXPIRY_WARNING_DAYS, now):
        warnings.append(
            f"API key '{clean}' expires within {EXPIRY_WARNING_DAYS} days, on "
            f"{human_date(info.expires_at)}; create a new key in n8n before then"
        )
    return NewKey(
        name=clean,
        secret=secret,
        info=info,
        description=clean_description(description),
        server_name=clean_name(server, "server") if server is not None else None,
        server_url=_server_url(server_url),
        warnings=tuple(warnings),
        delete_after=delete_after,
    )


def store_new_key(session: Session, new: NewKey) -> AddedKey:
    """Store ``new`` in the caller's unit of work, linked to its server.

    With a server name: link to that server, creating it from ``server_url`` when it does
    not exist (without a URL, NotFoundError naming the ``server create`` command to run).
    With only a server URL: link to the server with that (normalised) URL, creating one
    named after the URL's host[:port] when there is none.
    """
    servers = ServerRepository(session)
    warnings = list(new.warnings)
    server, created = None, False
    if new.server_name is not None:
        server = servers.find(new.server_name)
        if server is None:
            # The reference: --server "creates server if doesn't exist"; its URL comes from
            # N8N_SERVER_URL, or is set later (server update NAME --url URL).  A name close
            # to a stored one is taken for a typo, not for a new server.
            if new.server_url is None:
                _refuse_a_likely_typo(servers, new.server_name)
            server, created = servers.create(new.server_name, new.server_url), True
            if new.server_url is None:
                warnings.append(
                    f"server '{server.name}' was created without a URL: set it with "
                    f"n8n-deploy server update {shlex.quote(server.name)} --url URL "
                    "before testing the key against it"
                )
        elif new.server_url is not None and new.server_url != server.url:
            warnings.append(
                f"{SERVER_URL_SOURCE} ({new.server_url}) is not the URL of server "
                f"'{server.name}' ({server.url}); linked to '{server.name}' as asked"
            )
    elif new.server_url is not None:
        server = servers.find_by_url(new.server_url)
        if server is None:
            server, created = _server_for_url(servers, new.server_url), True
    if created and server is not None and server.url is not None:
        warnings.extend(server_url_warnings(server.url))
    key = ApiKeyRepository(session).add(
        new.name,
        new.secret,
        description=new.description,
        servers=[server] if server is not None else (),
        delete_after=new.delete_after,
    )
    return AddedKey(key=key, server=server, server_created=created, warnings=warnings)


def add_key(
    session: Session,
    name: str,
    raw_key: str,
    *,
    description: str | None = None,
    server: str | None = None,
    server_url: str | None = None,
    now: datetime | None = None,
    delete_after: datetime | None = None,
) -> AddedKey:
    """``plan_new_key`` then ``store_new_key``: the whole of ``apikey add`` for Python callers."""
    new = plan_new_key(
        name,
        raw_key,
        description=description,
        server=server,
        server_url=server_url,
        now=now,
        delete_after=delete_after,
    )
    return store_new_key(session, new)


def _server_url(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    try:
        return normalize_server_url(raw)
    except InvalidServerUrlError as error:
        raise InvalidServerUrlError(
            f"{SERVER_URL_SOURCE} is not usable: {error.message}",
            hint=error.hint or "Set it to the server's base URL, e.g. https://n8n.example.com",
        ) from None


def _refuse_a_likely_typo(servers: ServerRepository, name: str) -> None:
    """NotFoundError, with the close names, when ``name`` looks like a stored one mistyped."""
    try:
        servers.get(name)
    except NotFoundError as error:
        if error.suggestions:
            error.hint = (
                f"{error.hint} To create a new server of that name instead: "
                f"n8n-deploy server create {shlex.quote(name)} URL. Nothing was stored"
            )
            raise


def _server_for_url(servers: ServerRepository, url: str) -> Server:
    name = clean_name(url_host_label(url), "server")
    taken = servers.find(name)
    if taken is not None:
        raise OperationFailed(
            f"No server has the URL {url} from {SERVER_URL_SOURCE}, and the name '{name}' "
            f"is taken by a server with the URL {taken.url}",
            hint=f"Name the server to use with --server, or create one: "
            f"n8n-deploy server create NAME {shlex.quote(url)}",
        )
    return servers.create(name, url)
