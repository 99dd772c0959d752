"""Shared fixtures.  Every test gets its own data folder under tmp_path (through the same
environment variable a user would set) and a HOME that is not the real one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from n8n_deploy.base.settings import Settings, resolve_settings
from n8n_deploy.cli import app
from n8n_deploy.store.engine import Database
from n8n_deploy.store.lifecycle import open_database
from tests.helpers import Run, make_jwt

ENV_VARS = (
    "N8N_DEPLOY_DATA_DIR",
    "N8N_DEPLOY_DATABASE_URL",
    "N8N_DEPLOY_AUTO_UPGRADE",
    "N8N_DEPLOY_DEBUG",
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


@pytest.fixture
def cli() -> Callable[..., Run]:
    """Run the real CLI in-process: cli("apikey", "list", input="...")."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Run:
        result = runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)
        return Run(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return resolve_settings()


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = open_database(settings)
    yield db
    db.dispose()


@pytest.fixture
def jwt_key() -> Callable[..., str]:
    return make_jwt
