"""`n8n-deploy server ...`: server records and their key links, through the real CLI.

Keys are stored with the repositories (``apikey add`` is another command's business), then
the server commands are run as a user would, and the database is read back afterwards.
"""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from n8n_deploy.base.status import ExitStatus
from n8n_deploy.cli import prompts
from n8n_deploy.cli.output import ICONS
from n8n_deploy.cli.views import KEY_HEADERS, SERVER_HEADERS
from n8n_deploy.store.engine import Database
from n8n_deploy.store.repositories import ApiKeyRepository, ServerRepository
from tests.helpers import Run, database_rows, make_jwt, make_legacy_key

# Every test here runs on SQLite, PostgreSQL and MariaDB (tests/conftest.py), except those
# marked sqlite_only: they are about the SQLite file itself.
pytestmark = pytest.mark.usefixtures("engine")

Cli = Callable[..., Run]
Rows = dict[str, list[tuple[Any, ...]]]

QUERIES = {
    "servers": "SELECT id, name, url, description, skip_ssl_verify, created_at FROM servers "
    "ORDER BY id",
    "api_keys": "SELECT id, name, api_key, description, is_active FROM api_keys ORDER BY id",
    "server_api_keys": "SELECT server_id, api_key_id FROM server_api_keys "
    "ORDER BY server_id, api_key_id",
}


def db_rows(data_dir: Path) -> Rows:
    return {table: database_rows(data_dir, query) for table, query in QUERIES.items()}


def servers_by_name(data_dir: Path) -> dict[str, tuple[Any, ...]]:
    return {row[1]: row for row in db_rows(data_dir)["servers"]}


def links(data_dir: Path) -> set[tuple[str, str]]:
    """(key name, server name) of every stored link."""
    return set(
        database_rows(
            data_dir,
            "SELECT k.name, s.name FROM server_api_keys l "
            "JOIN api_keys k ON k.id = l.api_key_id JOIN servers s ON s.id = l.server_id",
        )
    )


def run_line(cli: Cli, line: str) -> Run:
    """Run one line of a shell example exactly as written."""
    args = shlex.split(line)
    assert args[0] == "n8n-deploy"
    return cli(*args[1:])


def add_key(
    database: Database,
    name: str,
    secret: str | None = None,
    *,
    servers: Sequence[str] = (),
    active: bool = True,
) -> str:
    """Store a key the way `apikey add` would, linked to ``servers``; returns the secret."""
    secret = secret or make_jwt(sub=name)
    with database.session(write=True) as session:
        keys = ApiKeyRepository(session)
        linked = [ServerRepository(session).get(server) for server in servers]
        key = keys.add(name, secret, servers=linked)
        if not active:
            keys.set_active(key, False)
    return secret


def has_emoji(text: str) -> bool:
    return any(symbol in text for symbol in ICONS.values())


def assert_one_line_error(result: Run, status: int, starts: str) -> None:
    assert result.exit_code == status, result.output
    assert result.stderr.startswith(f"Error: {starts}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


@pytest.fixture
def seeded(cli: Cli, database: Database) -> Database:
    """Production (https) with prod_key and old_key (inactive); Staging (http) with
    staging_key; spare_key linked to nothing."""
    assert cli("server", "create", "Production", "https://n8n.example.com").exit_code == 0
    created = cli("server", "create", "Staging", "http://n8n-staging.internal:5678")
    assert created.exit_code == 0
    add_key(database, "prod_key", servers=["Production"])
    add_key(database, "old_key", servers=["Production"], active=False)
    add_key(database, "staging_key", servers=["Staging"])
    add_key(database, "spare_key")
    return database


# --- create -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("https://n8n.example.com", "https://n8n.example.com"),
        ("HTTPS://N8N.Example.COM:443/", "https://n8n.example.com"),
        ("https://n8n.example.com/n8n/", "https://n8n.example.com/n8n"),
        (
            "  https://proxy.example.com:8443/tools/n8n//  ",
            "https://proxy.example.com:8443/tools/n8n",
        ),
        ("http://localhost:5678/", "http://localhost:5678"),
        ("http://127.0.0.1:80", "http://127.0.0.1"),
        ("http://[::1]:5678/", "http://[::1]:5678"),
        ("https://n8n.example.com.:8443", "https://n8n.example.com:8443"),
    ],
)
def test_create_stores_the_url_in_normal_form(
    cli: Cli, data_dir: Path, given: str, stored: str
) -> None:
    result = cli("server", "create", "Production", given)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Server 'Production' created: {stored}\n"
    assert servers_by_name(data_dir)["Production"][2] == stored


def test_create_stores_description_and_tls_choice(cli: Cli, data_dir: Path) -> None:
    result = cli(
        "server",
        "create",
        "Lab",
        "https://n8n.lab.example.com",
        "--description",
        "self-signed lab box",
        "--skip-ssl-verify",
    )
    assert result.exit_code == 0, result.output
    assert "TLS certificate not verified" in result.stdout
    _, _, url, description, skip, created = servers_by_name(data_dir)["Lab"]
    assert (url, description, skip) == ("https://n8n.lab.example.com", "self-signed lab box", 1)
    assert created is not None
    default = cli("server", "create", "Plain", "https://plain.example.com")
    assert default.exit_code == 0
    assert servers_by_name(data_dir)["Plain"][3:5] == (None, 0)


def test_create_trims_names_and_keeps_utf8(cli: Cli, data_dir: Path) -> None:
    result = cli("server", "create", "  Production Server 🚀  ", "https://n8n.example.com")
    assert result.exit_code == 0, result.output
    assert list(servers_by_name(data_dir)) == ["Production Server 🚀"]
    shown = cli("server", "show", "Production Server 🚀", "--json")
    assert json.loads(shown.stdout)["name"] == "Production Server 🚀"


def test_create_refuses_a_taken_name_and_keeps_the_first(cli: Cli, data_dir: Path) -> None:
    cli("server", "create", "Production", "https://n8n.example.com")
    before = db_rows(data_dir)
    result = cli("server", "create", "Production", "https://other.example.com")
    assert_one_line_error(result, ExitStatus.FAILED, "Server 'Production' already exists")
    assert db_rows(data_dir) == before
    # Trimmed names collide too.
    again = cli("server", "create", " Production ", "https://other.example.com")
    assert again.exit_code == ExitStatus.FAILED
    assert db_rows(data_dir) == before


BAD_URLS = [
    ("ftp://x", "Not an http(s) URL"),
    ("not a url", "Not a server URL"),
    ("", "The server URL is empty"),
    ("   ", "The server URL is empty"),
    ("http://", "The URL has no host"),
    ("https://:443/x", "The URL has no host"),
    ("n8n.example.com", "The server URL has no http:// or https://"),
    ("localhost:5678", "The server URL has no http:// or https://"),
    ("file:///etc/passwd", "Not an http(s) URL"),
    ("mailto:ops@example.com", "Not an http(s) URL"),
    ("http://n8n.example.com:99999", "Not a server URL"),
    ("http://n8n.example.com:port", "Not a server URL"),
    ("http://n8n.example.com:0", "Port 0"),
    ("https://n8n.example.com/?tenant=1", "The URL has a query or fragment"),
    ("https://n8n.example.com/#top", "The URL has a query or fragment"),
    ("http://exa<mple.com", "Not a valid host name"),
    ("http://n8n..example.com", "Not a valid host name"),
    ("http://-n8n.example.com", "Not a valid host name"),
    ("http://999.1.1.1:5678", "Not a valid IPv4 address"),
    ("http://[::1", "Not a server URL"),
]


@pytest.mark.parametrize(("url", "message"), BAD_URLS)
def test_create_refuses_what_is_not_a_server_url(
    cli: Cli, seeded: Database, data_dir: Path, url: str, message: str
) -> None:
    before = db_rows(data_dir)
    result = cli("server", "create", "New", url)
    assert_one_line_error(result, ExitStatus.USAGE, message)
    assert db_rows(data_dir) == before


def test_a_bad_url_on_a_new_machine_creates_no_database(cli: Cli, data_dir: Path) -> None:
    result = cli("server", "create", "Production", "ftp://x")
    assert result.exit_code == ExitStatus.USAGE
    assert not data_dir.exists()


def test_a_url_without_a_scheme_gets_a_hint_with_the_fix(cli: Cli) -> None:
    remote = cli("server", "create", "P", "n8n.example.com")
    assert "e.g. https://n8n.example.com" in remote.stderr
    local = cli("server", "create", "L", "localhost:5678")
    assert "e.g. http://localhost:5678" in local.stderr


def test_credentials_in_a_url_are_refused_without_being_echoed(
    cli: Cli, seeded: Database, data_dir: Path
) -> None:
    before = db_rows(data_dir)
    result = cli("server", "create", "New", "https://admin:hunter2@n8n.example.com")
    assert_one_line_error(result, ExitStatus.USAGE, "The URL contains credentials")
    assert "hunter2" not in result.output
    assert db_rows(data_dir) == before


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "The server name is empty"),
        ("   ", "The server name is empty"),
        ("prod\x07", "The server name contains control characters"),
        ("x" * 101, "The server name is 101 characters long; the limit is 100"),
    ],
)
def test_create_refuses_bad_names(
    cli: Cli, seeded: Database, data_dir: Path, name: str, message: str
) -> None:
    before = db_rows(data_dir)
    result = cli("server", "create", name, "https://new.example.com")
    assert_one_line_error(result, ExitStatus.USAGE, message)
    assert db_rows(data_dir) == before


@pytest.mark.parametrize("secret", [make_jwt(), make_legacy_key(7)])
def test_an_api_key_typed_as_name_or_url_is_refused_and_never_echoed(
    cli: Cli, seeded: Database, data_dir: Path, secret: str
) -> None:
    before = db_rows(data_dir)
    as_url = cli("server", "create", "Production 2", secret)
    assert_one_line_error(as_url, ExitStatus.USAGE, "The server URL looks like an API key")
    as_name = cli("server", "create", secret, "https://n8n.example.com")
    assert_one_line_error(as_name, ExitStatus.USAGE, "The server name looks like an API key")
    for args in (
        ("server", "link", secret, "Production"),
        ("server", "show", secret),
        ("server", "delete", secret, "--confirm"),
    ):
        result = cli(*args)
        assert result.exit_code == ExitStatus.USAGE, result.output
        assert secret not in result.output
    assert secret not in as_url.output + as_name.output
    assert db_rows(data_dir) == before


def test_plain_http_to_another_host_is_stored_with_a_warning(cli: Cli, data_dir: Path) -> None:
    result = cli("server", "create", "Development", "http://n8n-dev.internal:5678")
    assert result.exit_code == 0, result.output
    assert "unencrypted" in result.stderr
    assert result.stderr.startswith("⚠️ Warning: http://n8n-dev.internal:5678 is plain http")
    assert servers_by_name(data_dir)["Development"][2] == "http://n8n-dev.internal:5678"
    plain = cli("server", "create", "Dev 2", "http://10.0.0.5:5678", "--no-emoji")
    assert plain.stderr.startswith("Warning: http://10.0.0.5:5678 is plain http")
    assert not has_emoji(plain.output)


@pytest.mark.parametrize(
    "url", ["http://localhost:5678", "http://127.0.0.1:5678", "http://[::1]:5678", "https://x.io"]
)
def test_loopback_http_and_https_need_no_warning(cli: Cli, url: str) -> None:
    result = cli("server", "create", "Local", url)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_a_url_ending_in_the_api_path_is_stored_with_a_warning(cli: Cli) -> None:
    result = cli("server", "create", "P", "https://n8n.example.com/api/v1/")
    assert result.exit_code == 0
    assert "ends in /api/v1" in result.stderr


def test_a_second_server_with_the_same_url_is_stored_with_a_warning(
    cli: Cli, data_dir: Path
) -> None:
    cli("server", "create", "Production", "https://n8n.example.com")
    result = cli("server", "create", "Prod (read-only)", "https://N8N.example.com/")
    assert result.exit_code == 0
    assert "server 'Production' has the same URL" in result.stderr
    assert len(servers_by_name(data_dir)) == 2


# --- list ---------------------------------------------------------------------------


def test_list_with_no_servers_says_how_to_add_one(cli: Cli) -> None:
    result = cli("server", "list")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "n8n-deploy server create NAME URL" in result.stderr
    as_json = cli("server", "list", "--json")
    assert json.loads(as_json.stdout) == []
    assert as_json.stderr == ""


def test_list_shows_each_server_with_key_counts_and_tls(cli: Cli, seeded: Database) -> None:
    cli("server", "create", "Lab", "https://lab.example.com", "--skip-ssl-verify")
    result = cli("server", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:2] == ["🖥️ Servers", ""]
    assert lines[2].startswith("┌")
    for header in SERVER_HEADERS:
        assert header in lines[3]
    rows = {line.split("│")[1].strip(): line for line in lines[5:] if line.startswith("│ ")}
    assert "https://n8n.example.com" in rows["Production"]
    assert "1/2" in rows["Production"]  # prod_key active, old_key inactive
    assert "✅ Verified" in rows["Production"]
    assert "1/1" in rows["Staging"] and "n/a (http)" in rows["Staging"]
    assert "0/0" in rows["Lab"] and "Skipped" in rows["Lab"]
    assert list(rows) == ["Lab", "Production", "Staging"]


def test_list_without_emoji_is_plain_ascii(cli: Cli, seeded: Database) -> None:
    result = cli("server", "list", "--no-emoji")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "Servers"
    assert result.stdout.isascii(), result.stdout
    assert "| Production" in result.stdout


def test_list_json_is_the_shared_server_shape(cli: Cli, seeded: Database) -> None:
    result = cli("server", "list", "--json")
    assert result.stderr == ""
    data = json.loads(result.stdout)
    assert [s["name"] for s in data] == ["Production", "Staging"]
    production = data[0]
    assert production["url"] == "https://n8n.example.com"
    assert (production["keys_active"], production["keys_total"]) == (1, 2)
    assert production["skip_ssl_verify"] is False
    assert production["created_at"].endswith("Z")
    assert set(production) == {
        "name",
        "url",
        "description",
        "skip_ssl_verify",
        "created_at",
        "keys_active",
        "keys_total",
    }


# --- show ---------------------------------------------------------------------------


def test_show_prints_the_server_and_its_masked_keys(cli: Cli, seeded: Database) -> None:
    secret = add_key(seeded, "ci_key", servers=["Production"])
    result = cli("server", "show", "Production")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("🖥️ Production\n")
    assert "URL:              https://n8n.example.com" in result.stdout
    assert "Linked keys:      2 active / 3 total" in result.stdout
    assert "API Keys linked to 'Production'" in result.stdout
    for name in ("ci_key", "old_key", "prod_key"):
        assert name in result.stdout
    assert "staging_key" not in result.stdout
    assert secret not in result.output
    assert "********" + secret[-4:] in result.stdout


def test_show_json_includes_the_linked_keys_masked(cli: Cli, seeded: Database) -> None:
    secret = add_key(seeded, "ci_key", servers=["Production"])
    result = cli("server", "show", "Production", "--json")
    assert result.stderr == ""
    assert secret not in result.stdout
    data = json.loads(result.stdout)
    assert data["name"] == "Production"
    assert [k["name"] for k in data["api_keys"]] == ["ci_key", "old_key", "prod_key"]
    assert data["api_keys"][0]["api_key"] == "********" + secret[-4:]
    assert data["api_keys"][1]["status"] == "inactive"


def test_show_a_server_without_keys_says_how_to_link_one(cli: Cli) -> None:
    cli("server", "create", "Production Server", "https://n8n.example.com")
    result = cli("server", "show", "Production Server", "--no-emoji")
    assert result.exit_code == 0
    assert result.stdout.startswith("Production Server\n")
    assert "Description:      -" in result.stdout
    assert "Linked keys:      0 active / 0 total" in result.stdout
    assert "n8n-deploy server link KEY 'Production Server'" in result.stderr
    assert not has_emoji(result.output)


def test_show_an_unknown_server_suggests_close_names(cli: Cli, seeded: Database) -> None:
    result = cli("server", "show", "production")
    assert_one_line_error(result, ExitStatus.FAILED, "Server 'production' not found")
    assert "Did you mean: 'Production'?" in result.stderr


# --- update -------------------------------------------------------------------------


def test_update_changes_url_description_and_tls(cli: Cli, seeded: Database, data_dir: Path) -> None:
    result = cli(
        "server",
        "update",
        "Production",
        "--url",
        "HTTPS://n8n.example.com/n8n/",
        "--description",
        "behind the proxy",
        "--skip-ssl-verify",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Server 'Production' updated: URL https://n8n.example.com")
    _, _, url, description, skip, _ = servers_by_name(data_dir)["Production"]
    assert (url, description, skip) == ("https://n8n.example.com/n8n", "behind the proxy", 1)
    back = cli("server", "update", "Production", "--verify-ssl", "--description", "")
    assert back.exit_code == 0
    assert "description cleared" in back.stdout
    assert servers_by_name(data_dir)["Production"][3:5] == (None, 0)


def test_update_rename_keeps_the_links(cli: Cli, seeded: Database, data_dir: Path) -> None:
    result = cli("server", "update", "Production", "--rename", " Production 🚀 ")
    assert result.exit_code == 0, result.output
    assert "renamed to 'Production 🚀'" in result.stdout
    assert ("prod_key", "Production 🚀") in links(data_dir)
    assert "Production" not in servers_by_name(data_dir)


def test_update_with_the_current_values_changes_nothing(
    cli: Cli, seeded: Database, data_dir: Path
) -> None:
    before = db_rows(data_dir)
    result = cli("server", "update", "Production", "--url", "https://n8n.example.com/")
    assert result.exit_code == 0
    assert "unchanged" in result.stdout
    assert db_rows(data_dir) == before


def test_update_to_plain_http_warns(cli: Cli, seeded: Database) -> None:
    result = cli("server", "update", "Production", "--url", "http://n8n.example.com")
    assert result.exit_code == 0
    assert "unencrypted" in result.stderr


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        ((), ExitStatus.USAGE, "Nothing to update"),
        (("--url", "ftp://x"), ExitStatus.USAGE, "Not an http(s) URL"),
        (("--url", ""), ExitStatus.USAGE, "The server URL is empty"),
        (("--rename", "Staging"), ExitStatus.FAILED, "Server 'Staging' already exists"),
        (("--rename", "  "), ExitStatus.USAGE, "The server name is empty"),
        (
            ("--rename", "Stage", "--url", "not a url"),
            ExitStatus.USAGE,
            "Not a server URL",
        ),
    ],
)
def test_update_refuses_bad_input_and_changes_nothing(
    cli: Cli,
    seeded: Database,
    data_dir: Path,
    args: tuple[str, ...],
    status: int,
    message: str,
) -> None:
    before = db_rows(data_dir)
    result = cli("server", "update", "Production", *args)
    assert_one_line_error(result, status, message)
    assert db_rows(data_dir) == before


def test_update_an_unknown_server(cli: Cli, seeded: Database, data_dir: Path) -> None:
    before = db_rows(data_dir)
    result = cli("server", "update", "Prodution", "--url", "https://x.example.com")
    assert_one_line_error(result, ExitStatus.FAILED, "Server 'Prodution' not found")
    assert "Did you mean: 'Production'?" in result.stderr
    assert db_rows(data_dir) == before


# --- link / unlink ------------------------------------------------------------------


def test_link_twice_is_harmless_and_says_so(cli: Cli, seeded: Database, data_dir: Path) -> None:
    first = cli("server", "link", "spare_key", "Staging")
    assert first.exit_code == 0, first.output
    assert first.stdout == "Linked API key 'spare_key' to server 'Staging'\n"
    assert ("spare_key", "Staging") in links(data_dir)
    before = db_rows(data_dir)
    second = cli("server", "link", "spare_key", "Staging")
    assert second.exit_code == 0
    assert "already linked" in second.stdout and "nothing changed" in second.stdout
    assert db_rows(data_dir) == before


def test_a_key_can_serve_several_servers(cli: Cli, seeded: Database, data_dir: Path) -> None:
    assert cli("server", "link", "prod_key", "Staging").exit_code == 0
    assert {("prod_key", "Production"), ("prod_key", "Staging")} <= links(data_dir)


def test_linking_an_inactive_key_works_with_a_note(cli: Cli, seeded: Database) -> None:
    result = cli("server", "link", "old_key", "Staging")
    assert result.exit_code == 0
    assert "deactivated" in result.stderr


def test_unlink_removes_only_the_link(cli: Cli, seeded: Database, data_dir: Path) -> None:
    before = db_rows(data_dir)
    result = cli("server", "unlink", "prod_key", "Production")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Unlinked API key 'prod_key' from server 'Production'\n"
    assert ("prod_key", "Production") not in links(data_dir)
    after = db_rows(data_dir)
    assert after["servers"] == before["servers"]
    assert after["api_keys"] == before["api_keys"]
    again = cli("server", "unlink", "prod_key", "Production")
    assert again.exit_code == 0
    assert "is not linked" in again.stdout and "nothing changed" in again.stdout
    assert db_rows(data_dir) == after


@pytest.mark.parametrize("command", ["link", "unlink"])
@pytest.mark.parametrize(
    ("key", "server", "message", "suggestion"),
    [
        ("prod_ky", "Production", "API key 'prod_ky' not found", "'prod_key'"),
        ("prod_key", "Prodution", "Server 'Prodution' not found", "'Production'"),
    ],
)
def test_link_and_unlink_of_unknown_names_fail_with_suggestions(
    cli: Cli,
    seeded: Database,
    data_dir: Path,
    command: str,
    key: str,
    server: str,
    message: str,
    suggestion: str,
) -> None:
    before = db_rows(data_dir)
    result = cli("server", command, key, server)
    assert_one_line_error(result, ExitStatus.FAILED, message)
    assert f"Did you mean: {suggestion}" in result.stderr
    assert db_rows(data_dir) == before


def test_link_with_the_arguments_swapped_says_which_comes_first(
    cli: Cli, seeded: Database, data_dir: Path
) -> None:
    before = db_rows(data_dir)
    result = cli("server", "link", "Staging", "spare_key")
    assert_one_line_error(result, ExitStatus.USAGE, "'Staging' is a server")
    assert "n8n-deploy server link KEY SERVER" in result.stderr
    assert db_rows(data_dir) == before


# --- keys ---------------------------------------------------------------------------


def test_keys_lists_the_linked_keys_like_apikey_list(cli: Cli, seeded: Database) -> None:
    secret = add_key(seeded, "ci_key", servers=["Production", "Staging"])
    result = cli("server", "keys", "Production")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "🔑 API Keys linked to 'Production'"
    header = next(line for line in lines if line.startswith("│ Name"))
    assert [h.strip() for h in header.strip("│").split("│")] == list(KEY_HEADERS)
    names = [line.split("│")[1].strip() for line in lines if line.startswith("│ ")][1:]
    assert names == ["ci_key", "old_key", "prod_key"]
    assert "🚫 Inactive" in result.stdout
    assert "Production, Staging" in result.stdout  # the servers column
    assert secret not in result.output
    assert "********" + secret[-4:] in result.stdout


def test_keys_unmask_shows_the_keys_with_a_warning(cli: Cli, seeded: Database) -> None:
    secret = add_key(seeded, "ci_key", servers=["Staging"])
    result = cli("server", "keys", "Staging", "--unmask", "--no-emoji")
    assert result.exit_code == 0
    assert secret in result.stdout
    assert result.stderr.startswith("Warning: --unmask shows full API keys")
    assert not has_emoji(result.output)
    assert result.stdout.isascii()
    as_json = cli("server", "keys", "Staging", "--json", "--unmask")
    assert secret in {k["api_key"] for k in json.loads(as_json.stdout)}


def test_keys_json_uses_the_shared_key_shape_masked(cli: Cli, seeded: Database) -> None:
    secret = add_key(seeded, "ci_key", servers=["Staging"])
    result = cli("server", "keys", "Staging", "--json")
    assert result.stderr == ""
    assert secret not in result.stdout
    data = json.loads(result.stdout)
    assert [k["name"] for k in data] == ["ci_key", "staging_key"]
    assert data[0]["servers"] == ["Staging"]
    assert data[0]["api_key"] == "********" + secret[-4:]
    assert data[0]["status"] == "active"


def test_keys_of_a_server_without_keys(cli: Cli) -> None:
    cli("server", "create", "Empty", "https://empty.example.com")
    result = cli("server", "keys", "Empty")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "No API keys are linked to server 'Empty'" in result.stderr
    assert json.loads(cli("server", "keys", "Empty", "--json").stdout) == []


def test_keys_of_an_unknown_server(cli: Cli, seeded: Database) -> None:
    result = cli("server", "keys", "Stagin")
    assert_one_line_error(result, ExitStatus.FAILED, "Server 'Stagin' not found")
    assert "Did you mean: 'Staging'?" in result.stderr


# --- delete -------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--confirm", "--yes", "-y"])
def test_delete_removes_the_server_and_its_links_but_keeps_the_keys(
    cli: Cli, seeded: Database, data_dir: Path, flag: str
) -> None:
    before = db_rows(data_dir)
    result = cli("server", "delete", "Production", flag)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Server 'Production' deleted; 2 linked API keys unlinked (the keys are kept)\n"
    )
    after = db_rows(data_dir)
    assert "Production" not in servers_by_name(data_dir)
    assert after["api_keys"] == before["api_keys"]
    assert links(data_dir) == {("staging_key", "Staging")}


def test_delete_away_from_a_terminal_needs_confirm(
    cli: Cli, seeded: Database, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prompts, "stdin_is_terminal", lambda: False)
    before = db_rows(data_dir)
    result = cli("server", "delete", "Production")
    assert_one_line_error(result, ExitStatus.FAILED, "Refusing to delete server 'Production'")
    assert "--confirm" in result.stderr
    assert db_rows(data_dir) == before


def test_delete_at_a_terminal_asks_first(
    cli: Cli, seeded: Database, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prompts, "stdin_is_terminal", lambda: True)
    result = cli("server", "delete", "Production", input="y\n")
    assert result.exit_code == 0, result.output
    assert (
        "Delete server 'Production'? 2 linked API keys will be unlinked (the keys stay). "
        "This cannot be undone [y/N]:"
    ) in result.stderr
    assert "Production" not in servers_by_name(data_dir)
    assert len(db_rows(data_dir)["api_keys"]) == 4


@pytest.mark.parametrize("answer", ["n\n", "\n", "no\n"])
def test_delete_declined_at_a_terminal_keeps_everything(
    cli: Cli, seeded: Database, data_dir: Path, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    monkeypatch.setattr(prompts, "stdin_is_terminal", lambda: True)
    before = db_rows(data_dir)
    result = cli("server", "delete", "Staging", input=answer)
    assert result.exit_code == ExitStatus.FAILED
    assert "1 linked API key will be unlinked" in result.stderr
    assert "Cancelled; server 'Staging' was kept; nothing was deleted." in result.stderr
    assert "deleted" not in result.stdout
    assert db_rows(data_dir) == before


def test_delete_a_server_without_keys_asks_without_mentioning_keys(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> None:
    cli("server", "create", "Empty", "https://empty.example.com")
    monkeypatch.setattr(prompts, "stdin_is_terminal", lambda: True)
    result = cli("server", "delete", "Empty", input="y\n")
    assert "Delete server 'Empty'? This cannot be undone [y/N]:" in result.stderr
    assert result.stdout.endswith("Server 'Empty' deleted\n")
    assert servers_by_name(data_dir) == {}


def test_delete_an_unknown_server(cli: Cli, seeded: Database, data_dir: Path) -> None:
    before = db_rows(data_dir)
    result = cli("server", "delete", "Prod", "--confirm")
    assert_one_line_error(result, ExitStatus.FAILED, "Server 'Prod' not found")
    assert db_rows(data_dir) == before


# --- cascades -----------------------------------------------------------------------


def test_a_deleted_key_disappears_from_server_keys_and_counts(cli: Cli, seeded: Database) -> None:
    with seeded.session(write=True) as session:
        keys = ApiKeyRepository(session)
        keys.delete(keys.get("prod_key"))
    result = cli("server", "keys", "Production", "--json")
    assert [k["name"] for k in json.loads(result.stdout)] == ["old_key"]
    listed = json.loads(cli("server", "list", "--json").stdout)
    assert (listed[0]["keys_active"], listed[0]["keys_total"]) == (0, 1)


def test_a_deleted_server_leaves_its_keys_with_no_server(cli: Cli, seeded: Database) -> None:
    assert cli("server", "delete", "Production", "--confirm").exit_code == 0
    with seeded.session() as session:
        keys = {key.name: key for key in ApiKeyRepository(session).list()}
        assert set(keys) == {"old_key", "prod_key", "spare_key", "staging_key"}
        assert keys["prod_key"].servers == []
        assert keys["old_key"].servers == []
        assert [s.name for s in keys["staging_key"].servers] == ["Staging"]


def test_renaming_a_server_shows_under_the_new_name_on_its_keys(cli: Cli, seeded: Database) -> None:
    cli("server", "update", "Staging", "--rename", "Stage")
    data = json.loads(cli("server", "keys", "Stage", "--json").stdout)
    assert data[0]["servers"] == ["Stage"]


# --- the reference's examples, as written ---------------------------------------------

SERVER_KEY_ASSOCIATION = """
n8n-deploy server link production_key "Production Server"
n8n-deploy server keys "Production Server"
"""

MULTI_ENVIRONMENT = """
# Development Environment
n8n-deploy server create "Development" http://n8n-dev.internal:5678
n8n-deploy apikey add - --name dev_key --server "Development"

# Staging Environment
n8n-deploy server create "Staging" http://n8n-staging.internal:5678
n8n-deploy apikey add - --name staging_key --server "Staging"

# Production Environment
n8n-deploy server create "Production" https://n8n.example.com
n8n-deploy apikey add - --name prod_key --server "Production"

# List all configurations
n8n-deploy server list
n8n-deploy apikey list
"""


def test_the_reference_server_key_association_runs_as_written(
    cli: Cli, database: Database, data_dir: Path
) -> None:
    assert cli("server", "create", "Production Server", "https://n8n.example.com").exit_code == 0
    secret = add_key(database, "production_key")
    link_line, keys_line = SERVER_KEY_ASSOCIATION.strip().splitlines()

    linked = run_line(cli, link_line)
    assert linked.exit_code == 0, linked.output
    assert links(data_dir) == {("production_key", "Production Server")}

    shown = run_line(cli, keys_line)
    assert shown.exit_code == 0, shown.output
    assert "production_key" in shown.stdout
    assert "✅ Active" in shown.stdout
    assert secret not in shown.output


def test_the_reference_multi_environment_workflow_runs_as_written(
    cli: Cli, database: Database, data_dir: Path
) -> None:
    secrets: dict[str, str] = {}
    listing = ""
    for line in MULTI_ENVIRONMENT.strip().splitlines():
        if not line or line.startswith("#"):
            continue
        args = shlex.split(line)
        if args[1] == "apikey":
            # `apikey add` and `apikey list` are the apikey commands' own tests; here the
            # key is stored and linked the way `apikey add --server` does.
            if args[2] == "add":
                name, server = args[args.index("--name") + 1], args[args.index("--server") + 1]
                secrets[name] = add_key(database, name, servers=[server])
            continue
        result = run_line(cli, line)
        assert result.exit_code == 0, (line, result.output)
        if args[2] == "list":
            listing = result.stdout
    assert servers_by_name(data_dir).keys() == {"Development", "Staging", "Production"}
    assert links(data_dir) == {
        ("dev_key", "Development"),
        ("staging_key", "Staging"),
        ("prod_key", "Production"),
    }
    rows = {line.split("│")[1].strip(): line for line in listing.splitlines() if "│ " in line}
    assert "http://n8n-dev.internal:5678" in rows["Development"]
    assert "http://n8n-staging.internal:5678" in rows["Staging"]
    assert "https://n8n.example.com" in rows["Production"]
    for name in ("Development", "Staging", "Production"):
        assert "1/1" in rows[name]
    for secret in secrets.values():
        assert secret not in listing


# --- shell completion ---------------------------------------------------------------


def _completion_run(words: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """Ask n8n-deploy for completions as bash does on Tab (with -X importtime on stderr)."""
    env = dict(
        os.environ,
        _N8N_DEPLOY_COMPLETE="complete_bash",
        COMP_WORDS=words,
        COMP_CWORD=str(len(words.split()) - 1),
        N8N_DEPLOY_DATA_DIR=str(data_dir),
    )
    code = "import sys; sys.argv=['n8n-deploy']; from n8n_deploy.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def _complete(words: str, data_dir: Path) -> list[str]:
    return _completion_run(words, data_dir).stdout.split()


def _not_import_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("import time:")]


@pytest.mark.e2e
@pytest.mark.sqlite_only
def test_name_completion_on_sqlite_reads_without_sqlalchemy(
    seeded: Database, data_dir: Path
) -> None:
    """Every Tab pays for what it imports: names come from the standard library's sqlite3."""
    result = _completion_run("n8n-deploy apikey show pro", data_dir)
    assert result.stdout.split() == ["prod_key"]
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
    assert not {name for name in imported if name.split(".")[0] in ("sqlalchemy", "alembic")}
    assert _not_import_lines(result.stderr) == []


@pytest.mark.e2e
@pytest.mark.sqlite_only
def test_completion_reads_past_a_writer_and_a_damaged_file_completes_nothing(
    seeded: Database, data_dir: Path
) -> None:
    db_file = data_dir / "n8n-deploy.db"
    with closing(sqlite3.connect(db_file, isolation_level=None)) as writer:
        writer.execute("BEGIN EXCLUSIVE")  # another process in the middle of a write (WAL)
        writer.execute("DELETE FROM servers")
        during = _completion_run("n8n-deploy server show Pro", data_dir)
        writer.execute("ROLLBACK")
    assert during.stdout.split() == ["Production"]  # the last committed names
    assert _not_import_lines(during.stderr) == []
    seeded.dispose()
    for suffix in ("-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    db_file.write_bytes(b"not a database" * 100)
    damaged = _completion_run("n8n-deploy server show Pro", data_dir)
    assert damaged.returncode == 0 and damaged.stdout.split() == []
    assert _not_import_lines(damaged.stderr) == []
    assert db_file.read_bytes() == b"not a database" * 100


@pytest.mark.e2e
def test_server_and_key_names_complete_in_the_shell(seeded: Database, data_dir: Path) -> None:
    assert _complete("n8n-deploy server show Pro", data_dir) == ["Production"]
    assert _complete("n8n-deploy server keys S", data_dir) == ["Staging"]
    assert _complete("n8n-deploy server delete P", data_dir) == ["Production"]
    assert _complete("n8n-deploy server link sp", data_dir) == ["spare_key"]
    assert _complete("n8n-deploy server unlink prod_key St", data_dir) == ["Staging"]


@pytest.mark.e2e
@pytest.mark.sqlite_only
def test_completion_never_offers_a_name_that_would_show_a_key_or_act_on_the_terminal(
    seeded: Database, data_dir: Path
) -> None:
    """Names another program wrote: the shell would print a candidate as it is."""
    key = make_jwt(exp_days=9, sub="as-a-server-name")
    seeded.dispose()
    with closing(sqlite3.connect(data_dir / "n8n-deploy.db")) as conn, conn:
        conn.execute("UPDATE servers SET name = ? WHERE name = 'Staging'", (f"S {key}",))
        conn.execute("UPDATE api_keys SET name = 'sp\x1b[2Jare' WHERE name = 'spare_key'")
    shown = _completion_run("n8n-deploy server show S", data_dir).stdout
    assert shown.split() == [] and key[-12:] not in shown
    assert _complete("n8n-deploy server link sp", data_dir) == []
    assert _complete("n8n-deploy server show Pro", data_dir) == ["Production"]


@pytest.mark.e2e
def test_completion_without_a_database_offers_nothing_and_creates_nothing(
    data_dir: Path,
) -> None:
    assert _complete("n8n-deploy server show P", data_dir) == []
    assert not data_dir.exists()


def test_create_link_and_unlink_print_json_when_asked(cli: Cli) -> None:
    made = json.loads(cli("server", "create", "Prod", "https://n8n.example.com", "--json").stdout)
    assert (made["name"], made["url"], made["keys_total"]) == ("Prod", "https://n8n.example.com", 0)
    cli("apikey", "add", "-", "--name", "k", input=make_jwt())
    linked = json.loads(cli("server", "link", "k", "Prod", "--json").stdout)
    assert linked == {"key": "k", "server": "Prod", "linked": True, "changed": True}
    unlinked = json.loads(cli("server", "unlink", "k", "Prod", "--json").stdout)
    assert unlinked == {"key": "k", "server": "Prod", "linked": False, "changed": True}
    failed = cli("server", "link", "nope", "Prod", "--json")
    assert json.loads(failed.stdout)["exit_status"] == ExitStatus.FAILED


def test_deletes_print_json_when_asked(cli: Cli) -> None:
    cli("server", "create", "Prod", "https://n8n.example.com")
    cli("apikey", "add", "-", "--name", "k", "--server", "Prod", input=make_jwt())
    gone = json.loads(cli("apikey", "delete", "k", "--confirm", "--json").stdout)
    assert gone == {"name": "k", "deleted": True, "unlinked_from": ["Prod"]}
    server = json.loads(cli("server", "delete", "Prod", "--confirm", "--json").stdout)
    assert server == {"name": "Prod", "deleted": True, "keys_unlinked": 0}


def test_update_prints_the_record_with_json(cli: Cli) -> None:
    cli("server", "create", "Prod", "https://n8n.example.com")
    done = json.loads(
        cli("server", "update", "Prod", "--url", "https://n8n2.example.com", "--json").stdout
    )
    assert (done["name"], done["url"], done["changed"]) == (
        "Prod",
        "https://n8n2.example.com",
        True,
    )
