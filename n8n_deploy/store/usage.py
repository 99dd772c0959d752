"""Recording that keys were used (``last_used_at``) and tested (``tested`` events): one
UPDATE and one INSERT in SQLAlchemy Core; and the one shape of an event row
(:func:`insert_events`), for every writer of events.

``apikey test`` records each key whose checks passed; doing it without the ORM spares that
command importing ``sqlalchemy.orm`` and configuring the mappers just to write one
statement.  ``ApiKeyRepository.mark_names_used`` runs this same statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update

from n8n_deploy.base.dates import utcnow
from n8n_deploy.store.metadata import api_keys, key_events

if TYPE_CHECKING:
    from sqlalchemy import Connection


def mark_names_used(conn: Connection, names: Iterable[str], when: datetime | None = None) -> int:
    """Set ``last_used_at`` of the named keys in one UPDATE, however many; how many were
    set.  A key deleted meanwhile is simply not among them."""
    chosen = sorted(set(names))
    if not chosen:
        return 0
    done = conn.execute(
        update(api_keys)
        .where(api_keys.c.name.in_(chosen))
        .values(last_used_at=when or utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(done, "rowcount", len(chosen)))


def record_checks(
    conn: Connection,
    checks: Sequence[tuple[str, str | None, str, str | None]],
    passed: Iterable[str],
    actor: str,
    ids: Mapping[str, int] | None = None,
) -> int:
    """Record each check as a ``tested`` event and set ``last_used_at`` of the keys in
    ``passed``, in the caller's transaction (one INSERT, one UPDATE); how many keys were
    marked used.

    ``ids`` (name -> id, as read before the check) pins each check to the key that was
    tested: a key deleted meanwhile is not recorded, one renamed meanwhile is recorded
    under its new name, and another key given the same name meanwhile is left alone.
    Without ``ids`` (in the same transaction as the read), keys are found by name."""
    names = sorted({check[0] for check in checks})
    if not names:
        return 0
    if ids is None:
        found = conn.execute(
            select(api_keys.c.name, api_keys.c.id).where(api_keys.c.name.in_(names))
        )
        pinned = {row[0]: row[1] for row in found}
    else:
        pinned = {name: ids[name] for name in names if name in ids}
    current: dict[int, str] = {}
    if pinned:
        rows = conn.execute(
            select(api_keys.c.id, api_keys.c.name).where(api_keys.c.id.in_(set(pinned.values())))
        )
        current = {row[0]: row[1] for row in rows}
    now = utcnow()
    events: list[dict[str, Any]] = [
        {
            "kind": "tested",
            "key_name": current[pinned[name]],
            "key_id": pinned[name],
            "server": server,
            "outcome": outcome,
            "detail": detail,
        }
        for name, server, outcome, detail in checks
        if pinned.get(name) in current
    ]
    insert_events(conn, events, actor, now)
    used = sorted({pinned[name] for name in passed if pinned.get(name) in current})
    if not used:
        return 0
    done = conn.execute(
        update(api_keys)
        .where(api_keys.c.id.in_(used))
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(done, "rowcount", len(used)))


def insert_events(
    conn: Connection, rows: Sequence[dict[str, Any]], actor: str, at: datetime | None = None
) -> None:
    """Record ``rows`` as events in one INSERT, in the caller's transaction: each has kind,
    key_name and key_id, and may have other_name, server, outcome and detail; all happen
    ``at`` (now) and are done by ``actor``.  Never the key itself."""
    if not rows:
        return
    moment = at or utcnow()
    full = [
        {
            "at": moment,
            "other_name": None,
            "server": None,
            "outcome": None,
            "detail": None,
            **row,
            "actor": actor,
            "reconstructed": False,
        }
        for row in rows
    ]
    conn.execute(insert(key_events), full)
