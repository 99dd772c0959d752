"""``n8n-deploy apikey add | list | show | activate | deactivate | delete`` through the real CLI.

Each test asserts what a user sees (stdout, stderr, exit status) and what is in the SQLite
file afterwards.  The reference's own command lines (docs "API Key Operations") are run as
written, with real keys in place of its truncated placeholder.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from n8n_deploy.base.status import ExitStatus
from n8n_deploy.cli import prompts
from n8n_deploy.store.engine import Database
from n8n_deploy.store.repositories import ApiKeyRepository, ServerRepository
from tests.helpers import (
    Run,
    database_rows,
    dump_database,
    installed_script,
    make_jwt,
    make_legacy_key,
    one_line_error,
    raw_jwt,
)

# Every test here runs on SQLite, PostgreSQL and MariaDB (tests/conftest.py), except those
# marked sqlite_only: they are about the SQLite file itself.
pytestmark = pytest.mark.usefixtures("engine")

Cli = Callable[..., Run]

PLACEHOLDER = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..."
HEADERS = ["Name", "Created", "Last Used", "Status", "Expires", "Servers", "Key", "Description"]
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
NON_ASCII = re.compile(r"[^\x00-\x7f]")


# --- helpers -----------------------------------------------------------------------------


def rows(data_dir: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return database_rows(data_dir, sql, *params)


def stored_keys(data_dir: Path) -> dict[str, tuple[str, str | None, int]]:
    """name -> (api_key, description, is_active)"""
    found = rows(data_dir, "SELECT name, api_key, description, is_active FROM api_keys")
    return {name: (key, description, active) for name, key, description, active in found}


def links(data_dir: Path) -> set[tuple[str, str]]:
    """(key name, server name) pairs."""
    found = rows(
        data_dir,
        "SELECT k.name, s.name FROM server_api_keys l "
        "JOIN api_keys k ON k.id = l.api_key_id JOIN servers s ON s.id = l.server_id",
    )
    return {(key, server) for key, server in found}


def servers(data_dir: Path) -> dict[str, str]:
    return dict(rows(data_dir, "SELECT name, url FROM servers"))


def shell(cli: Cli, line: str, key: str | None = None, *, stdin: str | None = None) -> Run:
    """Run one documented command line: ``[echo X |] [VAR=value ...] n8n-deploy ARGS``.
    The reference's placeholder key is replaced by ``key``; ``stdin`` feeds a bare ``-``."""
    env: dict[str, str] = {}
    text = stdin
    if "|" in line:
        left, line = line.split("|", 1)
        echo = shlex.split(left)
        assert echo[0] == "echo"
        text = " ".join(echo[1:]) + "\n"
    words = shlex.split(line)
    while "=" in words[0]:
        variable, value = words.pop(0).split("=", 1)
        env[variable] = value
    assert words[0] == "n8n-deploy"
    if key is not None:
        words = [key if word == PLACEHOLDER else word for word in words]
        text = text.replace(PLACEHOLDER, key) if text is not None else None
    return cli(*words[1:], input=text, env=env or None)


def table_lines(stdout: str) -> list[list[str]]:
    """The cells of each row of a boxed table (either border style)."""
    cells = []
    for line in stdout.splitlines():
        if line.startswith(("│", "|")) and not re.fullmatch(r"[|+-]+", line):
            cells.append([cell.strip() for cell in re.split(r"[│|]", line)[1:-1]])
    return cells


@pytest.fixture
def at_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prompts, "stdin_is_terminal", lambda: True)


@pytest.fixture
def production(database: Database) -> None:
    """A server named as in the reference, created the way `server create` would."""
    with database.session(write=True) as s:
        ServerRepository(s).create("Production Server 🚀", "https://n8n.example.com")


# --- add: the reference ------------------------------------------------------------------


def test_reference_add_from_stdin(cli: Cli, data_dir: Path) -> None:
    key = make_jwt()
    line = f'echo "{PLACEHOLDER}" | n8n-deploy apikey add - --name production_key'
    run = shell(cli, line, key)
    assert run.exit_code == 0, run.output
    assert run.stdout == "✅ API key 'production_key' added\n"
    assert run.stderr == ""
    assert stored_keys(data_dir) == {"production_key": (key, None, 1)}


def test_reference_add_as_an_argument_works_with_a_one_line_warning(
    cli: Cli, data_dir: Path
) -> None:
    key = make_jwt()
    run = shell(cli, f'n8n-deploy apikey add "{PLACEHOLDER}" --name staging_key', key)
    assert run.exit_code == 0, run.output
    assert run.stdout == "✅ API key 'staging_key' added\n"
    (warning,) = run.stderr.splitlines()
    assert "shell history" in warning and "process list" in warning
    assert "apikey add - --name staging_key" in warning
    assert key not in run.output
    assert stored_keys(data_dir) == {"staging_key": (key, None, 1)}


def test_reference_placeholder_itself_is_an_invalid_jwt(cli: Cli, data_dir: Path) -> None:
    run = shell(cli, f'n8n-deploy apikey add "{PLACEHOLDER}" --name staging_key')
    one_line_error(run, ExitStatus.INVALID_FORMAT, "Invalid JWT token format: ")
    assert "found 4" in run.stderr
    assert dump_database(data_dir) is None  # refused before the database was even opened


def test_reference_link_to_an_existing_emoji_server(
    cli: Cli, data_dir: Path, production: None
) -> None:
    key = make_jwt()
    line = 'n8n-deploy apikey add - --name prod_key --server "Production Server 🚀"'
    run = shell(cli, line, stdin=key)
    assert run.exit_code == 0, run.output
    assert run.stdout == "✅ API key 'prod_key' added, linked to server 'Production Server 🚀'\n"
    assert links(data_dir) == {("prod_key", "Production Server 🚀")}
    assert servers(data_dir) == {"Production Server 🚀": "https://n8n.example.com"}


def test_reference_link_to_a_missing_server_runs_verbatim_in_a_fresh_folder(
    cli: Cli, data_dir: Path
) -> None:
    """The reference: --server "creates server if doesn't exist". Nothing on the line says
    where the server is: it is created without a URL, visibly so, with the fix named."""
    line = 'n8n-deploy apikey add - --name prod_key --server "Production Server 🚀"'
    run = shell(cli, line, stdin=make_jwt())
    assert run.exit_code == 0, run.output
    assert run.stdout == (
        "✅ API key 'prod_key' added, linked to new server 'Production Server 🚀' (no URL yet)\n"
    )
    assert "was created without a URL: set it with n8n-deploy server update" in run.stderr
    assert links(data_dir) == {("prod_key", "Production Server 🚀")}
    listed = json.loads(cli("server", "list", "--json").stdout)
    assert [(s["name"], s["url"]) for s in listed] == [("Production Server 🚀", None)]
    assert "(no URL yet)" in cli("server", "list").stdout
    assert "(no URL yet)" in cli("apikey", "show", "prod_key").stdout

    tested = cli("apikey", "test", "prod_key")
    assert tested.exit_code == ExitStatus.FAILED
    assert "Server 'Production Server 🚀' has no URL yet" in tested.stdout
    assert "n8n-deploy server update 'Production Server 🚀' --url URL" in tested.stdout

    fixed = cli("server", "update", "Production Server 🚀", "--url", "https://n8n.example.com")
    assert fixed.exit_code == 0, fixed.output
    assert servers(data_dir) == {"Production Server 🚀": "https://n8n.example.com"}


def test_a_missing_server_is_created_from_n8n_server_url(cli: Cli, data_dir: Path) -> None:
    line = (
        "N8N_SERVER_URL=https://N8N.example.com/ "
        'n8n-deploy apikey add - --name prod_key --server "Production Server 🚀"'
    )
    run = shell(cli, line, stdin=make_jwt())
    assert run.exit_code == 0, run.output
    assert run.stdout == (
        "✅ API key 'prod_key' added, linked to new server 'Production Server 🚀' "
        "(https://n8n.example.com)\n"
    )
    assert servers(data_dir) == {"Production Server 🚀": "https://n8n.example.com"}
    assert links(data_dir) == {("prod_key", "Production Server 🚀")}


def test_a_misspelt_server_gets_suggestions(cli: Cli, data_dir: Path, production: None) -> None:
    run = cli(
        "apikey", "add", "-", "--name", "k", "--server", "Production Server", input=make_jwt()
    )
    one_line_error(run, ExitStatus.FAILED, "Server 'Production Server' not found. ")
    assert "Did you mean: 'Production Server 🚀'?" in run.stderr
    assert "To create a new server of that name instead" in run.stderr
    assert stored_keys(data_dir) == {}


def test_reference_add_with_a_description(cli: Cli, data_dir: Path) -> None:
    key = make_jwt()
    line = 'n8n-deploy apikey add - --name dev_key --description "Development environment key"'
    run = shell(cli, line, stdin=key)
    assert run.exit_code == 0, run.output
    assert stored_keys(data_dir) == {"dev_key": (key, "Development environment key", 1)}
    listed = json.loads(cli("apikey", "list", "--json").stdout)
    assert listed[0]["description"] == "Development environment key"


def test_reference_auto_link_from_the_environment_creates_a_server_named_host_port(
    cli: Cli, data_dir: Path
) -> None:
    line = "N8N_SERVER_URL=http://n8n.local:5678 n8n-deploy apikey add - --name local_key"
    run = shell(cli, line, stdin=make_jwt())
    assert run.exit_code == 0, run.output
    assert run.stdout == (
        "✅ API key 'local_key' added, linked to new server 'n8n.local:5678' "
        "(http://n8n.local:5678)\n"
    )
    assert servers(data_dir) == {"n8n.local:5678": "http://n8n.local:5678"}
    assert links(data_dir) == {("local_key", "n8n.local:5678")}


def test_the_environment_url_is_compared_normalised_and_reuses_a_server(
    cli: Cli, data_dir: Path, database: Database
) -> None:
    with database.session(write=True) as s:
        ServerRepository(s).create("Local", "http://n8n.local:5678")
    run = cli(
        "apikey",
        "add",
        "-",
        "--name",
        "local_key",
        input=make_jwt(),
        env={"N8N_SERVER_URL": "HTTP://N8N.LOCAL:5678/"},
    )
    assert run.exit_code == 0, run.output
    assert run.stdout == "✅ API key 'local_key' added, linked to server 'Local'\n"
    assert servers(data_dir) == {"Local": "http://n8n.local:5678"}
    assert links(data_dir) == {("local_key", "Local")}


def test_server_option_wins_over_the_environment_with_a_warning(
    cli: Cli, data_dir: Path, production: None
) -> None:
    run = cli(
        "apikey",
        "add",
        "-",
        "--name",
        "k",
        "--server",
        "Production Server 🚀",
        input=make_jwt(),
        env={"N8N_SERVER_URL": "http://localhost:5678"},
    )
    assert run.exit_code == 0, run.output
    assert links(data_dir) == {("k", "Production Server 🚀")}
    assert "N8N_SERVER_URL (http://localhost:5678) is not the URL of server" in run.stderr
    assert set(servers(data_dir)) == {"Production Server 🚀"}


def test_a_bad_n8n_server_url_is_refused_before_anything_is_stored(
    cli: Cli, data_dir: Path
) -> None:
    run = cli(
        "apikey",
        "add",
        "-",
        "--name",
        "k",
        input=make_jwt(),
        env={"N8N_SERVER_URL": "ftp://n8n.local"},
    )
    one_line_error(run, ExitStatus.USAGE, "N8N_SERVER_URL is not usable: Not an http(s) URL")
    assert dump_database(data_dir) is None


def test_a_host_name_taken_by_another_server_is_refused(
    cli: Cli, data_dir: Path, database: Database
) -> None:
    with database.session(write=True) as s:
        ServerRepository(s).create("n8n.local:5678", "https://n8n.local:5678")
    before = dump_database(data_dir)
    run = cli(
        "apikey",
        "add",
        "-",
        "--name",
        "k",
        input=make_jwt(),
        env={"N8N_SERVER_URL": "http://n8n.local:5678"},
    )
    one_line_error(run, ExitStatus.FAILED, "No server has the URL http://n8n.local:5678")
    assert "--server" in run.stderr
    assert dump_database(data_dir) == before


# --- add: reading the key ----------------------------------------------------------------


def test_without_a_key_argument_piped_stdin_is_read(cli: Cli, data_dir: Path) -> None:
    key = make_jwt()
    run = cli("apikey", "add", "--name", "k", input=key + "\n")
    assert run.exit_code == 0, run.output
    assert run.stderr == ""
    assert stored_keys(data_dir)["k"][0] == key


def test_at_a_terminal_the_key_is_prompted_for_without_echo(
    cli: Cli, data_dir: Path, at_terminal: None
) -> None:
    key = make_jwt()
    run = cli("apikey", "add", "--name", "k", input=key + "\n")
    assert run.exit_code == 0, run.output
    assert "API key (input hidden)" in run.stderr
    assert "✅ API key 'k' added" in run.stdout
    assert key not in run.output
    assert stored_keys(data_dir)["k"][0] == key


def test_a_dash_at_a_terminal_prompts_too(cli: Cli, data_dir: Path, at_terminal: None) -> None:
    key = make_legacy_key(3)
    run = cli("apikey", "add", "-", "--name", "k", input=key + "\n")
    assert run.exit_code == 0, run.output
    assert key not in run.output
    assert stored_keys(data_dir)["k"][0] == key


def test_an_empty_answer_at_the_prompt_is_an_empty_key(
    cli: Cli, data_dir: Path, at_terminal: None
) -> None:
    """Said for the prompt: paste the key there (or pipe it), not only 'pipe it'."""
    run = cli("apikey", "add", "--name", "k", input="  \n")
    assert run.exit_code == ExitStatus.USAGE
    assert "Error: No API key was typed. Paste it at the prompt (it is not shown)" in run.stderr
    assert dump_database(data_dir) is None


def test_end_of_input_at_the_prompt_changes_nothing(
    cli: Cli, data_dir: Path, at_terminal: None
) -> None:
    run = cli("apikey", "add", "--name", "k", input="")
    assert run.exit_code == ExitStatus.INTERRUPTED
    assert "nothing was changed" in run.stderr
    assert dump_database(data_dir) is None


def test_a_bad_name_is_refused_before_asking_for_the_key(
    cli: Cli, data_dir: Path, at_terminal: None
) -> None:
    run = cli("apikey", "add", "--name", "   ", input=make_jwt() + "\n")
    one_line_error(run, ExitStatus.USAGE, "The API key name is empty")
    assert "API key (input hidden)" not in run.output


@pytest.mark.parametrize("text", ["  {key}  \n", "\n\n{key}\n\n", "\t{key}\r\n", "{key}"], ids=repr)
def test_surrounding_whitespace_and_newlines_are_stripped(
    cli: Cli, data_dir: Path, text: str
) -> None:
    key = make_jwt()
    run = cli("apikey", "add", "-", "--name", "k", input=text.format(key=key))
    assert run.exit_code == 0, run.output
    assert stored_keys(data_dir)["k"][0] == key


def test_reference_troubleshooting_fix_for_whitespace(cli: Cli, data_dir: Path) -> None:
    key = make_jwt()
    # API_KEY=$(echo "$API_KEY" | tr -d '[:space:]') leaves the bare key; echo adds "\n".
    run = shell(cli, f'echo "{key}" | n8n-deploy apikey add - --name fixed_key')
    assert run.exit_code == 0, run.output
    assert stored_keys(data_dir) == {"fixed_key": (key, None, 1)}


@pytest.fixture
def one_key(cli: Cli, data_dir: Path) -> list[str] | None:
    """A database holding one key, and its snapshot (to prove failures change nothing)."""
    assert cli("apikey", "add", "-", "--name", "existing", input=make_jwt(sub="x")).exit_code == 0
    return dump_database(data_dir)


@pytest.mark.parametrize(
    ("text", "status", "starts"),
    [
        ("", ExitStatus.USAGE, "The API key is empty"),
        ("  \n\n", ExitStatus.USAGE, "The API key is empty"),
        ("{head} {tail}", ExitStatus.INVALID_FORMAT, "Invalid JWT token format: the key contains"),
        ("{head}\n{tail}", ExitStatus.INVALID_FORMAT, "Invalid JWT token format: the key contains"),
        ("{head}", ExitStatus.INVALID_FORMAT, "Invalid JWT token format: expected 3"),
        ("hello", ExitStatus.INVALID_FORMAT, "Invalid JWT token format: expected 3"),
        ("n8n_api_1234", ExitStatus.INVALID_FORMAT, "Invalid JWT token format: a legacy"),
        ("a.b.c", ExitStatus.INVALID_FORMAT, "Invalid JWT token format: "),
        ("{nojson}", ExitStatus.INVALID_FORMAT, "Invalid JWT token format: "),
        ("{noalg}", ExitStatus.INVALID_FORMAT, "Invalid JWT token format: the header has no"),
        ("x" * 20_000, ExitStatus.INVALID_FORMAT, "Invalid JWT token format: stdin holds"),
        ("{expired}", ExitStatus.KEY_EXPIRED, "The API key expired on "),
    ],
    ids=[
        "empty",
        "blank",
        "space-inside",
        "newline-inside",
        "two-parts",
        "word",
        "short-legacy",
        "not-base64",
        "not-json",
        "no-alg",
        "huge",
        "expired",
    ],
)
def test_bad_keys_give_one_line_their_status_and_change_nothing(
    cli: Cli, data_dir: Path, one_key: list[str], text: str, status: int, starts: str
) -> None:
    key = make_jwt(sub="bad")
    head, tail = key[:60], key[60:]
    expired = make_jwt(exp_days=-2, sub="old")
    raw = text.format(
        head=head,
        tail=tail,
        nojson=raw_jwt(header=["x"]),
        noalg=raw_jwt(header={"typ": "JWT"}),
        expired=expired,
    )
    run = cli("apikey", "add", "-", "--name", "new", input=raw)
    one_line_error(run, status, starts)
    for secret in (key, head, tail, expired):
        assert secret not in run.stderr
    assert dump_database(data_dir) == one_key


def test_an_expired_key_names_its_date(cli: Cli, data_dir: Path) -> None:
    key = make_jwt(exp_days=-3)
    day = (datetime.now(timezone.utc) - timedelta(days=3)).strftime("%Y-%m-%d")
    run = cli("apikey", "add", "-", "--name", "old", input=key)
    one_line_error(run, ExitStatus.KEY_EXPIRED, f"The API key expired on {day}")
    assert dump_database(data_dir) is None


def test_stdin_that_is_not_text_is_an_error(cli: Cli, data_dir: Path) -> None:
    run = cli("apikey", "add", "-", "--name", "k", input=b"\xff\xfe\x00garbage")
    one_line_error(run, ExitStatus.USAGE, "Cannot read the API key: stdin is not UTF-8 text")
    assert dump_database(data_dir) is None


def test_a_key_expiring_within_seven_days_is_stored_with_a_dated_warning(
    cli: Cli, data_dir: Path
) -> None:
    key = make_jwt(exp_days=3)
    day = (datetime.now(timezone.utc) + timedelta(days=3)).strftime("%Y-%m-%d")
    run = cli("apikey", "add", "-", "--name", "soon", input=key)
    assert run.exit_code == 0, run.output
    assert run.stdout == "✅ API key 'soon' added\n"
    assert run.stderr == (
        f"⚠️ Warning: API key 'soon' expires within 7 days, on {day}; "
        "create a new key in n8n before then\n"
    )
    assert stored_keys(data_dir)["soon"][0] == key


def test_a_key_expiring_later_gets_no_warning(cli: Cli) -> None:
    run = cli("apikey", "add", "-", "--name", "later", input=make_jwt(exp_days=30))
    assert run.exit_code == 0
    assert run.stderr == ""


@pytest.mark.parametrize(
    "exp", ["2030-01-01", 10**20, -1, True, [1]], ids=["string", "absurd", "neg", "bool", "list"]
)
def test_malformed_claims_never_crash_any_command(cli: Cli, data_dir: Path, exp: Any) -> None:
    key = raw_jwt(claims={"sub": "u", "iss": "n8n", "aud": "public-api", "exp": exp})
    run = cli("apikey", "add", "-", "--name", "odd", input=key)
    assert run.exit_code == 0, run.output
    assert "Warning: API key 'odd': the 'exp' claim is" in run.stderr
    assert "expiry unknown" in run.stderr
    listed = cli("apikey", "list")
    assert listed.exit_code == 0
    assert table_lines(listed.stdout)[1][HEADERS.index("Expires")] == "Unknown"
    record = json.loads(cli("apikey", "list", "--json").stdout)[0]
    assert record["expires_at"] is None and record["status"] == "active"
    shown = cli("apikey", "show", "odd")
    assert shown.exit_code == 0
    assert "Expires:     Unknown (the 'exp' claim is" in shown.stdout
    for args in (("deactivate", "odd"), ("activate", "odd"), ("delete", "odd", "-y")):
        assert cli("apikey", *args).exit_code == 0


def test_a_stored_value_that_is_no_longer_a_key_is_still_listed(
    cli: Cli, data_dir: Path, database: Database
) -> None:
    with database.session(write=True) as s:
        ApiKeyRepository(s).add("garbage", "not-a-key-at-all")
    listed = cli("apikey", "list")
    assert listed.exit_code == 0, listed.output
    assert table_lines(listed.stdout)[1][HEADERS.index("Expires")] == "Unknown"
    shown = cli("apikey", "show", "garbage")
    assert "Format:      not a recognisable n8n API key" in shown.stdout
    assert json.loads(cli("apikey", "show", "garbage", "--json").stdout)["kind"] == "unknown"


def test_listings_read_the_stored_expiry_and_never_decode_a_key(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """10,000 keys decoded with PyJWT take seconds; the expiry decoded at 'add' is stored."""
    day = (datetime.now(timezone.utc) + timedelta(days=40)).strftime("%Y-%m-%d")
    cli("server", "create", "Prod", "https://n8n.example.com")
    cli("apikey", "add", "-", "--name", "dated", "--server", "Prod", input=make_jwt(exp_days=40))
    cli("apikey", "add", "-", "--name", "forever", "--server", "Prod", input=make_jwt())
    cli("apikey", "add", "-", "--name", "legacy", "--server", "Prod", input=make_legacy_key(3))

    from n8n_deploy.base import keyformat

    def no_decoding(key: str) -> Any:
        raise AssertionError("a listing decoded a key")

    monkeypatch.setattr(keyformat, "_decode_unverified", no_decoding)
    expires = {
        row[0]: row[HEADERS.index("Expires")]
        for row in table_lines(cli("apikey", "list").stdout)[1:]
    }
    assert expires == {"dated": day, "forever": "Never", "legacy": "Never"}
    records = json.loads(cli("apikey", "list", "--json", "--sort", "expires").stdout)
    assert [(r["name"], r["kind"], (r["expires_at"] or "")[:10]) for r in records] == [
        ("dated", "jwt", day),
        ("forever", "jwt", ""),
        ("legacy", "legacy", ""),
    ]
    assert cli("server", "keys", "Prod").exit_code == 0
    assert cli("server", "list", "--json").exit_code == 0


def test_a_legacy_key_is_accepted(cli: Cli, data_dir: Path) -> None:
    key = make_legacy_key(9)
    run = cli("apikey", "add", "-", "--name", "legacy", input=key + "\n")
    assert run.exit_code == 0, run.output
    record = json.loads(cli("apikey", "show", "legacy", "--json").stdout)
    assert record["kind"] == "legacy"
    assert record["expires_at"] is None
    assert record["api_key"] == "********0909"


# --- add: names, duplicates, output modes -----------------------------------------------


def test_names_are_trimmed_and_utf8_and_emoji_are_welcome(cli: Cli, data_dir: Path) -> None:
    run = cli("apikey", "add", "-", "--name", "  prod 🚀 ключ  ", input=make_jwt())
    assert run.exit_code == 0, run.output
    assert run.stdout == "✅ API key 'prod 🚀 ключ' added\n"
    assert set(stored_keys(data_dir)) == {"prod 🚀 ключ"}
    assert cli("apikey", "show", "prod 🚀 ключ").exit_code == 0


@pytest.mark.parametrize(
    ("name", "starts"),
    [
        ("", "The API key name is empty"),
        ("bell\x07name", "The API key name contains control characters"),
        ("two\nlines", "The API key name contains control characters"),
        ("x" * 101, "The API key name is 101 characters long; the limit is 100"),
    ],
    ids=["empty", "bell", "newline", "too-long"],
)
def test_bad_names_are_usage_errors_and_change_nothing(
    cli: Cli, data_dir: Path, one_key: list[str], name: str, starts: str
) -> None:
    run = cli("apikey", "add", "-", "--name", name, input=make_jwt())
    one_line_error(run, ExitStatus.USAGE, starts)
    assert dump_database(data_dir) == one_key


def test_a_name_of_exactly_100_characters_is_fine(cli: Cli, data_dir: Path) -> None:
    name = "n" * 100
    assert cli("apikey", "add", "-", "--name", name, input=make_jwt()).exit_code == 0
    listed = cli("apikey", "list")
    assert name in listed.stdout  # piped: never truncated


def test_name_is_required(cli: Cli, data_dir: Path) -> None:
    run = cli("apikey", "add", "-", input=make_jwt())
    assert run.exit_code == ExitStatus.USAGE
    assert "--name" in run.stderr
    assert dump_database(data_dir) is None


def test_a_duplicate_name_is_refused_and_nothing_changes(
    cli: Cli, data_dir: Path, one_key: list[str]
) -> None:
    run = cli("apikey", "add", "-", "--name", "existing", input=make_jwt(sub="other"))
    one_line_error(run, ExitStatus.FAILED, "API key 'existing' already exists")
    assert dump_database(data_dir) == one_key


def test_a_duplicate_name_with_a_new_server_creates_no_server(
    cli: Cli, data_dir: Path, one_key: list[str]
) -> None:
    run = cli(
        "apikey",
        "add",
        "-",
        "--name",
        "existing",
        "--server",
        "New",
        input=make_jwt(sub="other"),
        env={"N8N_SERVER_URL": "https://new.example.com"},
    )
    one_line_error(run, ExitStatus.FAILED, "API key 'existing' already exists")
    assert dump_database(data_dir) == one_key  # the server was rolled back with the key


def test_the_same_secret_under_another_name_is_refused_naming_the_entry(
    cli: Cli, data_dir: Path
) -> None:
    key = make_jwt()
    cli("apikey", "add", "-", "--name", "first", input=key)
    before = dump_database(data_dir)
    run = cli("apikey", "add", "-", "--name", "second", input=" " + key + "\n")
    one_line_error(run, ExitStatus.FAILED, "This key is already stored as 'first'")
    assert key not in run.stderr
    assert dump_database(data_dir) == before


def test_a_description_with_control_characters_is_refused(cli: Cli, data_dir: Path) -> None:
    run = cli("apikey", "add", "-", "--name", "k", "--description", "a\nb", input=make_jwt())
    one_line_error(run, ExitStatus.USAGE, "The description contains control characters")
    assert dump_database(data_dir) is None


def test_add_json_prints_the_stored_record_only(cli: Cli, data_dir: Path, production: None) -> None:
    key = make_jwt()
    run = cli(
        "apikey",
        "add",
        "-",
        "--name",
        "k",
        "--server",
        "Production Server 🚀",
        "--description",
        "d",
        "--json",
        input=key,
    )
    assert run.exit_code == 0, run.output
    record = json.loads(run.stdout)
    assert record["name"] == "k"
    assert record["api_key"] == "********" + key[-4:]
    assert record["servers"] == ["Production Server 🚀"]
    assert record["description"] == "d"
    assert record["is_active"] is True
    assert ISO_UTC.match(record["created_at"])
    assert run.stderr == ""


def test_add_no_emoji(cli: Cli) -> None:
    run = cli("apikey", "add", "-", "--name", "k", "--no-emoji", input=make_jwt(exp_days=2))
    assert run.exit_code == 0
    assert run.stdout == "API key 'k' added\n"
    assert run.stderr.startswith("Warning: API key 'k' expires within 7 days")
    assert not NON_ASCII.search(run.output)


# --- list --------------------------------------------------------------------------------


@pytest.fixture
def reference_keys(database: Database) -> dict[str, str]:
    """The four keys of the reference's example table (and their secrets)."""
    secrets = {name: make_jwt(sub=name) for name in ("production_key", "staging_key", "dev_key")}
    secrets["old_key"] = make_legacy_key(0xAB)
    times = {
        "production_key": (datetime(2025, 9, 15, 10, 30), datetime(2025, 10, 5, 9, 0)),
        "staging_key": (datetime(2025, 9, 20, 14, 15), datetime(2025, 10, 1, 18, 0)),
        "dev_key": (datetime(2025, 10, 1, 8, 0), None),
        "old_key": (datetime(2025, 8, 1, 12, 0), datetime(2025, 8, 15, 7, 0)),
    }
    with database.session(write=True) as s:
        repo = ApiKeyRepository(s)
        for name, secret in secrets.items():
            key = repo.add(name, secret)
            key.created_at, key.last_used_at = times[name]
        repo.set_active(repo.get("old_key"), False)
    return secrets


def test_reference_list_table(cli: Cli, reference_keys: dict[str, str]) -> None:
    run = shell(cli, "n8n-deploy apikey list")
    assert run.exit_code == 0, run.output
    assert run.stderr == ""
    lines = run.stdout.splitlines()
    assert lines[:2] == ["🔑 API Keys", ""]
    assert lines[2].startswith("┌") and lines[-1].startswith("└")
    header, *body = table_lines(run.stdout)
    assert header == HEADERS
    shown = {row[0]: row for row in body}
    assert [row[0] for row in body] == ["dev_key", "old_key", "production_key", "staging_key"]
    assert shown["production_key"][1:4] == ["2025-09-15 10:30:00", "2025-10-05", "✅ Active"]
    assert shown["staging_key"][1:4] == ["2025-09-20 14:15:00", "2025-10-01", "✅ Active"]
    assert shown["dev_key"][1:4] == ["2025-10-01 08:00:00", "Never", "✅ Active"]
    assert shown["old_key"][1:4] == ["2025-08-01 12:00:00", "2025-08-15", "🚫 Inactive"]
    for name, secret in reference_keys.items():
        assert shown[name][HEADERS.index("Key")] == "********" + secret[-4:]
        assert shown[name][HEADERS.index("Expires")] == "Never"
        assert shown[name][HEADERS.index("Servers")] == "-"
        assert secret not in run.output


def test_reference_list_no_emoji_is_plain_ascii(cli: Cli, reference_keys: dict[str, str]) -> None:
    run = shell(cli, "n8n-deploy apikey list --no-emoji")
    assert run.exit_code == 0
    assert not NON_ASCII.search(run.output), run.stdout
    assert "\x1b[" not in run.output
    lines = run.stdout.splitlines()
    assert lines[:2] == ["API Keys", ""]
    header, *body = table_lines(run.stdout)
    assert header == HEADERS
    assert {row[0]: row[3] for row in body} == {
        "dev_key": "Active",
        "old_key": "Inactive",
        "production_key": "Active",
        "staging_key": "Active",
    }
    for secret in reference_keys.values():
        assert secret not in run.output


def test_reference_list_unmask_shows_keys_and_warns_every_time(
    cli: Cli, reference_keys: dict[str, str]
) -> None:
    for _ in range(2):
        run = shell(cli, "n8n-deploy apikey list --unmask")
        assert run.exit_code == 0
        for secret in reference_keys.values():
            assert secret in run.stdout
            assert secret not in run.stderr
        assert run.stderr.startswith("⚠️ Warning: --unmask shows full API keys")


def test_reference_list_json(cli: Cli, reference_keys: dict[str, str]) -> None:
    run = shell(cli, "n8n-deploy apikey list --json")
    assert run.exit_code == 0
    assert run.stderr == ""
    records = json.loads(run.stdout)
    assert [r["name"] for r in records] == ["dev_key", "old_key", "production_key", "staging_key"]
    by_name = {r["name"]: r for r in records}
    production = by_name["production_key"]
    assert production["created_at"] == "2025-09-15T10:30:00Z"
    assert production["last_used_at"] == "2025-10-05T09:00:00Z"
    assert production["expires_at"] is None
    assert production["is_active"] is True
    assert production["servers"] == []
    assert production["api_key"] == "********" + reference_keys["production_key"][-4:]
    assert by_name["dev_key"]["last_used_at"] is None
    assert by_name["old_key"]["is_active"] is False
    assert by_name["old_key"]["status"] == "inactive"
    for record in records:
        assert ISO_UTC.match(record["created_at"])
    for secret in reference_keys.values():
        assert secret not in run.output
    # Written key by key, laid out as one pretty-printed document (2 spaces, UTF-8 as is).
    assert run.stdout == json.dumps(records, ensure_ascii=False, indent=2) + "\n"


def test_list_json_unmask_has_full_keys_and_a_warning(
    cli: Cli, reference_keys: dict[str, str]
) -> None:
    run = cli("apikey", "list", "--json", "--unmask")
    records = {r["name"]: r for r in json.loads(run.stdout)}
    for name, secret in reference_keys.items():
        assert records[name]["api_key"] == secret
    assert "Warning: --unmask" in run.stderr


def test_list_of_an_empty_store(cli: Cli) -> None:
    as_json = cli("apikey", "list", "--json")
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout) == []
    assert as_json.stderr == ""
    table = cli("apikey", "list")
    assert table.exit_code == 0
    assert table.stdout == ""
    assert "No API keys stored yet" in table.stderr
    assert "n8n-deploy apikey add - --name" in table.stderr


def test_list_shows_description_expiry_servers_and_expired_keys(
    cli: Cli, database: Database
) -> None:
    expired = make_jwt(exp_days=-1, sub="gone")
    soon = make_jwt(exp_days=20, sub="later")
    with database.session(write=True) as s:
        keys, srv = ApiKeyRepository(s), ServerRepository(s)
        prod = srv.create("Production Server 🚀", "https://n8n.example.com")
        stage = srv.create("Staging", "http://n8n-staging.internal:5678")
        keys.add("gone", expired, description="Expired one", servers=[prod])
        keys.add("later", soon, servers=[prod, stage])
    run = cli("apikey", "list")
    header, *body = table_lines(run.stdout)
    shown = {row[0]: dict(zip(header, row, strict=True)) for row in body}
    assert shown["gone"]["Status"] == "⌛ Expired"
    assert shown["gone"]["Description"] == "Expired one"
    assert shown["gone"]["Servers"] == "Production Server 🚀"
    assert shown["later"]["Servers"] == "Production Server 🚀, Staging"
    later = (datetime.now(timezone.utc) + timedelta(days=20)).strftime("%Y-%m-%d")
    assert shown["later"]["Expires"] == later
    assert shown["later"]["Status"] == "✅ Active"
    records = {r["name"]: r for r in json.loads(cli("apikey", "list", "--json").stdout)}
    assert records["gone"]["status"] == "expired"
    assert records["gone"]["is_active"] is True
    assert ISO_UTC.match(records["later"]["expires_at"])
    assert records["later"]["servers"] == ["Production Server 🚀", "Staging"]
    assert "⌛" not in cli("apikey", "list", "--no-emoji").stdout


def test_list_filters_by_server_and_status(cli: Cli, database: Database) -> None:
    with database.session(write=True) as s:
        keys, srv = ApiKeyRepository(s), ServerRepository(s)
        prod = srv.create("Production Server 🚀", "https://n8n.example.com")
        keys.add("a", make_jwt(sub="a"), servers=[prod])
        keys.add("b", make_jwt(sub="b"))
        keys.set_active(keys.add("c", make_jwt(sub="c"), servers=[prod]), False)

    def names(*args: str) -> list[str]:
        run = cli("apikey", "list", "--json", *args)
        assert run.exit_code == 0, run.output
        return [r["name"] for r in json.loads(run.stdout)]

    assert names() == ["a", "b", "c"]
    assert names("--active") == ["a", "b"]
    assert names("--inactive") == ["c"]
    assert names("--server", "Production Server 🚀") == ["a", "c"]
    assert names("--server", "Production Server 🚀", "--active") == ["a"]
    table = cli("apikey", "list", "--server", "Production Server 🚀", "--inactive")
    assert [row[0] for row in table_lines(table.stdout)[1:]] == ["c"]


def test_list_with_filters_matching_nothing_says_so(cli: Cli, database: Database) -> None:
    with database.session(write=True) as s:
        ApiKeyRepository(s).add("a", make_jwt())
    run = cli("apikey", "list", "--inactive")
    assert run.exit_code == 0
    assert run.stdout == ""
    assert run.stderr == "No API keys match (inactive).\n"
    assert json.loads(cli("apikey", "list", "--inactive", "--json").stdout) == []


def test_list_of_an_unknown_server_is_an_error(cli: Cli, production: None) -> None:
    run = cli("apikey", "list", "--server", "Production")
    one_line_error(run, ExitStatus.FAILED, "Server 'Production' not found")
    assert "Did you mean: 'Production Server 🚀'?" in run.stderr


def test_piped_tables_are_never_wrapped_or_coloured(cli: Cli, database: Database) -> None:
    long_name = "a-very-long-key-name-" + "x" * 79
    description = "A long description that would not fit on a terminal line " * 3
    with database.session(write=True) as s:
        ApiKeyRepository(s).add(long_name, make_jwt(), description=description.strip())
    for args in ((), ("--no-emoji",)):
        run = cli("apikey", "list", *args, env={"NO_COLOR": "1"})
        assert "\x1b[" not in run.output
        (row,) = table_lines(run.stdout)[1:]
        assert row[0] == long_name
        assert row[-1] == description.strip()


# --- show --------------------------------------------------------------------------------


def test_show_prints_every_field_and_linked_servers(
    cli: Cli, data_dir: Path, production: None
) -> None:
    key = make_jwt(exp_days=30)
    cli(
        "apikey",
        "add",
        "-",
        "--name",
        "prod_key",
        "--server",
        "Production Server 🚀",
        "--description",
        "Main key",
        input=key,
    )
    run = cli("apikey", "show", "prod_key")
    assert run.exit_code == 0, run.output
    assert run.stderr == ""
    lines = run.stdout.splitlines()
    assert lines[0] == "🔑 API key: prod_key"
    fields = dict(line.strip().split(":", 1) for line in lines[1:])
    fields = {label: value.strip() for label, value in fields.items()}
    expires = (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%Y-%m-%d")
    assert fields["Status"] == "✅ Active"
    assert fields["Description"] == "Main key"
    assert fields["Key"] == "********" + key[-4:]
    assert fields["Format"] == "JWT"
    assert fields["Last used"] == "Never"
    assert fields["Expires"] == expires
    assert fields["Servers"] == "Production Server 🚀 (https://n8n.example.com)"
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", fields["Created"])
    assert key not in run.output


def test_show_json_and_unmask(cli: Cli, data_dir: Path) -> None:
    key = make_jwt()
    cli("apikey", "add", "-", "--name", "k", input=key)
    record = json.loads(cli("apikey", "show", "k", "--json").stdout)
    assert record == json.loads(cli("apikey", "list", "--json").stdout)[0]
    unmasked = cli("apikey", "show", "k", "--json", "--unmask")
    assert json.loads(unmasked.stdout)["api_key"] == key
    assert "Warning: --unmask" in unmasked.stderr
    text = cli("apikey", "show", "k", "--unmask", "--no-emoji")
    assert f"Key:         {key}" in text.stdout
    assert not NON_ASCII.search(text.output)


def test_unknown_names_are_not_found_with_suggestions(
    cli: Cli, data_dir: Path, reference_keys: dict[str, str]
) -> None:
    before = dump_database(data_dir)
    for command in (
        ("show",),
        ("activate",),
        ("deactivate",),
        ("delete", "--confirm"),
        ("delete",),
    ):
        run = cli("apikey", command[0], "producton_key", *command[1:])
        one_line_error(run, ExitStatus.FAILED, "API key 'producton_key' not found. ")
        assert "Did you mean: 'production_key'" in run.stderr
    assert dump_database(data_dir) == before


def test_unknown_name_in_an_empty_store_has_no_suggestions(cli: Cli) -> None:
    run = cli("apikey", "show", "nothing")
    assert run.exit_code == ExitStatus.FAILED
    assert run.stderr == (
        "Error: API key 'nothing' not found. See the stored names with: n8n-deploy apikey list\n"
    )


# --- deactivate / activate ---------------------------------------------------------------


def test_reference_deactivate_then_list_grep(
    cli: Cli, data_dir: Path, reference_keys: dict[str, str]
) -> None:
    cli("apikey", "activate", "old_key")
    run = shell(cli, "n8n-deploy apikey deactivate old_key")
    assert run.exit_code == 0, run.output
    assert run.stdout.startswith("🚫 API key 'old_key' deactivated")
    assert "n8n-deploy apikey activate old_key" in run.stdout
    assert stored_keys(data_dir)["old_key"][2] == 0  # kept, marked inactive
    listed = shell(cli, "n8n-deploy apikey list")
    (line,) = [line for line in listed.stdout.splitlines() if "old_key" in line]  # | grep
    assert "🚫 Inactive" in line


def test_deactivate_and_activate_are_harmless_to_repeat(cli: Cli, data_dir: Path) -> None:
    cli("apikey", "add", "-", "--name", "k", input=make_jwt())
    first = cli("apikey", "deactivate", "k")
    again = cli("apikey", "deactivate", "k")
    assert (first.exit_code, again.exit_code) == (0, 0)
    assert again.stdout == "API key 'k' is already inactive; nothing changed\n"
    assert stored_keys(data_dir)["k"][2] == 0
    assert [
        r["name"] for r in json.loads(cli("apikey", "list", "--inactive", "--json").stdout)
    ] == ["k"]
    on = cli("apikey", "activate", "k")
    assert on.stdout == "✅ API key 'k' activated\n"
    again_on = cli("apikey", "activate", "k")
    assert again_on.exit_code == 0
    assert again_on.stdout == "API key 'k' is already active; nothing changed\n"
    assert stored_keys(data_dir)["k"][2] == 1
    plain = cli("apikey", "deactivate", "k", "--no-emoji")
    assert not NON_ASCII.search(plain.output)


# --- delete ------------------------------------------------------------------------------


@pytest.fixture
def linked_keys(database: Database) -> None:
    with database.session(write=True) as s:
        keys, srv = ApiKeyRepository(s), ServerRepository(s)
        prod = srv.create("Production Server 🚀", "https://n8n.example.com")
        stage = srv.create("Staging", "http://n8n-staging.internal:5678")
        keys.add("old_key", make_jwt(sub="old"))
        keys.add("temp_key", make_jwt(sub="temp"))
        keys.add("staging_key", make_jwt(sub="staging"), servers=[prod, stage])


def test_reference_delete_with_confirmation_prompt(
    cli: Cli, data_dir: Path, linked_keys: None, at_terminal: None
) -> None:
    run = shell(cli, "n8n-deploy apikey delete old_key", stdin="y\n")
    assert run.exit_code == 0, run.output
    assert "Delete API key 'old_key'? This cannot be undone [y/N]" in run.stderr
    assert "🗑️ API key 'old_key' deleted" in run.stdout
    assert "old_key" not in stored_keys(data_dir)


@pytest.mark.parametrize("answer", ["n\n", "\n", "no\n"], ids=["n", "default", "no"])
def test_declining_the_prompt_keeps_the_key(
    cli: Cli, data_dir: Path, linked_keys: None, at_terminal: None, answer: str
) -> None:
    before = dump_database(data_dir)
    run = cli("apikey", "delete", "old_key", input=answer)
    assert run.exit_code == ExitStatus.FAILED
    assert "Cancelled; API key 'old_key' was kept; nothing was deleted." in run.stderr
    assert dump_database(data_dir) == before


def test_the_prompt_mentions_the_links_that_go(
    cli: Cli, data_dir: Path, linked_keys: None, at_terminal: None
) -> None:
    run = cli("apikey", "delete", "staging_key", input="y\n")
    assert run.exit_code == 0
    assert "linked to server(s) 'Production Server 🚀', 'Staging'" in run.stderr
    assert links(data_dir) == set()


def test_reference_force_delete_without_confirmation(
    cli: Cli, data_dir: Path, linked_keys: None
) -> None:
    run = shell(cli, "n8n-deploy apikey delete temp_key --confirm")
    assert run.exit_code == 0, run.output
    assert run.stdout == "🗑️ API key 'temp_key' deleted\n"
    assert "temp_key" not in stored_keys(data_dir)


def test_reference_delete_unlinks_from_all_servers_and_keeps_them(
    cli: Cli, data_dir: Path, linked_keys: None
) -> None:
    run = shell(cli, "n8n-deploy apikey delete staging_key --confirm")
    assert run.exit_code == 0, run.output
    assert run.stdout == (
        "🗑️ API key 'staging_key' deleted and unlinked from server(s) "
        "'Production Server 🚀', 'Staging'\n"
    )
    assert links(data_dir) == set()
    assert set(servers(data_dir)) == {"Production Server 🚀", "Staging"}
    assert set(stored_keys(data_dir)) == {"old_key", "temp_key"}


@pytest.mark.parametrize("flag", ["--yes", "-y"])
def test_yes_is_an_alias_of_confirm(cli: Cli, data_dir: Path, linked_keys: None, flag: str) -> None:
    assert cli("apikey", "delete", "temp_key", flag).exit_code == 0
    assert "temp_key" not in stored_keys(data_dir)


def test_delete_off_a_terminal_without_confirm_is_refused(
    cli: Cli, data_dir: Path, linked_keys: None
) -> None:
    before = dump_database(data_dir)
    run = cli("apikey", "delete", "old_key", input="y\n")
    one_line_error(run, ExitStatus.FAILED, "Refusing to delete API key 'old_key'")
    assert "--confirm" in run.stderr
    assert dump_database(data_dir) == before


def test_delete_no_emoji(cli: Cli, linked_keys: None) -> None:
    run = cli("apikey", "delete", "temp_key", "--confirm", "--no-emoji")
    assert run.stdout == "API key 'temp_key' deleted\n"


# --- the whole group ---------------------------------------------------------------------


def test_help_lists_every_command_and_names_complete(cli: Cli) -> None:
    run = cli("apikey", "--help")
    for command in ("add", "list", "show", "activate", "deactivate", "delete"):
        assert re.search(rf"^\s+{command}\s", run.stdout, re.MULTILINE), command


@pytest.mark.e2e
def test_key_and_server_names_complete_in_the_shell(data_dir: Path, database: Database) -> None:
    with database.session(write=True) as s:
        prod = ServerRepository(s).create("Production Server 🚀", "https://n8n.example.com")
        ApiKeyRepository(s).add("prod_key", make_jwt(sub="a"), servers=[prod])
        ApiKeyRepository(s).add("production_key", make_jwt(sub="b"))
        ApiKeyRepository(s).add("dev_key", make_jwt(sub="c"))

    def complete(words: str) -> list[str]:
        env = dict(
            os.environ,
            _N8N_DEPLOY_COMPLETE="complete_bash",
            COMP_WORDS=words,
            COMP_CWORD=str(len(words.split(" ")) - 1),
        )
        result = subprocess.run(
            [installed_script()], capture_output=True, text=True, env=env, check=False
        )
        return result.stdout.split()

    assert complete("n8n-deploy apikey show pro") == ["prod_key", "production_key"]
    assert complete("n8n-deploy apikey delete d") == ["dev_key"]
    assert complete("n8n-deploy apikey deactivate ") == ["dev_key", "prod_key", "production_key"]
    assert "Production" in complete("n8n-deploy apikey list --server Pro")


def test_no_command_shows_the_key_without_unmask(
    cli: Cli, data_dir: Path, monkeypatch: pytest.MonkeyPatch, production: None
) -> None:
    secret = make_jwt(sub="leak-check", exp_days=3)
    expired = make_jwt(sub="leak-check-expired", exp_days=-1)
    runs: list[tuple[tuple[str, ...], Run]] = []

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Run:
        result = cli("apikey", *args, input=input, env=env)
        runs.append((args, result))
        return result

    def broken(key: str) -> list[str]:
        return [key[:50] + " " + key[50:], key + ".x", key[:-1] + "!", key + "\n" + key]

    assert run("add", "-", "--name", "k1", input=secret + "\n").exit_code == 0
    run("add", secret, "--name", "k1")  # duplicate name, key as argument
    run("add", "-", "--name", "k2", input=secret)  # same secret under another name
    run("add", secret, "--name", "k3", "--json")  # same secret, argument, --json
    run("add", "-", "--name", "k4", "--server", "nope", input=secret)  # missing server
    run("add", "-", "--name", "bad\x07", input=secret)
    run("add", "-", "--name", "k5", input=expired)
    run("add", expired, "--name", "k6", "--no-emoji")
    for wrong in broken(secret):
        run("add", "-", "--name", "k7", input=wrong)
        run("add", wrong, "--name", "k7")
    run("add", "-", "--name", "k8", env={"N8N_SERVER_URL": "ftp://x"}, input=secret)
    for args in (
        ("list",),
        ("list", "--no-emoji"),
        ("list", "--json"),
        ("list", "--active"),
        ("list", "--inactive"),
        ("list", "--server", "Production Server 🚀"),
        ("list", "--server", "nope"),
        ("show", "k1"),
        ("show", "k1", "--json"),
        ("show", "k1", "--no-emoji"),
        ("show", "k"),
        ("deactivate", "k1"),
        ("deactivate", "k1"),
        ("list", "--inactive"),
        ("activate", "k1"),
        ("activate", "k1"),
        ("activate", "nope"),
        ("deactivate", "nope"),
        ("delete", "k1"),
        ("delete", "nope", "--confirm"),
    ):
        run(*args)
    with monkeypatch.context() as patch:
        patch.setattr(prompts, "stdin_is_terminal", lambda: True)
        run("add", "--name", "k9", input=secret + "\n")  # prompted: same secret, refused
        run("add", "--name", "k10", input=" " + secret[:-2] + " x\n")  # prompted: broken
        run("delete", "k1", input="n\n")
        assert run("delete", "k1", input="y\n").exit_code == 0
    assert (
        run("add", "-", "--name", "k1", "--server", "Production Server 🚀", input=secret).exit_code
        == 0
    )
    run("show", "k1")
    run("list", "--server", "Production Server 🚀")
    assert run("delete", "k1", "--confirm").exit_code == 0

    assert {args[0] for args, _ in runs} == {
        "add",
        "list",
        "show",
        "activate",
        "deactivate",
        "delete",
    }
    assert {result.exit_code for _, result in runs} >= {0, 1, 2, 6, 7}
    pieces = [secret, expired, *secret.split("."), *expired.split(".")]
    for args, result in runs:
        assert "Traceback" not in result.output, args
        for piece in pieces:
            assert piece not in result.stdout, args
            assert piece not in result.stderr, args

    # The check can fail: with --unmask the key is there.
    cli("apikey", "add", "-", "--name", "k1", input=secret)
    assert secret in cli("apikey", "list", "--unmask").stdout
    assert secret in cli("apikey", "show", "k1", "--unmask").stdout


@pytest.mark.e2e
def test_installed_script_pipes_a_key_in_and_lists_it_as_json(tmp_path: Path) -> None:
    key = make_jwt()
    env = dict(os.environ, N8N_DEPLOY_DATA_DIR=str(tmp_path / "data"), API_KEY=key)
    env.pop("N8N_SERVER_URL", None)
    script = shlex.quote(installed_script())
    added = subprocess.run(
        ["sh", "-c", f'echo "$API_KEY" | {script} apikey add - --name x'],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout == "✅ API key 'x' added\n"
    assert added.stderr == ""
    listed = subprocess.run(
        [installed_script(), "apikey", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr == ""
    (record,) = json.loads(listed.stdout)
    assert record["name"] == "x"
    assert record["api_key"] == "********" + key[-4:]
    assert key not in listed.stdout + added.stdout + added.stderr
    table = subprocess.run(
        [installed_script(), "apikey", "list"], capture_output=True, text=True, env=env, check=False
    )
    assert "\x1b[" not in table.stdout  # piped: no colour codes
    assert table_lines(table.stdout)[1][0] == "x"


# --- scripts: apikey get, JSON on failure ---------------------------------------------------


def test_apikey_get_prints_the_raw_key_and_nothing_else(cli: Cli, data_dir: Path) -> None:
    key = make_jwt()
    assert cli("apikey", "add", "-", "--name", "prod_key", input=key).exit_code == 0
    before = rows(data_dir, "SELECT last_used_at FROM api_keys")
    got = cli("apikey", "get", "prod_key")
    assert got.exit_code == 0
    assert got.stdout == key + "\n" and got.stderr == ""  # not a terminal: no warning
    assert rows(data_dir, "SELECT last_used_at FROM api_keys") == before  # not a use


def test_apikey_get_refuses_an_inactive_key(cli: Cli) -> None:
    key = make_jwt()
    cli("apikey", "add", "-", "--name", "old", input=key)
    cli("apikey", "deactivate", "old")
    got = cli("apikey", "get", "old")
    assert got.exit_code == ExitStatus.KEY_INACTIVE
    assert got.stdout == "" and key not in got.stderr
    assert "is inactive" in got.stderr


@pytest.mark.parametrize(
    ("args", "stdin", "status"),
    [
        (("apikey", "add", "-", "--name", "k", "--json"), "not a key", ExitStatus.INVALID_FORMAT),
        (("apikey", "show", "nope", "--json"), None, ExitStatus.FAILED),
        (("apikey", "list", "--server", "nope", "--json"), None, ExitStatus.FAILED),
        (("server", "show", "nope", "--json"), None, ExitStatus.FAILED),
        (("db", "current", "--json", "--bogus"), None, ExitStatus.USAGE),
        (("--database-url", "postgresql://u:pw@h:port/db", "db", "current", "--json"), None, 2),
    ],
)
def test_every_json_command_prints_json_on_failure_too(
    cli: Cli, args: tuple[str, ...], stdin: str | None, status: int
) -> None:
    run = cli(*args, input=stdin)
    assert run.exit_code == status
    document = json.loads(run.stdout)
    assert set(document) == {"error", "exit_status", "hint"}
    assert document["exit_status"] == status
    assert run.stderr.startswith("Error: ")  # the one-line summary stays on stderr
    # The same error and hint as that line (a usage error's hint was once left null).
    said = f"Error: {document['error']}. {document['hint']}" if document["hint"] else None
    assert said is None or run.stderr.strip() == said, (document, run.stderr)
    assert document["hint"] or status != ExitStatus.USAGE


def test_a_repeated_server_is_refused_not_silently_ignored(cli: Cli, data_dir: Path) -> None:
    run = cli(
        "apikey", "add", "-", "--name", "k", "--server", "Dev", "--server", "Staging",
        input=make_jwt(),
    )  # fmt: skip
    one_line_error(run, ExitStatus.USAGE, "--server is given 2 times ('Dev', 'Staging')")
    assert "server link KEY SERVER" in run.stderr
    assert dump_database(data_dir) is None or stored_keys(data_dir) == {}


def test_active_and_inactive_together_are_refused(cli: Cli) -> None:
    run = cli("apikey", "list", "--active", "--inactive")
    one_line_error(run, ExitStatus.USAGE, "--active and --inactive together")


def test_retiring_the_last_active_key_of_a_server_warns_naming_it(cli: Cli, data_dir: Path) -> None:
    cli("server", "create", "Production", "https://n8n.example.com")
    for name in ("old", "new"):
        cli(
            "apikey", "add", "-", "--name", name, "--server", "Production", input=make_jwt(sub=name)
        )
    first = cli("apikey", "deactivate", "old")
    assert first.exit_code == 0 and "no active API key left" not in first.stderr
    last = cli("apikey", "delete", "new", "--confirm")
    assert last.exit_code == 0
    assert "server 'Production' has no active API key left" in last.stderr
    again = cli("apikey", "deactivate", "old")  # already inactive: nothing newly stranded
    assert "no active API key left" not in again.stderr


def test_n8n_deploy_no_emoji_is_plain_output_by_default(cli: Cli) -> None:
    cli("apikey", "add", "-", "--name", "k", input=make_jwt())
    run = cli("apikey", "list", env={"N8N_DEPLOY_NO_EMOJI": "1"})
    assert run.exit_code == 0
    assert "🔑" not in run.stdout and "✅" not in run.stdout and "+--" in run.stdout


def test_apikey_update_renames_and_redescribes_and_prints_json(cli: Cli, data_dir: Path) -> None:
    key = make_jwt()
    cli("apikey", "add", "-", "--name", "prod_key", "--description", "old", input=key)
    run = cli("apikey", "update", "prod_key", "--rename", "prod_2026", "--description", "CI")
    assert (
        run.exit_code == 0 and run.stdout == "API key 'prod_key' updated, renamed to 'prod_2026'\n"
    )
    assert stored_keys(data_dir) == {"prod_2026": (key, "CI", 1)}
    cleared = json.loads(cli("apikey", "update", "prod_2026", "--description", "", "--json").stdout)
    assert cleared["name"] == "prod_2026" and cleared["description"] is None
    cli("apikey", "add", "-", "--name", "other", input=make_jwt(sub="o"))
    taken = cli("apikey", "update", "other", "--rename", "prod_2026")
    one_line_error(taken, ExitStatus.FAILED, "API key 'prod_2026' already exists")
    nothing = cli("apikey", "update", "other")
    one_line_error(nothing, ExitStatus.USAGE, "Nothing to change")


def test_list_filters_by_expiry_and_use_and_sorts(cli: Cli, data_dir: Path) -> None:
    for name, days in (("soon", 3), ("later", 60), ("never", None)):
        cli("apikey", "add", "-", "--name", name, input=make_jwt(sub=name, exp_days=days))

    def names(*args: str) -> list[str]:
        run = cli("apikey", "list", "--json", *args)
        assert run.exit_code == 0, run.output
        return [k["name"] for k in json.loads(run.stdout)]

    assert names("--expiring-within", "14") == ["soon"]
    assert names("--expired") == []
    assert names("--sort", "expires") == ["soon", "later", "never"]
    assert names("--unused-for", "30") == ["later", "never", "soon"]  # never used: all
    bad = cli("apikey", "list", "--sort", "colour")
    one_line_error(bad, ExitStatus.USAGE, "--sort colour: not a column")


def test_every_listing_is_in_the_order_of_the_names_characters(
    cli: Cli, data_dir: Path, engine: str
) -> None:
    """Whatever order the database's collation gives (on SQLite here a file in UTF-16,
    whose BINARY order is that of UTF-16 bytes; a server database's own locale): the
    table, the JSON and a filtered listing list the keys alike, by code point, as --sort
    name says."""
    import sqlite3

    if engine.startswith("sqlite"):
        data_dir.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(data_dir / "n8n-deploy.db")
        conn.execute("PRAGMA encoding = 'UTF-16le'")
        conn.execute("CREATE TABLE t (x)")  # the encoding is fixed by the first table
        conn.execute("DROP TABLE t")
        conn.close()
    assert cli("db", "init").exit_code == 0
    assert cli("server", "create", "Production", "https://n8n.example.com").exit_code == 0
    names = ["b", "ā", "a", "B", "🔑", "ｚ"]  # stored in this order, none of the others
    for i, name in enumerate(names):
        linked = ("--server", "Production") if i % 2 else ()
        added = cli("apikey", "add", "-", "--name", name, *linked, input=make_jwt(sub=str(i)))
        assert added.exit_code == 0, added.output
    expected = sorted(names)  # B a b ā ｚ 🔑

    def listed(*args: str) -> list[str]:
        run = cli("apikey", "list", *args)
        assert run.exit_code == 0, run.output
        if "--json" in args:
            return [k["name"] for k in json.loads(run.stdout)]
        return [line.split("|")[1].strip() for line in run.stdout.splitlines()[5:-1]]

    assert listed("--json") == expected
    assert listed("--no-emoji") == expected
    assert listed("--no-emoji", "--unused-for", "0") == expected
    assert listed("--json", "--active") == expected
    assert listed("--json", "--server", "Production") == sorted(names[1::2])
    assert listed("--no-emoji", "--server", "Production") == sorted(names[1::2])
    # Servers alike, and each key's servers.
    for server in ("ā", "é"):
        assert cli("server", "create", server, f"https://{ord(server)}.example.com").exit_code == 0
        assert cli("server", "link", "b", server).exit_code == 0
    servers = json.loads(cli("server", "list", "--json").stdout)
    assert [server["name"] for server in servers] == ["Production", "é", "ā"]
    shown = json.loads(cli("apikey", "show", "b", "--json").stdout)
    assert shown["servers"] == ["é", "ā"]
    assert [k["servers"] for k in json.loads(cli("apikey", "list", "--json").stdout)][2] == [
        "é",
        "ā",
    ]


def test_activate_and_deactivate_print_the_record_with_json(cli: Cli) -> None:
    cli("apikey", "add", "-", "--name", "k", input=make_jwt())
    done = json.loads(cli("apikey", "deactivate", "k", "--json").stdout)
    assert (done["name"], done["is_active"], done["changed"]) == ("k", False, True)
    again = json.loads(cli("apikey", "deactivate", "k", "--json").stdout)
    assert again["changed"] is False


def test_a_server_without_a_url_reads_so_everywhere_and_survives_a_downgrade(cli: Cli) -> None:
    cli("apikey", "add", "-", "--name", "k", "--server", "New Server", input=make_jwt())
    assert "URL:              (no URL yet)" in cli("server", "show", "New Server").stdout
    assert "New Server (no URL yet)" in cli("apikey", "show", "k").stdout
    assert cli("db", "downgrade", "0005", "--confirm").exit_code == 0
    assert cli("db", "upgrade").exit_code == 0
    (server,) = json.loads(cli("server", "list", "--json").stdout)
    assert server["url"] is None
