"""Check one n8n API key against one n8n server, and say exactly what happened.

This is the engine behind ``n8n-deploy apikey test`` and ``apikey rotate``, usable from
Python without the CLI::

    from n8n_deploy.n8n.probe import validate_key
    result = validate_key(key, "https://n8n.example.com", timeout=10)
    result.ok, result.exit_status, result.message, result.hint

What a check does (see docs/ci.md):

1. Local checks, without any request: the key's format (JWT or legacy ``n8n_api_`` key)
   and its decoded ``exp``.  An expired key, or one expiring within ``min_days``, fails
   here (exit status 7): the server's 401 would not say why.
2. One request, ``GET {base}/api/v1/workflows?limit=1`` (the base URL's path prefix is
   kept) with ``X-N8N-API-KEY``, ``Accept: application/json`` and an honest
   ``User-Agent``.  Redirects are never followed (the key must not travel to a host the
   user did not name); the ``Location`` is reported instead.
3. Connect errors, 502/503/504 and 429 are retried with a short backoff (a ``Retry-After``
   is honoured when it fits); everything, retries included, stays within one time budget.

The result never holds the key, and no message, exception or log line contains it.
httpx is imported only when a request is made, so importing this module is cheap.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import json
import logging
import math
import socket
import ssl
import string
import sys
import time
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urljoin, urlsplit

from n8n_deploy.base import interrupts
from n8n_deploy.base.dates import human_date, utcnow
from n8n_deploy.base.errors import InvalidServerUrlError, N8nDeployError, UsageError
from n8n_deploy.base.keyformat import EXPIRY_WARNING_DAYS, KeyInfo, clean_key, mask_key, parse_key
from n8n_deploy.base.text import counted, redact_keys, sanitize, shell_word
from n8n_deploy.base.urls import API_PATH, is_loopback_host, normalize_server_url
from n8n_deploy.base.version import __version__
from n8n_deploy.n8n import scopes
from n8n_deploy.n8n.limits import DEFAULT_TIMEOUT, MAX_CONCURRENCY, MAX_PER_SERVER
from n8n_deploy.n8n.results import (
    AUTHENTICATION,
    EXPIRY,
    FAILED,
    FORMAT,
    PASSED,
    REACHABLE,
    SCOPES,
    SKIPPED,
    Check,
    Outcome,
    ScopeReport,
    ValidationResult,
)

if TYPE_CHECKING:
    import httpx

USER_AGENT = f"n8n-deploy/{__version__}"  # never "bot": n8n answers bots with an empty 204
PROBE_PATH = f"{API_PATH}/workflows"
PROBE_PARAMS = {"limit": "1"}
RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_BODY_BYTES = 1024 * 1024
# Backoff between attempts: 0.25 s, 0.5 s, 1 s, then 2 s each time.
BACKOFF_FIRST = 0.25
BACKOFF_MAX = 2.0
# What the server says (its JSON ``message``) is shown up to this many characters.
MAX_SERVER_MESSAGE = 200
# ... after hiding the key in at most this much of it.
MAX_SCRUB_SCAN = 4096
# Any run of this many characters of the key or more is hidden wherever it appears.
SCRUB_MIN_PIECE = 12
# A refused connection means nothing listens on that port (a typo, or a server that is
# down): it is tried this many times in all, BACKOFF_FIRST apart, so it fails in well
# under a second instead of using the whole budget.
REFUSED_ATTEMPTS = 2
# A retry is only worth making when at least this much of the budget is left after waiting.
MIN_ATTEMPT_SECONDS = 0.5
# httpx's own timeouts fire a little before the hard deadline, so that the message can say
# which phase (connect or answer) ran out; the deadline itself is never exceeded.
PHASE_TIMEOUT_SHARE = 0.95


# jsonwebtoken's messages that n8n 1.x/2.x pass through in a 401 body.
_SIGNATURE_WORDS = ("invalid signature", "jwt malformed", "invalid algorithm", "jwt audience")


@dataclass(frozen=True)
class Trust:
    """Which certificates a TLS server must present: the CA bundle named by SSL_CERT_FILE
    and/or SSL_CERT_DIR (resolved once, in ``n8n_deploy.base.settings``), else certifi's."""

    ca_file: str | None = None
    ca_dir: str | None = None


@dataclass(frozen=True)
class Probe:
    """One check to run: a key against a server.  The key is kept out of ``repr``.

    ``server_name`` (the stored server's name, when there is one) makes hints name the
    command that fixes the server record."""

    key: str = field(repr=False)
    server_url: str
    verify_tls: bool = True
    server_name: str | None = None


# --- public API -------------------------------------------------------------------------


def validate_key(
    key: str,
    server_url: str,
    *,
    verify_tls: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    min_days: float = 0,
    now: datetime | None = None,
    server_name: str | None = None,
    trust: Trust | None = None,
    require: tuple[str, ...] = (),
    allow_unknown_scopes: bool = False,
) -> ValidationResult:
    """Check ``key`` against the n8n server at ``server_url`` within ``timeout`` seconds;
    with ``require`` (scopes, see ``n8n_deploy.n8n.scopes.expand``), also that it holds
    them (a missing one: exit 4; one that cannot be told: exit 1 unless
    ``allow_unknown_scopes``), within the same budget.

    Raises ``InvalidServerUrlError`` for a URL that is not an http(s) base URL and
    ``UsageError`` for an unreadable CA bundle (``trust``) or a budget of 0; every other
    problem is a result.  ``server_name`` (a stored server's name) is used in hints.  It
    runs its own event loop, so it must not be called from a running one.
    """
    _check_budget(timeout)
    return run_sync(
        _validate(
            key,
            server_url,
            strict_url=True,
            server_name=server_name,
            verify_tls=verify_tls,
            timeout=timeout,
            min_days=min_days,
            now=now,
            trust=trust or Trust(),
            require=require,
            allow_unknown_scopes=allow_unknown_scopes,
        )
    )


def read_key_scopes(
    key: str,
    server_url: str,
    *,
    verify_tls: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    server_name: str | None = None,
    trust: Trust | None = None,
) -> ValidationResult:
    """Check ``key`` and learn every scope it holds on the server (``result.scopes``):
    from ``/discover``, or from every probe that changes nothing.  Scopes never fail it."""
    _check_budget(timeout)
    return run_sync(
        _validate(
            key,
            server_url,
            strict_url=True,
            server_name=server_name,
            verify_tls=verify_tls,
            timeout=timeout,
            min_days=0,
            now=None,
            trust=trust or Trust(),
            require=None,
        )
    )


def validate_many(
    probes: Sequence[Probe],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    min_days: float = 0,
    concurrency: int = MAX_CONCURRENCY,
    per_server: int = MAX_PER_SERVER,
    on_done: Callable[[int, ValidationResult], None] | None = None,
    trust: Trust | None = None,
    require: tuple[str, ...] | None = (),
    allow_unknown_scopes: bool = False,
    meanwhile: Callable[[], object] | None = None,
) -> list[ValidationResult]:
    """Run several checks concurrently (at most ``concurrency`` at a time, and at most
    ``per_server`` against one server URL), each within its own ``timeout``; results come
    back in the order of ``probes``.

    ``meanwhile`` is called once, in this thread, as soon as every check then running
    has sent its request and waits for the answer: work the caller needs next (the CLI
    imports the database layer that records the outcome) then costs the checks little
    or nothing.  It is not called when no check ever waits so, nor with a ``timeout``
    under MEANWHILE_MIN_BUDGET (it holds the loop, and the budgets run on); an
    exception it raises is dropped here, for the caller to meet doing that work itself.

    Unlike :func:`validate_key`, a probe whose URL cannot be used (a stored URL that does
    not normalise) does not raise: it becomes an ``invalid_server_url`` result (exit status
    1, not tested there) and the other probes are still run."""
    _check_budget(timeout)
    gate = asyncio.Semaphore(max(1, concurrency))
    servers: dict[str, asyncio.Semaphore] = {}
    chosen = trust or Trust()
    # One client (one connection pool, kept-alive connections reused) per TLS setting for
    # the whole run, not one per check: n8n answers a burst of checks over a few
    # connections, and each https check no longer pays for a handshake of its own.
    clients = _Clients()
    idle = (
        _WhileWaiting(meanwhile)
        if meanwhile is not None and timeout >= MEANWHILE_MIN_BUDGET
        else None
    )

    async def one(index: int, probe: Probe) -> ValidationResult:
        # The server's own gate first: a check waiting for its busy server holds no slot
        # that a check of another server could use.
        server_gate = servers.setdefault(
            _server_key(probe.server_url), asyncio.Semaphore(max(1, per_server))
        )
        if idle is not None:
            idle.queued += 1
        async with server_gate, gate, _watched(idle):
            result = await _validate(
                probe.key,
                probe.server_url,
                strict_url=False,
                server_name=probe.server_name,
                verify_tls=probe.verify_tls,
                timeout=timeout,
                min_days=min_days,
                now=None,
                trust=chosen,
                require=require,
                allow_unknown_scopes=allow_unknown_scopes,
                clients=clients,
            )
        if on_done is not None:
            on_done(index, result)
        return result

    async def every() -> list[ValidationResult]:
        return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(probes))))

    return run_sync(every(), close=clients.aclose)


#: ``meanwhile`` is called only when each check has at least this time budget: the work
#: holds the event loop (importing SQLAlchemy: 0.1 to 0.5 s), and an answer that arrives
#: then is read only after it, while its check's budget runs on.
MEANWHILE_MIN_BUDGET = 2.0


class _WhileWaiting:
    """``validate_many``'s ``meanwhile``: called once, as soon as every running check has a
    request out and waits for its answer (told by httpcore's ``trace`` extension), or once
    a check ends so with none left to start."""

    def __init__(self, work: Callable[[], object]) -> None:
        self.work: Callable[[], object] | None = work
        self.queued = 0  # checks not yet let through their gates
        self.running = 0
        self.waiting = 0  # running checks with a request out

    def consider(self) -> None:
        if self.work is not None and self.running and self.waiting >= self.running:
            asyncio.get_running_loop().call_soon(self._run, self.work)
            self.work = None

    @staticmethod
    def _run(work: Callable[[], object]) -> None:
        with suppress(Exception):  # the caller meets it again, doing the work itself
            work()


class _CheckTrace:
    """One running check's requests out (reading scopes sends several at once)."""

    def __init__(self, idle: _WhileWaiting) -> None:
        self.idle = idle
        self.out = 0

    async def __call__(self, event: str, info: dict[str, Any]) -> None:
        if event == "http11.receive_response_headers.started":
            self.out += 1
            if self.out == 1:
                self.idle.waiting += 1
                self.idle.consider()
        elif event.startswith("http11.receive_response_headers.") and self.out:
            self.out -= 1  # complete, or failed
            if self.out == 0:
                self.idle.waiting -= 1


@asynccontextmanager
async def _watched(idle: _WhileWaiting | None) -> AsyncIterator[None]:
    """Around one check let through its gates: its requests traced for ``idle``."""
    if idle is None:
        yield
        return
    idle.queued -= 1
    idle.running += 1
    trace = _CheckTrace(idle)
    _TRACE.set(trace)  # this check's task has a context of its own
    try:
        yield
    finally:
        if trace.out:
            idle.waiting -= 1
        idle.running -= 1
        if not idle.queued:  # else the next check starts in its place
            idle.consider()


class _Clients:
    """The HTTP clients of one run of checks, one per TLS context (contexts are cached, so
    one per setting), made on first use and closed together."""

    def __init__(self) -> None:
        self._made: dict[int, tuple[ssl.SSLContext, httpx.AsyncClient]] = {}

    def get(self, context: ssl.SSLContext) -> httpx.AsyncClient:
        import httpx

        found = self._made.get(id(context))
        if found is None:
            client = httpx.AsyncClient(verify=context, follow_redirects=False)
            found = self._made[id(context)] = (context, client)
        return found[1]

    async def aclose(self) -> None:
        for _, client in self._made.values():
            await client.aclose()
        self._made.clear()


def _server_key(url: str) -> str:
    """One n8n server, however its URL was written (a URL that cannot be used: as given)."""
    try:
        return normalize_server_url(url)
    except InvalidServerUrlError:
        return url


def _check_budget(timeout: float) -> None:
    if not timeout > 0:
        raise UsageError(f"The time budget must be more than 0 seconds, not {timeout}")


async def _validate(
    key: str,
    server_url: str,
    *,
    strict_url: bool,
    server_name: str | None,
    verify_tls: bool,
    timeout: float,
    min_days: float,
    now: datetime | None,
    trust: Trust,
    require: tuple[str, ...] | None = (),
    allow_unknown_scopes: bool = False,
    clients: _Clients | None = None,
) -> ValidationResult:
    """Local checks, then (with a usable URL) the request, then, for a key that passed,
    its scopes: those in ``require`` (None: every scope that can be learnt, reported but
    never failed).  ``strict_url``: raise for a URL that cannot be used rather than
    report it as a result.  ``clients``: the run's shared clients (else one of its own)."""
    started = _clock()
    url_error: InvalidServerUrlError | None = None
    try:
        base = normalize_server_url(server_url)
    except InvalidServerUrlError as error:
        if strict_url:
            raise
        base, url_error = _shown_url(server_url), error
    warnings = _transport_warnings(base, verify_tls) if url_error is None else ()

    local = _local_checks(key, min_days=min_days, now=now)
    if local.failure is not None:
        return _local_failure(local, base, warnings, _clock() - started)
    assert local.info is not None and local.key is not None
    if url_error is not None:
        return _unusable_url(url_error, base, server_name, local, _clock() - started)
    import httpx

    # A plain http:// request never starts TLS (redirects are not followed), so it needs
    # no CA bundle: loading certifi's costs ~30 ms for nothing.
    context = tls_context(verify_tls if base.startswith("https://") else False, trust)
    budget = _Budget(started, timeout)
    secret = local.key
    scope_report: ScopeReport | None = None
    async with AsyncExitStack() as stack:
        if clients is not None:
            client = clients.get(context)
        else:
            client = await stack.enter_async_context(
                httpx.AsyncClient(verify=context, follow_redirects=False)
            )
        exchange = await _exchange(secret, base, budget, client)
        verdict = _judge(exchange, base, timeout, secret, server_name)
        if verdict.outcome is Outcome.VALID and require != ():
            scope_report = await _read_scopes(secret, base, budget, client, require)
            verdict = _scope_verdict(verdict, scope_report, require, allow_unknown_scopes)
    scope_checks = (
        (Check(SCOPES, verdict.scopes[0], _scrub(verdict.scopes[1], secret)),)
        if verdict.scopes
        else ()
    )
    return ValidationResult(
        server_url=base,
        outcome=verdict.outcome,
        message=_scrub(verdict.message, secret),
        hint=_scrub(verdict.hint, secret) if verdict.hint else None,
        checks=(
            *local.format_checks,
            Check(REACHABLE, verdict.reachable[0], _scrub(verdict.reachable[1], secret)),
            Check(AUTHENTICATION, verdict.auth[0], _scrub(verdict.auth[1], secret)),
            *scope_checks,
            *local.expiry_checks,
        ),
        key_kind=local.info.kind,
        expires_at=local.info.expires_at,
        http_status=exchange.status,
        scopes=scope_report,
        location=_scrub(exchange.location, secret) if exchange.location else None,
        cause=verdict.cause,
        elapsed=_clock() - started,
        attempts=exchange.attempts,
        warnings=(*warnings, *local.warnings),
    )


def check_locally(
    key: str, *, min_days: float = 0, now: datetime | None = None
) -> ValidationResult | None:
    """The failed result of the checks that need no server (format, expiry, ``min_days``),
    or None when they pass.  Its ``server_url`` is None: no server was involved."""
    started = _clock()
    local = _local_checks(key, min_days=min_days, now=now)
    if local.failure is None:
        return None
    return _local_failure(local, None, (), _clock() - started)


def _local_failure(
    local: _Local, base: str | None, warnings: tuple[str, ...], elapsed: float
) -> ValidationResult:
    assert local.failure is not None
    outcome, message, hint = local.failure
    not_contacted = f"Server not contacted ({base})" if base else "Server not contacted"
    return ValidationResult(
        server_url=base,
        outcome=outcome,
        message=message,
        hint=hint,
        checks=(
            *local.format_checks,
            Check(REACHABLE, SKIPPED, not_contacted),
            Check(AUTHENTICATION, SKIPPED, "Authentication not checked"),
            *local.expiry_checks,
        ),
        key_kind=local.info.kind if local.info else None,
        expires_at=local.info.expires_at if local.info else None,
        elapsed=elapsed,
        warnings=(*warnings, *local.warnings),
    )


def _unusable_url(
    error: InvalidServerUrlError,
    shown: str,
    server_name: str | None,
    local: _Local,
    elapsed: float,
) -> ValidationResult:
    """The result for a URL no request can be sent to (e.g. carried over from 0.9 data)."""
    assert local.info is not None
    if server_name is None:
        message = f"The server URL cannot be used: {_tail(error.message)}"
        hint = error.hint or "Give an http(s) base URL such as https://n8n.example.com"
        where = shown
    elif not shown:  # a server created by "apikey add --server NAME" without a URL
        message = f"Server '{server_name}' has no URL yet, so the key was not tested"
        hint = f"Set it: n8n-deploy server update {shell_word(server_name)} --url URL"
        where = f"'{server_name}'"
        error = InvalidServerUrlError("no URL yet")
    else:
        message = f"The URL of server '{server_name}' cannot be used: {_tail(error.message)}"
        fix = f"n8n-deploy server update {shell_word(server_name)} --url https://..."
        hint = (
            f"{error.hint}; then store it: {fix}" if error.hint else f"Store a working URL: {fix}"
        )
        where = f"'{server_name}'"
    return ValidationResult(
        server_url=shown,
        outcome=Outcome.INVALID_SERVER_URL,
        message=redact_keys(message),
        hint=redact_keys(hint),
        checks=(
            *local.format_checks,
            Check(
                REACHABLE,
                FAILED,
                redact_keys(f"Server URL cannot be used ({where}): {_tail(error.message)}"),
            ),
            Check(AUTHENTICATION, SKIPPED, "Authentication not checked"),
            *local.expiry_checks,
        ),
        key_kind=local.info.kind,
        expires_at=local.info.expires_at,
        elapsed=elapsed,
        warnings=local.warnings,
    )


def _shown_url(raw: str) -> str:
    """A URL that cannot be used, safe to print: no key, no control characters."""
    text = redact_keys(raw.strip())
    return "".join("?" if unicodedata.category(ch).startswith("C") else ch for ch in text)


def tls_context(verify: bool, trust: Trust | None = None) -> ssl.SSLContext:
    """The TLS settings for a request.

    Verification on: the CA bundle of ``trust`` (``SSL_CERT_FILE`` and/or ``SSL_CERT_DIR``
    when set, as OpenSSL, curl and Python do), otherwise certifi's bundle (httpx's
    default).  Verification off: no certificate or host name check at all.
    """
    trust = trust or Trust()
    return _tls_context(verify, trust.ca_file, trust.ca_dir)


@functools.lru_cache(maxsize=8)
def _tls_context(verify: bool, cafile: str | None, capath: str | None) -> ssl.SSLContext:
    if not verify:
        # create_default_context's protocol settings, without the system's CA bundle it
        # would parse (about 50 ms for every check of an http:// server) to check nothing.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    named = "SSL_CERT_FILE" if cafile else "SSL_CERT_DIR"
    if cafile is None and capath is None:
        import certifi

        cafile = certifi.where()
    try:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        raise UsageError(
            f"Cannot load the CA certificates named by {named} ({cafile or capath}): {reason}",
            hint=f"Point {named} at a PEM file of CA certificates, or unset it",
        ) from None


# --- running coroutines -----------------------------------------------------------------

T = TypeVar("T")


def run_sync(
    coroutine: Coroutine[Any, Any, T],
    *,
    close: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> T:
    """Run ``coroutine`` in a fresh event loop and return as soon as it is done; then, in
    the same loop (also after a Ctrl-C or SIGTERM), the tasks left are cancelled and
    ``close`` is awaited (the shared HTTP clients).  Nothing is left to run outside the
    loop, where it could only fail with a traceback.

    A Ctrl-C or SIGTERM cancels the work inside the loop (``interrupts.as_cancellation``)
    and, once the loop has cleaned up, stops the command with a KeyboardInterrupt.

    Unlike ``asyncio.run`` this does not wait for a DNS lookup still blocked in a worker
    thread after its check gave up: the time budget is kept even when DNS hangs.
    """
    loop: asyncio.AbstractEventLoop | None = None
    executor: ThreadPoolExecutor | None = None
    try:
        with interrupts.held():  # a signal never leaves a loop half made, or half closed
            loop = asyncio.new_event_loop()
            executor = ThreadPoolExecutor(thread_name_prefix="n8n-deploy-dns")
        loop.set_exception_handler(_quiet_about_interrupts)
        loop.set_default_executor(executor)
        running = loop
        with interrupts.as_cancellation(lambda: running.call_soon_threadsafe(_cancel_all, running)):
            try:
                return loop.run_until_complete(coroutine)
            finally:
                _cancel_pending(loop)
                if close is not None:
                    loop.run_until_complete(close())
                loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        with interrupts.held():
            coroutine.close()  # never started when a signal came first: no "never awaited"
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)
            if loop is not None:
                loop.close()


def _quiet_about_interrupts(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A Ctrl-C or SIGTERM lands in whichever check was running: that task ends with the
    KeyboardInterrupt, which run_until_complete raises to the command.  asyncio would
    also log the task's "exception was never retrieved", with a traceback, on stderr; the
    interrupt is reported once, by the root command.  Anything else is logged as usual."""
    if isinstance(context.get("exception"), (KeyboardInterrupt, SystemExit)):
        return
    loop.default_exception_handler(context)


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    """The work of the loop cancelled, on the user's Ctrl-C or SIGTERM.  A library's task
    cancelled before it first ran leaves a coroutine it made but never awaited (anyio's
    connection attempts do); in a command, where the user sees only what the program
    says, Python would warn about each on stderr.  (Used as a library, Python's warnings
    are left as they are.)"""
    if interrupts.in_command():
        import warnings

        warnings.filterwarnings(
            "ignore", message=r"coroutine '.*' was never awaited", category=RuntimeWarning
        )
    _cancel_tasks(loop)


def _cancel_pending(loop: asyncio.AbstractEventLoop) -> None:
    """The tasks left cancelled, and run in the loop until they have ended."""
    pending = _cancel_tasks(loop)
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def _cancel_tasks(loop: asyncio.AbstractEventLoop) -> list[asyncio.Task[Any]]:
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    return pending


# Indirection so that tests can run the retry logic on a simulated clock.
_clock: Callable[[], float] = time.monotonic
_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


class _Budget:
    def __init__(self, started: float, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = started + seconds

    def remaining(self) -> float:
        return self.deadline - _clock()


# --- local checks -----------------------------------------------------------------------


@dataclass
class _Local:
    key: str | None = field(default=None, repr=False)
    info: KeyInfo | None = None
    format_checks: tuple[Check, ...] = ()
    expiry_checks: tuple[Check, ...] = ()
    failure: tuple[Outcome, str, str | None] | None = None
    warnings: tuple[str, ...] = ()


def _local_checks(raw: str, *, min_days: float, now: datetime | None) -> _Local:
    try:
        key = clean_key(raw)
        info = parse_key(key)
    except N8nDeployError as error:  # keyformat's messages never contain the key
        return _Local(
            format_checks=(Check(FORMAT, FAILED, error.message),),
            expiry_checks=(Check(EXPIRY, SKIPPED, "Expiry not checked"),),
            failure=(
                Outcome.INVALID_FORMAT,
                error.message,
                error.hint
                or "n8n API keys are JWTs starting with 'eyJ', or legacy 'n8n_api_' "
                "keys; copy the whole key again from n8n (Settings -> API)",
            ),
        )
    kind_note = " (legacy n8n_api_ key)" if info.kind == "legacy" else ""
    format_check = Check(FORMAT, PASSED, f"Key format valid{kind_note}")
    now = now or utcnow()
    failure: tuple[Outcome, str, str | None] | None = None
    expires = info.expires_at
    if expires is None:
        expiry = Check(EXPIRY, PASSED, "Token expires: never")
    elif info.is_expired(now):
        message = f"Token expired on {human_date(expires)}"
        expiry = Check(EXPIRY, FAILED, message)
        failure = (
            Outcome.EXPIRED,
            f"The key expired on {human_date(expires)}; n8n rejects expired keys",
            "Create a new key in n8n (Settings -> API) and rotate to it: "
            "n8n-deploy apikey rotate OLD - --name NEW",
        )
    elif min_days > 0 and info.expires_within(min_days, now):
        days = (expires - now).total_seconds() / 86400
        message = f"Token expires: {human_date(expires)} (in {days:.1f} days)"
        expiry = Check(EXPIRY, FAILED, message + f", within the {min_days:g} days asked")
        failure = (
            Outcome.EXPIRING_SOON,
            f"The key expires on {human_date(expires)}, within {min_days:g} days (--min-days)",
            "Rotate it before it expires: create a new key in n8n, then "
            "n8n-deploy apikey rotate OLD - --name NEW",
        )
    else:
        expiry = Check(EXPIRY, PASSED, f"Token expires: {human_date(expires)}")
    soon: tuple[str, ...] = ()
    if failure is None and expires is not None and info.expires_within(EXPIRY_WARNING_DAYS, now):
        days = (expires - now).total_seconds() / 86400
        soon = (
            f"the key expires on {human_date(expires)}, in {days:.1f} days: create a new key "
            "in n8n and rotate to it (n8n-deploy apikey rotate); --min-days N fails the "
            "check instead",
        )
    return _Local(
        key=key,
        info=info,
        format_checks=(format_check,),
        expiry_checks=(expiry,),
        failure=failure,
        warnings=(*soon, *(f"Key claims: {problem}" for problem in info.problems)),
    )


def _transport_warnings(base: str, verify_tls: bool) -> tuple[str, ...]:
    parts = urlsplit(base)
    if parts.scheme == "http" and not is_loopback_host(base):
        return (
            f"{base} uses plain http: the key travels unencrypted to {parts.netloc}; use https",
        )
    if parts.scheme == "https" and not verify_tls:
        return (
            f"TLS certificate verification is off for {parts.netloc}: "
            "an impostor could receive the key",
        )
    return ()


# --- the request ------------------------------------------------------------------------


@dataclass
class _Exchange:
    """What came back from the server (the last attempt), or why nothing did."""

    attempts: int = 0
    status: int | None = None
    reason: str = ""
    content_type: str = ""
    body: bytes = b""
    location: str | None = None
    retry_after: float | None = None  # asked for by the last answer, but not waited for
    budget_left: float = 0.0  # seconds of the budget left when no retry fitted any more
    failure: tuple[str, str, str | None] | None = None  # (kind, message, hint)


@dataclass(frozen=True)
class _Request:
    """One request of a check: the workflow list by default, or a scope probe."""

    method: str = "GET"
    path: str = PROBE_PATH
    params: dict[str, str] = field(default_factory=lambda: dict(PROBE_PARAMS))
    body: dict[str, Any] | None = None


async def _exchange(
    key: str,
    base: str,
    budget: _Budget,
    client: httpx.AsyncClient,
    request: _Request | None = None,
) -> _Exchange:
    request = request or _Request()
    url = base + request.path
    headers = {
        "X-N8N-API-KEY": key,
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }
    exchange = _Exchange()
    # What the log filter hides.  Each check runs in a task of its own, with its own copy
    # of the context: nothing to reset (a reset in a coroutine the garbage collector
    # closes after an interrupt would fail, "created in a different Context").
    _SENDING.set(key)
    return await _attempts(base, budget, client, request, url, headers, exchange)


async def _attempts(
    base: str,
    budget: _Budget,
    client: httpx.AsyncClient,
    request: _Request,
    url: str,
    headers: dict[str, str],
    exchange: _Exchange,
) -> _Exchange:
    import httpx

    while True:
        remaining = budget.remaining()
        if remaining <= 0:
            exchange.failure = _timeout_failure(base, budget.seconds, connected=False)
            return exchange
        exchange.attempts += 1
        retry_in: float | None
        try:
            await _within(
                _send(client, url, request, headers, remaining * PHASE_TIMEOUT_SHARE, exchange),
                remaining,
            )
        except asyncio.TimeoutError:
            exchange.failure = _timeout_failure(base, budget.seconds, connected=True)
            return exchange
        except httpx.HTTPError as exc:
            kind, message, hint, retryable = _describe_error(exc, base, budget.seconds)
            exchange.failure = (kind, message, hint)
            if kind == "refused" and exchange.attempts >= REFUSED_ATTEMPTS:
                retryable = False  # nothing listens there: a mistyped port fails at once
            retry_in = _backoff(exchange.attempts) if retryable else None
        else:
            exchange.failure = None
            if exchange.status not in RETRY_STATUSES:
                return exchange
            retry_in = _backoff(exchange.attempts)
            if exchange.retry_after is not None:  # honoured, but never a busy loop
                retry_in = max(retry_in, exchange.retry_after)
        if retry_in is None:
            return exchange
        if budget.remaining() - retry_in < MIN_ATTEMPT_SECONDS:
            exchange.budget_left = budget.remaining()
            return exchange  # report the last answer rather than overrun the budget
        exchange.retry_after = None
        await _sleep(retry_in)


async def _within(work: Coroutine[Any, Any, None], seconds: float) -> None:
    """``work`` within ``seconds`` (asyncio.TimeoutError after), in this task on Python
    3.11+ (``asyncio.timeout``).  ``wait_for`` of 3.10 and 3.11 runs the work in a task of
    its own and drops a cancellation that arrives as that task ends: a check cancelled by
    Ctrl-C then went on to its next request."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            await work
    else:  # pragma: no cover - Python 3.10
        await asyncio.wait_for(work, timeout=seconds)


async def _send(
    client: httpx.AsyncClient,
    url: str,
    spec: _Request,
    headers: dict[str, str],
    phase_timeout: float,
    exchange: _Exchange,
) -> None:
    import httpx

    exchange.status = None
    exchange.body = b""
    exchange.location = None
    exchange.retry_after = None
    trace = _TRACE.get()
    request = client.build_request(
        spec.method,
        url,
        params=spec.params,
        headers=headers,
        json=spec.body,
        timeout=httpx.Timeout(phase_timeout),
        extensions={"trace": trace} if trace is not None else None,
    )
    response = await client.send(request, stream=True, follow_redirects=False)
    try:
        exchange.status = response.status_code
        exchange.reason = response.reason_phrase
        exchange.content_type = response.headers.get("content-type", "")
        if 300 <= response.status_code < 400:
            location = response.headers.get("location")
            exchange.location = urljoin(url, location) if location else None
            return  # the body of a redirect is of no interest
        if response.status_code in RETRY_STATUSES:
            exchange.retry_after = _retry_after(response.headers.get("retry-after"))
        body = bytearray()
        async for chunk in response.aiter_bytes():  # decoded (n8n may gzip its answers)
            body += chunk
            if len(body) >= MAX_BODY_BYTES:
                break
        exchange.body = bytes(body[:MAX_BODY_BYTES])
    finally:
        await response.aclose()


def _backoff(attempt: int) -> float:
    return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (attempt - 1)))


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (a number of seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - utcnow()).total_seconds())


# --- classifying what happened ------------------------------------------------------------


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc``, its causes and contexts, and the members of exception groups."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo:
        current = todo.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        todo.extend(getattr(current, "exceptions", ()) or ())
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)
    return seen


def _first(chain: list[BaseException], kind: type[T]) -> T | None:
    for exc in chain:
        if isinstance(exc, kind):
            return exc
    return None


_TLS_HINT = (
    "If the server uses a private or self-signed certificate, point SSL_CERT_FILE (or "
    "SSL_CERT_DIR) at its CA certificate; --skip-ssl-verify (or the server's "
    "skip_ssl_verify setting: n8n-deploy server update NAME --skip-ssl-verify) turns the "
    "check off"
)


def _describe_error(exc: Exception, base: str, budget: float) -> tuple[str, str, str | None, bool]:
    """(kind, message, hint, retryable) for a transport error; never uses the key."""
    import httpx

    parts = urlsplit(base)
    host = parts.hostname or base
    where = parts.netloc
    chain = _chain(exc)
    cert_error = _first(chain, ssl.SSLCertVerificationError)
    if cert_error is not None:
        why = cert_error.verify_message or cert_error.reason or "not trusted"
        return "tls", f"TLS certificate of {where} not trusted: {why}", _TLS_HINT, False
    # SSLWantRead/WriteError: the handshake was waiting for the server when the time ran
    # out (a timeout, said as one below), not a TLS failure.
    waiting = (ssl.SSLWantReadError, ssl.SSLWantWriteError)
    tls_error = next(
        (e for e in chain if isinstance(e, ssl.SSLError) and not isinstance(e, waiting)), None
    )
    if tls_error is not None:
        why = tls_error.reason or type(tls_error).__name__
        hint = "Check the URL's scheme: is the server plain http:// rather than https://?"
        return "tls", f"TLS handshake with {where} failed ({why})", hint, False
    if isinstance(exc, httpx.ConnectTimeout):
        message, hint = _timeout_failure(base, budget, connected=False)[1:]
        return "timeout", message, hint, False
    if isinstance(exc, httpx.TimeoutException):
        message, hint = _timeout_failure(base, budget, connected=True)[1:]
        return "timeout", message, hint, False
    dns_error = _first(chain, socket.gaierror)
    if dns_error is not None:
        temporary = dns_error.errno == socket.EAI_AGAIN
        if temporary:
            message = f"DNS lookup of {host} failed temporarily"
        else:
            message = f"DNS lookup failed: the host name {host} cannot be resolved"
        return "dns", message, "Check the host name in the server URL and your DNS", temporary
    if _first(chain, ConnectionRefusedError) is not None or any(
        isinstance(e, OSError) and e.errno == errno.ECONNREFUSED for e in chain
    ):
        return (
            "refused",
            f"Connection refused by {where}",
            "Is n8n running and listening on that port? Check the port in the server URL",
            True,
        )
    if isinstance(exc, httpx.ConnectError):
        reasons = [e.strerror for e in chain if isinstance(e, OSError) and e.strerror]
        why = reasons[0] if reasons else "connection failed"
        return (
            "connect",
            f"Cannot connect to {where}: {why}",
            "Check the URL, the network and any firewall in between",
            True,
        )
    if isinstance(exc, httpx.ProxyError):
        return (
            "proxy",
            f"The proxy refused or failed the connection to {where}",
            "Check HTTPS_PROXY / HTTP_PROXY and NO_PROXY",
            False,
        )
    scheme_hint = (
        "Check the URL's scheme and port (a server that speaks https needs https://) and "
        "any proxy in between"
    )
    if isinstance(exc, httpx.RemoteProtocolError):
        message = f"{where} closed the connection without a valid HTTP answer"
        return "protocol", message, scheme_hint, False
    message = f"The connection to {where} broke before an answer ({type(exc).__name__})"
    return "network", message, scheme_hint, False


def _timeout_failure(base: str, budget: float, *, connected: bool) -> tuple[str, str, str]:
    where = urlsplit(base).netloc
    if connected:
        message = f"Timed out: {where} did not answer within the {budget:g} s budget"
    else:
        message = f"Timed out connecting to {where} within the {budget:g} s budget"
    hint = (
        "Check that the server is up and the URL and port are right; allow more time with --timeout"
    )
    return "timeout", message, hint


@dataclass
class _Verdict:
    outcome: Outcome
    message: str
    hint: str | None
    reachable: tuple[str, str]
    auth: tuple[str, str]
    cause: str | None = None
    scopes: tuple[str, str] | None = None  # the scopes line, when they were looked at


# --- scopes -------------------------------------------------------------------------------


async def _read_scopes(
    key: str,
    base: str,
    budget: _Budget,
    client: httpx.AsyncClient,
    wanted: tuple[str, ...] | None,
) -> ScopeReport:
    """What the key holds, from ``/discover`` when the server has it, else from the probes
    for ``wanted`` (None: every probe), all within the check's budget."""
    found = await _exchange(
        key, base, budget, client, _Request("GET", API_PATH + scopes.DISCOVER_PATH, {})
    )
    held = scopes.read_discover(found.status, found.body) if found.failure is None else None
    if held is not None:
        missing = tuple(s for s in (wanted or ()) if s not in held)
        return ScopeReport("discover", held, missing)
    asked = tuple(scopes.PROBES) if wanted is None else wanted
    probed = [s for s in asked if s in scopes.PROBES]
    answers = await asyncio.gather(
        *(
            _exchange(
                key,
                base,
                budget,
                client,
                _Request(
                    scopes.PROBES[s].method,
                    API_PATH + scopes.PROBES[s].path,
                    dict(scopes.PROBES[s].params),
                    scopes.PROBES[s].body,
                ),
            )
            for s in probed
        )
    )
    present: list[str] = []
    refused: list[str] = []
    licence: list[tuple[str, str]] = []
    unknown = [s for s in asked if s not in scopes.PROBES]
    for scope, answer in zip(probed, answers, strict=True):
        status = answer.status if answer.failure is None else None
        verdict = scopes.read_probe(scopes.PROBES[scope], status, answer.body)
        if verdict.verdict == "present":
            present.append(scope)
        elif verdict.verdict == "missing":
            refused.append(scope)
        elif verdict.verdict == "licence":
            refused.append(scope)
            licence.append((scope, verdict.detail))
        else:
            unknown.append(scope)
    return ScopeReport(
        "probes", tuple(sorted(present)), tuple(refused), tuple(unknown), tuple(licence)
    )


def _scope_verdict(
    verdict: _Verdict,
    report: ScopeReport,
    require: tuple[str, ...] | None,
    allow_unknown: bool,
) -> _Verdict:
    """The verdict once the scopes are known: a missing scope fails (exit 4), an unknown
    one fails on its own terms (exit 1) unless allowed; ``require`` None never fails."""
    how = "the server's /discover" if report.source == "discover" else "probes that change nothing"
    if require is None:
        line = f"Scopes: {len(report.held)} held (from {how})"
        return replace(verdict, scopes=(PASSED, line))
    licensed = dict(report.licence)
    lacking = [s for s in report.missing if s not in licensed]
    if report.missing:
        parts = []
        if lacking:
            parts.append(
                f"the key lacks {counted(len(lacking), 'required scope')}: {', '.join(lacking)}"
            )
        for scope, feature in report.licence:
            parts.append(f"the server's licence does not allow {feature} (needed for {scope})")
        message = "Authenticated, but " + "; ".join(parts)
        fixes = []
        if lacking:
            fixes.append(
                f"Give the key {'it' if len(lacking) == 1 else 'them'} in {scopes.SCOPES_SCREEN} "
                "(or create a key that has them and rotate to it: n8n-deploy apikey rotate)"
            )
        if licensed:
            fixes.append("a licensed feature needs a licence that includes it: no key can do that")
        return replace(
            verdict,
            outcome=Outcome.MISSING_SCOPES,
            message=message,
            hint="; ".join(fixes),
            scopes=(FAILED, f"Scopes missing: {', '.join(report.missing)} (from {how})"),
        )
    if report.unknown and not allow_unknown:
        return replace(
            verdict,
            outcome=Outcome.UNKNOWN_SCOPES,
            message=f"Authenticated, but whether the key holds {', '.join(report.unknown)} "
            "cannot be told: this server has no /api/v1/discover and no request that "
            "changes nothing shows it",
            hint="Pass --allow-unknown-scopes to accept that, or check the key in "
            f"{scopes.SCOPES_SCREEN}",
            scopes=(FAILED, f"Scopes unknown: {', '.join(report.unknown)} (from {how})"),
        )
    line = f"Scopes present: {', '.join(s for s in (require or ()) if s not in report.unknown)}"
    if report.unknown:
        line += f"; unknown, allowed: {', '.join(report.unknown)}"
    return replace(verdict, scopes=(PASSED, line + f" (from {how})"))


def _judge(
    exchange: _Exchange, base: str, budget: float, secret: str, server_name: str | None
) -> _Verdict:
    """What the exchange means.  ``secret`` is only used to hide the key in what the
    server said; every message made here is scrubbed again by the caller.  Hints name
    the command that fixes the server record when ``server_name`` is known."""
    if exchange.failure is not None:
        cause, message, hint = exchange.failure
        if exchange.attempts > 1:
            message += f" (after {exchange.attempts} attempts)"
        return _Verdict(
            Outcome.UNREACHABLE,
            message,
            hint,
            (FAILED, f"Server unreachable ({base}): {_tail(message)}"),
            (SKIPPED, "Authentication not checked"),
            cause,
        )
    status = exchange.status or 0
    reachable = (PASSED, f"Server reachable ({base})")
    after = f" (after {exchange.attempts} attempts)" if exchange.attempts > 1 else ""

    def unexpected(message: str, hint: str) -> _Verdict:
        return _Verdict(
            Outcome.UNEXPECTED_RESPONSE,
            message + after,
            hint,
            reachable,
            (FAILED, f"Unexpected response: {_tail(message)}{after}"),
        )

    if status == 200:
        data = _json(exchange.body)
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            return _Verdict(
                Outcome.VALID,
                f"The key is valid and working on {base}",
                None,
                reachable,
                (PASSED, "Authentication successful"),
            )
        if data is not _NOT_JSON:
            return unexpected(
                "HTTP 200 with JSON that is not n8n's workflow list",
                "Check the URL and its path prefix: is this n8n's public API?",
            )
    if 200 <= status < 300:
        return unexpected(*_not_json(exchange, status))
    if 300 <= status < 400:
        return unexpected(*_redirect(exchange, status, server_name))
    if status == 401:
        message = (
            "The server rejected the key (HTTP 401): revoked, deleted or expired in n8n, "
            "its user disabled, or the server's secret changed"
        )
        hint = (
            "Check the key in n8n (Settings -> API) and that this URL is the server that "
            "issued it; create and store a new key if needed"
        )
        said = _message_of(exchange, secret)
        says = said.lower()
        if "header required" in says:
            message = "The server did not receive the X-N8N-API-KEY header (HTTP 401)"
            hint = "A proxy in front of n8n may strip the X-N8N-API-KEY header"
        elif any(word in says for word in _SIGNATURE_WORDS):
            # n8n passes jsonwebtoken's own text through: the key was signed by another
            # server (or with a secret this server no longer has).
            message = (
                f"The server rejected the key's signature (HTTP 401: {said[:80]}): it was "
                "issued by another n8n server, or this server's secret changed"
            )
            hint = "Check that this URL is the server that issued the key; else create a new key"
        return _Verdict(
            Outcome.REJECTED,
            message,
            hint,
            reachable,
            (FAILED, f"Authentication failed: {_tail(message)}"),
        )
    if status == 403:
        message = "The key lacks the workflow:list scope (HTTP 403 Forbidden)"
        hint = (
            "In n8n (Settings -> API), give the key the workflow:list scope or create one with it"
        )
        return _Verdict(
            Outcome.FORBIDDEN,
            message,
            hint,
            reachable,
            (FAILED, f"Authentication failed: {_tail(message)}"),
        )
    if status == 404:
        message = f"No n8n public API at {base}{PROBE_PATH} (HTTP 404)"
        if urlsplit(base).path.endswith(API_PATH):
            return unexpected(message, _drop_api_path_hint(base, server_name))
        return unexpected(
            message,
            "Check the server URL and its path prefix (e.g. https://host/n8n); the public "
            "API may also be disabled (N8N_PUBLIC_API_DISABLED, or an n8n Cloud trial), or "
            "n8n is still starting (it answers 404 for a few seconds after it is ready)",
        )
    if status == 429:
        message = "The server kept answering 429 Too Many Requests"
        hint = "Wait a while before testing again"
        asked = exchange.retry_after
        if asked is not None and asked + MIN_ATTEMPT_SECONDS > budget:
            hint += f"; it asked to retry after {asked:g} s, beyond the {budget:g} s budget"
            hint += " (--timeout)"
        elif asked is not None:
            left = _seconds(exchange.budget_left)
            hint += (
                f"; it asked to retry after {asked:g} s, but only {left} s of the "
                f"{budget:g} s budget was left; allow more time with --timeout"
            )
        return unexpected(message, hint)
    if status in (502, 504):
        return unexpected(
            f"The proxy in front of n8n got no answer from it (HTTP {status})",
            "n8n may be restarting or down; try again shortly",
        )
    if status == 503:
        return unexpected(
            f"The server is not ready (HTTP 503{_server_says(exchange, secret)})",
            "n8n is starting or its database is not ready; try again shortly",
        )
    if status >= 500:
        return unexpected(
            f"The server failed (HTTP {status}{_server_says(exchange, secret)})",
            "Check n8n's logs; newer n8n versions answer 500 to a key signed with another "
            "server's secret",
        )
    return unexpected(
        f"HTTP {status} {exchange.reason}{_server_says(exchange, secret)}".rstrip(),
        "Check the URL and its path prefix; a proxy in between may be refusing the request",
    )


_NOT_JSON = object()


def _json(body: bytes) -> Any:
    if not body.strip():
        return _NOT_JSON
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _NOT_JSON


def _text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def _message_of(exchange: _Exchange, secret: str) -> str:
    """The server's JSON ``message`` on one line, the key hidden *before* it is cut to
    MAX_SERVER_MESSAGE characters (cutting first would leave a piece of an echoed key
    that no longer matches the whole key)."""
    data = _json(exchange.body)
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        text = " ".join(str(data["message"])[:MAX_SCRUB_SCAN].split())
        return _scrub(text, secret)[:MAX_SERVER_MESSAGE]
    return ""


def _server_says(exchange: _Exchange, secret: str) -> str:
    message = _message_of(exchange, secret)
    return f": {message}" if message else ""


def _not_json(exchange: _Exchange, status: int) -> tuple[str, str]:
    text = _text(exchange.body)
    lowered = text.lower()
    media = exchange.content_type.split(";")[0].strip().lower() or "no content type"
    if "starting up" in lowered:
        return (
            f"n8n is still starting up (HTTP {status}, {media})",
            "Wait until n8n has started, then test again",
        )
    if "html" in media or lowered.lstrip().startswith(("<!doctype html", "<html")):
        return (
            f"HTTP {status} with a web page (HTML), not n8n's API",
            "Check the URL and its path prefix: this looks like n8n's editor at a wrong "
            "path or a proxy's login page",
        )
    if not exchange.body.strip():
        return (
            f"HTTP {status} with an empty answer",
            "Check the URL and its path prefix, and any proxy in between",
        )
    return (
        f"HTTP {status} with an answer that is not JSON ({media})",
        "Check the URL and its path prefix: is this n8n's public API?",
    )


def _seconds(value: float) -> str:
    return f"{max(0.0, value):.1f}".removesuffix(".0")


def _drop_api_path_hint(base: str, server_name: str | None) -> str:
    fixed = base[: -len(API_PATH)]
    hint = f"The server URL ends in {API_PATH}, which n8n-deploy adds itself: drop {API_PATH}"
    if server_name is None:
        return f"{hint} and use {fixed}"
    return f"{hint} from it: n8n-deploy server update {shell_word(server_name)} --url {fixed}"


def _redirect(exchange: _Exchange, status: int, server_name: str | None) -> tuple[str, str]:
    location = exchange.location
    if not location:
        return (
            f"Redirect (HTTP {status}) without a Location; not followed",
            "Check the server URL and its path prefix",
        )
    message = f"Redirected (HTTP {status}) to {location}; not followed, the key was not sent there"
    suggested = _base_from_location(location)
    if suggested is None:
        hint = (
            "Redirects are never followed. Check the server URL; a login page suggests an "
            "access gateway in front of n8n"
        )
    elif server_name is not None:
        hint = (
            f"If {suggested} is the right address, store it: "
            f"n8n-deploy server update {shell_word(server_name)} --url {suggested}"
        )
    else:
        hint = (
            f"If {suggested} is the right address, store it: "
            f"n8n-deploy server update NAME --url {suggested} (or use --server-url)"
        )
    return message, hint


def _base_from_location(location: str) -> str | None:
    """The base URL a redirect points to, when it keeps the API path we asked for."""
    parts = urlsplit(location)
    if parts.scheme not in ("http", "https") or not parts.path.endswith(PROBE_PATH):
        return None
    prefix = parts.path[: -len(PROBE_PATH)]
    return f"{parts.scheme}://{parts.netloc}{prefix}"


def _tail(message: str) -> str:
    """A message continuing a sentence: "The server ..." -> "the server ..." (not "HTTP")."""
    if len(message) > 1 and message[0].isupper() and message[1].islower():
        return message[0].lower() + message[1:]
    return message


def _scrub(text: str, secret: str) -> str:
    """Belt and braces: a server that echoes the key back, whole, cut short or in pieces,
    must not make us print it.  The whole key becomes its mask (last 4 characters), any
    run of SCRUB_MIN_PIECE or more of its characters ``********``, and anything else
    shaped like an n8n key ``[API key hidden]`` (base.text.redact_keys)."""
    if secret:
        text = text.replace(secret, mask_key(secret))
    text = redact_keys(text)
    return _hide_pieces(text, secret) if secret else text


#: The key of the request being made, in the task making it: what the log filter hides.
_SENDING: ContextVar[str] = ContextVar("n8n_deploy_sending", default="")
#: The ``trace`` extension of the running check's requests (``validate_many``'s meanwhile).
_TRACE: ContextVar[_CheckTrace | None] = ContextVar("n8n_deploy_trace", default=None)
#: The loggers of httpx and httpcore, which log what a server sent (status lines, headers,
#: a Location) at INFO and DEBUG: a server that echoes the key would put it in a log.
HTTP_LOGGERS = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)


class _SanitisedLogRecords(logging.Filter):
    """Every record of HTTP_LOGGERS, as printed text is: the key being sent scrubbed
    (whole, cut short or in pieces), then base.text.sanitize (anything key-shaped, URL
    passwords, control characters)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):  # arguments that do not fit: logging says so
            return True
        clean = sanitize(_scrub(message, _SENDING.get()))
        if clean != message:
            record.msg, record.args = clean, None
        return True


_LOG_FILTER = _SanitisedLogRecords()
for _name in HTTP_LOGGERS:
    logging.getLogger(_name).addFilter(_LOG_FILTER)


#: A to Z as a to z, nothing else: folds text without changing its length (str.lower can).
_ASCII_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _hide_pieces(text: str, secret: str, size: int = SCRUB_MIN_PIECE) -> str:
    """``text`` with each run of ``size`` or more characters of ``secret``, in any letter
    case (a server or proxy that folds what it quotes), as ``********``."""
    if len(secret) < size or len(text) < size:
        return text
    folded, key = text.translate(_ASCII_FOLD), secret.translate(_ASCII_FOLD)
    pieces = {key[i : i + size] for i in range(len(key) - size + 1)}
    out: list[str] = []
    start = i = 0
    while i <= len(folded) - size:
        if folded[i : i + size] not in pieces:
            i += 1
            continue
        end = i + size
        while end < len(folded) and folded[i : end + 1] in key:
            end += 1  # hide the whole run, not just its first SCRUB_MIN_PIECE characters
        out += [text[start:i], "********"]
        start = i = end
    out.append(text[start:])
    return "".join(out)
