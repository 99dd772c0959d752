"""Deleting ephemeral keys past their deadline (``apikey add --ttl``): on demand
(``apikey prune``) and, cheaply, before every unit of work that writes (``prune_if_due``,
run by ``Database`` for ORM sessions and Core writers alike, ``apikey test`` included).

SQLAlchemy Core on a connection, so a command that writes without the ORM prunes without
importing it.  Every removal is a ``deleted`` event in the same transaction.  Several
processes may prune at once: each key is deleted (and its event recorded) by exactly one
of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, or_, select

from n8n_deploy.base.dates import as_utc, human_time, iso_utc, utcnow
from n8n_deploy.store.metadata import api_keys, server_api_keys, servers
from n8n_deploy.store.usage import insert_events

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement
    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class PrunedKey:
    name: str
    reason: str  # "ephemeral" (past its deadline) | "expired" (its JWT exp has passed)
    deadline: datetime  # delete_after, or the JWT's exp
    servers: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "reason": self.reason,
            "deadline": iso_utc(self.deadline),
            "servers": list(self.servers),
        }


def prune_keys(
    target: Connection | Session,
    *,
    expired: bool = False,
    now: datetime | None = None,
    actor: str | None = None,
) -> list[PrunedKey]:
    """Delete every ephemeral key past its deadline and, with ``expired``, every key whose
    JWT ``exp`` has passed, in ``target``'s transaction (a Core connection or an ORM
    session); what was removed, by name.  The events name ``actor`` (by default the
    session's, as every repository does)."""
    conn, who = _connection(target, actor)
    moment = now or utcnow()
    due = _past_deadline(moment)
    if expired:
        due = or_(due, and_(api_keys.c.expires_at.is_not(None), api_keys.c.expires_at <= moment))
    rows = conn.execute(
        select(api_keys.c.id, api_keys.c.name, api_keys.c.delete_after, api_keys.c.expires_at)
        .where(due)
        .order_by(api_keys.c.name)
    ).all()
    removed: list[PrunedKey] = []
    events: list[dict[str, Any]] = []
    linked = _linked_servers(conn, [row[0] for row in rows])
    for key_id, name, delete_after, expires_at in rows:
        ephemeral = delete_after is not None and as_utc(delete_after) <= moment
        deadline = as_utc(delete_after if ephemeral else expires_at)
        why = (
            f"pruned: ephemeral, deadline {human_time(deadline)} UTC passed"
            if ephemeral
            else f"pruned: expired on {human_time(deadline)} UTC"
        )
        # One DELETE by id: a key another pruner removed first is simply not ours.
        done = conn.execute(delete(api_keys).where(api_keys.c.id == key_id))
        if not getattr(done, "rowcount", 1):
            continue
        names = linked.get(key_id, ())
        removed.append(PrunedKey(name, "ephemeral" if ephemeral else "expired", deadline, names))
        events.append(
            {
                "kind": "deleted",
                "key_name": name,
                "key_id": key_id,
                "server": ", ".join(names) or None,
                "detail": why,
            }
        )
    insert_events(conn, events, who, moment)
    return removed


def prune_if_due(target: Connection | Session, *, actor: str | None = None) -> list[PrunedKey]:
    """``prune_keys`` when a key is past its deadline: one read (the first such key) when
    none is, and nothing written, so a command that then fails leaves the database as it
    was (the prune's own deletions stay: they were promised).  Run before every writing
    unit of work, so no command that writes ever acts on a key past its deadline."""
    conn, who = _connection(target, actor)
    now = utcnow()
    due = conn.scalar(select(api_keys.c.id).where(_past_deadline(now)).limit(1))
    if due is None:
        return []
    return prune_keys(conn, now=now, actor=who)


def _past_deadline(moment: datetime) -> ColumnElement[bool]:
    """The ephemeral keys whose deadline has passed at ``moment``."""
    return and_(api_keys.c.delete_after.is_not(None), api_keys.c.delete_after <= moment)


def _connection(target: Connection | Session, actor: str | None) -> tuple[Connection, str]:
    if isinstance(target, Connection):
        return target, actor or "unknown"
    from n8n_deploy.store.events import session_actor

    return target.connection(), actor or session_actor(target)


def _linked_servers(conn: Connection, key_ids: list[int]) -> dict[int, tuple[str, ...]]:
    """key id -> the names of its servers (by name), for the keys about to be deleted."""
    if not key_ids:
        return {}
    pairs = conn.execute(
        select(server_api_keys.c.api_key_id, servers.c.name)
        .join(servers, servers.c.id == server_api_keys.c.server_id)
        .where(server_api_keys.c.api_key_id.in_(key_ids))
        .order_by(servers.c.name)
    )
    found: dict[int, list[str]] = {}
    for key_id, name in pairs:
        found.setdefault(key_id, []).append(name)
    return {key_id: tuple(names) for key_id, names in found.items()}
