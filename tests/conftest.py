"""Shared fixtures.  Every test gets its own data folder under tmp_path (through the same
environment variable a user would set) and a HOME that is not the real one.

A test that takes the ``engine`` fixture runs once per database engine: SQLite, and
PostgreSQL and MariaDB when their servers are named by N8N_DEPLOY_TEST_POSTGRESQL_URL and
N8N_DEPLOY_TEST_MARIADB_URL (each run gets a new database of its own, dropped afterwards;
the CLI reaches it through N8N_DEPLOY_DATABASE_URL, as a user's would).  Without a
variable those runs are skipped, naming it; with N8N_DEPLOY_TEST_REQUIRE_SERVERS set (CI)
they fail instead.  ``@pytest.mark.sqlite_only`` keeps a test that takes ``engine`` on
SQLite: one that is about files (modes, backups, the 0.9 import); ``servers_only`` runs
one about what only a database server has (its migration lock) on the servers alone."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from n8n_deploy.base.settings import Settings, resolve_settings
from n8n_deploy.cli import app
from n8n_deploy.store.engine import Database
from n8n_deploy.store.lifecycle import open_database
from tests.helpers import (
    ENGINES,
    REQUIRE_SERVERS_VARIABLE,
    SERVER_URL_VARIABLES,
    Run,
    create_server_database,
    drop_server_database,
    make_jwt,
    server_admin_url,
)

ENV_VARS = (
    "N8N_DEPLOY_DATA_DIR",
    "N8N_DEPLOY_DATABASE_URL",
    "N8N_DEPLOY_AUTO_UPGRADE",
    "N8N_DEPLOY_DEBUG",
    "N8N_DEPLOY_LOCK_TIMEOUT",
    "N8N_DEPLOY_NO_EMOJI",
    "GITHUB_ACTIONS",
    "GITHUB_STEP_SUMMARY",
    "CI",
    "N8N_SERVER_URL",
    "NO_COLOR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    # Requests in tests go to respx or to servers on 127.0.0.1, never through a proxy.
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The data folder of this test (not created yet: commands create it)."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    folder = tmp_path / "data"
    monkeypatch.setenv("N8N_DEPLOY_DATA_DIR", str(folder))
    return folder


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("sqlite_only") is not None:
        engines = ["sqlite"]
    elif metafunc.definition.get_closest_marker("servers_only") is not None:
        engines = [kind for kind in ENGINES if kind != "sqlite"]
    else:
        engines = list(ENGINES)
    metafunc.parametrize("engine", engines, indirect=True)


@pytest.fixture
def engine(
    request: pytest.FixtureRequest, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The database URL of this run: a SQLite file in the data folder, or a new database
    on a server (set as N8N_DEPLOY_DATABASE_URL for the CLI and resolve_settings)."""
    kind = request.param
    if kind == "sqlite":
        yield f"sqlite:///{data_dir / 'n8n-deploy.db'}"
        return
    admin = server_admin_url(kind)
    if admin is None:
        variable = SERVER_URL_VARIABLES[kind]
        message = f"no {kind} server: set {variable} to run this test against one"
        if os.environ.get(REQUIRE_SERVERS_VARIABLE):
            pytest.fail(f"{message} ({REQUIRE_SERVERS_VARIABLE} is set)")
        pytest.skip(message)
    url = create_server_database(kind, admin)
    monkeypatch.setenv("N8N_DEPLOY_DATABASE_URL", url)
    try:
        yield url
    finally:
        drop_server_database(kind, admin, url)


@pytest.fixture
def cli() -> Callable[..., Run]:
    """Run the real CLI in-process: cli("apikey", "list", input="...")."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Run:
        result = runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)
        return Run(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def settings(data_dir: Path, request: pytest.FixtureRequest) -> Settings:
    if "engine" in request.fixturenames:
        request.getfixturevalue("engine")  # its database URL is in the environment first
    return resolve_settings()


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = open_database(settings)
    yield db
    db.dispose()


@pytest.fixture
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries wait on a simulated clock, so no test sleeps (``usefixtures("no_waiting")``)."""
    from n8n_deploy.n8n import probe

    now = [1000.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr(probe, "_clock", lambda: now[0])
    monkeypatch.setattr(probe, "_sleep", sleep)


@pytest.fixture
def jwt_key() -> Callable[..., str]:
    return make_jwt
