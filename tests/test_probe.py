"""The validator on its own (Python API): every outcome row with the exact request it sends,
retries and the time budget (on a simulated clock), TLS and connection error mapping, and
the key never leaving the request header."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import socket
import ssl
import sys
from collections.abc import Callable, Iterator
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
import respx

from n8n_deploy import __version__
from n8n_deploy.base.dates import utcnow
from n8n_deploy.base.errors import InvalidServerUrlError, UsageError
from n8n_deploy.base.status import ExitStatus, most_serious
from n8n_deploy.n8n import probe as validator
from n8n_deploy.n8n.limits import MAX_CONCURRENCY, MAX_PER_SERVER
from n8n_deploy.n8n.probe import Probe, Trust, tls_context, validate_key, validate_many
from n8n_deploy.n8n.results import Outcome
from tests.fake_n8n import CA_FILE
from tests.helpers import jwt_of_length, leaked_piece, make_jwt, make_legacy_key

BASE = "https://n8n.example.com/n8n"
PROBE_URL = "https://n8n.example.com/n8n/api/v1/workflows?limit=1"
WORKFLOWS = {"data": [], "nextCursor": None}


class FakeClock:
    """Simulated time: sleeping advances it instantly, so budget tests take no time and
    assert on what the validator did rather than on a wall clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(validator, "_clock", fake.monotonic)
    monkeypatch.setattr(validator, "_sleep", fake.sleep)
    return fake


@pytest.fixture
def key() -> str:
    return make_jwt(exp_days=30)


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


def route(
    mock: respx.MockRouter, *answers: httpx.Response | Exception | type[Exception]
) -> respx.Route:
    """The probe URL answering with ``answers`` in turn (one answer: every time)."""
    r = mock.get(PROBE_URL)
    if len(answers) > 1:
        r.mock(side_effect=list(answers))
    elif isinstance(answers[0], httpx.Response):
        r.mock(return_value=answers[0])
    else:
        r.mock(side_effect=answers[0])
    return r


def assert_no_key(key: str, *texts: object) -> None:
    for text in texts:
        assert key not in str(text)


# --- the request ------------------------------------------------------------------------


def test_a_valid_key_sends_exactly_one_documented_request(
    mock: respx.MockRouter, key: str, clock: FakeClock
) -> None:
    r = route(mock, httpx.Response(200, json=WORKFLOWS))
    result = validate_key(key, BASE + "/")
    assert result.ok and result.exit_status == ExitStatus.SUCCESS
    assert result.outcome is Outcome.VALID
    assert r.call_count == 1
    request = r.calls.last.request
    assert request.method == "GET"
    assert str(request.url) == PROBE_URL  # the /n8n path prefix is kept
    assert request.headers["X-N8N-API-KEY"] == key
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"] == f"n8n-deploy/{__version__}"
    assert "bot" not in request.headers["User-Agent"].lower()
    assert "authorization" not in request.headers
    assert result.http_status == 200
    assert result.attempts == 1
    assert result.key_kind == "jwt"
    assert [(c.name, c.status) for c in result.checks] == [
        ("format", "passed"),
        ("reachable", "passed"),
        ("authentication", "passed"),
        ("expiry", "passed"),
    ]
    assert result.check("reachable").message == f"Server reachable ({BASE})"  # type: ignore[union-attr]
    assert clock.sleeps == []


def test_a_legacy_key_is_sent_as_is_and_never_expires(mock: respx.MockRouter) -> None:
    legacy = make_legacy_key(7)
    r = route(mock, httpx.Response(200, json=WORKFLOWS))
    result = validate_key(legacy, BASE)
    assert result.ok
    assert r.calls.last.request.headers["X-N8N-API-KEY"] == legacy
    assert result.key_kind == "legacy" and result.expires_at is None
    assert result.check("expiry").message == "Token expires: never"  # type: ignore[union-attr]


def test_surrounding_whitespace_is_trimmed_before_sending(mock: respx.MockRouter, key: str) -> None:
    r = route(mock, httpx.Response(200, json=WORKFLOWS))
    assert validate_key(f"  {key}\n", BASE).ok
    assert r.calls.last.request.headers["X-N8N-API-KEY"] == key


def test_a_compressed_answer_is_decoded(mock: respx.MockRouter, key: str) -> None:
    body = gzip.compress(json.dumps(WORKFLOWS).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    route(mock, httpx.Response(200, content=body, headers=headers))
    assert validate_key(key, BASE).ok


# --- every outcome row ------------------------------------------------------------------

HTML = b"<!DOCTYPE html><html><head><title>n8n.io - Workflow Automation</title></html>"

OUTCOME_ROWS: list[tuple[str, httpx.Response, Outcome, ExitStatus, str, str]] = [
    (
        "401 unauthorized",
        httpx.Response(401, json={"message": "Unauthorized"}),
        Outcome.REJECTED,
        ExitStatus.KEY_REJECTED,
        "rejected the key (HTTP 401): revoked, deleted or expired in n8n",
        "Settings -> API",
    ),
    (
        "401 header required (a proxy dropped it)",
        httpx.Response(401, json={"message": "'X-N8N-API-KEY' header required"}),
        Outcome.REJECTED,
        ExitStatus.KEY_REJECTED,
        "did not receive the X-N8N-API-KEY header",
        "proxy",
    ),
    (
        "401 from a server whose secret did not sign the key (seen on a real n8n 1.123)",
        httpx.Response(401, json={"message": "invalid signature"}),
        Outcome.REJECTED,
        ExitStatus.KEY_REJECTED,
        "rejected the key's signature (HTTP 401: invalid signature): it was issued by "
        "another n8n server",
        "the server that issued the key",
    ),
    (
        "403 missing scope",
        httpx.Response(403, json={"message": "Forbidden"}),
        Outcome.FORBIDDEN,
        ExitStatus.KEY_REJECTED,
        "lacks the workflow:list scope",
        "workflow:list",
    ),
    (
        "404 wrong path or public API disabled",
        httpx.Response(404, text="Cannot GET /n8n/api/v1/workflows"),
        Outcome.UNEXPECTED_RESPONSE,
        ExitStatus.UNEXPECTED_RESPONSE,
        "No n8n public API at https://n8n.example.com/n8n/api/v1/workflows (HTTP 404)",
        "still starting",
    ),
    (
        "500 server error",
        httpx.Response(500, json={"message": "invalid signature"}),
        Outcome.UNEXPECTED_RESPONSE,
        ExitStatus.UNEXPECTED_RESPONSE,
        "The server failed (HTTP 500: invalid signature)",
        "n8n's logs",
    ),
    (
        "200 editor HTML at a wrong path",
        httpx.Response(200, content=HTML, headers={"Content-Type": "text/html; charset=utf-8"}),
        Outcome.UNEXPECTED_RESPONSE,
        ExitStatus.UNEXPECTED_RESPONSE,
        "HTTP 200 with a web page (HTML), not n8n's API",
        "path prefix",
    ),
    (
        "200 n8n starting up",
        httpx.Response(200, text="n8n is starting up. Please wait"),
        Outcome.UNEXPECTED_RESPONSE,
        ExitStatus.UNEXPECTED_RESPONSE,
        "n8n is still starting up (HTTP 200, text/plain)",
        "Wait until n8n has started",
    ),
    (
        "204 empty (what n8n gives a 'bot' user agent)",
        httpx.Response(204),
        Outcome.UNEXPECTED_RESPONSE,
        ExitStatus.UNEXPECTED_RESPONSE,
        "HTTP 204 with an empty answer",
        "path prefix",
    ),
    (
        "200 JSON of another shape (healthz)",
        httpx.Response(200, json={"status": "ok"}),
        Outcome.UNEXPECTED_RESPONSE,
        ExitStatus.UNEXPECTED_RESPONSE,
        "HTTP 200 with JSON that is not n8n's workflow list",
        "path prefix",
    ),
    (
        "200 with data that is not a list",
        httpx.Response(200, json={"data": "nope"}),
        Outcome.UNEXPECTED_RESPONSE,
        ExitStatus.UNEXPECTED_RESPONSE,
        "not n8n's workflow list",
        "path prefix",
    ),
    (
        "400 from a misconfigured proxy",
        httpx.Response(400, text="Invalid URL"),
        Outcome.UNEXPECTED_RESPONSE,
        ExitStatus.UNEXPECTED_RESPONSE,
        "HTTP 400 Bad Request",
        "path prefix",
    ),
    (
        "proxy login page (200 HTML)",
        httpx.Response(200, text="<html><body>Sign in to continue</body></html>"),
        Outcome.UNEXPECTED_RESPONSE,
        ExitStatus.UNEXPECTED_RESPONSE,
        "web page (HTML)",
        "login page",
    ),
]


@pytest.mark.parametrize(
    ("response", "outcome", "status", "message", "hint"),
    [row[1:] for row in OUTCOME_ROWS],
    ids=[row[0] for row in OUTCOME_ROWS],
)
def test_each_answer_maps_to_its_outcome_status_message_and_hint(
    mock: respx.MockRouter,
    key: str,
    clock: FakeClock,
    response: httpx.Response,
    outcome: Outcome,
    status: ExitStatus,
    message: str,
    hint: str,
) -> None:
    r = route(mock, response)
    result = validate_key(key, BASE)
    assert result.outcome is outcome
    assert result.exit_status == status
    assert not result.ok
    assert message in result.message
    assert result.hint is not None and hint in result.hint
    assert result.http_status == response.status_code
    assert r.call_count == 1  # none of these is retried
    assert str(r.calls.last.request.url) == PROBE_URL
    assert result.check("reachable").status == "passed"  # type: ignore[union-attr]
    assert result.check("authentication").status == "failed"  # type: ignore[union-attr]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_reported_never_followed(
    mock: respx.MockRouter, key: str, status: int
) -> None:
    elsewhere = mock.get(url__startswith="https://login.example.net/")
    r = route(
        mock,
        httpx.Response(status, headers={"Location": "https://login.example.net/sso?next=/n8n"}),
    )
    result = validate_key(key, BASE)
    assert result.outcome is Outcome.UNEXPECTED_RESPONSE
    assert result.exit_status == ExitStatus.UNEXPECTED_RESPONSE
    assert r.call_count == 1
    assert elsewhere.call_count == 0  # the key never travelled there
    assert result.location == "https://login.example.net/sso?next=/n8n"
    assert (
        f"Redirected (HTTP {status}) to https://login.example.net/sso?next=/n8n" in result.message
    )
    assert "not followed" in result.message


def test_an_http_to_https_redirect_suggests_the_url_to_store(
    mock: respx.MockRouter, key: str
) -> None:
    mock.get("http://n8n.example.com/api/v1/workflows?limit=1").respond(
        301, headers={"Location": "https://n8n.example.com/api/v1/workflows?limit=1"}
    )
    https = mock.get("https://n8n.example.com/api/v1/workflows?limit=1")
    result = validate_key(key, "http://n8n.example.com")
    assert result.exit_status == ExitStatus.UNEXPECTED_RESPONSE
    assert https.call_count == 0
    assert result.hint is not None
    assert "n8n-deploy server update NAME --url https://n8n.example.com" in result.hint


def test_a_redirect_hint_names_the_stored_server(mock: respx.MockRouter, key: str) -> None:
    mock.get("http://n8n.example.com/api/v1/workflows?limit=1").respond(
        301, headers={"Location": "https://n8n.example.com/api/v1/workflows?limit=1"}
    )
    result = validate_key(key, "http://n8n.example.com", server_name="Production")
    assert result.hint is not None
    assert "n8n-deploy server update 'Production' --url https://n8n.example.com" in result.hint
    assert "NAME" not in result.hint
    result = validate_key(key, "http://n8n.example.com", server_name="it's")
    assert "n8n-deploy server update 'it'\"'\"'s' --url" in result.hint  # type: ignore[operator]


def test_a_404_under_a_url_ending_in_api_v1_says_to_drop_it(
    mock: respx.MockRouter, key: str
) -> None:
    mock.get("https://n8n.example.com/n8n/api/v1/api/v1/workflows?limit=1").respond(404)
    result = validate_key(key, "https://n8n.example.com/n8n/api/v1/", server_name="Production")
    assert result.exit_status == ExitStatus.UNEXPECTED_RESPONSE
    assert result.hint is not None
    assert "drop /api/v1" in result.hint
    assert "n8n-deploy server update 'Production' --url https://n8n.example.com/n8n" in result.hint
    result = validate_key(key, "https://n8n.example.com/n8n/api/v1")
    assert result.hint is not None
    assert "drop /api/v1" in result.hint and "https://n8n.example.com/n8n" in result.hint
    assert "server update" not in result.hint  # no stored server to update


def test_a_relative_location_is_reported_as_a_full_url(mock: respx.MockRouter, key: str) -> None:
    route(mock, httpx.Response(302, headers={"Location": "/signin"}))
    result = validate_key(key, BASE)
    assert result.location == "https://n8n.example.com/signin"


# --- local checks -----------------------------------------------------------------------


def test_an_expired_key_fails_locally_without_any_request(mock: respx.MockRouter) -> None:
    r = route(mock, httpx.Response(401, json={"message": "Unauthorized"}))
    result = validate_key(make_jwt(exp_days=-2), BASE)
    assert result.outcome is Outcome.EXPIRED
    assert result.exit_status == ExitStatus.KEY_EXPIRED
    assert r.call_count == 0
    assert result.attempts == 0 and result.http_status is None
    assert "expired on" in result.message
    assert result.check("reachable").status == "skipped"  # type: ignore[union-attr]
    assert result.check("expiry").status == "failed"  # type: ignore[union-attr]


def test_min_days_fails_a_key_expiring_within_that_many_days(mock: respx.MockRouter) -> None:
    r = route(mock, httpx.Response(200, json=WORKFLOWS))
    soon = make_jwt(exp_days=5)
    result = validate_key(soon, BASE, min_days=7)
    assert result.outcome is Outcome.EXPIRING_SOON
    assert result.exit_status == ExitStatus.KEY_EXPIRED
    assert "within 7 days" in result.message
    assert r.call_count == 0
    assert validate_key(soon, BASE, min_days=3).ok
    assert validate_key(soon, BASE).ok  # --min-days defaults to 0
    assert r.call_count == 2


def test_the_local_checks_alone_need_no_server(key: str) -> None:
    from n8n_deploy.n8n.probe import check_locally

    assert check_locally(key) is None
    expired = check_locally(make_jwt(exp_days=-1))
    assert expired is not None and expired.outcome is Outcome.EXPIRED
    assert expired.server_url is None and expired.to_dict()["server_url"] is None
    soon = check_locally(make_jwt(exp_days=2), min_days=3)
    assert soon is not None and soon.exit_status == ExitStatus.KEY_EXPIRED
    garbage = check_locally("garbage")
    assert garbage is not None and garbage.exit_status == ExitStatus.INVALID_FORMAT


@pytest.mark.parametrize(
    "bad",
    ["not-a-key", "eyJhbGciOiJIUzI1NiJ9.e30", "n8n_api_1234", "abc def"],
    ids=["garbage", "two parts", "short legacy", "space inside"],
)
def test_a_malformed_key_fails_locally_with_status_6(mock: respx.MockRouter, bad: str) -> None:
    r = route(mock, httpx.Response(200, json=WORKFLOWS))
    result = validate_key(bad, BASE)
    assert result.outcome is Outcome.INVALID_FORMAT
    assert result.exit_status == ExitStatus.INVALID_FORMAT
    assert result.message.startswith("Invalid JWT token format")
    assert r.call_count == 0
    assert_no_key(bad, result.message, result.hint, repr(result))


def test_a_bad_server_url_is_refused_before_anything(mock: respx.MockRouter, key: str) -> None:
    with pytest.raises(InvalidServerUrlError):
        validate_key(key, "ftp://n8n.example.com")


# --- retries and the time budget --------------------------------------------------------


@pytest.mark.parametrize("status", [502, 503, 504, 429])
def test_transient_answers_are_retried_with_backoff(
    mock: respx.MockRouter, key: str, clock: FakeClock, status: int
) -> None:
    r = route(
        mock,
        httpx.Response(status, json={"message": "busy"}),
        httpx.Response(status, json={"message": "busy"}),
        httpx.Response(200, json=WORKFLOWS),
    )
    result = validate_key(key, BASE)
    assert result.ok
    assert r.call_count == 3
    assert result.attempts == 3
    assert clock.sleeps == [0.25, 0.5]


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(500),
        httpx.Response(401, json={"message": "Unauthorized"}),
        httpx.Response(404),
        httpx.Response(403),
        httpx.Response(302, headers={"Location": "https://x.example.org/"}),
    ],
    ids=["500", "401", "404", "403", "302"],
)
def test_nothing_else_is_retried(
    mock: respx.MockRouter, key: str, clock: FakeClock, response: httpx.Response
) -> None:
    r = route(mock, response)
    validate_key(key, BASE)
    assert r.call_count == 1
    assert clock.sleeps == []


def test_retry_after_is_honoured_when_it_fits_the_budget(
    mock: respx.MockRouter, key: str, clock: FakeClock
) -> None:
    r = route(
        mock,
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(200, json=WORKFLOWS),
    )
    assert validate_key(key, BASE, timeout=10).ok
    assert clock.sleeps == [3.0]
    assert r.call_count == 2


def test_retry_after_as_an_http_date(mock: respx.MockRouter, key: str, clock: FakeClock) -> None:
    from datetime import timedelta

    when = format_datetime(utcnow() + timedelta(seconds=4), usegmt=True)
    route(
        mock,
        httpx.Response(503, headers={"Retry-After": when}),
        httpx.Response(200, json=WORKFLOWS),
    )
    assert validate_key(key, BASE, timeout=10).ok
    assert len(clock.sleeps) == 1 and 2 <= clock.sleeps[0] <= 4


def test_a_retry_after_of_zero_still_backs_off(
    mock: respx.MockRouter, key: str, clock: FakeClock
) -> None:
    r = route(mock, httpx.Response(429, headers={"Retry-After": "0"}))
    validate_key(key, BASE, timeout=5)
    assert clock.sleeps == [0.25, 0.5, 1.0, 2.0]
    assert r.call_count == 5


def test_a_budget_of_zero_is_refused(key: str) -> None:
    with pytest.raises(UsageError, match="more than 0 seconds"):
        validate_key(key, BASE, timeout=0)


def test_a_retry_after_beyond_the_budget_is_not_waited_for(
    mock: respx.MockRouter, key: str, clock: FakeClock
) -> None:
    r = route(mock, httpx.Response(429, headers={"Retry-After": "60"}))
    result = validate_key(key, BASE, timeout=10)
    assert r.call_count == 1
    assert clock.sleeps == []
    assert result.outcome is Outcome.UNEXPECTED_RESPONSE
    assert result.exit_status == ExitStatus.UNEXPECTED_RESPONSE
    assert "429 Too Many Requests" in result.message
    assert result.hint is not None and "retry after 60 s" in result.hint


def test_a_retry_after_that_fits_the_budget_but_not_what_is_left_says_so(
    mock: respx.MockRouter, key: str, clock: FakeClock
) -> None:
    r = route(mock, httpx.Response(429, headers={"Retry-After": "3"}))
    result = validate_key(key, BASE, timeout=10)
    assert clock.sleeps == [3.0, 3.0, 3.0]  # honoured while it fitted
    assert r.call_count == 4
    assert result.exit_status == ExitStatus.UNEXPECTED_RESPONSE
    assert "429 Too Many Requests (after 4 attempts)" in result.message
    assert result.hint is not None
    assert "beyond" not in result.hint  # 3 s is well within a 10 s budget
    assert "it asked to retry after 3 s, but only 1 s of the 10 s budget was left" in result.hint
    assert "--timeout" in result.hint


def test_a_server_that_stays_unavailable_is_reported_within_the_budget(
    mock: respx.MockRouter, key: str, clock: FakeClock
) -> None:
    start = clock.now

    def busy(request: httpx.Request) -> httpx.Response:
        clock.now += 0.4  # each answer takes a while
        return httpx.Response(503, json={"code": 503, "message": "Database is not ready!"})

    r = mock.get(PROBE_URL).mock(side_effect=busy)
    result = validate_key(key, BASE, timeout=5)
    assert result.exit_status == ExitStatus.UNEXPECTED_RESPONSE
    assert "not ready (HTTP 503: Database is not ready!)" in result.message
    assert f"after {r.call_count} attempts" in result.message
    assert r.call_count > 2
    assert clock.now - start <= 5  # waits and attempts all fit in the budget
    assert result.elapsed <= 5


# --- connection errors (with the exception chains httpx really produces) -----------------


def raise_from(
    monkeypatch: pytest.MonkeyPatch, make_cause: Callable[[], BaseException]
) -> list[int]:
    """Make every request fail as httpx does: httpx.ConnectError from httpcore.ConnectError
    from the OS/TLS error.  (respx would replace the exception's cause, so this patches
    the client's send instead.)  Returns a list that counts the attempts."""
    attempts: list[int] = []

    async def send(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> Any:
        attempts.append(1)
        cause = make_cause()
        try:
            try:
                raise cause
            except BaseException as exc:
                raise httpcore.ConnectError(str(exc)) from exc
        except httpcore.ConnectError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc

    monkeypatch.setattr(httpx.AsyncClient, "send", send)
    return attempts


def exception_group(message: str, errors: list[Exception]) -> Exception:
    if sys.version_info >= (3, 11):
        return ExceptionGroup(message, errors)  # noqa: F821 - built in from 3.11
    from exceptiongroup import ExceptionGroup as Backport  # anyio's dependency before 3.11

    return Backport(message, errors)


def untrusted_certificate() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"
    )
    error.verify_message = "self-signed certificate"
    error.reason = "CERTIFICATE_VERIFY_FAILED"
    return error


def test_a_certificate_failure_is_unreachable_and_names_the_fixes(
    monkeypatch: pytest.MonkeyPatch, key: str, clock: FakeClock
) -> None:
    attempts = raise_from(monkeypatch, untrusted_certificate)
    result = validate_key(key, BASE)
    assert result.outcome is Outcome.UNREACHABLE
    assert result.exit_status == ExitStatus.UNREACHABLE
    assert result.cause == "tls"
    assert (
        "TLS certificate of n8n.example.com not trusted: self-signed certificate" in result.message
    )
    assert result.hint is not None
    assert "--skip-ssl-verify" in result.hint and "SSL_CERT_FILE" in result.hint
    assert len(attempts) == 1  # a certificate does not get better by retrying
    assert result.check("authentication").status == "skipped"  # type: ignore[union-attr]


def test_another_tls_failure_suggests_checking_the_scheme(
    monkeypatch: pytest.MonkeyPatch, key: str, clock: FakeClock
) -> None:
    def wrong_version() -> ssl.SSLError:
        error = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
        error.reason = "WRONG_VERSION_NUMBER"
        return error

    raise_from(monkeypatch, wrong_version)
    result = validate_key(key, BASE)
    assert result.exit_status == ExitStatus.UNREACHABLE and result.cause == "tls"
    assert "TLS handshake with n8n.example.com failed (WRONG_VERSION_NUMBER)" in result.message
    assert result.hint is not None and "http://" in result.hint


def test_a_dns_failure_is_named_and_not_retried(
    monkeypatch: pytest.MonkeyPatch, key: str, clock: FakeClock
) -> None:
    attempts = raise_from(
        monkeypatch, lambda: socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    )
    result = validate_key(key, BASE)
    assert result.exit_status == ExitStatus.UNREACHABLE and result.cause == "dns"
    assert "DNS lookup failed: the host name n8n.example.com cannot be resolved" in result.message
    assert len(attempts) == 1


def test_a_temporary_dns_failure_is_retried(
    monkeypatch: pytest.MonkeyPatch, key: str, clock: FakeClock
) -> None:
    attempts = raise_from(
        monkeypatch, lambda: socket.gaierror(socket.EAI_AGAIN, "Temporary failure")
    )
    result = validate_key(key, BASE, timeout=2)
    assert result.cause == "dns" and len(attempts) > 1


def test_a_refused_connection_is_tried_once_more_then_reported_at_once(
    monkeypatch: pytest.MonkeyPatch, key: str, clock: FakeClock
) -> None:
    """Nothing listens there (a mistyped port): not worth the whole budget."""
    start = clock.now
    attempts = raise_from(monkeypatch, lambda: ConnectionRefusedError(111, "Connection refused"))
    result = validate_key(key, BASE, timeout=10)
    assert result.exit_status == ExitStatus.UNREACHABLE and result.cause == "refused"
    assert "Connection refused by n8n.example.com" in result.message
    assert len(attempts) == 2 and clock.sleeps == [0.25]
    assert clock.now - start < 1


def test_refused_on_every_address_is_still_named(
    monkeypatch: pytest.MonkeyPatch, key: str, clock: FakeClock
) -> None:
    def all_refused() -> OSError:
        group = exception_group(  # what anyio raises when IPv4 and IPv6 both refuse
            "multiple connection attempts failed",
            [ConnectionRefusedError(111, "refused"), ConnectionRefusedError(111, "refused")],
        )
        error = OSError("All connection attempts failed")
        error.__cause__ = group
        return error

    raise_from(monkeypatch, all_refused)
    assert validate_key(key, BASE, timeout=1).cause == "refused"


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (httpx.ConnectTimeout, "Timed out connecting to n8n.example.com within the 10 s budget"),
        (httpx.ReadTimeout, "Timed out: n8n.example.com did not answer within the 10 s budget"),
    ],
)
def test_timeouts_are_unreachable_and_not_retried(
    mock: respx.MockRouter, key: str, clock: FakeClock, error: type[Exception], text: str
) -> None:
    r = route(mock, error("timed out"))
    result = validate_key(key, BASE)
    assert result.exit_status == ExitStatus.UNREACHABLE and result.cause == "timeout"
    assert text in result.message
    assert result.hint is not None and "--timeout" in result.hint
    assert r.call_count == 1


def test_the_budget_is_a_hard_deadline_even_for_a_server_that_trickles(key: str) -> None:
    """httpx's timeouts are per read; the validator's deadline covers the whole check.
    The handler never finishes; the check must still end, as unreachable."""

    async def endless(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()  # never set
        raise AssertionError("unreachable")

    with respx.mock(assert_all_called=False) as router:
        router.get(PROBE_URL).mock(side_effect=endless)
        result = validate_key(key, BASE, timeout=0.3)
    assert result.exit_status == ExitStatus.UNREACHABLE
    assert result.cause == "timeout"


def test_a_failing_proxy_is_named(mock: respx.MockRouter, key: str) -> None:
    route(mock, httpx.ProxyError("407 Proxy Authentication Required"))
    result = validate_key(key, BASE)
    assert result.exit_status == ExitStatus.UNREACHABLE and result.cause == "proxy"
    assert result.hint is not None and "HTTPS_PROXY" in result.hint


def test_the_connection_breaking_is_unreachable(mock: respx.MockRouter, key: str) -> None:
    route(mock, httpx.ReadError("reset"))
    result = validate_key(key, BASE)
    assert result.exit_status == ExitStatus.UNREACHABLE
    assert "broke before an answer" in result.message


# --- warnings ---------------------------------------------------------------------------


def test_plain_http_to_another_host_warns_that_the_key_travels_unencrypted(
    mock: respx.MockRouter, key: str
) -> None:
    mock.get("http://n8n.internal:5678/api/v1/workflows?limit=1").respond(200, json=WORKFLOWS)
    result = validate_key(key, "http://n8n.internal:5678")
    assert result.ok
    assert any("unencrypted" in w for w in result.warnings)


def test_plain_http_to_loopback_is_normal(mock: respx.MockRouter, key: str) -> None:
    mock.get("http://localhost:5678/api/v1/workflows?limit=1").respond(200, json=WORKFLOWS)
    assert validate_key(key, "http://localhost:5678").warnings == ()


def test_turning_tls_verification_off_warns(mock: respx.MockRouter, key: str) -> None:
    route(mock, httpx.Response(200, json=WORKFLOWS))
    result = validate_key(key, BASE, verify_tls=False)
    assert result.ok
    assert any("verification is off" in w for w in result.warnings)


# --- the key stays secret ---------------------------------------------------------------


def test_a_server_echoing_the_key_does_not_make_it_appear_anywhere(
    mock: respx.MockRouter, key: str
) -> None:
    route(
        mock,
        httpx.Response(401, json={"message": f"unknown key {key}"}),
    )
    result = validate_key(key, BASE)
    assert result.exit_status == ExitStatus.KEY_REJECTED
    assert_no_key(key, repr(result), result.to_dict(), result.message, result.hint)

    mock.routes.clear()
    route(mock, httpx.Response(302, headers={"Location": f"https://evil.example.net/?k={key}"}))
    result = validate_key(key, BASE)
    assert_no_key(key, repr(result), result.to_dict())
    assert result.location is not None and "********" in result.location


LONG_KEY = jwt_of_length(289)


@pytest.mark.parametrize("status", [500, 503, 418])
@pytest.mark.parametrize(
    "echo",
    [
        f"invalid signature for {LONG_KEY}",
        f"{LONG_KEY} {LONG_KEY} {LONG_KEY}",
        LONG_KEY[:150],
        f"bad key ...{LONG_KEY[100:250]}...",
        f"key {LONG_KEY[:-20]}",
    ],
    ids=["whole key", "three times", "its head", "a middle piece", "cut short"],
)
def test_a_key_echoed_by_the_server_is_hidden_before_any_truncation(
    mock: respx.MockRouter, clock: FakeClock, status: int, echo: str
) -> None:
    route(mock, httpx.Response(status, json={"message": echo}))
    result = validate_key(LONG_KEY, BASE)
    assert not result.ok
    for text in (repr(result), result.to_dict(), result.message, result.hint):
        assert leaked_piece(LONG_KEY, text) is None, text
    assert f"HTTP {status}" in result.message  # what the server said is still reported


def test_a_key_shaped_text_from_the_server_is_hidden_too(mock: respx.MockRouter, key: str) -> None:
    other = make_jwt(sub="someone-else")
    route(mock, httpx.Response(500, json={"message": f"expected {other}"}))
    result = validate_key(key, BASE)
    assert leaked_piece(other, result.message) is None
    assert "[API key hidden]" in result.message


def test_a_piece_of_the_key_in_a_redirect_is_hidden(mock: respx.MockRouter) -> None:
    route(
        mock, httpx.Response(302, headers={"Location": f"https://x.example.net/?k={LONG_KEY[:90]}"})
    )
    result = validate_key(LONG_KEY, BASE)
    for text in (repr(result), result.to_dict()):
        assert leaked_piece(LONG_KEY, text) is None


def test_no_log_line_contains_the_key(
    mock: respx.MockRouter, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    route(mock, httpx.Response(200, json=WORKFLOWS))
    validate_key(key, BASE)
    mock.routes.clear()
    route(mock, httpx.Response(401, json={"message": "Unauthorized"}))
    validate_key(key, BASE)
    assert caplog.records  # httpx did log the requests
    assert key not in caplog.text


def test_a_probe_and_a_result_never_show_the_key(key: str) -> None:
    assert key not in repr(Probe(key, BASE))
    result = validate_key(make_jwt(exp_days=-1), BASE)
    assert "eyJ" not in repr(result)


# --- several checks ---------------------------------------------------------------------


def test_validate_many_keeps_order_and_bounds_the_checks_run_at_once(key: str) -> None:
    running = 0
    peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        for _ in range(5):
            await asyncio.sleep(0)
        running -= 1
        if "bad" in request.url.host:
            return httpx.Response(401, json={"message": "Unauthorized"})
        return httpx.Response(200, json=WORKFLOWS)

    probes = [Probe(key, f"https://n8n{i}.example.com") for i in range(MAX_CONCURRENCY + 3)]
    probes.append(Probe(key, "https://bad.example.com"))
    with respx.mock() as router:
        router.get(url__regex=r"/api/v1/workflows\?limit=1$").mock(side_effect=slow)
        done: list[int] = []
        results = validate_many(probes, on_done=lambda i, r: done.append(i))
        assert peak == MAX_CONCURRENCY  # many servers: the overall bound
        assert [r.server_url for r in results] == [p.server_url for p in probes]
        assert [r.ok for r in results] == [True] * (MAX_CONCURRENCY + 3) + [False]
        assert sorted(done) == list(range(len(probes)))
        peak = 0
        # One server (written two ways): never more than MAX_PER_SERVER at once.
        one_server = [
            Probe(key, "https://n8n0.example.com" + ("/" if i % 2 else ""))
            for i in range(MAX_CONCURRENCY + 3)
        ]
        assert all(r.ok for r in validate_many(one_server))
        assert peak == MAX_PER_SERVER < MAX_CONCURRENCY


def test_the_work_meanwhile_runs_once_while_every_running_check_waits_for_its_answer(
    key: str,
) -> None:
    """``apikey test --all`` imports the database layer while its checks wait: a server
    holding its answers until that work is done answers every check."""
    import threading

    from tests.fake_n8n import fake_server, n8n_like

    done = threading.Event()
    answered_after: list[bool] = []

    def held(seen: Any) -> Any:
        answered_after.append(done.wait(10))  # False: the work never came while it waited
        return n8n_like({key})(seen)

    calls: list[str] = []

    def meanwhile() -> None:
        calls.append("called")
        done.set()

    with fake_server(held) as server:
        probes = [Probe(key, server.url) for _ in range(MAX_PER_SERVER + 4)]
        results = validate_many(probes, meanwhile=meanwhile)
    assert calls == ["called"]
    assert answered_after == [True] * len(probes)
    assert all(result.ok for result in results)


def test_the_work_meanwhile_is_not_called_when_no_check_waits_and_its_error_is_dropped(
    key: str,
) -> None:
    from tests.fake_n8n import fake_server, n8n_like

    calls: list[str] = []
    expired = make_jwt(exp_days=-1)
    assert validate_many([Probe(expired, BASE)], meanwhile=lambda: calls.append("called"))
    assert calls == []  # the key failed its own checks: nothing waited for a server

    def failing() -> None:
        calls.append("called")
        raise ImportError("the caller meets it again when it does the work itself")

    with fake_server(n8n_like({key})) as server:
        results = validate_many([Probe(key, server.url)], meanwhile=failing)
    assert calls == ["called"]
    assert results[0].ok


def test_the_work_meanwhile_comes_when_the_only_other_check_failed_without_waiting(
    key: str,
) -> None:
    """A server that refuses connections beside one that answers slowly (common with
    ``--all``): once the refused check has ended, the other one is all that runs."""
    import threading

    from tests.fake_n8n import fake_server, n8n_like, refusing_url

    done = threading.Event()

    def held(seen: Any) -> Any:
        assert done.wait(10), "the work never came while the check waited"
        return n8n_like({key})(seen)

    with fake_server(held) as server:
        results = validate_many(
            [Probe(key, refusing_url()), Probe(key, server.url)], meanwhile=done.set
        )
    assert [result.ok for result in results] == [False, True]


def test_short_time_budgets_leave_the_work_meanwhile_to_the_caller(key: str) -> None:
    """The work holds the event loop: with a budget under MEANWHILE_MIN_BUDGET an answer
    read after it could come too late."""
    from tests.fake_n8n import fake_server, n8n_like

    calls: list[str] = []
    with fake_server(n8n_like({key})) as server:
        budget = validator.MEANWHILE_MIN_BUDGET / 2
        results = validate_many(
            [Probe(key, server.url)], timeout=budget, meanwhile=lambda: calls.append("called")
        )
    assert results[0].ok
    assert calls == []


def test_one_unusable_server_url_fails_only_its_own_check(key: str) -> None:
    """A stored URL that cannot be normalised (0.9 data) does not stop the other checks."""
    probes = [
        Probe(key, "https://n8n.example.com"),
        Probe(key, "n8n.example.com:5678", server_name="Legacy"),
        Probe(key, "https://exa<mple.com"),
    ]
    with respx.mock() as router:
        good = router.get("https://n8n.example.com/api/v1/workflows?limit=1").respond(
            200, json=WORKFLOWS
        )
        results = validate_many(probes)
    assert good.call_count == 1
    assert [r.exit_status for r in results] == [ExitStatus.SUCCESS, 1, 1]
    legacy, anonymous = results[1], results[2]
    assert legacy.outcome is Outcome.INVALID_SERVER_URL and legacy.attempts == 0
    assert legacy.message.startswith("The URL of server 'Legacy' cannot be used: ")
    assert "http:// or https://" in legacy.message
    assert legacy.hint is not None
    assert "n8n-deploy server update 'Legacy' --url https://" in legacy.hint
    assert legacy.server_url == "n8n.example.com:5678"
    assert [(c.name, c.status) for c in legacy.checks] == [
        ("format", "passed"),
        ("reachable", "failed"),
        ("authentication", "skipped"),
        ("expiry", "passed"),
    ]
    assert anonymous.outcome is Outcome.INVALID_SERVER_URL
    assert anonymous.message.startswith("The server URL cannot be used: not a valid host name")
    assert most_serious(r.exit_status for r in results) == ExitStatus.FAILED


def test_an_unusable_server_url_is_shown_without_control_characters_or_keys(key: str) -> None:
    (bell, keyed) = validate_many(
        [
            Probe(key, "https://n8n\x1b[2J.example.com\x07", server_name="Bell"),
            Probe(key, f"https://n8n.example.com/?k={key}", server_name="Keyed"),
        ]
    )
    assert bell.server_url == "https://n8n?[2J.example.com?"
    assert bell.outcome is Outcome.INVALID_SERVER_URL
    assert_no_key(key, repr(keyed), keyed.to_dict())
    assert keyed.outcome is Outcome.INVALID_SERVER_URL


def test_a_local_failure_comes_before_an_unusable_server_url() -> None:
    (result,) = validate_many([Probe(make_jwt(exp_days=-1), "not a url", server_name="x")])
    assert result.outcome is Outcome.EXPIRED


def test_most_serious_follows_the_documented_order() -> None:
    s = ExitStatus
    assert most_serious([]) == s.SUCCESS
    assert most_serious([s.SUCCESS, s.SUCCESS]) == s.SUCCESS
    assert most_serious([s.UNREACHABLE, s.KEY_REJECTED, s.UNEXPECTED_RESPONSE]) == s.KEY_REJECTED
    assert most_serious([s.UNREACHABLE, s.KEY_EXPIRED]) == s.KEY_EXPIRED
    assert most_serious([s.UNREACHABLE, s.INVALID_FORMAT, s.KEY_EXPIRED]) == s.KEY_EXPIRED
    assert most_serious([s.UNREACHABLE, s.UNEXPECTED_RESPONSE]) == s.UNEXPECTED_RESPONSE
    assert most_serious([s.FAILED, s.UNREACHABLE, s.SUCCESS]) == s.UNREACHABLE
    assert most_serious([s.SUCCESS, s.FAILED]) == s.FAILED


# --- TLS settings -----------------------------------------------------------------------


def test_ssl_cert_file_is_the_trusted_bundle() -> None:
    trust = Trust(ca_file=str(CA_FILE))
    subjects = [dict(x[0] for x in c["subject"]) for c in tls_context(True, trust).get_ca_certs()]
    assert subjects == [{"commonName": "n8n-deploy test CA"}]


def test_without_ssl_cert_file_certifi_is_trusted() -> None:
    assert len(tls_context(True).get_ca_certs()) > 50


def test_an_unreadable_ssl_cert_file_is_a_clear_usage_error(tmp_path: Path, key: str) -> None:
    with pytest.raises(UsageError, match="SSL_CERT_FILE"):
        validate_key(key, BASE, trust=Trust(ca_file=str(tmp_path / "missing.pem")))


def test_skipping_verification_checks_neither_certificate_nor_host() -> None:
    context = tls_context(False)
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname


def test_an_unverified_context_loads_no_ca_but_keeps_the_default_protocols() -> None:
    """What plain http:// checks and --insecure get: nothing to verify with, so no CA
    bundle parsed (it cost every such check about 50 ms), and otherwise the protocol
    settings of Python's default context."""
    context, default = tls_context(False), ssl.create_default_context()
    assert context.cert_store_stats()["x509"] == 0 and context.get_ca_certs() == []
    assert context.options == default.options
    assert context.minimum_version == default.minimum_version
    assert context.maximum_version == default.maximum_version
