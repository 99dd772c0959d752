"""The audit trail and the registry's shared settings: every key event goes through
``EventRepository``; the team's policy through ``SettingsRepository``.

Events are written in the caller's unit of work, so a change and its event are committed
together or not at all, and a failed command records nothing.  The actor (who) is the
session's (``Database`` puts ``Settings.actor`` in ``session.info``).  No event ever holds
the key itself: names, servers, outcomes and short details only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from n8n_deploy.base.dates import utcnow
from n8n_deploy.store.models import ApiKey, KeyEvent, RegistrySetting

#: What ``session.info`` holds the actor under.
ACTOR = "actor"


def session_actor(session: Session) -> str:
    return str(session.info.get(ACTOR) or "unknown")


class EventRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(
        self,
        kind: str,
        key: ApiKey | None = None,
        *,
        key_name: str | None = None,
        key_id: int | None = None,
        other_name: str | None = None,
        server: str | None = None,
        outcome: str | None = None,
        detail: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Record one event about ``key`` (or the key named ``key_name``, id ``key_id``)."""
        name = key.name if key is not None else key_name
        assert name is not None
        self.session.add(
            KeyEvent(
                at=at or utcnow(),
                kind=kind,
                key_name=name,
                key_id=key.id if key is not None else key_id,
                other_name=other_name,
                server=server,
                outcome=outcome,
                detail=detail,
                actor=session_actor(self.session),
            )
        )

    def record_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Record many events in one INSERT (``apikey test --all``): each row has kind,
        key_name and key_id, and may have server, outcome and detail."""
        from n8n_deploy.store.usage import insert_events

        self.session.flush()  # the events already added come first
        insert_events(self.session.connection(), rows, session_actor(self.session))

    def history(self, name: str, *, limit: int | None = None) -> tuple[list[KeyEvent], int]:
        """The events of the key named ``name`` now or at any time (renamed, rotated into,
        deleted), oldest first; at most the newest ``limit``.  Also how many there are.

        A key is followed by its id through renames; a rotation into ``name`` shows as
        the old key's ``rotated`` event, without the old key's own history."""
        ids = set(
            self.session.scalars(
                select(KeyEvent.key_id).where(
                    KeyEvent.key_id.is_not(None),
                    or_(
                        KeyEvent.key_name == name,
                        (KeyEvent.other_name == name) & (KeyEvent.kind == "renamed"),
                    ),
                )
            )
        )
        current = self.session.scalar(select(ApiKey.id).where(ApiKey.name == name))
        if current is not None:
            ids.add(current)
        conditions = [KeyEvent.key_name == name, KeyEvent.other_name == name]
        if ids:
            conditions.append(KeyEvent.key_id.in_(sorted(ids)))
        stmt = select(KeyEvent).where(or_(*conditions)).order_by(KeyEvent.at, KeyEvent.id)
        found = list(self.session.scalars(stmt))
        # Another key that exists now under another name (renamed away from ``name``, or
        # rotated into it) is not this key: of its events only a rotation into ``name``.
        others = set(
            self.session.scalars(
                select(ApiKey.id).where(
                    ApiKey.id.in_({e.key_id for e in found if e.key_id is not None}),
                    ApiKey.name != name,
                )
            )
        )
        found = [
            e
            for e in found
            if e.key_id not in others or (e.kind == "rotated" and e.other_name == name)
        ]
        total = len(found)
        if limit is not None and limit > 0:
            found = found[-limit:]
        return found, total

    def list(
        self,
        *,
        since: datetime | None = None,
        server: str | None = None,
        kinds: Iterable[str] = (),
        limit: int | None = None,
    ) -> list[KeyEvent]:
        """Every event (oldest first), filtered; at most the newest ``limit``."""
        stmt = select(KeyEvent)
        if since is not None:
            stmt = stmt.where(KeyEvent.at >= since)
        if server is not None:  # an event about several servers names them all: "A, B"
            stmt = stmt.where(
                or_(
                    KeyEvent.server == server,
                    KeyEvent.server.startswith(f"{server}, ", autoescape=True),
                    KeyEvent.server.endswith(f", {server}", autoescape=True),
                    KeyEvent.server.contains(f", {server}, ", autoescape=True),
                )
            )
        chosen = sorted(set(kinds))
        if chosen:
            stmt = stmt.where(KeyEvent.kind.in_(chosen))
        if limit is not None and limit > 0:
            newest = stmt.order_by(KeyEvent.at.desc(), KeyEvent.id.desc()).limit(limit)
            return list(reversed(list(self.session.scalars(newest))))
        return list(self.session.scalars(stmt.order_by(KeyEvent.at, KeyEvent.id)))

    def last_of_kind(self, kind: str) -> dict[int, datetime]:
        """key id -> when the latest event of ``kind`` happened to it."""
        from sqlalchemy import func

        stmt = (
            select(KeyEvent.key_id, func.max(KeyEvent.at))
            .where(KeyEvent.kind == kind, KeyEvent.key_id.is_not(None))
            .group_by(KeyEvent.key_id)
        )
        return {int(row[0] or 0): row[1] for row in self.session.execute(stmt)}

    def prune(self, before: datetime) -> int:
        """Delete the events older than ``before``; how many."""
        done = self.session.execute(
            delete(KeyEvent)
            .where(KeyEvent.at < before)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(done, "rowcount", 0) or 0)


class SettingsRepository:
    """Settings shared by everyone using the database (``registry_settings``)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def all(self, prefix: str = "") -> dict[str, RegistrySetting]:
        stmt = select(RegistrySetting).where(RegistrySetting.name.startswith(prefix))
        return {row.name: row for row in self.session.scalars(stmt)}

    def get(self, name: str) -> str | None:
        return self.session.scalar(
            select(RegistrySetting.value).where(RegistrySetting.name == name)
        )

    def set(self, name: str, value: str) -> None:
        """Set ``name`` (created when missing; a concurrent creation by another process
        is taken as done, and this value written over it)."""
        actor = session_actor(self.session)
        row = self.session.get(RegistrySetting, name)
        if row is not None:
            row.value, row.updated_by, row.updated_at = value, actor, utcnow()
            self.session.flush()
            return
        try:
            with self.session.begin_nested():
                self.session.add(RegistrySetting(name=name, value=value, updated_by=actor))
                self.session.flush()
        except IntegrityError:
            row = self.session.get(RegistrySetting, name, populate_existing=True)
            if row is not None:
                row.value, row.updated_by, row.updated_at = value, actor, utcnow()
                self.session.flush()

    def unset(self, name: str) -> bool:
        row = self.session.get(RegistrySetting, name)
        if row is None:
            return False
        self.session.delete(row)
        self.session.flush()
        return True
