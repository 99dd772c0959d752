"""Helpers shared by the tests: the one module tests import from (fixtures are in
conftest.py; ``dbfactory`` builds databases of earlier releases, ``fake_n8n`` is a server).

Keys shaped like n8n's, what a command printed, what a database holds, and the
installed script."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt

from n8n_deploy.store.engine import Database
from n8n_deploy.store.repositories import ApiKeyRepository, ServerRepository

# A server-side secret long enough for HS256; tests never need to verify with it.
JWT_SECRET = "n8n-deploy-tests-secret-0123456789abcdef"
#: Libraries that --help, --version and completion must not import.
HEAVY = ("sqlalchemy", "alembic", "httpx", "rich", "jwt", "pydantic")
#: What commands that only read the database must not import (they use SQLAlchemy Core).
NOT_FOR_READING = ("sqlalchemy.orm", "alembic", "httpx")


@dataclass
class Run:
    """What a user sees from one command: exit status, stdout and stderr."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


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
    """The first piece of ``key`` of ``size`` characters found in ``text``, in any letter
    case (a message that folds what it quotes shows the key all the same)."""
    shown, folded = str(text).lower(), key.lower()
    return next(
        (key[i : i + size] for i in range(len(key) - size + 1) if folded[i : i + size] in shown),
        None,
    )


def make_legacy_key(seed: int = 1) -> str:
    return "n8n_api_" + (f"{seed:02x}" * 40)


def raw_jwt(header: Any = None, claims: Any = None, *, signature: str = "c2lnbmF0dXJl") -> str:
    """A JWT-shaped string with any header and claims (JSON-encoded unless given as bytes)."""

    def part(value: Any) -> str:
        return b64url(value if isinstance(value, bytes) else json.dumps(value).encode())

    header = {"alg": "HS256", "typ": "JWT"} if header is None else header
    claims = {"sub": "u", "iss": "n8n", "aud": "public-api"} if claims is None else claims
    return f"{part(header)}.{part(claims)}.{signature}"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sqlite_file(data_dir: Path) -> Path:
    return data_dir / "n8n-deploy.db"


def file_mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777


def one_line_error(run: Run, status: int, starts: str) -> None:
    assert run.exit_code == status, run.output
    assert run.stdout == ""
    assert run.stderr.startswith(f"Error: {starts}"), run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "Traceback" not in run.output


def dump_database(data_dir: Path) -> list[str] | None:
    """Everything in the database the commands use (None when there is none yet): the
    SQLite file in ``data_dir``, or, in a test run on a database server (the ``engine``
    fixture sets N8N_DEPLOY_DATABASE_URL), every row of every table there."""
    url = os.environ.get("N8N_DEPLOY_DATABASE_URL")
    if url:
        return _dump_server(url)
    path = data_dir / "n8n-deploy.db"
    if not path.exists():
        return None
    with closing(sqlite3.connect(path)) as conn:
        return list(conn.iterdump())


def database_rows(data_dir: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """The rows ``sql`` (``?`` placeholders) finds in the database the commands use."""
    return _run_sql(data_dir, sql, params, write=False)


def change_database(data_dir: Path, sql: str, *params: Any) -> None:
    """Run one writing statement (``?`` placeholders) on the database the commands use,
    committed: a change made behind n8n-deploy's back."""
    _run_sql(data_dir, sql, params, write=True)


def _run_sql(
    data_dir: Path, sql: str, params: tuple[Any, ...], *, write: bool
) -> list[tuple[Any, ...]]:
    url = os.environ.get("N8N_DEPLOY_DATABASE_URL")
    if not url:
        with closing(sqlite3.connect(data_dir / "n8n-deploy.db")) as conn:
            found = conn.execute(sql, params)
            rows = [] if write else found.fetchall()
            conn.commit()
            return rows
    from sqlalchemy import create_engine, text

    from n8n_deploy.store.engine import database_url

    pieces = sql.split("?")
    named = "".join(f"{piece}:p{i}" for i, piece in enumerate(pieces[:-1])) + pieces[-1]
    engine = create_engine(database_url(url))
    try:
        with engine.begin() as conn:
            found = conn.execute(text(named), {f"p{i}": v for i, v in enumerate(params)})
            return [] if write else [tuple(_plain(value) for value in row) for row in found]
    finally:
        engine.dispose()


def _plain(value: Any) -> Any:
    """A server's value as SQLite's driver gives it (booleans 0/1, times as text)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return value


def _dump_server(url: str) -> list[str] | None:
    from sqlalchemy import create_engine, inspect, text

    from n8n_deploy.store.engine import database_url

    engine = create_engine(database_url(url))
    try:
        with engine.connect() as conn:
            tables = sorted(inspect(conn).get_table_names())
            if not tables:
                return None
            dump = []
            for table in tables:
                rows = conn.execute(text(f"SELECT * FROM {table}")).all()
                dump += [f"{table}: {tuple(row)!r}" for row in sorted(rows, key=repr)]
                dump.append(f"{table}: {len(rows)} rows")
            return dump
    finally:
        engine.dispose()


def installed_script() -> str:
    candidate = Path(sys.executable).parent / "n8n-deploy"
    found = str(candidate) if candidate.exists() else shutil.which("n8n-deploy")
    assert found, "the n8n-deploy console script is not installed"
    return found


def imported_modules(
    *args: str, env: dict[str, str], input: str | None = None, status: int = 0
) -> set[str]:
    """The top-level packages ``n8n-deploy ARGS`` imports (it must exit with ``status``)."""
    return {
        name.split(".")[0]
        for name in imported_module_names(*args, env=env, input=input, status=status)
    }


def imported_module_names(
    *args: str, env: dict[str, str], input: str | None = None, status: int = 0
) -> set[str]:
    """Every module ``n8n-deploy ARGS`` imports, by its full name (``sqlalchemy.orm``)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "n8n_deploy", *args],
        capture_output=True,
        text=True,
        env=env,
        input=input,
        check=False,
    )
    assert result.returncode == status, result.stderr
    return {
        line.split("|")[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def add_server(database: Database, name: str, url: str, *, skip_ssl_verify: bool = False) -> None:
    with database.session(write=True) as session:
        ServerRepository(session).create(name, url, skip_ssl_verify=skip_ssl_verify)


def add_key(
    database: Database,
    name: str,
    secret: str,
    servers: Sequence[str] = (),
    *,
    active: bool = True,
) -> None:
    with database.session(write=True) as session:
        keys, known = ApiKeyRepository(session), ServerRepository(session)
        key = keys.add(name, secret)
        for server in servers:
            known.link(key, known.get(server))
        if not active:
            keys.set_active(key, False)


@dataclass
class StoredKey:
    name: str
    secret: str
    is_active: bool
    last_used_at: datetime | None
    servers: list[str]
    description: str | None


def stored(database: Database, name: str) -> StoredKey | None:
    with database.session() as session:
        key = ApiKeyRepository(session).find(name)
        if key is None:
            return None
        return StoredKey(
            key.name,
            key.api_key,
            key.is_active,
            key.last_used_at,
            [s.name for s in key.servers],
            key.description,
        )


def key_names(database: Database) -> list[str]:
    with database.session() as session:
        return ApiKeyRepository(session).names()


# -- database servers ------------------------------------------------------------------------

#: Where the test suite finds each database server (CI sets both: .ci/run).
SERVER_URL_VARIABLES = {
    "postgresql": "N8N_DEPLOY_TEST_POSTGRESQL_URL",
    "mariadb": "N8N_DEPLOY_TEST_MARIADB_URL",
}
#: Set (CI does) to make a missing server a failure instead of a skip.
REQUIRE_SERVERS_VARIABLE = "N8N_DEPLOY_TEST_REQUIRE_SERVERS"
ENGINES = ("sqlite", *SERVER_URL_VARIABLES)


def server_admin_url(kind: str) -> str | None:
    """The URL of the server's admin database for ``kind``, or None when it is not set."""
    return os.environ.get(SERVER_URL_VARIABLES[kind]) or None


def _on_admin_database(kind: str, admin_url: str, statement: str) -> None:
    """Run ``statement`` on the server's admin database, outside any transaction."""
    from sqlalchemy import create_engine, make_url, text

    driver = "postgresql+psycopg" if kind == "postgresql" else "mysql+pymysql"
    engine = create_engine(make_url(admin_url).set(drivername=driver), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def create_server_database(kind: str, admin_url: str) -> str:
    """A new, empty database on the server, with a name of its own; returns its URL."""
    import uuid

    from sqlalchemy import make_url

    name = f"n8n_deploy_test_{uuid.uuid4().hex[:12]}"
    if kind == "postgresql":
        _on_admin_database(kind, admin_url, f'CREATE DATABASE "{name}"')
    else:
        _on_admin_database(kind, admin_url, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    driver = "postgresql+psycopg" if kind == "postgresql" else "mysql+pymysql"
    return (
        make_url(admin_url)
        .set(drivername=driver, database=name)
        .render_as_string(hide_password=False)
    )


def drop_server_database(kind: str, admin_url: str, url: str) -> None:
    from sqlalchemy import make_url

    name = make_url(url).database
    if kind == "postgresql":
        _on_admin_database(kind, admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        _on_admin_database(kind, admin_url, f"DROP DATABASE IF EXISTS `{name}`")


def backups(folder: Path) -> list[Path]:
    """The backups written into ``folder``, oldest name first."""
    return sorted(folder.glob("*.bak"))


def set_revision(db: Path, revision: str) -> None:
    """Stamp the SQLite file ``db`` with ``revision`` (e.g. one from a newer release)."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    conn.close()


# -- processes interrupted part-way (tests/test_interrupts.py, tests/test_signal_trials.py) ---

#: The last line of a command stopped before it saved anything, and of one stopped after.
INTERRUPTED_LINE = "Interrupted; nothing was changed."
SAVED_LINE = "Interrupted after a change was saved: it is kept."
#: What an interrupted command must never leave in the data folder: the staging copies of
#: a backup or restore, and a rollback journal.
STRAY_PATTERNS = ("*.partial", "*.restore", "*-journal")


def script_env(data_dir: Path, **more: str) -> dict[str, str]:
    """The environment of the installed script, on the data folder ``data_dir``."""
    return {**os.environ, "N8N_DEPLOY_DATA_DIR": str(data_dir), **more}


def stray_files(folder: Path) -> list[str]:
    """Files matching STRAY_PATTERNS in ``folder`` (hidden ones included)."""
    return sorted(p.name for pattern in STRAY_PATTERNS for p in folder.glob(pattern))


def sqlite_problems(path: Path) -> list[str]:
    """What ``PRAGMA integrity_check`` and ``PRAGMA foreign_key_check`` find ([]: none)."""
    with closing(sqlite3.connect(path)) as conn:
        integrity = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        foreign = [repr(row) for row in conn.execute("PRAGMA foreign_key_check")]
    return [line for line in integrity if line != "ok"] + foreign
