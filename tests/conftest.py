"""Shared fixtures.  Every test gets its own data folder under tmp_path (through the same
environment variable a user would set) and a HOME that is not the real one."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from typer.testing import CliRunner

from n8n_deploy.base.settings import Settings, resolve_settings
from n8n_deploy.cli import app
from n8n_deploy.store.engine import Database
from n8n_deploy.store.lifecycle import open_database

# A server-side secret long enough for HS256; tests never need to verify with it.
JWT_SECRET = "n8n-deploy-tests-secret-0123456789abcdef"

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


@dataclass
class Run:
    """What a user sees from one command: exit status, stdout and stderr."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


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


def make_jwt(exp_days: float | None = None, **claims: Any) -> str:
    """A key shaped like the ones n8n issues (HS256; sub, iss, aud, iat, optional exp)."""
    now = int(time.time())
    payload: dict[str, Any] = {"sub": "user-1234", "iss": "n8n", "aud": "public-api", "iat": now}
    if exp_days is not None:
        payload["exp"] = now + int(exp_days * 86400)
    payload.update(claims)
    return jwt.encode(payload, JWT_SECRET, algorithm="HS256")


def jwt_of_length(length: int) -> str:
    """A key as long as the ones n8n issues (267-289 characters)."""
    for pad in range(400):
        token = make_jwt(exp_days=30, jti="x" * pad)
        if len(token) == length:
            return token
    raise AssertionError(f"no JWT of {length} characters")


def leaked_piece(key: str, text: object, size: int = 12) -> str | None:
    """The first piece of ``key`` of ``size`` characters found in ``text``."""
    shown = str(text)
    return next(
        (key[i : i + size] for i in range(len(key) - size + 1) if key[i : i + size] in shown), None
    )


def make_legacy_key(seed: int = 1) -> str:
    return "n8n_api_" + (f"{seed:02x}" * 40)


@pytest.fixture
def jwt_key() -> Callable[..., str]:
    return make_jwt


def sqlite_file(data_dir: Path) -> Path:
    return data_dir / "n8n-deploy.db"


def file_mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777
