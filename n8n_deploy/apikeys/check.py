"""Testing keys against their servers: the use case behind ``n8n-deploy apikey test``.

Usable from Python: it chooses the servers, runs the checks (``n8n_deploy.n8n.probe``),
and records the outcome in the database.  No transaction is held open while a server is
being contacted.

Which server a key is tested against (first that applies): an explicit URL, an explicit
server record, every server the key is linked to (all must pass), ``N8N_SERVER_URL``.
When none applies the key is not tested and that is an error: never a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from n8n_deploy.base.dates import human_time, utcnow
from n8n_deploy.base.errors import (
    DatabaseError,
    InvalidServerUrlError,
    KeyExpiredError,
    KeyInactiveError,
    N8nDeployError,
    NotFoundError,
    OperationFailed,
    SchemaError,
    UsageError,
)
from n8n_deploy.base.settings import SERVER_URL_ENV
from n8n_deploy.base.status import ExitStatus, check_words, most_serious
from n8n_deploy.base.urls import mask_url_password, normalize_server_url
from n8n_deploy.n8n.limits import DEFAULT_TIMEOUT, MAX_CONCURRENCY
from n8n_deploy.n8n.probe import (
    Probe,
    Trust,
    check_locally,
    validate_many,
)
from n8n_deploy.n8n.results import Outcome, ValidationResult

if TYPE_CHECKING:  # the store is imported where a database is used: `test -` needs none
    from n8n_deploy.store.engine import Database
    from n8n_deploy.store.reads import Reader, ServerLike


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
    #: Why last_used_at could not be set (the database is locked or read-only): the
    #: verdict stands, the CLI warns.
    use_not_recorded: str | None = None

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
    """How to test: the time budget of each check, TLS, the expiry margin, and the server
    to fall back on when a key names none (``N8N_SERVER_URL``, from the settings)."""

    timeout: float = DEFAULT_TIMEOUT
    skip_ssl_verify: bool = False
    min_days: float = 0
    fallback_server_url: str | None = None
    trust: Trust = field(default_factory=Trust)
    #: Scopes the key must hold (``n8n_deploy.n8n.scopes.expand``); None: learn them all,
    #: never failing on them (``apikey scopes``).
    require: tuple[str, ...] | None = ()
    allow_unknown_scopes: bool = False


# Called as each check finishes: (key name, target, result, checks finished, checks in all).
OnDone = Callable[[str | None, Target, ValidationResult, int, int], None]


def choose_targets(
    subject: str,
    *,
    server_url: str | None = None,
    server: ServerLike | None = None,
    linked: Sequence[ServerLike] = (),
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
        return [
            Target(server.url or "", server.name, not (skip or server.skip_ssl_verify), "--server")
        ]
    if linked:
        return [
            Target(s.url or "", s.name, not (skip or s.skip_ssl_verify), "linked") for s in linked
        ]
    env_url = options.fallback_server_url
    if env_url is not None:
        try:
            url = normalize_server_url(env_url)
        except InvalidServerUrlError as error:
            raise InvalidServerUrlError(
                f"{SERVER_URL_ENV}: {error.message}", hint=error.hint
            ) from None
        return [Target(url, None, not skip, SERVER_URL_ENV)]
    if subject == "the key":  # read from stdin: not stored, so it cannot be linked
        raise NoServerError(
            f"No server to test the key against: {SERVER_URL_ENV} is not set",
            hint=f"Pass --server-url URL or --server NAME, or set {SERVER_URL_ENV}",
        )
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
    on_start: Callable[[], object] | None = None,
) -> KeyReport:
    """Test the stored key ``name``; set its ``last_used_at`` when every check passed.
    ``on_start`` is called as the checks against servers start (not when none is made).

    An unknown name raises NotFoundError; an inactive key raises KeyInactiveError before
    anything is contacted.  The key's own checks (format, expiry, ``min_days``) need no
    server: with no server to test against, a key that fails them is reported as such,
    and one that passes them raises NoServerError.
    """
    options = options or CheckOptions()
    _check_exclusive(server_name, server_url)
    with database.reading() as reader:
        key = reader.key(name)
        if not key.is_active:
            raise KeyInactiveError(
                f"API key '{name}' is inactive; it was not tested",
                hint=f"Reactivate it if it should be in use: n8n-deploy apikey activate '{name}'",
            )
        if past_deadline(key.delete_after):
            raise _past_deadline_error(name, key.delete_after)
        server = reader.server(server_name) if server_name else None
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
    if on_start is not None:
        on_start()
    results = run_checks([(name, secret, targets)], options, on_done)[0]
    report = KeyReport(name, results)
    recorded, problem = _record_checks(lambda: database, [report], {name: key.id})
    if recorded or (problem and report.ok):
        report = KeyReport(name, results, recorded_use=recorded, use_not_recorded=problem)
    return report


def check_secret(
    secret: str,
    *,
    database: Database | None = None,
    server_name: str | None = None,
    server_url: str | None = None,
    options: CheckOptions | None = None,
    on_done: OnDone | None = None,
    on_start: Callable[[], object] | None = None,
) -> KeyReport:
    """Test a key that is not stored (e.g. read from stdin); nothing is written anywhere.
    ``database`` is only needed (and only read) for ``server_name``; ``on_start`` as in
    check_stored_key."""
    options = options or CheckOptions()
    _check_exclusive(server_name, server_url)
    server: ServerLike | None = None
    if server_name is not None:
        if database is None:
            raise UsageError("--server needs the database")
        with database.reading() as reader:
            server = reader.server(server_name)
    targets = _targets_or_local_failure(
        secret, options, subject="the key", server_url=server_url, server=server
    )
    if isinstance(targets, ValidationResult):
        return KeyReport(None, (TargetResult(None, targets),))
    if on_start is not None:
        on_start()
    return KeyReport(None, run_checks([(None, secret, targets)], options, on_done)[0])


def _targets_or_local_failure(
    secret: str,
    options: CheckOptions,
    *,
    subject: str,
    server_url: str | None = None,
    server: ServerLike | None = None,
    linked: Sequence[ServerLike] = (),
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
    linked to that server, against it), at most MAX_CONCURRENCY checks at a time
    (MAX_PER_SERVER against one server).  A key
    with no server to test against is reported as not tested.  ``last_used_at`` is set for
    each key whose every check passed.  It is :func:`plan_all_checks` (read only) then
    :func:`carry_out_all_checks`."""
    options = options or CheckOptions()
    with database.reading() as reader:
        plan = plan_all_checks(reader, server_name=server_name, options=options)
    return carry_out_all_checks(plan, lambda: database, options=options, on_done=on_done)


@dataclass(frozen=True)
class AllChecksPlan:
    """What testing every active key needs, read before any server is contacted: the keys
    in order, the id each name was when read (what the checks test), the checks to run
    (name, secret, targets), and the keys that need none: not tested, or failed their
    own checks."""

    order: tuple[str, ...]
    ids: dict[str, int]
    checks: tuple[tuple[str, str, tuple[Target, ...]], ...] = field(repr=False)
    untested: dict[str, NoServerError]
    failed_locally: dict[str, ValidationResult]


def plan_all_checks(
    reader: Reader, *, server_name: str | None = None, options: CheckOptions | None = None
) -> AllChecksPlan:
    """The keys ``check_all_keys`` tests, and against which servers; ``NoKeysError`` when
    there is no active key (linked to ``server_name``)."""
    options = options or CheckOptions()
    checks: list[tuple[str, str, tuple[Target, ...]]] = []
    untested: dict[str, NoServerError] = {}
    failed_locally: dict[str, ValidationResult] = {}
    order: list[str] = []
    ids: dict[str, int] = {}
    server = reader.server(server_name) if server_name else None
    for key in reader.keys(active=True, server_id=server.id if server else None):
        order.append(key.name)
        ids[key.name] = key.id
        if past_deadline(key.delete_after):
            error = _past_deadline_error(key.name, key.delete_after)
            failed_locally[key.name] = ValidationResult(
                None, Outcome.EXPIRED, error.message, hint=error.hint
            )
            continue
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
            checks.append((key.name, key.api_key, tuple(targets)))
    if not order:
        where = f" linked to server '{server_name}'" if server_name else ""
        raise NoKeysError(
            f"There are no active API keys{where} to test",
            hint='Add one: echo "$KEY" | n8n-deploy apikey add - --name NAME --server SERVER',
        )
    return AllChecksPlan(tuple(order), ids, tuple(checks), untested, failed_locally)


def carry_out_all_checks(
    plan: AllChecksPlan,
    database: Callable[[], Database],
    *,
    options: CheckOptions | None = None,
    on_done: OnDone | None = None,
    meanwhile: Callable[[], object] | None = None,
) -> list[KeyReport]:
    """Run the checks of ``plan``, then record them in ``database()`` (called once they
    are done: the CLI opens it then), in the order of the keys.  ``meanwhile``: see
    ``n8n_deploy.n8n.probe.validate_many``."""
    options = options or CheckOptions()
    results = run_checks(plan.checks, options, on_done, meanwhile=meanwhile)
    tested = dict(zip([check[0] for check in plan.checks], results, strict=True))
    passed = [name for name, results in tested.items() if all(r.result.ok for r in results)]
    checked = [KeyReport(name, results) for name, results in tested.items()]
    any_recorded, problem = _record_checks(database, checked, plan.ids)
    recorded = set(passed) if any_recorded else set()
    reports = []
    for name in plan.order:
        if name in plan.untested:
            reports.append(KeyReport.not_run(name, plan.untested[name]))
        elif name in plan.failed_locally:
            reports.append(KeyReport(name, (TargetResult(None, plan.failed_locally[name]),)))
        else:
            reports.append(
                KeyReport(
                    name,
                    tested[name],
                    recorded_use=name in recorded,
                    use_not_recorded=problem if name in passed else None,
                )
            )
    return reports


def run_checks(
    plan: Sequence[tuple[str | None, str, Sequence[Target]]],
    options: CheckOptions,
    on_done: OnDone | None,
    *,
    meanwhile: Callable[[], object] | None = None,
) -> list[tuple[TargetResult, ...]]:
    """Run every (key, target) check of ``plan`` concurrently; results grouped per key."""
    flat = [(name, secret, target) for name, secret, targets in plan for target in targets]
    probes = [
        Probe(secret, target.url, target.verify_tls, server_name=target.server)
        for _, secret, target in flat
    ]

    finished = 0

    def done(index: int, result: ValidationResult) -> None:
        nonlocal finished
        finished += 1
        if on_done is not None:
            on_done(flat[index][0], flat[index][2], result, finished, len(flat))

    results = validate_many(
        probes,
        timeout=options.timeout,
        min_days=options.min_days,
        concurrency=MAX_CONCURRENCY,
        on_done=done,
        trust=options.trust,
        require=options.require,
        allow_unknown_scopes=options.allow_unknown_scopes,
        meanwhile=meanwhile,
    )
    grouped: list[tuple[TargetResult, ...]] = []
    position = 0
    for _, _, targets in plan:
        chunk = results[position : position + len(targets)]
        grouped.append(tuple(TargetResult(t, r) for t, r in zip(targets, chunk, strict=True)))
        position += len(targets)
    return grouped


def past_deadline(delete_after: datetime | None) -> bool:
    """Whether an ephemeral key's deadline (``apikey add --ttl``) has passed."""
    return delete_after is not None and delete_after <= utcnow()


def _past_deadline_error(name: str, delete_after: datetime | None) -> KeyExpiredError:
    return KeyExpiredError(
        f"API key '{name}' is ephemeral and its deadline ({human_time(delete_after)} UTC) "
        "has passed; it was not tested",
        hint="It is deleted by the next prune: n8n-deploy apikey prune",
    )


def _record_checks(
    database: Callable[[], Database], reports: Sequence[KeyReport], ids: dict[str, int]
) -> tuple[bool, str | None]:
    """Record every check of ``reports`` as a ``tested`` event and set last_used_at of the
    keys whose every check passed, in one transaction (Core, no ORM; retried on a
    deadlock by ``Database.write_rows``); whether any use was recorded.  Each is recorded
    against the key that was tested (``ids``: name -> id as read): a key deleted meanwhile
    is not recorded, nor is another key given its name meanwhile.  Bookkeeping only: a
    database that cannot be written (locked by another process, read-only) changes no
    verdict; why is returned for a warning.  So is a database that can no longer be
    opened (``database()``: the CLI opens it once the checks are done, and another
    process may have upgraded or restored it meanwhile)."""
    from sqlalchemy.exc import SQLAlchemyError

    from n8n_deploy.base.text import error_text
    from n8n_deploy.store.usage import record_checks

    checks = tested_events(reports)
    passed = [report.key_name for report in reports if report.ok and report.key_name]
    if not checks:
        return False, None
    try:
        opened = database()
        actor = opened.settings.actor
        done = opened.write_rows(lambda conn: record_checks(conn, checks, passed, actor, ids) > 0)
    except (SQLAlchemyError, DatabaseError, SchemaError) as exc:
        return False, error_text(exc)
    return done, None


def tested_events(reports: Sequence[KeyReport]) -> list[tuple[str, str | None, str, str | None]]:
    """The ``tested`` events of ``reports`` (stored keys only), as
    ``ApiKeyRepository.record_checks`` takes them: (key name, server, outcome, detail)."""
    return [
        (
            report.key_name,
            (result.target.server or mask_url_password(result.target.url))
            if result.target
            else None,
            result.result.outcome.value,
            _event_detail(result.result),
        )
        for report in reports
        if report.key_name is not None
        for result in report.results
        if result.result.outcome not in _NOT_RUN
    ]


#: Outcomes of a check that never ran (no server, unknown, inactive): not a test.
_NOT_RUN = (Outcome.NOT_TESTED, Outcome.NOT_FOUND, Outcome.INACTIVE)


def _event_detail(result: ValidationResult) -> str:
    """What a ``tested`` event says: the exit status and its words (never the message,
    which may quote what a server answered)."""
    status = result.exit_status
    return f"exit status {int(status)}: {check_words(status)}"
