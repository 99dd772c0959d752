"""Where the data lives and how it is protected on disk."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from n8n_deploy.base.settings import resolve_settings
from n8n_deploy.base.urls import mask_url_password, sqlite_path
from n8n_deploy.store.lifecycle import open_database
from n8n_deploy.store.repositories import ApiKeyRepository
from tests.helpers import Run, file_mode, make_jwt

Cli = Callable[..., Run]


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_flag_beats_environment_beats_default(tmp_path: Path) -> None:
    env = {"N8N_DEPLOY_DATA_DIR": str(tmp_path / "env")}
    assert resolve_settings(str(tmp_path / "flag"), None, env).data_dir == tmp_path / "flag"
    assert resolve_settings(None, None, env).data_dir_source == "environment"
    default = resolve_settings(None, None, {})
    assert default.data_dir == Path.home() / ".n8n-deploy"
    assert default.data_dir_source == "default"
    url_env = {"N8N_DEPLOY_DATABASE_URL": "sqlite:////tmp/other.db", **env}
    assert resolve_settings(None, None, url_env).database_url == "sqlite:////tmp/other.db"
    flagged = resolve_settings(None, "sqlite:////tmp/flag.db", url_env)
    assert (flagged.database_url, flagged.database_url_source) == ("sqlite:////tmp/flag.db", "flag")


def test_passwords_in_urls_are_masked() -> None:
    assert (
        mask_url_password("postgresql+psycopg://deploy:s3cr3t@db.internal:5432/n8n")
        == "postgresql+psycopg://deploy:***@db.internal:5432/n8n"
    )
    assert mask_url_password("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_sqlite_paths_are_read_from_urls() -> None:
    assert sqlite_path("sqlite:////srv/n8n.db") == Path("/srv/n8n.db")
    # The path is percent-decoded, as SQLAlchemy decodes it before opening the file.
    assert sqlite_path("sqlite:////srv/a%20b%3F.db") == Path("/srv/a b?.db")
    assert sqlite_path("sqlite://") is None
    assert sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("postgresql://h/db") is None


@pytest.mark.parametrize("folder", ["q?x=1", "p%41b", "s p#h"])
def test_a_data_folder_whose_name_looks_like_url_syntax_holds_the_database(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: str
) -> None:
    data = tmp_path / folder
    monkeypatch.setenv("N8N_DEPLOY_DATA_DIR", str(data))
    assert sqlite_path(resolve_settings().database_url) == data / "n8n-deploy.db"
    assert cli("apikey", "add", "-", "--name", "prod_key", input=make_jwt(30)).exit_code == 0
    listed = cli("apikey", "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    assert '"name": "prod_key"' in listed.stdout
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == [folder]
    assert (data / "n8n-deploy.db").is_file()


def test_folder_is_0700_and_files_0600_even_under_umask_022(
    data_dir: Path, umask_022: None
) -> None:
    database = open_database(resolve_settings())
    try:
        with database.session(write=True) as s:
            ApiKeyRepository(s).add("k", make_jwt())
            # While a connection is open in WAL mode, the -wal and -shm files exist.
            s.execute(text("SELECT 1"))
            wal = Path(f"{data_dir / 'n8n-deploy.db'}-wal")
            shm = Path(f"{data_dir / 'n8n-deploy.db'}-shm")
            assert wal.exists() and shm.exists()
            assert file_mode(wal) == 0o600
            assert file_mode(shm) == 0o600
    finally:
        database.dispose()
    assert file_mode(data_dir) == 0o700
    assert file_mode(data_dir / "n8n-deploy.db") == 0o600


def test_sqlite_runs_with_foreign_keys_wal_and_a_busy_timeout(data_dir: Path) -> None:
    database = open_database(resolve_settings())
    try:
        with database.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    finally:
        database.dispose()


def test_sql_errors_never_carry_the_key(data_dir: Path) -> None:
    from sqlalchemy.exc import IntegrityError

    secret = make_jwt()
    database = open_database(resolve_settings())
    try:
        with pytest.raises(IntegrityError) as caught, database.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO api_keys (name, api_key, created_at) VALUES (:n, :k, NULL)"),
                {"n": "x", "k": secret},
            )
        assert secret not in str(caught.value)
    finally:
        database.dispose()


def test_an_existing_folder_keeps_its_mode(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o750)
    os.chmod(folder, 0o750)  # noqa: S103 - a team folder, on purpose
    database = open_database(resolve_settings(str(folder)))
    database.dispose()
    assert file_mode(folder) == 0o750
    assert file_mode(folder / "n8n-deploy.db") == 0o600


def test_a_password_holding_a_question_mark_is_masked_whole() -> None:
    shown = mask_url_password("postgresql://u:S3cr3t?Pw#x/y@127.0.0.1:1/db?password=z")
    assert shown == "postgresql://u:***@127.0.0.1:1/db?password=***"


def test_permissions_are_only_ever_taken_away_never_given(cli: Cli, data_dir: Path) -> None:
    """A database its owner made read-only stays read-only: reading it takes the group's
    and others' bits off (0444 -> 0400) but never gives the owner write again."""
    assert cli("apikey", "add", "-", "--name", "k", input=make_jwt(sub="k")).exit_code == 0
    db = data_dir / "n8n-deploy.db"
    os.chmod(db, 0o444)
    listed = cli("apikey", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert file_mode(db) == 0o400


def test_a_database_this_user_cannot_chmod_is_still_read(
    cli: Cli, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A team member reading a 0640 file owned by someone else (or an immutable file, a
    read-only mount): chmod fails, and reading must work all the same."""
    from n8n_deploy.store import files

    assert cli("apikey", "add", "-", "--name", "k", input=make_jwt(sub="k")).exit_code == 0
    db = data_dir / "n8n-deploy.db"
    os.chmod(db, 0o640)

    def refuse(path: object, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted", str(path))

    monkeypatch.setattr(files.os, "chmod", refuse)
    for args in (("apikey", "list"), ("apikey", "show", "k"), ("apikey", "audit")):
        run = cli(*args)
        assert run.exit_code in (0, 10), run.output
        assert "unexpected" not in run.output and "Traceback" not in run.output
    assert file_mode(db) == 0o640
