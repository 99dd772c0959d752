"""Command benchmarks on a database with many keys (`make bench`, never part of
`make test`).  Timings are reported, never asserted.  The store is built once for all of
them, with the project's own Python API in one unit of work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from n8n_deploy.base.settings import resolve_settings
from n8n_deploy.store.lifecycle import open_database
from n8n_deploy.store.repositories import ApiKeyRepository, ServerRepository
from tests.helpers import make_jwt

KEYS = 1000


@pytest.fixture(scope="session")
def many_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("bench") / "data"
    database = open_database(resolve_settings(str(data_dir)))
    try:
        with database.session(write=True) as s:
            servers = ServerRepository(s)
            prod = servers.create("Production", "https://n8n.example.com")
            keys = ApiKeyRepository(s)
            for i in range(KEYS):
                keys.add(f"key_{i:05d}", make_jwt(exp_days=30, sub=f"u{i}"), servers=[prod])
    finally:
        database.dispose()
    return data_dir


def _run(data_dir: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "n8n_deploy", *args],
        check=True,
        capture_output=True,
        env=dict(os.environ, N8N_DEPLOY_DATA_DIR=str(data_dir)),
    )


def test_bench_apikey_list_table(benchmark: Any, many_keys: Path) -> None:
    benchmark(_run, many_keys, "apikey", "list")


def test_bench_apikey_list_json(benchmark: Any, many_keys: Path) -> None:
    benchmark(_run, many_keys, "apikey", "list", "--json")


def test_bench_server_keys(benchmark: Any, many_keys: Path) -> None:
    benchmark(_run, many_keys, "server", "keys", "Production", "--no-emoji")


def test_bench_apikey_show(benchmark: Any, many_keys: Path) -> None:
    benchmark(_run, many_keys, "apikey", "show", "key_00500")
