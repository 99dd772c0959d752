"""New variants of issue #15's classes, found by a hostile run after the fixes: each one a
crash, a lie or a rewrite that the first round of tests did not reach."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import respx

from n8n_deploy.base.errors import InvalidServerUrlError
from n8n_deploy.base.settings import resolve_settings
from n8n_deploy.base.status import ExitStatus
from n8n_deploy.base.urls import normalize_server_url
from n8n_deploy.store.engine import Database
from tests.helpers import Run, add_key, add_server, leaked_piece, make_jwt, sqlite_file

Cli = Callable[..., Run]
PROD = "https://n8n.example.com"
PROBE = f"{PROD}/api/v1/workflows?limit=1"


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.mark.usefixtures("no_waiting")
@pytest.mark.parametrize("character", ["\ud800", "\udc00", "\u00ad", "\U000e0001"])
def test_a_server_message_with_an_unprintable_character_is_escaped_not_a_crash(
    cli: Cli, database: Database, mock: respx.MockRouter, character: str
) -> None:
    add_server(database, "Production", PROD)
    add_key(database, "prod_key", make_jwt(exp_days=30), ["Production"])
    body = json.dumps({"message": f"a{character}b"})  # "\ud800": JSON's own escape
    mock.get(PROBE).respond(
        500, content=body.encode(), headers={"content-type": "application/json"}
    )
    result = cli("apikey", "test", "prod_key", "--json")
    assert result.exit_code == ExitStatus.UNEXPECTED_RESPONSE, result.stderr
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert report["message"] == f"The server failed (HTTP 500: a{character}b)"  # as escaped
    assert character not in result.stdout + result.stderr
    assert "bug" not in result.stderr


@pytest.mark.parametrize("value", ["'garbage'", "12345", "'2026-99-99'", "'2026-02-30 10:00:00'"])
@pytest.mark.parametrize("via_uri", [False, True], ids=["sqlite3", "sqlalchemy"])
def test_a_timestamp_written_by_another_program_is_one_line_not_a_bug(
    cli: Cli, data_dir: Path, database: Database, value: str, via_uri: bool
) -> None:
    """Every command that reads the row says so in one line, the ones that load it to
    change it too (the ORM's path): none calls it a bug of n8n-deploy."""
    _each_says_the_row_cannot_be_read(
        cli,
        data_dir,
        database,
        f"created_at = {value}",
        via_uri,
        [
            ("apikey", "list"),
            ("apikey", "show", "prod_key"),
            ("apikey", "get", "prod_key"),
            ("apikey", "audit"),
            ("apikey", "deactivate", "prod_key"),
            ("apikey", "update", "prod_key", "--description", "x"),
            ("apikey", "delete", "prod_key", "--confirm"),
        ],
    )


def _each_says_the_row_cannot_be_read(
    cli: Cli,
    data_dir: Path,
    database: Database,
    assignment: str,
    via_uri: bool,
    commands: list[tuple[str, ...]],
) -> None:
    """A key stored, then ``UPDATE api_keys SET <assignment>`` by another program: each
    of ``commands`` (through sqlite3, or SQLAlchemy with ``via_uri``) fails in the one
    line of an unreadable row, shows nothing of the key, and changes nothing."""
    key = make_jwt(exp_days=30)
    add_key(database, "prod_key", key)
    database.dispose()
    path = sqlite_file(data_dir)
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE api_keys SET {assignment}")
    conn.close()
    before = path.read_bytes()
    env = {"N8N_DEPLOY_DATABASE_URL": f"sqlite:///file:{path}?uri=true"} if via_uri else None
    for command in commands:
        result = cli(*command, env=env)
        assert result.exit_code == ExitStatus.FAILED, (command, result.output)
        assert result.stderr.startswith("Error: The database holds a value that cannot be read")
        assert len(result.stderr.strip().splitlines()) == 1, command
        assert leaked_piece(key, result.stderr + result.stdout) is None
    assert path.read_bytes() == before  # nothing half-written


@pytest.mark.parametrize("value", ["2", "-1", "0.5", "'yes'", "'false'"])
@pytest.mark.parametrize("via_uri", [False, True], ids=["sqlite3", "sqlalchemy"])
def test_a_flag_that_is_neither_0_nor_1_is_one_line_not_active(
    cli: Cli, data_dir: Path, database: Database, value: str, via_uri: bool
) -> None:
    """is_active written as 2 or 'yes' by another program: every command that reads the
    key says the row cannot be read, where a listing called it active, a filter neither
    active nor inactive, and get handed it out."""
    _each_says_the_row_cannot_be_read(
        cli,
        data_dir,
        database,
        f"is_active = {value}",
        via_uri,
        [
            ("apikey", "list"),
            ("apikey", "list", "--json"),
            ("apikey", "show", "prod_key"),
            ("apikey", "get", "prod_key"),
            ("apikey", "deactivate", "prod_key"),
        ],
    )


@pytest.mark.parametrize(
    "args",
    [
        ("apikey", "list", "--unused-for", "1000000"),
        ("apikey", "list", "--expiring-within", "3000000"),
        ("apikey", "test", "prod_key", "--min-days", "99999999999999"),
    ],
)
def test_a_day_count_beyond_a_century_is_a_usage_error(cli: Cli, args: tuple[str, ...]) -> None:
    result = cli(*args)
    assert result.exit_code == ExitStatus.USAGE
    assert "is not in the range 0<=x<=36500" in result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "http://[v1.evil.com]:8080",  # was stored as http://v1.evil.com:8080
        "http://[::1]x",
        "http://[::1]]]]",
        "http://[::1]]:18765/api",
    ],
)
def test_a_bracketed_host_that_is_not_an_ipv6_address_is_refused(url: str) -> None:
    with pytest.raises(InvalidServerUrlError, match="Not a valid IPv6 address"):
        normalize_server_url(url)


def test_bracketed_ipv6_addresses_still_work() -> None:
    assert normalize_server_url("http://[::1]:5678/n8n/") == "http://[::1]:5678/n8n"
    assert normalize_server_url("http://[fe80::1%25eth0]:5678") == "http://[fe80::1%25eth0]:5678"


@pytest.mark.parametrize(("value", "on"), [("1", True), ("yes", True), ("0", False), ("no", False)])
def test_n8n_deploy_debug_is_off_when_it_says_so(
    monkeypatch: pytest.MonkeyPatch, value: str, on: bool
) -> None:
    monkeypatch.setenv("N8N_DEPLOY_DEBUG", value)
    assert resolve_settings().debug is on


def test_the_debug_traceback_is_sanitised(capsys: pytest.CaptureFixture[str]) -> None:
    from n8n_deploy.cli import _sanitised_traceback

    key = make_jwt(exp_days=30)
    try:
        raise ValueError(f"Invalid isoformat string: {key!r}\x1b[2J")
    except ValueError:
        _sanitised_traceback(*sys.exc_info())
    shown = capsys.readouterr().err
    assert "Traceback (most recent call last)" in shown
    assert "ValueError: Invalid isoformat string" in shown
    assert leaked_piece(key, shown) is None
    assert "\x1b" not in shown


def test_a_bug_after_a_commit_says_the_change_is_kept(
    cli: Cli, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from n8n_deploy.cli import servers

    add_server(database, "Production", PROD)

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("printing failed")

    monkeypatch.setattr(servers, "say", broken)  # the report of what was done fails
    result = cli("server", "update", "Production", "--description", "new")
    assert result.exit_code == ExitStatus.FAILED
    assert result.stderr.startswith(
        "Error: unexpected RuntimeError (a change was saved before it: it is kept)"
    )


def _piece(secret: str) -> str:
    """16 characters out of the middle of a JWT's signature: not shaped like a key (and
    not starting with "-", which would make it an option instead of a name)."""
    signature = secret.rsplit(".", 1)[1]
    start = next(i for i in range(10, len(signature) - 16) if signature[i].isalnum())
    return signature[start : start + 16]


@pytest.mark.parametrize(
    "args",
    [
        ("apikey", "add", "-", "--name", "{piece}"),
        ("apikey", "add", "-", "--name", "ok", "--description", "see {piece}"),
        ("apikey", "update", "prod_key", "--rename", "x{piece}"),
        ("apikey", "update", "prod_key", "--description", "{piece}"),
        ("server", "create", "{piece}", PROD),
        ("server", "create", "Staging", f"{PROD}/{{piece}}"),
        ("server", "update", "Production", "--description", "{piece}!"),
    ],
)
def test_a_piece_of_a_stored_key_is_refused_wherever_it_would_be_listed(
    cli: Cli, database: Database, args: tuple[str, ...]
) -> None:
    stored = make_jwt(exp_days=30, sub="stored")
    add_server(database, "Production", "https://n8n.example.org")
    add_key(database, "prod_key", stored, ["Production"])
    piece = _piece(stored)
    result = cli(*(a.replace("{piece}", piece) for a in args), input=make_jwt(exp_days=30))
    assert result.exit_code == ExitStatus.USAGE, result.stderr
    assert "holds a piece of an API key" in result.stderr
    assert leaked_piece(stored, result.output) is None
    listed = cli("apikey", "list", "--json").stdout + cli("server", "list", "--json").stdout
    assert leaked_piece(stored, listed) is None


def test_a_name_holding_a_piece_of_the_key_being_added_is_refused(cli: Cli) -> None:
    new = make_jwt(exp_days=30, sub="new")
    result = cli("apikey", "add", "-", "--name", _piece(new), input=new)
    assert result.exit_code == ExitStatus.USAGE
    assert leaked_piece(new, result.output) is None
    assert cli("apikey", "list", "--json").stdout.strip() == "[]"


def test_ordinary_long_names_are_still_stored(cli: Cli, database: Database) -> None:
    add_key(database, "prod_key", make_jwt(exp_days=30))
    new = make_jwt(exp_days=30, sub="other")
    result = cli("apikey", "add", "-", "--name", "production_environment_main", input=new)
    assert result.exit_code == 0, result.stderr


def test_a_sqlite_url_with_options_the_driver_ignores_is_one_line_and_creates_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    target = tmp_path / "x.db"
    result = cli(
        "apikey", "list", env={"N8N_DEPLOY_DATABASE_URL": f"sqlite:///{target}?password=abc"}
    )
    assert result.exit_code == ExitStatus.FAILED
    assert result.stderr.startswith("Error: The SQLite URL has options the driver does not take")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "abc" not in result.stderr
    assert not target.exists()
