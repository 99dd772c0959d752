"""Hostile and careless input: keys pasted where names belong, control characters, bytes
that are not UTF-8, and readers that go away.  Found by trying the CLI as a user would."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from n8n_deploy.base.status import ExitStatus
from n8n_deploy.store.engine import Database
from n8n_deploy.store.repositories import ApiKeyRepository, ServerRepository
from tests.helpers import Run, installed_script, make_jwt, one_line_error
from tests.helpers import dump_database as snapshot

# Every test here runs on SQLite, PostgreSQL and MariaDB (tests/conftest.py), except those
# marked sqlite_only: they are about the SQLite file itself.
pytestmark = pytest.mark.usefixtures("engine")

Cli = Callable[..., Run]


@pytest.fixture
def stored(database: Database) -> str:
    secret = make_jwt(sub="stored")
    with database.session(write=True) as s:
        servers = ServerRepository(s)
        prod = servers.create("Production", "https://n8n.example.com")
        ApiKeyRepository(s).add("prod_key", secret, servers=[prod])
    return secret


@pytest.mark.parametrize(
    "args",
    [
        ("apikey", "show", "{key}"),
        ("apikey", "deactivate", "{key}"),
        ("apikey", "activate", "{key}"),
        ("apikey", "delete", "{key}", "--confirm"),
        ("apikey", "list", "--server", "{key}"),
        ("apikey", "test", "{key}"),
        ("server", "keys", "{key}"),
    ],
)
def test_a_key_pasted_where_a_name_belongs_is_refused_without_echoing_it(
    cli: Cli, stored: str, data_dir: Path, args: tuple[str, ...]
) -> None:
    pasted = make_jwt(sub="pasted")
    before = snapshot(data_dir)
    run = cli(*(pasted if a == "{key}" else a for a in args))
    one_line_error(run, ExitStatus.USAGE, "The ")
    assert "looks like an API key" in run.stderr
    assert pasted not in run.output and stored not in run.output
    assert snapshot(data_dir) == before


@pytest.mark.parametrize(
    "args",
    [
        ("apikey", "add", "prod_key", "{key}", "--name", "x"),
        ("apikey", "delete", "x", "{key}"),
        ("server", "link", "prod_key", "Production", "{key}"),
    ],
)
def test_the_argument_parser_never_repeats_a_key_back(
    cli: Cli, stored: str, args: tuple[str, ...]
) -> None:
    pasted = make_jwt(sub="pasted")
    run = cli(*(pasted if a == "{key}" else a for a in args))
    assert run.exit_code == ExitStatus.USAGE
    assert pasted not in run.output
    assert "[API key hidden]" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_usage_errors_are_one_line_pointing_at_help(cli: Cli) -> None:
    run = cli("apikey", "add", "-")
    one_line_error(run, ExitStatus.USAGE, "Missing option '--name'")
    assert "n8n-deploy apikey add --help" in run.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("server", "create", "Esc", "https://h.example.com/\x1b[31mred"),
        ("server", "create", "Tab", "https://h.example.com/a\tb"),
        ("server", "create", "D", "https://h2.example.com", "--description", "l1\nl2\x1b[2J"),
        ("server", "update", "Production", "--description", "x\ty"),
        ("apikey", "add", "-", "--name", "k", "--description", "a\x1b[2Jb"),
    ],
)
def test_control_characters_never_reach_the_database_or_the_terminal(
    cli: Cli, stored: str, data_dir: Path, args: tuple[str, ...]
) -> None:
    before = snapshot(data_dir)
    run = cli(*args, input=make_jwt(sub="new") + "\n")
    assert run.exit_code == ExitStatus.USAGE, run.output
    assert "control characters" in run.stderr
    assert "\x1b" not in run.output
    assert snapshot(data_dir) == before


@pytest.mark.parametrize(
    "args",
    [
        ("apikey", "add", "-", "--name", "bad\udcffname"),
        ("apikey", "add", "-", "--name", "k", "--description", "d\udcff"),
        ("server", "create", "S\udcff", "http://localhost:1"),
        ("apikey", "show", "x\udcff"),
    ],
)
def test_names_that_are_not_utf8_are_a_usage_error(
    cli: Cli, stored: str, data_dir: Path, args: tuple[str, ...]
) -> None:
    before = snapshot(data_dir)
    run = cli(*args, input=make_jwt(sub="new") + "\n")
    one_line_error(run, ExitStatus.USAGE, "The ")
    assert "not valid UTF-8" in run.stderr
    assert snapshot(data_dir) == before


def test_a_suggested_delete_command_can_be_pasted_into_a_shell(cli: Cli) -> None:
    secret = make_jwt()
    assert cli("apikey", "add", "-", "--name", "bob's key", input=secret).exit_code == 0
    run = cli("apikey", "add", "-", "--name", "other", input=secret)
    assert run.exit_code == ExitStatus.FAILED
    assert "n8n-deploy apikey delete 'bob'\"'\"'s key'" in run.stderr


def test_already_exists_says_what_to_do(cli: Cli, stored: str) -> None:
    run = cli("server", "create", "Production", "https://other.example.com")
    one_line_error(run, ExitStatus.FAILED, "Server 'Production' already exists")
    assert "n8n-deploy server show Production" in run.stderr


def test_a_server_created_from_n8n_server_url_warns_about_plain_http(cli: Cli) -> None:
    run = cli(
        "apikey",
        "add",
        "-",
        "--name",
        "lan_key",
        input=make_jwt(),
        env={"N8N_SERVER_URL": "http://10.0.0.5:5678"},
    )
    assert run.exit_code == 0, run.output
    assert "plain http" in run.stderr


@pytest.mark.e2e
@pytest.mark.parametrize("extra", [(), ("--no-emoji",), ("--json",)])
def test_a_reader_that_leaves_early_is_not_an_error(
    database: Database, data_dir: Path, extra: tuple[str, ...]
) -> None:
    """`n8n-deploy apikey list | head -1` exits 0 with nothing on stderr."""
    with database.session(write=True) as s:
        keys = ApiKeyRepository(s)
        for i in range(700):  # well past a pipe's 64 KiB buffer
            keys.add(f"key_{i:04d}", make_jwt(sub=f"u{i}"), description="x" * 40)
    process = subprocess.Popen(
        [installed_script(), "apikey", "list", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, N8N_DEPLOY_DATA_DIR=str(data_dir)),
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0, stderr
    assert stderr == ""


@pytest.mark.e2e
def test_stdin_that_is_not_utf8_is_a_usage_error(data_dir: Path) -> None:
    result = subprocess.run(
        [installed_script(), "apikey", "add", "-", "--name", "k"],
        input=b"\xff\xfe\n",
        capture_output=True,
        env=dict(os.environ, N8N_DEPLOY_DATA_DIR=str(data_dir), LC_ALL="C.UTF-8"),
        check=False,
    )
    assert result.returncode == ExitStatus.USAGE
    assert result.stderr.decode().startswith(
        "Error: Cannot read the API key: stdin is not UTF-8 text"
    )


@pytest.mark.parametrize(
    "args",
    [
        ("apikey", "add", "-", "--name", "k", "--description", "{key}"),
        ("server", "create", "S", "https://s.example.com", "--description", "note {key}"),
        ("server", "update", "Production", "--description", "{key}"),
    ],
)
def test_a_key_pasted_into_a_description_is_refused(
    cli: Cli, stored: str, data_dir: Path, args: tuple[str, ...]
) -> None:
    pasted = make_jwt(sub="pasted")
    before = snapshot(data_dir)
    run = cli(*(a.replace("{key}", pasted) for a in args), input=make_jwt(sub="new"))
    one_line_error(run, ExitStatus.USAGE, "The description contains what looks like an API key")
    assert pasted not in run.output
    assert snapshot(data_dir) == before
