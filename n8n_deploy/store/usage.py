"""Recording that keys were used (``last_used_at``): one UPDATE in SQLAlchemy Core.

``apikey test`` records each key whose checks passed; doing it without the ORM spares that
command importing ``sqlalchemy.orm`` and configuring the mappers just to write one
statement.  ``ApiKeyRepository.mark_names_used`` runs this same statement.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import update

from n8n_deploy.base.dates import utcnow
from n8n_deploy.store.metadata import api_keys

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
