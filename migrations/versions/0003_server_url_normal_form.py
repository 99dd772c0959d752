"""Store server URLs in normal form, and record when a server last changed (servers.updated_at).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Lookups by URL (N8N_SERVER_URL, a server given by URL, duplicate checks) compare normalised
URLs (scheme and host lower-cased, default port and trailing slash dropped), but rows
written by n8n-deploy 0.9 or by hand hold URLs as typed, so ``HTTPS://n8n.example.com/``
never matched.  The upgrade rewrites each URL to its normal form; one that cannot be read
as an http(s) URL is left as stored and reported.  ``updated_at`` (UTC, set on every change
of the record) starts as the creation time, or the time of this upgrade for a server whose
URL was rewritten.  The downgrade drops ``updated_at`` and keeps the normalised URLs (they
address the same servers); every server and link is kept.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

servers = sa.table(
    "servers",
    sa.column("id", sa.Integer()),
    sa.column("name", sa.String()),
    sa.column("url", sa.String()),
    sa.column("created_at", sa.DateTime()),
    sa.column("updated_at", sa.DateTime()),
)


# -- frozen: the URL normal form as this revision defines it.  A revision never imports
# n8n_deploy, so that a later change to the program cannot change what it does.


class _NotAUrl(ValueError):
    pass


_HOST_LABEL = re.compile(r"(?!-)[\w-]{1,63}(?<!-)")
_LEGACY_KEY = re.compile(r"n8n_api_[0-9a-fA-F]{32,}")
_PASSWORD_IN_URL = re.compile(r"^(?P<head>[\w+.-]+://[^/:@]*:)(?P<password>[^@/]*)(?P<tail>@.*)$")


def normalize_server_url(raw: str) -> str:
    """``HTTPS://Host:443/n8n/`` -> ``https://host/n8n``; _NotAUrl for anything that is not
    an http(s) base URL (no credentials, query, fragment, control characters or spaces)."""
    text = raw.strip()
    if not text or (text.startswith("eyJ") and text.count(".") == 2 and len(text) >= 30):
        raise _NotAUrl
    if _LEGACY_KEY.fullmatch(text) or any(
        unicodedata.category(ch) in ("Cc", "Cs") or ch.isspace() for ch in text
    ):
        raise _NotAUrl
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise _NotAUrl from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if host.endswith(".") and ":" not in host:
        host = host[:-1]
    if scheme not in ("http", "https") or not host or port == 0:
        raise _NotAUrl
    if parts.username is not None or parts.password is not None:
        raise _NotAUrl
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise _NotAUrl
    if ":" in host:
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise _NotAUrl from None
    else:
        labels = host.split(".")
        if not all(_HOST_LABEL.fullmatch(label) for label in labels):
            raise _NotAUrl
        if all(label.isdigit() for label in labels):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise _NotAUrl from None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and not (
        (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
    ):
        netloc = f"{netloc}:{port}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), "", ""))


def mask_url_password(url: str) -> str:
    return _PASSWORD_IN_URL.sub(lambda m: m["head"] + "***" + m["tail"], url)


def _urls(count: int) -> str:
    return f"{count} server URL" + ("" if count == 1 else "s")


# -- the revision ------------------------------------------------------------------------


def _note(message: str) -> None:
    """Tell whoever runs the migration (n8n_deploy.store.migrations prints these)."""
    config = op.get_context().config
    if config is not None:
        config.attributes.setdefault("notes", []).append(message)


def upgrade() -> None:
    # Present when a run that failed part-way on MariaDB/MySQL (whose DDL cannot be rolled
    # back) is finished: the revision then does the rest.
    if "updated_at" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("servers")}:
        with op.batch_alter_table("servers") as batch:
            batch.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))
    conn = op.get_bind()
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    rows = conn.execute(sa.select(servers.c.id, servers.c.name, servers.c.url)).all()
    rewritten = 0
    for server_id, name, url in rows:
        normal = url
        try:
            normal = normalize_server_url(url) if isinstance(url, str) else url
        except _NotAUrl:
            shown = mask_url_password(url)  # never print a password kept in a URL
            web = url.strip().lower().startswith(("http://", "https://"))
            what = "cannot be used as a server URL" if web else "is not an http(s) URL"
            _note(f"server '{name}': URL {shown!r} {what}; left as stored")
        changed = normal != url
        rewritten += changed
        conn.execute(
            servers.update()
            .where(servers.c.id == server_id)
            .values(url=normal, updated_at=now if changed else servers.c.created_at)
        )
    if rewritten:
        _note(f"{_urls(rewritten)} rewritten in normal form")
    with op.batch_alter_table("servers", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.alter_column("updated_at", existing_type=sa.DateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("servers", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("updated_at")
