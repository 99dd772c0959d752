"""Deleting ephemeral keys past their deadline (``apikey add --ttl``): on demand
(``apikey prune``) and, cheaply, in every unit of work that writes (``prune_if_due``).

Every removal is a ``deleted`` event in the same unit of work.  Several processes may prune
at once: each key is deleted (and its event recorded) by exactly one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from n8n_deploy.base.dates import as_utc, human_time, iso_utc, utcnow
from n8n_deploy.store.events import SettingsRepository
from n8n_deploy.store.repositories import ApiKeyRepository

#: Writers prune at most this often; the moment of the last prune is shared by everyone
#: using the database (``registry_settings``).
PRUNE_INTERVAL = timedelta(minutes=1)
LAST_PRUNE = "prune.last_at"


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
    session: Session, *, expired: bool = False, now: datetime | None = None
) -> list[PrunedKey]:
    """Delete every ephemeral key past its deadline and, with ``expired``, every key whose
    JWT ``exp`` has passed; what was removed, by name."""
    moment = now or utcnow()
    repo = ApiKeyRepository(session)
    chosen = {key.id: ("ephemeral", key) for key in repo.past_deadline(moment)}
    if expired:
        for key in repo.expired(moment):
            chosen.setdefault(key.id, ("expired", key))
    removed = []
    for reason, key in sorted(chosen.values(), key=lambda item: item[1].name):
        deadline = key.delete_after if reason == "ephemeral" else key.expires_at
        assert deadline is not None
        servers = tuple(server.name for server in key.servers)
        why = (
            f"pruned: ephemeral, deadline {human_time(deadline)} UTC passed"
            if reason == "ephemeral"
            else f"pruned: expired on {human_time(deadline)} UTC"
        )
        if repo.delete_if_present(key, detail=why):
            removed.append(PrunedKey(key.name, reason, as_utc(deadline), servers))
    SettingsRepository(session).set(LAST_PRUNE, iso_utc(moment) or "")
    return removed


def prune_if_due(session: Session) -> list[PrunedKey]:
    """``prune_keys`` when the last prune (by anyone) is a minute old or more: one
    primary-key read otherwise."""
    now = utcnow()
    last = SettingsRepository(session).get(LAST_PRUNE)
    if last:
        try:
            when = as_utc(datetime.fromisoformat(last.replace("Z", "+00:00")))
        except ValueError:
            when = None
        if when is not None and now - when < PRUNE_INTERVAL and when <= now:
            return []
    return prune_keys(session, now=now)
