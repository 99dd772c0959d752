"""Rotating a key safely: the use case behind ``n8n-deploy apikey rotate``.

The new key is tested against every server the old one is linked to before anything is
stored or retired; any failure leaves the old key untouched and active.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from n8n_deploy.apikeys.check import (
    CheckOptions,
    KeyReport,
    NoServerError,
    OnDone,
    Target,
    TargetResult,
    choose_targets,
    run_checks,
    tested_events,
)
from n8n_deploy.base.errors import AlreadyExistsError, OperationFailed
from n8n_deploy.base.keyformat import check_key
from n8n_deploy.base.names import clean_description, clean_name, lookup_name
from n8n_deploy.base.status import ExitStatus, most_serious
from n8n_deploy.store.engine import Database
from n8n_deploy.store.models import ApiKey
from n8n_deploy.store.repositories import ApiKeyRepository, ServerRepository


@dataclass(frozen=True)
class RotationPlan:
    """A rotation that passed every check made before anything is contacted or stored."""

    old_name: str
    new_name: str
    secret: str = field(repr=False)
    description: str | None
    server_names: tuple[str, ...]  # the servers OLD is linked to: NEW is tested on each
    targets: tuple[Target, ...]
    old_active: bool
    resumed: bool = False  # NEW was stored with this key by an earlier, failed rotation


@dataclass(frozen=True)
class RotationReport:
    old_name: str
    new_name: str
    results: tuple[TargetResult, ...]
    rotated: bool
    new_stored: bool
    old_action: str  # deactivated | deleted | already inactive | unchanged
    old_active: bool  # OLD's status afterwards (False once deleted)
    resumed: bool = False  # finishing an earlier rotation that stored NEW

    @property
    def exit_status(self) -> ExitStatus:
        return most_serious(r.result.exit_status for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": self.old_name,
            "new": self.new_name,
            "rotated": self.rotated,
            "old_key": self.old_action,
            "old_key_active": self.old_active,
            "new_key": "stored" if self.new_stored else "not stored",
            "resumed": self.resumed,
            "exit_status": int(self.exit_status),
            "results": [r.to_dict(self.new_name) for r in self.results],
        }


def rotate_key(
    database: Database,
    old_name: str,
    new_secret: str,
    new_name: str,
    *,
    description: str | None = None,
    discard_on_failure: bool = False,
    delete_old: bool = False,
    options: CheckOptions | None = None,
    on_done: OnDone | None = None,
) -> RotationReport:
    """Replace the key ``old_name`` by ``new_secret`` stored as ``new_name``.

    NEW is tested against every server OLD is linked to.  Only when every test passes is
    NEW stored (linked to those servers, last_used_at set) and OLD deactivated (or deleted
    with ``delete_old``), all in one transaction.  Otherwise OLD is left untouched and
    active, and NEW is stored for a later retry (linked, but untouched otherwise) unless
    ``discard_on_failure``.  Bad input (format, expiry, names, description, a key already
    stored, OLD without servers) is refused before anything is contacted or stored: this
    is :func:`plan_rotation` followed by :func:`carry_out_rotation`.

    Running a failed rotation again (NEW stored with this very key, OLD still active)
    finishes it: NEW is tested again and, when every test passes, linked to any of OLD's
    servers it lacks, made active and OLD retired, as above.
    """
    plan = plan_rotation(
        database, old_name, new_secret, new_name, description=description, options=options
    )
    return carry_out_rotation(
        database,
        plan,
        discard_on_failure=discard_on_failure,
        delete_old=delete_old,
        options=options,
        on_done=on_done,
    )


def plan_rotation(
    database: Database,
    old_name: str,
    new_secret: str,
    new_name: str,
    *,
    description: str | None = None,
    options: CheckOptions | None = None,
) -> RotationPlan:
    """Every refusal of a rotation, before anything is contacted or stored (read only)."""
    options = options or CheckOptions()
    old_name = lookup_name(old_name)  # a key pasted as OLD: refused, never echoed
    new_name = clean_name(new_name)
    description = clean_description(description)
    secret, _info = check_key(new_secret)
    with database.session() as session:
        keys = ApiKeyRepository(session)
        old = keys.get(old_name)
        stored_new = keys.find(new_name) if new_name != old.name else old
        resumed = _resumable(old, stored_new, secret)
        if stored_new is not None and not resumed:
            raise AlreadyExistsError(
                "API key", new_name, hint=_exists_hint(old, stored_new, secret)
            )
        twin = None if resumed else keys.find_by_secret(secret)
        if twin is not None:
            same = twin.id == old.id
            raise OperationFailed(
                f"The new key is the same as '{twin.name}'"
                if same
                else f"The new key is already stored as '{twin.name}'",
                hint="Create a new key in n8n (Settings -> API) and pass that one",
            )
        servers = list(old.servers)
        if not servers:
            raise NoServerError(
                f"API key '{old_name}' is not linked to any server, so there is nowhere to "
                "test the new key",
                hint=f"Link it to its server first: n8n-deploy server link '{old_name}' SERVER",
            )
        targets = choose_targets(f"API key '{new_name}'", linked=servers, options=options)
        return RotationPlan(
            old_name=old.name,
            new_name=new_name,
            secret=secret,
            description=description,
            server_names=tuple(s.name for s in servers),
            targets=tuple(targets),
            old_active=old.is_active,
            resumed=resumed,
        )


def _resumable(old: ApiKey, stored_new: ApiKey | None, secret: str) -> bool:
    """NEW was stored with this key by an earlier rotation that did not finish."""
    return (
        stored_new is not None
        and stored_new.id != old.id
        and stored_new.api_key == secret
        and old.is_active
    )


def _exists_hint(old: ApiKey, stored_new: ApiKey, secret: str) -> str:
    if stored_new.id != old.id and stored_new.api_key == secret:
        return (
            f"It already holds this key and '{old.name}' is inactive, so there is no "
            f"rotation left to finish; check it with: n8n-deploy apikey test "
            f"'{stored_new.name}'"
        )
    return (
        "Choose another --name. To finish an earlier rotation, run it again with the same new key"
    )


def carry_out_rotation(
    database: Database,
    plan: RotationPlan,
    *,
    discard_on_failure: bool = False,
    delete_old: bool = False,
    options: CheckOptions | None = None,
    on_done: OnDone | None = None,
) -> RotationReport:
    """Test NEW against each of OLD's servers, then finish or stop the rotation."""
    options = options or CheckOptions()
    old_name, new_name = plan.old_name, plan.new_name
    results = run_checks([(new_name, plan.secret, plan.targets)], options, on_done)[0]
    if all(r.result.ok for r in results):
        with database.session(write=True) as session:
            keys, servers = ApiKeyRepository(session), ServerRepository(session)
            old = keys.get(old_name)
            linked = [servers.get(n) for n in plan.server_names]
            if plan.resumed:
                new = _stored_new(keys, plan)
                for server in linked:
                    servers.link(new, server)
                if plan.description is not None:
                    keys.update(new, description=plan.description)
                keys.set_active(new, True)
            else:
                new = keys.add(new_name, plan.secret, description=plan.description, servers=linked)
            keys.record_checks(tested_events([KeyReport(new_name, results)]), [])
            keys.mark_used(new)
            keys.events.record(
                "rotated",
                old,
                other_name=new.name,
                server=", ".join(plan.server_names),
                detail=f"old key {'deleted' if delete_old else 'deactivated'}",
            )
            if delete_old:
                keys.delete(old, detail=f"rotated: replaced by '{new.name}'")
                action = "deleted"
            else:
                action = "deactivated" if keys.set_active(old, False) else "already inactive"
        return RotationReport(
            old_name, new_name, results, True, True, action, False, resumed=plan.resumed
        )
    # A resumed rotation keeps the NEW an earlier run stored, even with discard_on_failure.
    stored = plan.resumed or not discard_on_failure
    if not plan.resumed and not discard_on_failure:
        with database.session(write=True) as session:
            linked = [ServerRepository(session).get(n) for n in plan.server_names]
            keys = ApiKeyRepository(session)
            keys.add(new_name, plan.secret, description=plan.description, servers=linked)
            keys.record_checks(tested_events([KeyReport(new_name, results)]), [])
    return RotationReport(
        old_name,
        new_name,
        results,
        False,
        stored,
        "unchanged",
        plan.old_active,
        resumed=plan.resumed,
    )


def _stored_new(keys: ApiKeyRepository, plan: RotationPlan) -> ApiKey:
    """NEW as an earlier rotation stored it, unless it changed while NEW was tested."""
    new = keys.find(plan.new_name)
    if new is None or new.api_key != plan.secret:
        raise OperationFailed(
            f"API key '{plan.new_name}' was changed or deleted during the rotation; "
            "nothing was changed",
            hint="Run the rotation again",
        )
    return new
