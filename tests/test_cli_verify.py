"""``apikey test`` and ``apikey rotate`` through the real CLI (servers mocked with respx):
which server is used, the reference's output, --json, last_used_at, --all aggregation,
every rotation path, and the key never printed."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from n8n_deploy.base.status import ExitStatus
from n8n_deploy.store.engine import Database
from n8n_deploy.store.repositories import ApiKeyRepository
from tests.helpers import (
    HEAVY,
    Run,
    add_key,
    add_server,
    imported_modules,
    jwt_of_length,
    key_names,
    leaked_piece,
    make_jwt,
    make_legacy_key,
    stored,
)

# Every test here runs on SQLite, PostgreSQL and MariaDB (tests/conftest.py), except those
# marked sqlite_only: they are about the SQLite file itself.
pytestmark = pytest.mark.usefixtures("engine", "no_waiting")

Cli = Callable[..., Run]

PROD = "https://n8n.example.com"
STAGING = "https://staging.example.com/n8n"
WORKFLOWS = {"data": [], "nextCursor": None}
EMOJI = ("🧪", "✅", "❌", "⚠️", "🔑")


def probe(url: str) -> str:
    return f"{url}/api/v1/workflows?limit=1"


def n8n(valid: set[str]) -> Callable[[httpx.Request], httpx.Response]:
    """Answers as n8n does: 200 for a key it knows, 401 otherwise."""

    def respond(request: httpx.Request) -> httpx.Response:
        if request.headers.get("X-N8N-API-KEY") in valid:
            return httpx.Response(200, json=WORKFLOWS)
        return httpx.Response(401, json={"message": "Unauthorized"})

    return respond


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
def key() -> str:
    return make_jwt(exp_days=30)


def expires(secret: str) -> str:
    from n8n_deploy.base.keyformat import parse_key

    info = parse_key(secret)
    assert info.expires_at is not None
    return info.expires_at.strftime("%Y-%m-%d")


# --- the reference's examples -----------------------------------------------------------


def test_the_reference_example_output(
    cli: Cli, database: Database, mock: respx.MockRouter, key: str
) -> None:
    add_server(database, "Production", "http://n8n.example.com:5678")
    add_key(database, "production_key", key, ["Production"])
    r = mock.get(probe("http://n8n.example.com:5678")).respond(200, json=WORKFLOWS)
    result = cli("apikey", "test", "production_key")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "🧪 Testing API key: production_key\n"
        "\n"
        "✓ Key format valid\n"
        "✓ Server reachable (http://n8n.example.com:5678)\n"
        "✓ Authentication successful\n"
        f"✓ Token expires: {expires(key)}\n"
        "\n"
        "✅ API key is valid and working\n"
    )
    assert r.call_count == 1
    # plain http to a host that is not this machine: said once, on stderr
    assert "unencrypted" in result.stderr and "unencrypted" not in result.stdout


def test_the_reference_example_with_a_server_url(
    cli: Cli, database: Database, mock: respx.MockRouter, key: str
) -> None:
    add_key(database, "staging_key", key)
    r = mock.get(probe("http://n8n.example.com:5678")).respond(200, json=WORKFLOWS)
    result = cli("apikey", "test", "staging_key", "--server-url", "http://n8n.example.com:5678")
    assert result.exit_code == 0, result.output
    assert "✓ Server reachable (http://n8n.example.com:5678)" in result.stdout
    assert r.call_count == 1


def test_no_emoji_output_is_plain(
    cli: Cli, database: Database, mock: respx.MockRouter, key: str
) -> None:
    add_server(database, "Production", PROD)
    add_key(database, "prod", key, ["Production"])
    mock.get(probe(PROD)).respond(401, json={"message": "Unauthorized"})
    result = cli("apikey", "test", "prod", "--no-emoji")
    assert result.exit_code == ExitStatus.KEY_REJECTED
    assert not any(e in result.output for e in (*EMOJI, "✓", "✗"))
    lines = result.stdout.splitlines()
    assert lines[0] == "Testing API key: prod"
    assert "PASS Key format valid" in lines
    assert f"PASS Server reachable ({PROD})" in lines
    assert any(line.startswith("FAIL Authentication failed: the server rejected") for line in lines)
    assert lines[-1].startswith("API key test failed: The server rejected the key (HTTP 401)")


# --- which server -----------------------------------------------------------------------


@pytest.fixture
def three_servers(database: Database, mock: respx.MockRouter, key: str) -> dict[str, respx.Route]:
    add_server(database, "Production", PROD)
    add_server(database, "Staging", STAGING)
    add_key(database, "prod", key, ["Production", "Staging"])
    return {
        url: mock.get(probe(url)).mock(side_effect=n8n({key}))
        for url in (PROD, STAGING, "https://other.example.com", "https://env.example.com")
    }


def test_every_linked_server_is_checked(cli: Cli, three_servers: dict[str, respx.Route]) -> None:
    result = cli("apikey", "test", "prod")
    assert result.exit_code == 0, result.output
    assert three_servers[PROD].call_count == 1
    assert three_servers[STAGING].call_count == 1
    assert str(three_servers[STAGING].calls.last.request.url) == probe(STAGING)
    assert "API key is valid and working on all 2 servers" in result.stdout


def test_server_url_beats_everything(
    cli: Cli, three_servers: dict[str, respx.Route], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("N8N_SERVER_URL", "https://env.example.com")
    result = cli("apikey", "test", "prod", "--server-url", "https://other.example.com/")
    assert result.exit_code == 0, result.output
    assert [u for u, r in three_servers.items() if r.called] == ["https://other.example.com"]


def test_server_beats_the_linked_servers(cli: Cli, three_servers: dict[str, respx.Route]) -> None:
    result = cli("apikey", "test", "prod", "--server", "Staging")
    assert result.exit_code == 0, result.output
    assert [u for u, r in three_servers.items() if r.called] == [STAGING]


def test_n8n_server_url_is_used_only_for_a_key_without_servers(
    cli: Cli,
    database: Database,
    three_servers: dict[str, respx.Route],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("N8N_SERVER_URL", "https://env.example.com")
    assert cli("apikey", "test", "prod").exit_code == 0
    assert not three_servers["https://env.example.com"].called  # linked servers win
    lonely = make_jwt(sub="lonely")
    add_key(database, "lonely", lonely)
    three_servers["https://env.example.com"].mock(side_effect=n8n({lonely}))
    result = cli("apikey", "test", "lonely")
    assert result.exit_code == 0, result.output
    assert three_servers["https://env.example.com"].call_count == 1


def test_a_bad_n8n_server_url_names_the_variable(
    cli: Cli, database: Database, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    add_key(database, "lonely", key)
    monkeypatch.setenv("N8N_SERVER_URL", "n8n.example.com")
    result = cli("apikey", "test", "lonely")
    assert result.exit_code == ExitStatus.USAGE
    assert result.stderr.startswith("Error: N8N_SERVER_URL: ")
    assert "http:// or https://" in result.stderr


def test_no_server_at_all_is_an_error_never_a_pass(
    cli: Cli, database: Database, mock: respx.MockRouter, key: str
) -> None:
    add_key(database, "lonely", key)
    result = cli("apikey", "test", "lonely")
    assert result.exit_code == ExitStatus.FAILED
    assert result.stderr.startswith("Error: No server to test API key 'lonely' against")
    assert "--server-url" in result.stderr and "N8N_SERVER_URL" in result.stderr
    assert result.stdout == ""
    assert not mock.calls
    assert stored(database, "lonely").last_used_at is None  # type: ignore[union-attr]


def test_server_and_server_url_together_are_a_usage_error(
    cli: Cli, database: Database, key: str
) -> None:
    add_key(database, "prod", key)
    result = cli("apikey", "test", "prod", "--server", "x", "--server-url", PROD)
    assert result.exit_code == ExitStatus.USAGE
    assert "either --server or --server-url" in result.stderr


def test_a_server_record_that_skips_tls_verification_is_honoured(
    cli: Cli, database: Database, mock: respx.MockRouter, key: str
) -> None:
    add_server(database, "SelfSigned", PROD, skip_ssl_verify=True)
    add_key(database, "prod", key, ["SelfSigned"])
    mock.get(probe(PROD)).respond(200, json=WORKFLOWS)
    result = cli("apikey", "test", "prod")
    assert result.exit_code == 0
    assert "verification is off" in result.stderr


def test_a_bad_server_url_is_a_usage_error(cli: Cli, database: Database, key: str) -> None:
    add_key(database, "prod", key)
    result = cli("apikey", "test", "prod", "--server-url", "ftp://n8n.example.com")
    assert result.exit_code == ExitStatus.USAGE
    assert result.stderr.startswith("Error: Not an http(s) URL")


def test_a_stored_server_url_that_cannot_be_used_fails_only_that_server(
    cli: Cli, database: Database, mock: respx.MockRouter, key: str
) -> None:
    add_server(database, "Production", PROD)
    add_server(database, "Legacy", "n8n.example.com:5678")  # as 0.9 data can leave it
    add_key(database, "prod", key, ["Legacy", "Production"])
    route = mock.get(probe(PROD)).mock(side_effect=n8n({key}))
    result = cli("apikey", "test", "prod")
    assert result.exit_code == ExitStatus.FAILED, result.output
    assert route.call_count == 1  # the other server was still tested
    assert "✗ Server URL cannot be used ('Legacy'): " in result.stdout
    assert "n8n-deploy server update 'Legacy' --url https://" in result.stdout
    assert "failed on 1 of 2 servers: 'Legacy' (n8n.example.com:5678)" in result.stdout
    assert stored(database, "prod").last_used_at is None  # type: ignore[union-attr]

    result = cli("apikey", "test", "prod", "--json")
    assert result.exit_code == ExitStatus.FAILED
    data = json.loads(result.stdout)
    assert [(d["server"], d["outcome"], d["exit_status"]) for d in data] == [
        ("Legacy", "invalid_server_url", 1),
        ("Production", "valid", 0),
    ]
    assert result.stderr.startswith("Error: The URL of server 'Legacy' cannot be used: ")

    result = cli("apikey", "test", "prod", "--server", "Legacy")
    assert result.exit_code == ExitStatus.FAILED
    assert "API key test failed: The URL of server 'Legacy' cannot be used" in result.stdout


def test_a_server_stored_without_a_url_yet_is_named_so_in_the_verdict(
    cli: Cli, database: Database, mock: respx.MockRouter, key: str
) -> None:
    """'apikey add --server NEW' stores a server with no URL: the verdict says so, not
    '()' (a new-user review)."""
    add_server(database, "Production", PROD)
    result = cli("apikey", "add", "-", "--name", "k", "--server", "Nowhere", input=key)
    assert result.exit_code == 0, result.output
    assert cli("server", "link", "k", "Production").exit_code == 0
    mock.get(probe(PROD)).mock(side_effect=n8n({key}))
    result = cli("apikey", "test", "k")
    assert result.exit_code == ExitStatus.FAILED, result.output
    assert "failed on 1 of 2 servers: 'Nowhere' (no URL yet)" in result.stdout
    assert "()" not in result.stdout


def test_all_still_tests_everything_around_an_unusable_server_url(
    cli: Cli, database: Database, mock: respx.MockRouter, key: str
) -> None:
    add_server(database, "Production", PROD)
    add_server(database, "Legacy", "n8n.example.com:5678")
    add_key(database, "old", make_jwt(sub="old"), ["Legacy"])
    add_key(database, "prod", key, ["Production"])
    add_key(database, "revoked", make_jwt(sub="revoked"), ["Production"])
    mock.get(probe(PROD)).mock(side_effect=n8n({key}))
    result = cli("apikey", "test", "--all", "--json")
    assert result.exit_code == ExitStatus.KEY_REJECTED  # 4 outranks the 1 of Legacy
    assert [(d["key"], d["server"], d["exit_status"]) for d in json.loads(result.stdout)] == [
        ("old", "Legacy", 1),
        ("prod", "Production", 0),
        ("revoked", "Production", 4),
    ]
    assert stored(database, "prod").last_used_at is not None  # type: ignore[union-attr]
    result = cli("apikey", "test", "--all", "--server", "Legacy", "--no-emoji")
    assert result.exit_code == ExitStatus.FAILED
    assert "| invalid_server_url " in result.stdout
    assert result.stdout.splitlines()[-1] == "1 of 1 checks failed; exit status 1 (not tested)"


# --- refusals before anything is contacted ----------------------------------------------


def test_an_inactive_key_is_refused_without_contacting_anything(
    cli: Cli, database: Database, mock: respx.MockRouter, key: str
) -> None:
    add_server(database, "Production", PROD)
    add_key(database, "old", key, ["Production"], active=False)
    route = mock.get(probe(PROD)).respond(200, json=WORKFLOWS)
    for extra in ([], ["--server-url", PROD], ["--json"]):
        result = cli("apikey", "test", "old", *extra)
        assert result.exit_code == ExitStatus.KEY_INACTIVE
        assert "API key 'old' is inactive" in result.stderr
        assert "n8n-deploy apikey activate 'old'" in result.stderr
    assert route.call_count == 0
    assert stored(database, "old").last_used_at is None  # type: ignore[union-attr]


def test_an_unknown_name_fails_with_suggestions(
    cli: Cli, database: Database, mock: respx.MockRouter, key: str
) -> None:
    add_key(database, "production_key", key)
    result = cli("apikey", "test", "producton_key", "--server-url", PROD)
    assert result.exit_code == ExitStatus.FAILED
    assert "API key 'producton_key' not found" in result.stderr
    assert "production_key" in result.stderr
    assert not mock.calls


def test_an_expired_key_fails_locally_with_status_7(
    cli: Cli, database: Database, mock: respx.MockRouter
) -> None:
    old = make_jwt(exp_days=-3)
    add_server(database, "Production", PROD)
    add_key(database, "old", old, ["Production"])  # stored while it was valid
    result = cli("apikey", "test", "old")
    assert result.exit_code == ExitStatus.KEY_EXPIRED
    assert f"✗ Token expired on {expires(old)}" in result.stdout
    assert f"- Server not contacted ({PROD})" in result.stdout
    assert "apikey rotate" in result.stdout  # the hint says how to fix it
    assert not mock.calls


def test_min_days_fails_a_key_expiring_soon(
    cli: Cli, database: Database, mock: respx.MockRouter
) -> None:
    soon = make_jwt(exp_days=3)
    add_server(database, "Production", PROD)
    add_key(database, "soon", soon, ["Production"])
    mock.get(probe(PROD)).mock(side_effect=n8n({soon}))
    result = cli("apikey", "test", "soon", "--min-days", "7", "--json")
    assert result.exit_code == ExitStatus.KEY_EXPIRED
    assert json.loads(result.stdout)["outcome"] == "expiring_soon"
    assert not mock.calls
    assert cli("apikey", "test", "soon", "--min-days", "2").exit_code == 0


def test_a_stored_key_of_the_wrong_format_fails_with_status_6(
    cli: Cli, database: Database, mock: respx.MockRouter
) -> None:
    add_server(database, "Production", PROD)
    add_key(database, "junk", "not-a-key-at-all", ["Production"])
    result = cli("apikey", "test", "junk")
    assert result.exit_code == ExitStatus.INVALID_FORMAT
    assert "✗ Invalid JWT token format" in result.stdout
    assert not mock.calls


def test_local_checks_come_before_the_choice_of_server(
    cli: Cli, database: Database, mock: respx.MockRouter
) -> None:
    """An expired, soon-expiring or malformed key fails as such even with no server."""
    old = make_jwt(exp_days=-3, sub="old")
    add_key(database, "old", old)  # linked to no server, and no N8N_SERVER_URL
    add_key(database, "soon", make_jwt(exp_days=3, sub="soon"))
    result = cli("apikey", "test", "old")
    assert result.exit_code == ExitStatus.KEY_EXPIRED, result.output
    assert f"✗ Token expired on {expires(old)}" in result.stdout
    assert "- Server not contacted" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("❌ API key test failed: The key expired")

    data = json.loads(cli("apikey", "test", "old", "--json").stdout)
    assert set(data) == RESULT_FIELDS
    assert (data["outcome"], data["exit_status"], data["server"], data["server_url"]) == (
        "expired",
        7,
        None,
        None,
    )
    assert cli("apikey", "test", "soon", "--min-days", "7").exit_code == ExitStatus.KEY_EXPIRED
    assert cli("apikey", "test", "soon").exit_code == ExitStatus.FAILED  # no server: not tested

    result = cli("apikey", "test", "-", input="garbage\n")
    assert result.exit_code == ExitStatus.INVALID_FORMAT
    assert "✗ Invalid JWT token format" in result.stdout

    result = cli("apikey", "test", "--all", "--json")
    assert result.exit_code == ExitStatus.KEY_EXPIRED
    assert [(d["key"], d["outcome"], d["exit_status"]) for d in json.loads(result.stdout)] == [
        ("old", "expired", 7),
        ("soon", "not_tested", 1),
    ]
    # In a CI log, each failure's line names its key.
    errors = result.stderr.splitlines()
    assert len(errors) == 2
    assert errors[0].startswith("Error: API key 'old': The key expired")
    assert errors[1].startswith("Error: API key 'soon': ")
    result = cli("apikey", "test", "--all", "--min-days", "7", "--no-emoji")
    assert result.exit_code == ExitStatus.KEY_EXPIRED
    assert "| expiring_soon " in result.stdout
    assert not mock.calls


# --- outcomes through the CLI -----------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "status", "text"),
    [
        (httpx.Response(401, json={"message": "Unauthorized"}), 4, "rejected the key (HTTP 401)"),
        (httpx.Response(403, json={"message": "Forbidden"}), 4, "workflow:list scope"),
        (httpx.Response(404, text="Not Found"), 8, "No n8n public API"),
        (httpx.Response(500, json={"message": "boom"}), 8, "HTTP 500"),
        (httpx.Response(200, text="<!DOCTYPE html><html></html>"), 8, "web page (HTML)"),
        (httpx.Response(301, headers={"Location": "https://n8n.example.com/"}), 8, "Redirected"),
        (httpx.ConnectTimeout("timed out"), 5, "Timed out connecting"),
    ],
    ids=["401", "403", "404", "500", "html", "redirect", "timeout"],
)
def test_each_outcome_gives_its_exit_status_and_names_the_cause(
    cli: Cli,
    database: Database,
    mock: respx.MockRouter,
    key: str,
    answer: httpx.Response | Exception,
    status: int,
    text: str,
) -> None:
    add_server(database, "Production", PROD)
    add_key(database, "prod", key, ["Production"])
    route = mock.get(probe(PROD))
    if isinstance(answer, Exception):
        route.mock(side_effect=answer)
    else:
        route.mock(return_value=answer)
    result = cli("apikey", "test", "prod")
    assert result.exit_code == status
    assert text in result.stdout
    assert "  Hint: " in result.stdout
    assert result.stdout.splitlines()[-1].startswith("❌ API key test failed: ")
    assert stored(database, "prod").last_used_at is None  # type: ignore[union-attr]


# --- last_used_at -----------------------------------------------------------------------


def test_last_used_at_is_set_on_success_only(
    cli: Cli, database: Database, mock: respx.MockRouter, key: str
) -> None:
    add_server(database, "Production", PROD)
    add_key(database, "prod", key, ["Production"])
    route = mock.get(probe(PROD))
    route.respond(401, json={"message": "Unauthorized"})
    assert cli("apikey", "test", "prod").exit_code == ExitStatus.KEY_REJECTED
    assert stored(database, "prod").last_used_at is None  # type: ignore[union-attr]
    route.respond(200, json=WORKFLOWS)
    before = datetime.now(timezone.utc)
    assert cli("apikey", "test", "prod").exit_code == 0
    used = stored(database, "prod").last_used_at  # type: ignore[union-attr]
    assert used is not None and used >= before - timedelta(seconds=1)


def test_one_failing_server_of_two_fails_the_key_and_records_nothing(
    cli: Cli, database: Database, mock: respx.MockRouter, key: str
) -> None:
    add_server(database, "Production", PROD)
    add_server(database, "Staging", STAGING)
    add_key(database, "prod", key, ["Production", "Staging"])
    mock.get(probe(PROD)).respond(200, json=WORKFLOWS)
    mock.get(probe(STAGING)).respond(404)
    result = cli("apikey", "test", "prod")
    assert result.exit_code == ExitStatus.UNEXPECTED_RESPONSE
    assert f"failed on 1 of 2 servers: 'Staging' ({STAGING})" in result.stdout
    assert stored(database, "prod").last_used_at is None  # type: ignore[union-attr]


# --- --json -----------------------------------------------------------------------------

RESULT_FIELDS = {
    "key",
    "server",
    "source",
    "server_url",
    "valid",
    "outcome",
    "exit_status",
    "message",
    "hint",
    "http_status",
    "location",
    "cause",
    "key_kind",
    "expires_at",
    "elapsed_seconds",
    "attempts",
    "checks",
    "warnings",
    "scopes",
    "scope_source",
    "missing_scopes",
    "unknown_scopes",
}


def test_json_is_one_object_on_stdout_and_nothing_else(
    cli: Cli, database: Database, mock: respx.MockRouter, key: str
) -> None:
    add_server(database, "Production", PROD)
    add_key(database, "prod", key, ["Production"])
    mock.get(probe(PROD)).respond(200, json=WORKFLOWS)
    result = cli("apikey", "test", "prod", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert set(data) == RESULT_FIELDS
    assert data["key"] == "prod" and data["server"] == "Production"
    assert data["source"] == "linked"
    assert data["server_url"] == PROD
    assert data["valid"] is True and data["outcome"] == "valid" and data["exit_status"] == 0
    assert data["http_status"] == 200 and data["attempts"] == 1
    assert data["key_kind"] == "jwt"
    assert data["expires_at"].startswith(expires(key)) and data["expires_at"].endswith("Z")
    assert [c["name"] for c in data["checks"]] == [
        "format",
        "reachable",
        "authentication",
        "expiry",
    ]
    assert all(c["status"] == "passed" for c in data["checks"])
    assert result.stderr == ""


def test_json_for_several_servers_is_an_array_and_failures_go_to_stderr(
    cli: Cli, database: Database, mock: respx.MockRouter, key: str
) -> None:
    add_server(database, "Production", PROD)
    add_server(database, "Staging", STAGING)
    add_key(database, "prod", key, ["Production", "Staging"])
    mock.get(probe(PROD)).respond(200, json=WORKFLOWS)
    mock.get(probe(STAGING)).respond(403, json={"message": "Forbidden"})
    result = cli("apikey", "test", "prod", "--json")
    assert result.exit_code == ExitStatus.KEY_REJECTED
    data = json.loads(result.stdout)
    assert [(d["server"], d["outcome"], d["exit_status"]) for d in data] == [
        ("Production", "valid", 0),
        ("Staging", "forbidden", 4),
    ]
    assert result.stderr.startswith("Error: The key lacks the workflow:list scope")


@pytest.mark.parametrize(
    ("args", "stdin", "outcome", "status", "message"),
    [
        (("producton_key",), None, "not_found", 1, "API key 'producton_key' not found"),
        (("off",), None, "inactive", 9, "API key 'off' is inactive; it was not tested"),
        (("lonely",), None, "not_tested", 1, "No server to test API key 'lonely' against"),
        (("-",), "KEY", "not_tested", 1, "No server to test the key against"),
        (("lonely", "--server", "Nope"), None, "not_found", 1, "Server 'Nope' not found"),
    ],
    ids=["unknown key", "inactive key", "no server", "stdin, no server", "unknown server"],
)
def test_json_describes_a_check_that_could_not_run(
    cli: Cli,
    database: Database,
    mock: respx.MockRouter,
    key: str,
    args: tuple[str, ...],
    stdin: str | None,
    outcome: str,
    status: int,
    message: str,
) -> None:
    """A CI job parsing --json always gets one object saying what happened."""
    add_server(database, "Production", PROD)
    add_key(database, "production_key", make_jwt(sub="p"), ["Production"])
    add_key(database, "off", make_jwt(sub="off"), ["Production"], active=False)
    add_key(database, "lonely", key)
    result = cli("apikey", "test", *args, "--json", input=key if stdin else None)
    assert result.exit_code == status, result.output
    data = json.loads(result.stdout)
    assert set(data) == RESULT_FIELDS
    assert (data["outcome"], data["exit_status"], data["valid"]) == (outcome, status, False)
    assert data["message"].startswith(message)
    assert data["key"] == (None if args[0] == "-" else args[0])
    assert data["server_url"] is None and data["attempts"] == 0 and data["checks"] == []
    assert result.stderr.startswith(f"Error: {message}")
    assert len(result.stderr.splitlines()) == 1
    assert not mock.calls


def test_json_for_all_with_no_active_key_is_an_array_saying_so(
    cli: Cli, database: Database
) -> None:
    add_key(database, "off", make_jwt(), active=False)
    result = cli("apikey", "test", "--all", "--json")
    assert result.exit_code == ExitStatus.FAILED
    (data,) = json.loads(result.stdout)
    assert set(data) == RESULT_FIELDS
    assert (data["key"], data["outcome"], data["exit_status"]) == (None, "not_tested", 1)
    assert data["message"] == "There are no active API keys to test"
    assert result.stderr.startswith("Error: There are no active API keys to test")
    assert len(result.stderr.splitlines()) == 1


# --- a key from stdin -------------------------------------------------------------------


def test_a_key_from_stdin_is_tested_and_nothing_is_stored(
    cli: Cli, data_dir: Path, mock: respx.MockRouter, key: str
) -> None:
    route = mock.get(probe(PROD)).mock(side_effect=n8n({key}))
    result = cli("apikey", "test", "-", "--server-url", PROD, "--json", input=f"{key}\n")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["key"] is None and data["valid"] is True
    assert route.calls.last.request.headers["X-N8N-API-KEY"] == key
    assert not data_dir.exists()  # not even a database was created


def test_a_key_from_stdin_against_a_stored_server(
    cli: Cli, database: Database, mock: respx.MockRouter, key: str
) -> None:
    add_server(database, "Production", PROD)
    mock.get(probe(PROD)).mock(side_effect=n8n({key}))
    result = cli("apikey", "test", "-", "--server", "Production", input=key)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("🧪 Testing API key: from stdin\n")
    assert key_names(database) == []


def test_a_key_from_stdin_uses_n8n_server_url(
    cli: Cli, mock: respx.MockRouter, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("N8N_SERVER_URL", PROD)
    mock.get(probe(PROD)).respond(401, json={"message": "Unauthorized"})
    assert cli("apikey", "test", "-", input=key).exit_code == ExitStatus.KEY_REJECTED


def test_an_empty_stdin_is_a_usage_error(cli: Cli, mock: respx.MockRouter) -> None:
    result = cli("apikey", "test", "-", "--server-url", PROD, input="  \n")
    assert result.exit_code == ExitStatus.USAGE
    assert "is empty" in result.stderr
    assert not mock.calls


def test_a_key_from_stdin_without_any_server_is_an_error(cli: Cli, key: str) -> None:
    result = cli("apikey", "test", "-", input=key)
    assert result.exit_code == ExitStatus.FAILED
    assert "No server to test the key against" in result.stderr


def test_no_name_and_no_all_is_a_usage_error(cli: Cli) -> None:
    result = cli("apikey", "test")
    assert result.exit_code == ExitStatus.USAGE
    assert "--all" in result.stderr


# --- --all ------------------------------------------------------------------------------


@pytest.fixture
def fleet(database: Database) -> dict[str, str]:
    """Production, Staging and Down servers; keys on them."""
    add_server(database, "Production", PROD)
    add_server(database, "Staging", STAGING)
    add_server(database, "Down", "https://down.example.com")
    secrets = {name: make_jwt(exp_days=60, sub=name) for name in ("a", "b", "c", "d")}
    add_key(database, "a", secrets["a"], ["Production"])
    add_key(database, "b", secrets["b"], ["Production", "Staging"])
    add_key(database, "c", secrets["c"], ["Staging"])
    add_key(database, "d", secrets["d"], ["Production"], active=False)  # never tested
    return secrets


def answer(mock: respx.MockRouter, url: str, response: httpx.Response | Exception) -> None:
    route = mock.get(probe(url))
    if isinstance(response, Exception):
        route.mock(side_effect=response)
    else:
        route.mock(return_value=response)


def test_all_passes_only_when_every_check_passes(
    cli: Cli, database: Database, mock: respx.MockRouter, fleet: dict[str, str]
) -> None:
    answer(mock, PROD, httpx.Response(200, json=WORKFLOWS))
    answer(mock, STAGING, httpx.Response(200, json=WORKFLOWS))
    result = cli("apikey", "test", "--all", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(d["key"], d["server"]) for d in data] == [
        ("a", "Production"),
        ("b", "Production"),
        ("b", "Staging"),
        ("c", "Staging"),
    ]
    assert all(set(d) == RESULT_FIELDS for d in data)
    for name in ("a", "b", "c"):
        assert stored(database, name).last_used_at is not None  # type: ignore[union-attr]
    assert stored(database, "d").last_used_at is None  # type: ignore[union-attr]


def test_all_exits_with_the_most_serious_failure(
    cli: Cli, database: Database, mock: respx.MockRouter, fleet: dict[str, str]
) -> None:
    answer(mock, PROD, httpx.Response(200, json=WORKFLOWS))
    answer(mock, STAGING, httpx.Response(503))  # unexpected response (8)
    add_key(database, "e", make_jwt(sub="e"), ["Down"])
    answer(mock, "https://down.example.com", httpx.ConnectTimeout("timed out"))  # 5
    result = cli("apikey", "test", "--all", "--json")
    assert result.exit_code == ExitStatus.UNEXPECTED_RESPONSE  # 8 outranks 5
    outcomes = {(d["key"], d["server"]): d["exit_status"] for d in json.loads(result.stdout)}
    assert outcomes == {
        ("a", "Production"): 0,
        ("b", "Production"): 0,
        ("b", "Staging"): 8,
        ("c", "Staging"): 8,
        ("e", "Down"): 5,
    }
    assert stored(database, "a").last_used_at is not None  # type: ignore[union-attr]
    assert stored(database, "b").last_used_at is None  # type: ignore[union-attr]

    mock.routes.clear()
    answer(mock, PROD, httpx.Response(401, json={"message": "Unauthorized"}))  # 4
    answer(mock, STAGING, httpx.Response(503))
    answer(mock, "https://down.example.com", httpx.ConnectTimeout("timed out"))
    assert cli("apikey", "test", "--all").exit_code == ExitStatus.KEY_REJECTED


def test_all_reports_a_key_without_server_as_not_tested(
    cli: Cli, database: Database, mock: respx.MockRouter, fleet: dict[str, str]
) -> None:
    answer(mock, PROD, httpx.Response(200, json=WORKFLOWS))
    answer(mock, STAGING, httpx.Response(200, json=WORKFLOWS))
    add_key(database, "lonely", make_jwt(sub="lonely"))
    result = cli("apikey", "test", "--all", "--json")
    assert result.exit_code == ExitStatus.FAILED
    lonely = [d for d in json.loads(result.stdout) if d["key"] == "lonely"]
    assert len(lonely) == 1
    assert lonely[0]["outcome"] == "not_tested" and lonely[0]["exit_status"] == 1
    assert set(lonely[0]) == RESULT_FIELDS
    assert "No server to test API key 'lonely'" in result.stderr


def test_all_with_server_tests_only_the_keys_linked_to_it(
    cli: Cli, database: Database, mock: respx.MockRouter, fleet: dict[str, str]
) -> None:
    answer(mock, STAGING, httpx.Response(200, json=WORKFLOWS))
    prod = mock.get(probe(PROD)).respond(200, json=WORKFLOWS)
    result = cli("apikey", "test", "--all", "--server", "Staging", "--json")
    assert result.exit_code == 0, result.output
    assert [(d["key"], d["server"]) for d in json.loads(result.stdout)] == [
        ("b", "Staging"),
        ("c", "Staging"),
    ]
    assert not prod.called


def test_all_table_and_verdict(cli: Cli, mock: respx.MockRouter, fleet: dict[str, str]) -> None:
    answer(mock, PROD, httpx.Response(200, json=WORKFLOWS))
    answer(mock, STAGING, httpx.Response(401, json={"message": "Unauthorized"}))
    result = cli("apikey", "test", "--all", "--no-emoji")
    assert result.exit_code == ExitStatus.KEY_REJECTED
    assert "| Key " in result.stdout and "| rejected " in result.stdout
    assert result.stdout.splitlines()[-1] == ("2 of 4 checks failed; exit status 4 (key rejected)")
    # Progress lines are for a terminal (tests/test_terminal.py); piped, stderr only sums up.
    assert "->" not in result.stderr
    assert result.stderr == "Error: 2 of 4 checks failed; exit status 4 (key rejected)\n"
    assert not any(e in result.output for e in (*EMOJI, "✓", "✗"))


def test_all_with_no_active_keys_is_not_a_pass(cli: Cli, database: Database) -> None:
    add_key(database, "off", make_jwt(), active=False)
    result = cli("apikey", "test", "--all")
    assert result.exit_code == ExitStatus.FAILED
    assert "no active API keys" in result.stderr


@pytest.mark.parametrize(
    "args",
    [("prod", "--all"), ("--all", "--server-url", PROD)],
    ids=["name and --all", "--all and --server-url"],
)
def test_all_refuses_conflicting_arguments(cli: Cli, args: tuple[str, ...]) -> None:
    assert cli("apikey", "test", *args).exit_code == ExitStatus.USAGE


# --- rotation ---------------------------------------------------------------------------


@pytest.fixture
def old_key(database: Database) -> str:
    old = make_jwt(exp_days=5, sub="old")
    add_server(database, "Production", PROD)
    add_server(database, "Staging", STAGING)
    add_key(database, "prod_key", old, ["Production", "Staging"])
    return old


def test_rotation_stores_new_linked_tests_it_and_deactivates_old(
    cli: Cli, database: Database, mock: respx.MockRouter, old_key: str
) -> None:
    new = make_jwt(exp_days=90, sub="new")
    routes = [mock.get(probe(u)).mock(side_effect=n8n({old_key, new})) for u in (PROD, STAGING)]
    result = cli(
        "apikey",
        "rotate",
        "prod_key",
        "-",
        "--name",
        "prod_key_new",
        "--description",
        "rotated",
        input=new + "\n",
    )
    assert result.exit_code == 0, result.output
    assert all(r.call_count == 1 for r in routes)
    assert all(r.calls.last.request.headers["X-N8N-API-KEY"] == new for r in routes)
    fresh, old = stored(database, "prod_key_new"), stored(database, "prod_key")
    assert fresh is not None and old is not None
    assert fresh.secret == new and fresh.is_active and fresh.description == "rotated"
    assert fresh.servers == ["Production", "Staging"]
    assert fresh.last_used_at is not None
    assert old.is_active is False and old.servers == ["Production", "Staging"]
    assert result.stdout.splitlines()[-1] == (
        "✅ Rotated: 'prod_key_new' is stored, linked to Production, Staging; "
        "'prod_key' is deactivated"
    )


def test_rotation_with_delete_old(
    cli: Cli, database: Database, mock: respx.MockRouter, old_key: str
) -> None:
    new = make_jwt(sub="new")
    for url in (PROD, STAGING):
        mock.get(probe(url)).mock(side_effect=n8n({new}))
    result = cli(
        "apikey", "rotate", "prod_key", "--name", "prod_key_new", "--delete-old", input=new
    )
    assert result.exit_code == 0, result.output
    assert stored(database, "prod_key") is None
    assert key_names(database) == ["prod_key_new"]
    assert "'prod_key' is deleted" in result.stdout


def test_a_failed_rotation_leaves_old_active_and_keeps_new_for_a_retry(
    cli: Cli, database: Database, mock: respx.MockRouter, old_key: str
) -> None:
    new = make_jwt(sub="new")
    mock.get(probe(PROD)).mock(side_effect=n8n({new}))
    mock.get(probe(STAGING)).mock(side_effect=n8n({old_key}))  # Staging does not know NEW
    result = cli("apikey", "rotate", "prod_key", "-", "--name", "prod_key_new", input=new)
    assert result.exit_code == ExitStatus.KEY_REJECTED
    old = stored(database, "prod_key")
    assert old is not None and old.is_active and old.last_used_at is None
    assert old.servers == ["Production", "Staging"]
    fresh = stored(database, "prod_key_new")
    assert fresh is not None and fresh.servers == ["Production", "Staging"]
    assert fresh.last_used_at is None
    assert (
        "Rotation stopped: 'prod_key_new' failed the test; 'prod_key' is unchanged and "
        "still active" in result.stdout
    )
    assert "n8n-deploy apikey test 'prod_key_new'" in result.stdout


def test_running_a_failed_rotation_again_finishes_it(
    cli: Cli, database: Database, mock: respx.MockRouter, old_key: str
) -> None:
    new = make_jwt(sub="new")
    mock.get(probe(PROD)).mock(side_effect=n8n({old_key, new}))
    staging = mock.get(probe(STAGING)).mock(side_effect=n8n({old_key}))  # not NEW, yet
    rotate = ("apikey", "rotate", "prod_key", "-", "--name", "prod_key_new")
    assert cli(*rotate, input=new).exit_code == ExitStatus.KEY_REJECTED

    result = cli(*rotate, "--json", input=new)  # the same command again: tested again
    assert result.exit_code == ExitStatus.KEY_REJECTED, result.output
    data = json.loads(result.stdout)
    assert (data["resumed"], data["rotated"], data["new_key"], data["old_key_active"]) == (
        True,
        False,
        "stored",
        True,
    )
    assert staging.call_count == 2

    add_server(database, "Third", "https://third.example.com")
    assert cli("server", "link", "prod_key", "Third").exit_code == 0  # OLD gained a server
    assert cli("apikey", "deactivate", "prod_key_new").exit_code == 0
    mock.get(probe("https://third.example.com")).mock(side_effect=n8n({new}))
    staging.mock(side_effect=n8n({old_key, new}))  # NEW now works everywhere
    result = cli(*rotate, "--description", "q4", input=new)
    assert result.exit_code == 0, result.output
    assert "finishing an earlier rotation" in result.stdout
    fresh, old = stored(database, "prod_key_new"), stored(database, "prod_key")
    assert fresh is not None and old is not None
    assert fresh.is_active and fresh.last_used_at is not None and fresh.description == "q4"
    assert fresh.servers == ["Production", "Staging", "Third"]
    assert not old.is_active

    result = cli(*rotate, input=new)  # done: nothing left to finish
    assert result.exit_code == ExitStatus.FAILED
    assert "API key 'prod_key_new' already exists" in result.stderr
    assert "'prod_key' is inactive, so there is no rotation left to finish" in result.stderr


def test_a_stored_new_name_with_another_key_is_still_refused(
    cli: Cli, database: Database, mock: respx.MockRouter, old_key: str
) -> None:
    first, second = make_jwt(sub="first"), make_jwt(sub="second")
    for url in (PROD, STAGING):
        mock.get(probe(url)).mock(side_effect=n8n(set()))
    rotate = ("apikey", "rotate", "prod_key", "-", "--name", "prod_key_new")
    assert cli(*rotate, input=first).exit_code == ExitStatus.KEY_REJECTED
    calls = len(mock.calls)
    result = cli(*rotate, input=second)
    assert result.exit_code == ExitStatus.FAILED
    assert "API key 'prod_key_new' already exists" in result.stderr
    assert len(mock.calls) == calls
    assert stored(database, "prod_key_new").secret == first  # type: ignore[union-attr]


def test_a_failed_rotation_with_discard_on_failure_stores_nothing(
    cli: Cli, database: Database, mock: respx.MockRouter, old_key: str
) -> None:
    new = make_jwt(sub="new")
    mock.get(probe(PROD)).mock(side_effect=n8n({new}))
    mock.get(probe(STAGING)).mock(side_effect=httpx.ConnectTimeout("timed out"))
    result = cli(
        "apikey",
        "rotate",
        "prod_key",
        "-",
        "--name",
        "prod_key_new",
        "--discard-on-failure",
        "--json",
        input=new,
    )
    assert result.exit_code == ExitStatus.UNREACHABLE
    data = json.loads(result.stdout)
    assert data["rotated"] is False and data["new_key"] == "not stored"
    assert data["old_key"] == "unchanged" and data["old_key_active"] is True
    assert data["exit_status"] == 5
    assert [r["outcome"] for r in data["results"]] == ["valid", "unreachable"]
    assert key_names(database) == ["prod_key"]
    assert stored(database, "prod_key").is_active  # type: ignore[union-attr]


def test_rotation_json_on_success(
    cli: Cli, database: Database, mock: respx.MockRouter, old_key: str
) -> None:
    new = make_legacy_key(9)
    for url in (PROD, STAGING):
        mock.get(probe(url)).mock(side_effect=n8n({new}))
    result = cli("apikey", "rotate", "prod_key", "--name", "next", "--json", input=new)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {k: data[k] for k in ("old", "new", "rotated", "old_key", "new_key", "exit_status")} == {
        "old": "prod_key",
        "new": "next",
        "rotated": True,
        "old_key": "deactivated",
        "new_key": "stored",
        "exit_status": 0,
    }
    assert [(r["key"], r["server"]) for r in data["results"]] == [
        ("next", "Production"),
        ("next", "Staging"),
    ]


def test_if_storing_the_rotation_fails_old_is_untouched(
    cli: Cli,
    database: Database,
    mock: respx.MockRouter,
    old_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    new = make_jwt(sub="new")
    for url in (PROD, STAGING):
        mock.get(probe(url)).mock(side_effect=n8n({new}))

    def broken(self: ApiKeyRepository, key: Any, active: bool) -> bool:
        raise RuntimeError("disk full")

    monkeypatch.setattr(ApiKeyRepository, "set_active", broken)
    result = cli("apikey", "rotate", "prod_key", "--name", "prod_key_new", input=new)
    assert result.exit_code == ExitStatus.FAILED
    assert key_names(database) == ["prod_key"]  # NEW's insert was rolled back with it
    assert stored(database, "prod_key").is_active  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("new", "status", "text"),
    [
        ("garbage", ExitStatus.INVALID_FORMAT, "Invalid JWT token format"),
        (make_jwt(exp_days=-1, sub="x"), ExitStatus.KEY_EXPIRED, "expired on"),
        ("", ExitStatus.USAGE, "is empty"),
    ],
    ids=["format", "expired", "empty"],
)
def test_a_bad_new_key_is_refused_before_anything(
    cli: Cli,
    database: Database,
    mock: respx.MockRouter,
    old_key: str,
    new: str,
    status: ExitStatus,
    text: str,
) -> None:
    result = cli("apikey", "rotate", "prod_key", "-", "--name", "prod_key_new", input=new)
    assert result.exit_code == status
    assert text in result.stderr
    assert not mock.calls
    assert key_names(database) == ["prod_key"]
    assert stored(database, "prod_key").is_active  # type: ignore[union-attr]


def test_a_bad_description_is_refused_before_any_test(
    cli: Cli, database: Database, mock: respx.MockRouter, old_key: str
) -> None:
    new = make_jwt(sub="new")
    for bad in ("two\nlines", "tab\there", "bell\x07"):
        result = cli(
            "apikey", "rotate", "prod_key", "-", "--name", "n", "--description", bad, input=new
        )
        assert result.exit_code == ExitStatus.USAGE, (bad, result.output)
        assert result.stderr.startswith("Error: The description contains control characters")
    assert not mock.calls
    assert key_names(database) == ["prod_key"]
    for url in (PROD, STAGING):
        mock.get(probe(url)).mock(side_effect=n8n({new}))
    result = cli(
        "apikey", "rotate", "prod_key", "-", "--name", "n", "--description", "  q4  ", input=new
    )
    assert result.exit_code == 0, result.output
    assert stored(database, "n").description == "q4"  # type: ignore[union-attr]


def test_rotation_refusals(
    cli: Cli, database: Database, mock: respx.MockRouter, old_key: str
) -> None:
    other = make_jwt(sub="other")
    add_key(database, "other", other, ["Production"])
    add_key(database, "unlinked", make_jwt(sub="unlinked"))
    new = make_jwt(sub="new")
    cases: list[tuple[tuple[str, ...], str, ExitStatus, str]] = [
        (("prod_key", "--name", "other"), new, ExitStatus.FAILED, "API key 'other' already exists"),
        (("prod_key", "--name", "x"), old_key, ExitStatus.FAILED, "same as 'prod_key'"),
        (("prod_key", "--name", "x"), other, ExitStatus.FAILED, "already stored as 'other'"),
        (("nope", "--name", "x"), new, ExitStatus.FAILED, "API key 'nope' not found"),
        (("unlinked", "--name", "x"), new, ExitStatus.FAILED, "not linked to any server"),
        (("prod_key", "--name", " "), new, ExitStatus.USAGE, "name is empty"),
    ]
    for args, secret, status, text in cases:
        result = cli("apikey", "rotate", *args, input=secret)
        assert result.exit_code == status, (args, result.output)
        assert text in result.stderr, (args, result.stderr)
    assert not mock.calls
    assert key_names(database) == ["other", "prod_key", "unlinked"]
    assert stored(database, "prod_key").is_active  # type: ignore[union-attr]


def test_a_refused_rotation_with_json_still_prints_what_happened(
    cli: Cli, database: Database, mock: respx.MockRouter, old_key: str
) -> None:
    result = cli("apikey", "rotate", "nope", "-", "--name", "x", "--json", input=make_jwt())
    assert result.exit_code == ExitStatus.FAILED
    data = json.loads(result.stdout)
    assert (data["rotated"], data["old_key"], data["new_key"]) == (False, "unchanged", "not stored")
    assert data["exit_status"] == 1
    assert data["message"] == "API key 'nope' not found"
    assert result.stderr.startswith("Error: API key 'nope' not found")
    assert not mock.calls


def test_rotating_from_an_argument_warns_about_shell_history(
    cli: Cli, database: Database, mock: respx.MockRouter, old_key: str
) -> None:
    new = make_jwt(sub="new")
    for url in (PROD, STAGING):
        mock.get(probe(url)).mock(side_effect=n8n({new}))
    result = cli("apikey", "rotate", "prod_key", new, "--name", "prod_key_new")
    assert result.exit_code == 0, result.output
    assert "shell history" in result.stderr
    assert new not in result.output


def test_the_shell_history_warning_comes_only_once_the_input_is_accepted(
    cli: Cli, database: Database, mock: respx.MockRouter, old_key: str
) -> None:
    new = make_jwt(sub="new")
    refused = [
        ("prod_key", "garbage", "--name", "n"),
        ("prod_key", make_jwt(exp_days=-1, sub="x"), "--name", "n"),
        ("nope", new, "--name", "n"),
        ("prod_key", new, "--name", " "),
        ("prod_key", old_key, "--name", "n"),
        ("prod_key", new, "--name", "n", "--description", "two\nlines"),
    ]
    for args in refused:
        result = cli("apikey", "rotate", *args)
        assert result.exit_code != 0, args
        assert "shell history" not in result.stderr, args
        assert len(result.stderr.splitlines()) == 1, result.stderr  # the error, and only it
    assert not mock.calls
    mock.get(probe(PROD)).mock(side_effect=n8n({new}))
    mock.get(probe(STAGING)).respond(503)
    result = cli("apikey", "rotate", "prod_key", new, "--name", "n")  # accepted, then fails
    assert result.exit_code == ExitStatus.UNEXPECTED_RESPONSE
    assert "shell history" in result.stderr


# --- the key is never printed -----------------------------------------------------------


def test_no_command_path_prints_the_key(
    cli: Cli, database: Database, mock: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = make_jwt(exp_days=30, sub="secret")
    legacy = make_legacy_key(3)
    add_server(database, "Production", PROD)
    add_server(database, "Echo", "https://echo.example.com")
    add_key(database, "k", secret, ["Production"])
    add_key(database, "legacy", legacy, ["Echo"])
    add_key(database, "off", make_jwt(sub="off"), ["Production"], active=False)
    mock.get(probe(PROD)).mock(side_effect=n8n({secret}))
    # a server that echoes whatever key it gets, in its message and in a redirect
    mock.get(probe("https://echo.example.com")).mock(
        side_effect=lambda request: httpx.Response(
            302,
            headers={"Location": f"https://x.example.org/?k={request.headers['X-N8N-API-KEY']}"},
            json={"message": request.headers["X-N8N-API-KEY"]},
        )
    )
    mock.get(probe("https://echo401.example.com")).mock(
        side_effect=lambda request: httpx.Response(
            401, json={"message": f"bad key {request.headers['X-N8N-API-KEY']}"}
        )
    )
    runs = [
        cli("apikey", "test", "k"),
        cli("apikey", "test", "k", "--json"),
        cli("apikey", "test", "k", "--no-emoji"),
        cli("apikey", "test", "legacy"),
        cli("apikey", "test", "legacy", "--json"),
        cli("apikey", "test", "k", "--server-url", "https://echo401.example.com"),
        cli("apikey", "test", "k", "--server-url", "https://echo401.example.com", "--json"),
        cli("apikey", "test", "-", "--server-url", PROD, input=secret),
        cli("apikey", "test", "-", "--server-url", PROD, "--json", input=secret + "x"),
        cli("apikey", "test", "--all"),
        cli("apikey", "test", "--all", "--json"),
        cli("apikey", "test", "off"),
        cli("apikey", "rotate", "k", "-", "--name", "k2", input=legacy),
        cli("apikey", "rotate", "legacy", secret, "--name", "k3"),
        cli("apikey", "rotate", "legacy", "-", "--name", "k4", "--json", input=make_legacy_key(4)),
    ]
    assert {r.exit_code for r in runs} >= {0, 1, 4, 8, 9}
    for run in runs:
        assert secret not in run.output
        assert legacy not in run.output
        assert leaked_piece(secret, run.output) is None  # not even a piece of it
        assert leaked_piece(legacy, run.output) is None


def test_no_piece_of_a_key_echoed_by_the_server_is_printed(
    cli: Cli, database: Database, mock: respx.MockRouter
) -> None:
    secret = jwt_of_length(289)
    add_server(database, "Production", PROD)
    add_key(database, "k", secret, ["Production"])
    route = mock.get(probe(PROD))
    for echo in (f"invalid signature for {secret}", secret[:150], secret[60:260]):
        route.mock(return_value=httpx.Response(500, json={"message": echo}))
        for extra in ((), ("--json",), ("--no-emoji",)):
            result = cli("apikey", "test", "k", *extra)
            assert result.exit_code == ExitStatus.UNEXPECTED_RESPONSE
            assert leaked_piece(secret, result.output) is None, result.output
        result = cli("apikey", "test", "--all", "--json")
        assert leaked_piece(secret, result.output) is None, result.output


# --- documentation and start-up -----------------------------------------------------------


def test_the_help_states_the_severity_order_the_exit_status_follows(cli: Cli) -> None:
    from n8n_deploy.base.status import SEVERITY

    order = ", ".join(str(int(status)) for status in SEVERITY)
    help_text = " ".join(cli("apikey", "test", "--help").stdout.split())
    assert f"the most serious failure, in the order {order}." in help_text
    assert order == "4, 7, 6, 9, 8, 5, 1"  # the documented contract (docs/ci.md)


@pytest.mark.e2e
@pytest.mark.parametrize("command", ["test", "rotate"])
def test_help_of_the_commands_does_not_import_heavy_libraries(command: str) -> None:
    modules = imported_modules("apikey", command, "--help", env=dict(os.environ))
    assert not (modules & set(HEAVY)), sorted(modules & set(HEAVY))


@pytest.mark.e2e
@pytest.mark.sqlite_only
def test_testing_a_key_from_stdin_loads_no_database_layer(data_dir: Path) -> None:
    """A closed port on loopback: the request is made (exit 5), and the database layer it
    does not need was never imported (nor a data folder created)."""
    modules = imported_modules(
        *("apikey", "test", "-", "--server-url", "http://127.0.0.1:9", "--timeout", "1"),
        env=dict(os.environ),
        input=make_jwt(exp_days=30),
        status=ExitStatus.UNREACHABLE,
    )
    assert "httpx" in modules
    assert not modules & {"sqlalchemy", "alembic"}, modules
    assert not data_dir.exists()


@pytest.mark.e2e
@pytest.mark.sqlite_only
def test_testing_every_key_contacts_the_servers_before_loading_the_database_layer(
    database: Database, data_dir: Path
) -> None:
    """The keys are read from the SQLite file with the standard library; SQLAlchemy,
    which records the uses, is imported while the checks wait for their answers."""
    import subprocess
    import sys

    from tests.fake_n8n import fake_server, n8n_like

    key = make_jwt(exp_days=30)
    code = """
import sys
order = []
def hook(event, args):
    if event == "socket.connect" and "connect" not in order:
        order.append("connect")
    elif event == "import" and args[0] == "sqlalchemy" and "sqlalchemy" not in order:
        order.append("sqlalchemy")
sys.addaudithook(hook)
sys.argv = ["n8n-deploy", "apikey", "test", "--all", "--json"]
from n8n_deploy.cli import main
try:
    main()
finally:
    sys.stderr.write("order: " + ", ".join(order))
"""
    with fake_server(n8n_like({key})) as server:
        add_server(database, "Production", server.url)
        add_key(database, "prod_key", key, ["Production"])
        database.dispose()
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False
        )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == "order: connect, sqlalchemy"
    assert [report["outcome"] for report in json.loads(result.stdout)] == ["valid"]
    with database.session() as session:
        assert ApiKeyRepository(session).get("prod_key").last_used_at is not None


@pytest.mark.sqlite_only
def test_a_database_that_cannot_be_opened_after_the_checks_changes_no_verdict(
    database: Database,
) -> None:
    """The CLI opens the database to record the uses once the checks are done; another
    process may have upgraded it meanwhile: the verdicts stand, the use is not recorded."""
    from n8n_deploy.apikeys.check import carry_out_all_checks, plan_all_checks
    from n8n_deploy.base.errors import SchemaTooNewError
    from tests.fake_n8n import fake_server, n8n_like

    key = make_jwt(exp_days=30)

    def upgraded_meanwhile() -> Database:
        raise SchemaTooNewError("The database is at revision 9999, newer than this program")

    with fake_server(n8n_like({key})) as server:
        add_server(database, "Production", server.url)
        add_key(database, "prod_key", key, ["Production"])
        with database.reading() as reader:
            plan = plan_all_checks(reader)
        (report,) = carry_out_all_checks(plan, upgraded_meanwhile)
    assert report.ok and report.exit_status == ExitStatus.SUCCESS
    assert not report.recorded_use
    assert (
        report.use_not_recorded is not None and "newer than this program" in report.use_not_recorded
    )


@pytest.mark.sqlite_only
def test_a_plain_http_server_needs_no_ca_bundle_and_https_loads_it_once(
    cli: Cli, mock: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    import certifi

    from n8n_deploy.n8n import probe as probe_module

    loaded: list[str] = []
    real_where = certifi.where
    monkeypatch.setattr(certifi, "where", lambda: loaded.append("bundle") or real_where())
    probe_module._tls_context.cache_clear()
    key = make_jwt(exp_days=30)
    plain = "http://n8n.internal:5678"
    for url in (plain, PROD):
        mock.get(probe(url)).mock(side_effect=n8n({key}))
    assert cli("apikey", "test", "-", "--server-url", plain, input=key).exit_code == 0
    assert loaded == []
    for _ in range(2):
        assert cli("apikey", "test", "-", "--server-url", PROD, input=key).exit_code == 0
    assert loaded == ["bundle"]
    probe_module._tls_context.cache_clear()


def test_a_key_expiring_within_seven_days_passes_with_a_warning(
    cli: Cli, mock: respx.MockRouter
) -> None:
    key = make_jwt(exp_days=3)
    mock.get(probe(PROD)).mock(side_effect=n8n({key}))
    plain = cli("apikey", "test", "-", "--server-url", PROD, input=key)
    assert plain.exit_code == 0
    assert "the key expires on" in plain.stderr and "rotate" in plain.stderr
    data = json.loads(cli("apikey", "test", "-", "--server-url", PROD, "--json", input=key).stdout)
    assert any("expires on" in warning for warning in data["warnings"])
    failing = cli("apikey", "test", "-", "--server-url", PROD, "--min-days", "7", input=key)
    assert failing.exit_code == ExitStatus.KEY_EXPIRED


def test_a_key_expiring_later_passes_without_a_word(cli: Cli, mock: respx.MockRouter) -> None:
    key = make_jwt(exp_days=30)
    mock.get(probe(PROD)).mock(side_effect=n8n({key}))
    run = cli("apikey", "test", "-", "--server-url", PROD, input=key)
    assert run.exit_code == 0 and run.stderr == ""


def test_a_failure_is_summed_up_on_stderr_when_stdout_is_elsewhere(
    cli: Cli, mock: respx.MockRouter, key: str
) -> None:
    mock.get(probe(PROD)).mock(side_effect=n8n(set()))
    run = cli("apikey", "test", "-", "--server-url", PROD, input=key)
    assert run.exit_code == ExitStatus.KEY_REJECTED
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("Error: The server rejected the key")
    assert key not in run.stderr


def test_a_key_from_stdin_without_a_server_is_not_told_to_link_it(cli: Cli, key: str) -> None:
    run = cli("apikey", "test", "-", input=key)
    assert run.exit_code == ExitStatus.FAILED
    assert "server link" not in run.output
    assert "--server-url URL" in run.output


# --- #15 defect 9: the verdict does not depend on the bookkeeping -------------------------


def _read_only_url(data_dir: Path) -> str:
    return f"sqlite:///file:{data_dir / 'n8n-deploy.db'}?mode=ro&uri=true"


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    "args", [("prod",), ("prod", "--json"), ("--all",), ("--all", "--json")], ids=str
)
@pytest.mark.parametrize("how", ["read-only", "locked"])
def test_a_valid_key_passes_when_its_use_cannot_be_recorded(
    cli: Cli,
    database: Database,
    mock: respx.MockRouter,
    key: str,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    how: str,
) -> None:
    """#15 defect 9: a locked or read-only database (last_used_at cannot be written)
    failed the gate with "Database error", exit 1, and --json printed nothing."""
    import sqlite3

    from n8n_deploy.store import engine as store_engine

    add_server(database, "Production", PROD)
    add_key(database, "prod", key, ["Production"])
    mock.get(probe(PROD)).mock(side_effect=n8n({key}))
    env = {}
    holder = None
    if how == "read-only":
        env["N8N_DEPLOY_DATABASE_URL"] = _read_only_url(data_dir)
    else:  # another process holds the write lock for longer than we wait
        monkeypatch.setattr(store_engine, "BUSY_TIMEOUT_SECONDS", 0.2)
        holder = sqlite3.connect(data_dir / "n8n-deploy.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    try:
        result = cli("apikey", "test", *args, env=env)
    finally:
        if holder is not None:
            holder.rollback()
            holder.close()
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert "could not be recorded (last used date not updated)" in result.stderr
    assert "the test result stands" in result.stderr
    if "--json" in args:
        document = json.loads(result.stdout)
        records = document if isinstance(document, list) else [document]
        assert [r["valid"] for r in records] == [True]
    assert stored(database, "prod").last_used_at is None  # type: ignore[union-attr]


@pytest.mark.parametrize("args", [("race",), ("--all",)], ids=str)
def test_a_key_replaced_while_it_is_tested_is_not_credited_with_the_result(
    cli: Cli, database: Database, mock: respx.MockRouter, key: str, args: tuple[str, ...]
) -> None:
    """While the server answers, someone deletes the key and adds another under its name:
    the result belongs to the key that was tested, not to the new one (which the server
    would refuse)."""
    from sqlalchemy import text

    add_server(database, "Production", PROD)
    add_key(database, "race", key, ["Production"])
    replaced = []

    def answer(request: httpx.Request) -> httpx.Response:
        if not replaced:
            database.write(lambda s: ApiKeyRepository(s).delete(ApiKeyRepository(s).get("race")))
            add_key(database, "race", make_jwt(sub="newcomer"), ["Production"])
            replaced.append(True)
        return httpx.Response(200, json=WORKFLOWS)

    mock.get(probe(PROD)).mock(side_effect=answer)
    result = cli("apikey", "test", *args)
    assert result.exit_code == ExitStatus.SUCCESS, result.output
    assert stored(database, "race").last_used_at is None  # type: ignore[union-attr]
    with database.engine.connect() as conn:  # the tested key is gone: nothing to record
        tested = (
            conn.execute(text("SELECT key_id FROM key_events WHERE kind = 'tested'"))
            .scalars()
            .all()
        )
    assert tested == []
