"""``apikey test`` against real servers on 127.0.0.1 (run by the test in a thread): an
n8n-like API under a path prefix, a port that refuses, a server that never answers, a
redirect to another port, TLS with a private CA, and a server that stays unavailable.
No assertion on wall-clock time: the budget shows in the exit status and the message."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import pytest

from n8n_deploy import __version__
from n8n_deploy.base.status import ExitStatus
from n8n_deploy.store.engine import Database
from tests.fake_n8n import (
    CA_FILE,
    Seen,
    fake_server,
    json_answer,
    n8n_like,
    refusing_url,
    silent_server,
)
from tests.helpers import Run, add_key, add_server, make_jwt, stored

Cli = Callable[..., Run]


@pytest.fixture
def key() -> str:
    return make_jwt(exp_days=30)


def test_a_key_n8n_accepts_under_a_path_prefix(cli: Cli, database: Database, key: str) -> None:
    with fake_server(n8n_like({key}, prefix="/n8n")) as server:
        add_server(database, "Production", server.url + "/n8n")
        add_key(database, "prod", key, ["Production"])
        result = cli("apikey", "test", "prod")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "✅ API key is valid and working"
    (seen,) = server.seen
    assert seen.path == "/n8n/api/v1/workflows?limit=1"
    assert seen.headers["x-n8n-api-key"] == key
    assert seen.headers["accept"] == "application/json"
    assert seen.headers["user-agent"] == f"n8n-deploy/{__version__}"
    assert stored(database, "prod").last_used_at is not None  # type: ignore[union-attr]
    assert result.stderr == ""  # plain http to loopback is normal: no warning


def test_a_key_n8n_does_not_know_is_rejected(cli: Cli, database: Database, key: str) -> None:
    with fake_server(n8n_like({make_jwt(sub="someone-else")})) as server:
        add_server(database, "Production", server.url)
        add_key(database, "prod", key, ["Production"])
        result = cli("apikey", "test", "prod")
    assert result.exit_code == ExitStatus.KEY_REJECTED
    assert "rejected the key (HTTP 401)" in result.stdout
    assert stored(database, "prod").last_used_at is None  # type: ignore[union-attr]


def test_a_missing_path_prefix_is_an_unexpected_response(cli: Cli, key: str) -> None:
    with fake_server(n8n_like({key}, prefix="/n8n")) as server:
        result = cli("apikey", "test", "-", "--server-url", server.url, input=key)
    assert result.exit_code == ExitStatus.UNEXPECTED_RESPONSE
    assert "No n8n public API" in result.stdout
    assert "path prefix" in result.stdout


def test_a_refused_connection_is_unreachable(cli: Cli, key: str) -> None:
    url = refusing_url()
    result = cli("apikey", "test", "-", "--server-url", url, "--timeout", "1", input=key)
    assert result.exit_code == ExitStatus.UNREACHABLE
    assert f"Connection refused by {url.removeprefix('http://')}" in result.stdout


def test_a_mistyped_port_is_tried_twice_not_for_the_whole_budget(cli: Cli, key: str) -> None:
    """With the default 10 s budget: two attempts a quarter second apart, then the answer
    (the time it takes is measured by make bench, not asserted here)."""
    result = cli("apikey", "test", "-", "--server-url", refusing_url(), "--json", input=key)
    data = json.loads(result.stdout)
    assert result.exit_code == ExitStatus.UNREACHABLE
    assert (data["cause"], data["attempts"]) == ("refused", 2)


def test_a_server_that_never_answers_is_bounded_by_the_budget(cli: Cli, key: str) -> None:
    with silent_server() as url:
        result = cli(
            "apikey", "test", "-", "--server-url", url, "--timeout", "0.5", "--json", input=key
        )
    assert result.exit_code == ExitStatus.UNREACHABLE
    data = json.loads(result.stdout)
    assert data["cause"] == "timeout"
    assert "within the 0.5 s budget" in data["message"]


def test_an_https_server_that_never_answers_the_handshake_is_a_timeout(cli: Cli, key: str) -> None:
    """Not a TLS failure with a hint to try http://: the handshake ran out of time."""
    with silent_server() as url:
        https = url.replace("http://", "https://")
        result = cli(
            "apikey", "test", "-", "--server-url", https, "--timeout", "0.5", "--json", input=key
        )
    assert result.exit_code == ExitStatus.UNREACHABLE
    data = json.loads(result.stdout)
    assert data["cause"] == "timeout", data["message"]
    assert "within the 0.5 s budget" in data["message"]


def test_a_redirect_to_another_port_is_not_followed_and_the_key_never_arrives(
    cli: Cli, database: Database, key: str
) -> None:
    with fake_server(n8n_like({key})) as elsewhere:
        target = f"{elsewhere.url}/api/v1/workflows?limit=1"
        with fake_server(lambda seen: (302, {"Location": target}, b"")) as server:
            add_server(database, "Production", server.url)
            add_key(database, "prod", key, ["Production"])
            result = cli("apikey", "test", "prod")
    assert result.exit_code == ExitStatus.UNEXPECTED_RESPONSE
    assert len(server.seen) == 1
    assert elsewhere.seen == []  # nothing, let alone the key, reached the other port
    assert f"Redirected (HTTP 302) to {target}" in result.stdout
    assert f"n8n-deploy server update 'Production' --url {elsewhere.url}" in result.stdout
    assert stored(database, "prod").last_used_at is None  # type: ignore[union-attr]


def test_a_server_that_stays_unavailable_is_retried_then_reported(cli: Cli, key: str) -> None:
    def starting(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        return json_answer(503, {"code": 503, "message": "Database is not ready!"})

    # A budget of 3 s: a retry needs half a second left after its backoff, which a 1 s
    # budget on a busy machine (the first answer slow to come) does not always leave.
    with fake_server(starting) as server:
        result = cli("apikey", "test", "-", "--server-url", server.url, "--timeout", "3", input=key)
    assert result.exit_code == ExitStatus.UNEXPECTED_RESPONSE
    assert "not ready (HTTP 503: Database is not ready!)" in result.stdout
    assert len(server.seen) > 1


def test_a_host_that_does_not_resolve_is_unreachable(
    cli: Cli, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real httpx/anyio stack, with the resolver answering "no such host" (so the test
    does not depend on the machine's DNS)."""
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "n8n.does-not-exist.example":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    url = "http://n8n.does-not-exist.example"
    result = cli("apikey", "test", "-", "--server-url", url, "--json", input=key)
    assert result.exit_code == ExitStatus.UNREACHABLE
    data = json.loads(result.stdout)
    assert data["cause"] == "dns" and data["attempts"] == 1
    assert "n8n.does-not-exist.example cannot be resolved" in data["message"]


# --- TLS --------------------------------------------------------------------------------


def test_an_untrusted_certificate_is_unreachable_and_names_the_fixes(
    cli: Cli, database: Database, key: str
) -> None:
    with fake_server(n8n_like({key}), tls=True) as server:
        add_server(database, "Private", server.url)
        add_key(database, "prod", key, ["Private"])
        result = cli("apikey", "test", "prod")
    assert result.exit_code == ExitStatus.UNREACHABLE
    assert "TLS certificate of 127.0.0.1" in result.stdout and "not trusted" in result.stdout
    assert "--skip-ssl-verify" in result.stdout and "SSL_CERT_FILE" in result.stdout
    assert server.seen == []


def test_ssl_cert_file_makes_a_private_ca_trusted(
    cli: Cli, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(CA_FILE))
    with fake_server(n8n_like({key}), tls=True) as server:
        result = cli("apikey", "test", "-", "--server-url", server.url, input=key)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_skip_ssl_verify_accepts_the_certificate_with_a_warning(cli: Cli, key: str) -> None:
    with fake_server(n8n_like({key}), tls=True) as server:
        result = cli(
            "apikey", "test", "-", "--server-url", server.url, "--skip-ssl-verify", input=key
        )
    assert result.exit_code == 0, result.output
    assert "verification is off" in result.stderr


def test_a_server_record_with_skip_ssl_verify_is_honoured(
    cli: Cli, database: Database, key: str
) -> None:
    with fake_server(n8n_like({key}), tls=True) as server:
        add_server(database, "Private", server.url, skip_ssl_verify=True)
        add_key(database, "prod", key, ["Private"])
        assert cli("apikey", "test", "prod").exit_code == 0


def test_https_to_a_plain_http_server_is_a_tls_failure(cli: Cli, key: str) -> None:
    with fake_server(n8n_like({key})) as server:
        url = server.url.replace("http://", "https://")
        result = cli("apikey", "test", "-", "--server-url", url, "--json", input=key)
    assert result.exit_code == ExitStatus.UNREACHABLE
    assert json.loads(result.stdout)["cause"] == "tls"
