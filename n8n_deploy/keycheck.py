"""Testing stored keys against their servers, and rotating keys safely.

The workflows behind ``n8n-deploy apikey test`` and ``apikey rotate``, usable from Python:
they choose the servers, run the validator (``n8n_deploy.validator``), and record the
outcome in the database.  No transaction is held open while a server is being contacted.

Which server a key is tested against (first that applies): an explicit URL, an explicit
server record, every server the key is linked to (all must pass), ``N8N_SERVER_URL``.
When none applies the key is not tested and that is an error: never a pass.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from n8n_deploy.config import SERVER_URL_ENV
from n8n_deploy.db import Database
from n8n_deploy.errors import (
    AlreadyExistsError,
    ExitStatus,
    InvalidServerUrlError,
    KeyInactiveError,
    N8nDeployError,
    NotFoundError,
    OperationFailed,
    UsageError,
)
from n8n_deploy.keys import check_key
from n8n_deploy.models import ApiKey, Server
from n8n_deploy.repositories import ApiKeyRepository, ServerRepository
from n8n_deploy.validation import clean_description, clean_name, normalize_server_url
from n8n_deploy.validator import (
    DEFAULT_TIMEOUT,
    MAX_CONCURRENCY,
    Outcome,
    Probe,
    ValidationResult,
    check_locally,
    most_serious,
    validate_many,
)


class NoServerError(OperationFailed):
    """A key has no server to be tested against (exit status 1: never a pass)."""


@dataclass(frozen=True)
class Target:
    """A server to test against, and how it was chosen."""

    url: str
    server: str | None = None  # the server record's name, when there is one
    verify_tls: bool = True
    source: str = "--server-url"  # --server-url | --server | linked | N8N_SERVER_URL


@dataclass(frozen=True)
class TargetResult:
    """One check's result; ``target`` is None when no server was involved (a key that
    failed its local checks before any server was chosen)."""

    target: Target | None
    result: ValidationResult

    def to_dict(self, key_name: str | None) -> dict[str, Any]:
        return {
            "key": key_name,
            "server": self.target.server if self.target else None,
            "source": self.target.source if self.target else None,
            **self.result.to_dict(),
        }


class NoKeysError(OperationFailed):
    """``check_all_keys`` found no active key to test (exit status 1: never a pass)."""


#: The errors that mean a check could not run at all: ``KeyReport.not_run`` turns each into
#: a result (outcome not_found, inactive or not_tested) for output that must always say
#: what happened (``apikey test --json``).
CANNOT_RUN: tuple[type[N8nDeployError], ...] = (
    NotFoundError,
    KeyInactiveError,
    NoServerError,
    NoKeysError,
)


def not_run_result(error: N8nDeployError) -> ValidationResult:
    """A check that could not run, as a result of the same shape as any other."""
    if isinstance(error, KeyInactiveError):
        outcome = Outcome.INACTIVE
    elif isinstance(error, NotFoundError):
        outcome = Outcome.NOT_FOUND
    else:
        outcome = Outcome.NOT_TESTED
    return ValidationResult(None, outcome, error.message, hint=error.hint)


@dataclass(frozen=True)
class KeyReport:
    """The outcome of testing one key: one result per server, or one saying why it was
    not tested (no target then)."""

    key_name: str | None  # None for a key read from stdin
    results: tuple[TargetResult, ...] = ()
    recorded_use: bool = False  # last_used_at was set

    @classmethod
    def not_run(cls, key_name: str | None, error: N8nDeployError) -> KeyReport:
        return cls(key_name, (TargetResult(None, not_run_result(error)),))

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.result.ok for r in self.results)

    @property
    def exit_status(self) -> ExitStatus:
        if not self.results:
            return ExitStatus.FAILED
        return most_serious(r.result.exit_status for r in self.results)

    def to_dicts(self) -> list[dict[str, Any]]:
        return [r.to_dict(self.key_name) for r in self.results]


@dataclass(frozen=True)
class CheckOptions:
    """How to test: the time budget of each check, TLS, and the expiry margin."""

    timeout: float = DEFAULT_TIMEOUT
    skip_ssl_verify: bool = False
    min_days: float = 0
    environ: Mapping[str, str] | None = field(default=None, repr=False)

    def env_server_url(self) -> str | None:
        env = os.environ if self.environ is None else self.environ
        return env.get(SERVER_URL_ENV, "").strip() or None


OnDone = Callable[[str | None, Target, ValidationResult], None]


def choose_targets(
    subject: str,
    *,
    server_url: str | None = None,
    server: Server | None = None,
    linked: Sequence[Server] = (),
    options: CheckOptions | None = None,
) -> list[Target]:
    """The servers to test against, in the documented order of precedence.

    TLS is verified unless ``skip_ssl_verify`` is asked for, or the server record says so.
    """
    options = options or CheckOptions()
    skip = options.skip_ssl_verify
    if server_url is not None:
        return [Target(normalize_server_url(server_url), None, not skip, "--server-url")]
    if server is not None:
        return [Target(server.url, server.name, not (skip or server.skip_ssl_verify), "--server")]
    if linked:
        return [Target(s.url, s.name, not (skip or s.skip_ssl_verify), "linked") for s in linked]
    env_url = options.env_server_url()
    if env_url is not None:
        try:
            url = normalize_server_url(env_url)
        except InvalidServerUrlError as error:
            raise InvalidServerUrlError(
                f"{SERVER_URL_ENV}: {error.message}", hint=error.hint
            ) from None
        return [Target(url, None, not skip, SERVER_URL_ENV)]
    raise NoServerError(
        f"No server to test {subject} against: it is not linked to any server and "
        f"{SERVER_URL_ENV} is not set",
        hint="Pass --server NAME or --server-url URL, or link the key to its server: "
        "n8n-deploy server link KEY SERVER",
    )


def _check_exclusive(server_name: str | None, server_url: str | None) -> None:
    if server_name is not None and server_url is not None:
        raise UsageError("Give either --server or --server-url, not both")


def check_stored_key(
    database: Database,
    name: str,
    *,
    server_name: str | None = None,
    server_url: str | None = None,
    options: CheckOptions | None = None,
    on_done: OnDone | None = None,
) -> KeyReport:
    """Test the stored key ``name``; set its ``last_used_at`` when every check passed.

    An unknown name raises NotFoundError; an inactive key raises KeyInactiveError before
    anything is contacted.  The key's own checks (format, expiry, ``min_days``) need no
    server: with no server to test against, a key that fails them is reported as such,
    and one that passes them raises NoServerError.
    """
    options = options or CheckOptions()
    _check_exclusive(server_name, server_url)
    with database.session() as session:
        key = ApiKeyRepository(session).get(name)
        if not key.is_active:
            raise KeyInactiveError(
                f"API key '{name}' is inactive; it was not tested",
                hint=f"Reactivate it if it should be in use: n8n-deploy apikey activate '{name}'",
            )
        server = ServerRepository(session).get(server_name) if server_name else None
        secret = key.api_key
        targets = _targets_or_local_failure(
            secret,
            options,
            subject=f"API key '{name}'",
            server_url=server_url,
            server=server,
            linked=list(key.servers),
        )
    if isinstance(targets, ValidationResult):
        return KeyReport(name, (TargetResult(None, targets),))
    results = _run([(name, secret, targets)], options, on_done)[0]
    report = KeyReport(name, results)
    if report.ok and _record_use(database, [name]):
        report = KeyReport(name, results, recorded_use=True)
    return report


def check_secret(
    secret: str,
    *,
    database: Database | None = None,
    server_name: str | None = None,
    server_url: str | None = None,
    options: CheckOptions | None = None,
    on_done: OnDone | None = None,
) -> KeyReport:
    """Test a key that is not stored (e.g. read from stdin); nothing is written anywhere.
    ``database`` is only needed (and only read) for ``server_name``."""
    options = options or CheckOptions()
    _check_exclusive(server_name, server_url)
    server: Server | None = None
    if server_name is not None:
        if database is None:
            raise UsageError("--server needs the database")
        with database.session() as session:
            server = ServerRepository(session).get(server_name)
    targets = _targets_or_local_failure(
        secret, options, subject="the key", server_url=server_url, server=server
    )
    if isinstance(targets, ValidationResult):
        return KeyReport(None, (TargetResult(None, targets),))
    return KeyReport(None, _run([(None, secret, targets)], options, on_done)[0])


def _targets_or_local_failure(
    secret: str,
    options: CheckOptions,
    *,
    subject: str,
    server_url: str | None = None,
    server: Server | None = None,
    linked: Sequence[Server] = (),
) -> list[Target] | ValidationResult:
    """The servers to test against; with none, the failed result of the key's own checks
    (which need no server), or NoServerError when the key passes them."""
    try:
        return choose_targets(
            subject, server_url=server_url, server=server, linked=linked, options=options
        )
    except NoServerError:
        failure = check_locally(secret, min_days=options.min_days)
        if failure is None:
            raise
        return failure


def check_all_keys(
    database: Database,
    *,
    server_name: str | None = None,
    options: CheckOptions | None = None,
    on_done: OnDone | None = None,
) -> list[KeyReport]:
    """Test every active key against its linked servers (with ``server_name``: only the keys
    linked to that server, against it), at most MAX_CONCURRENCY checks at a time.  A key
    with no server to test against is reported as not tested.  ``last_used_at`` is set for
    each key whose every check passed."""
    options = options or CheckOptions()
    plan: list[tuple[str, str, list[Target]]] = []
    untested: dict[str, NoServerError] = {}
    failed_locally: dict[str, ValidationResult] = {}
    order: list[str] = []
    with database.session() as session:
        server = ServerRepository(session).get(server_name) if server_name else None
        for key in ApiKeyRepository(session).list(active=True, server=server):
            order.append(key.name)
            try:
                targets = _targets_or_local_failure(
                    key.api_key,
                    options,
                    subject=f"API key '{key.name}'",
                    server=server,
                    linked=list(key.servers),
                )
            except NoServerError as error:
                untested[key.name] = error
                continue
            if isinstance(targets, ValidationResult):
                failed_locally[key.name] = targets
            else:
                plan.append((key.name, key.api_key, targets))
    if not order:
        where = f" linked to server '{server_name}'" if server_name else ""
        raise NoKeysError(
            f"There are no active API keys{where} to test",
            hint='Add one: echo "$KEY" | n8n-deploy apikey add - --name NAME --server SERVER',
        )
    tested = dict(zip([p[0] for p in plan], _run(plan, options, on_done), strict=True))
    passed = [name for name, results in tested.items() if all(r.result.ok for r in results)]
    recorded = set(passed) if passed and _record_use(database, passed) else set()
    reports = []
    for name in order:
        if name in untested:
            reports.append(KeyReport.not_run(name, untested[name]))
        elif name in failed_locally:
            reports.append(KeyReport(name, (TargetResult(None, failed_locally[name]),)))
        else:
            reports.append(KeyReport(name, tested[name], recorded_use=name in recorded))
    return reports


def _run(
    plan: Sequence[tuple[str | None, str, Sequence[Target]]],
    options: CheckOptions,
    on_done: OnDone | None,
) -> list[tuple[TargetResult, ...]]:
    """Run every (key, target) check of ``plan`` concurrently; results grouped per key."""
    flat = [(name, secret, target) for name, secret, targets in plan for target in targets]
    probes = [
        Probe(secret, target.url, target.verify_tls, server_name=target.server)
        for _, secret, target in flat
    ]

    def done(index: int, result: ValidationResult) -> None:
        if on_done is not None:
            on_done(flat[index][0], flat[index][2], result)

    results = validate_many(
        probes,
        timeout=options.timeout,
        min_days=options.min_days,
        concurrency=MAX_CONCURRENCY,
        on_done=done,
    )
    grouped: list[tuple[TargetResult, ...]] = []
    position = 0
    for _, _, targets in plan:
        chunk = results[position : position + len(targets)]
        grouped.append(tuple(TargetResult(t, r) for t, r in zip(targets, chunk, strict=True)))
        position += len(targets)
    return grouped


def _record_use(database: Database, names: Sequence[str]) -> bool:
    """Set last_used_at of the named keys (one transaction); False if none is left."""
    with database.session(write=True) as session:
        repository = ApiKeyRepository(session)
        found = [key for key in (repository.find(name) for name in names) if key is not None]
        for key in found:
            repository.mark_used(key)
    return bool(found)


# --- rotation ---------------------------------------------------------------------------


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
    results = _run([(new_name, plan.secret, plan.targets)], options, on_done)[0]
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
                    new.description = plan.description
                keys.set_active(new, True)
            else:
                new = keys.add(new_name, plan.secret, description=plan.description, servers=linked)
            keys.mark_used(new)
            if delete_old:
                keys.delete(old)
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
            ApiKeyRepository(session).add(
                new_name, plan.secret, description=plan.description, servers=linked
            )
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
