"""Databases the tests build themselves: at any revision of this project (with
representative rows), and n8n-deploy 0.9.1 files from that release's schema.

Everything is written with plain sqlite3, in the layout of the revision at hand, so the
tests do not depend on the current models to create old databases.
"""

from __future__ import annotations

import shutil
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from n8n_deploy.base.errors import InvalidServerUrlError
from n8n_deploy.base.keyformat import key_info_or_none
from n8n_deploy.base.urls import normalize_server_url
from n8n_deploy.store import migrations as migrate
from n8n_deploy.store import schema
from n8n_deploy.store.engine import create_engine_for
from n8n_deploy.store.models import secret_hash
from tests.helpers import make_jwt, make_legacy_key

FIXTURE = Path(__file__).parent / "fixtures" / "legacy-0.9" / "n8n-deploy.db"
STAMP = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime in SQLite


def copy_fixture(target: Path) -> Path:
    """A writable copy of the 0.9.1 fixture (the original is never opened)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIXTURE, target)
    return target


# -- this project's revisions --------------------------------------------------------------

SERVERS: list[dict[str, Any]] = [
    {
        "id": 1,
        "name": "Production 🚀",
        "url": "https://n8n.example.com",
        "description": "main",
        "skip_ssl_verify": 0,
        "created_at": "2025-01-02 03:04:05.123456",
    },
    {
        # Not in normal form, as 0.9 or a hand edit would have stored it.
        "id": 2,
        "name": "staging",
        "url": "HTTP://N8N-Staging.Internal:5678/",
        "description": None,
        "skip_ssl_verify": 1,
        "created_at": "2025-02-03 04:05:06.000000",
    },
    {
        "id": 4,  # id 3 was deleted: ids are kept, not renumbered
        "name": "сервер без URL",
        "url": "n8n.example.org",  # not an http(s) URL: left as stored
        "description": "unicode",
        "skip_ssl_verify": 0,
        "created_at": "2025-03-04 05:06:07.000001",
    },
]


def representative_keys() -> list[dict[str, Any]]:
    return [
        {
            "id": 1,
            "name": "prod_key",
            "api_key": make_jwt(exp_days=90, sub="prod"),
            "description": "main 🚀",
            "is_active": 1,
            "created_at": "2025-01-02 03:04:05.654321",
            "last_used_at": "2025-06-01 12:00:00.000000",
        },
        {
            "id": 2,
            "name": "ключ 🔑",
            "api_key": make_jwt(sub="unicode"),  # no exp
            "description": "utf8 name",
            "is_active": 1,
            "created_at": "2025-01-03 00:00:00.000000",
            "last_used_at": None,
        },
        {
            "id": 3,
            "name": "old legacy key",
            "api_key": make_legacy_key(3),
            "description": None,
            "is_active": 0,
            "created_at": "2024-12-31 23:59:59.999999",
            "last_used_at": None,
        },
        {
            "id": 5,
            "name": "expired",
            "api_key": make_jwt(exp_days=-10, sub="expired"),
            "description": "inactive and expired",
            "is_active": 0,
            "created_at": "2025-01-04 00:00:00.000000",
            "last_used_at": "2025-01-05 00:00:00.000000",
        },
        {
            "id": 6,
            "name": "absurd exp",
            "api_key": make_jwt(sub="absurd", exp=10**20),
            "description": None,
            "is_active": 1,
            "created_at": "2025-01-06 00:00:00.000000",
            "last_used_at": None,
        },
        {
            "id": 7,
            "name": "not a key",
            "api_key": "garbage-that-is-no-jwt",
            "description": None,
            "is_active": 1,
            "created_at": "2025-01-07 00:00:00.000000",
            "last_used_at": None,
        },
    ]


# (server id, key id, created_at)
LINKS = [
    (1, 1, "2025-01-02 03:04:06.000000"),
    (2, 2, "2025-01-03 00:00:01.000000"),
    (1, 2, "2025-01-03 00:00:02.000000"),
    (4, 3, "2025-01-03 00:00:03.000000"),
    (2, 5, "2025-01-04 00:00:01.000000"),
]


def expected_expiry(secret: str) -> datetime | None:
    info = key_info_or_none(secret)
    if info is None or info.expires_at is None:
        return None
    return info.expires_at.replace(tzinfo=None)


def expected_hashes(keys: list[dict[str, Any]]) -> dict[int, str | None]:
    """Revision 0005's secret_hash of each key: the oldest holder of a key gets it."""
    owners: dict[str, int] = {}
    hashes: dict[int, str | None] = {}
    for key in sorted(keys, key=lambda k: k["id"]):
        digest = secret_hash(key["api_key"])
        hashes[key["id"]] = None if digest in owners else digest
        owners.setdefault(digest, key["id"])
    return hashes


def build_at_revision(path: Path, revision: str) -> dict[str, Any]:
    """A database at ``revision`` holding the representative rows; returns what was written."""
    engine = create_engine_for(f"sqlite:///{path}")
    try:
        migrate.upgrade(engine, revision)
    finally:
        engine.dispose()
    keys = representative_keys()
    with sqlite3.connect(path) as conn:
        key_columns = _columns(conn, "api_keys")
        server_columns = _columns(conn, "servers")
        for server in SERVERS:
            row = dict(server)
            if "updated_at" in server_columns:
                row["updated_at"] = server["created_at"]
            _insert(conn, "servers", row)
        hashes = expected_hashes(keys)
        for key in keys:
            row = dict(key)
            if "secret_hash" in key_columns:
                row["secret_hash"] = hashes[key["id"]]
            if "expires_at" in key_columns:
                expires = expected_expiry(key["api_key"])
                row["expires_at"] = expires.strftime(STAMP) if expires else None
            _insert(conn, "api_keys", row)
        for server_id, key_id, created in LINKS:
            _insert(
                conn,
                "server_api_keys",
                {"server_id": server_id, "api_key_id": key_id, "created_at": created},
            )
        # Deleted rows leave their ids used: the counters must survive table rebuilds.
        conn.execute("UPDATE sqlite_sequence SET seq = 10 WHERE name IN ('api_keys', 'servers')")
    conn.close()
    return {"servers": SERVERS, "keys": keys, "links": LINKS}


def snapshot(path: Path) -> dict[str, Any]:
    """Every row of the managed tables, timestamps parsed, keyed by id."""
    conn = sqlite3.connect(path)
    try:
        conn.row_factory = sqlite3.Row
        result: dict[str, Any] = {}
        for table in ("servers", "api_keys"):
            result[table] = {
                row["id"]: {k: _value(k, row[k]) for k in row.keys()}  # noqa: SIM118
                for row in conn.execute(f"SELECT * FROM {table}")
            }
        result["links"] = {
            (row["server_id"], row["api_key_id"]): _value("created_at", row["created_at"])
            for row in conn.execute("SELECT * FROM server_api_keys")
        }
        result["sequences"] = dict(
            conn.execute(
                "SELECT name, seq FROM sqlite_sequence WHERE name IN ('api_keys', 'servers')"
            ).fetchall()
        )
        result["revision"] = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    finally:
        conn.close()
    return result


class NotBefore:
    """Equal to any datetime at or after ``moment`` (a time set while the test ran)."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __eq__(self, other: object) -> bool:
        return isinstance(other, datetime) and other >= self.moment

    def __repr__(self) -> str:
        return f"NotBefore({self.moment})"


def expected_rows(
    built: dict[str, Any],
    revision: str,
    *,
    normalised_urls: bool,
    rewritten_since: datetime | None = None,
) -> dict[str, Any]:
    """What ``snapshot`` must show for the rows ``built`` once the database is at
    ``revision``: URLs are in normal form once revision 0003 has run over them, and a
    server whose URL that upgrade rewrote (after ``rewritten_since``) was updated then."""
    at = schema.KNOWN_REVISIONS.index(revision)
    servers = {}
    for server in built["servers"]:
        row = {k: _value(k, v) for k, v in server.items()}
        if normalised_urls:
            row["url"] = normal_or_same(row["url"])
        if at >= 2:
            row["updated_at"] = row["created_at"]
            if rewritten_since is not None and row["url"] != server["url"]:
                row["updated_at"] = NotBefore(rewritten_since)
        servers[server["id"]] = row
    keys = {}
    hashes = expected_hashes(built["keys"])
    for key in built["keys"]:
        row = {k: _value(k, v) for k, v in key.items()}
        if at >= 1:
            row["expires_at"] = expected_expiry(key["api_key"])
        if at >= 4:
            row["secret_hash"] = hashes[key["id"]]
        if at >= 6:
            row["delete_after"] = None  # no key was ephemeral before revision 0007
        keys[key["id"]] = row
    links = {(s, k): _value("created_at", c) for s, k, c in built["links"]}
    return {"servers": servers, "api_keys": keys, "links": links}


def normal_or_same(url: str) -> str:
    try:
        return normalize_server_url(url)
    except InvalidServerUrlError:
        return url


def _value(column: str, value: Any) -> Any:
    if column.endswith("_at") and isinstance(value, str):
        return datetime.fromisoformat(value)
    if column in ("is_active", "skip_ssl_verify") and value is not None:
        return bool(value)
    return value


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _insert(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    names = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(row.values()))


# -- n8n-deploy 0.9.1 ----------------------------------------------------------------------

# The schema of n8n-deploy 0.9.1 as described in tests/fixtures/legacy-0.9/README.md
# (tests/test_legacy.py checks that it matches the fixture's tables and columns).
LEGACY_SCHEMA = """
CREATE TABLE schema_info (
    version INTEGER PRIMARY KEY,
    applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    description TEXT
);
CREATE TABLE workflows (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    file TEXT,
    file_folder TEXT,
    server_id INTEGER,
    status TEXT DEFAULT 'ACTIVE',
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    last_synced TIMESTAMP,
    last_used TIMESTAMP,
    n8n_version_id TEXT,
    push_count INTEGER DEFAULT 0,
    pull_count INTEGER DEFAULT 0,
    FOREIGN KEY (server_id) REFERENCES servers(id) ON DELETE SET NULL
);
CREATE TABLE servers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    is_active BOOLEAN DEFAULT TRUE,
    skip_ssl_verify BOOLEAN DEFAULT FALSE,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    last_used TIMESTAMP
);
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    api_key TEXT NOT NULL,
    description TEXT,
    is_active BOOLEAN DEFAULT TRUE,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE server_api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id INTEGER NOT NULL,
    api_key_id INTEGER NOT NULL,
    is_primary BOOLEAN DEFAULT FALSE,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (server_id) REFERENCES servers (id) ON DELETE CASCADE,
    FOREIGN KEY (api_key_id) REFERENCES api_keys (id) ON DELETE CASCADE,
    UNIQUE (server_id, api_key_id)
);
CREATE TABLE configurations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    backup_path TEXT NOT NULL,
    checksum TEXT,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    is_active BOOLEAN DEFAULT TRUE
);
CREATE TABLE dependencies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow_id TEXT NOT NULL,
    depends_on TEXT NOT NULL,
    dependency_type TEXT DEFAULT 'wf',
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (workflow_id) REFERENCES workflows (id) ON DELETE CASCADE,
    FOREIGN KEY (depends_on) REFERENCES workflows (id) ON DELETE CASCADE
);
CREATE TABLE n8n_folders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    n8n_folder_id TEXT NOT NULL,
    n8n_project_id TEXT NOT NULL,
    folder_path TEXT NOT NULL,
    server_id INTEGER NOT NULL,
    last_synced TIMESTAMP,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (server_id) REFERENCES servers(id) ON DELETE CASCADE,
    UNIQUE (n8n_folder_id, server_id)
);
CREATE TABLE folder_mappings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    local_path TEXT NOT NULL,
    n8n_folder_id INTEGER NOT NULL,
    sync_direction TEXT DEFAULT 'bidirectional',
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (n8n_folder_id) REFERENCES n8n_folders(id) ON DELETE CASCADE,
    UNIQUE (local_path, n8n_folder_id)
);
CREATE TABLE server_credentials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id INTEGER NOT NULL UNIQUE,
    email TEXT NOT NULL,
    session_cookie TEXT,
    cookie_expires_at TIMESTAMP,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (server_id) REFERENCES servers(id) ON DELETE CASCADE
);
CREATE INDEX idx_workflows_status ON workflows (status);
CREATE INDEX idx_workflows_name ON workflows (name);
CREATE INDEX idx_servers_name ON servers (name);
CREATE INDEX idx_servers_url ON servers (url);
CREATE INDEX idx_api_keys_name ON api_keys (name);
CREATE INDEX idx_server_api_keys_server ON server_api_keys (server_id);
CREATE INDEX idx_server_api_keys_key ON server_api_keys (api_key_id);
CREATE INDEX idx_dependencies_workflow_id ON dependencies (workflow_id);
CREATE INDEX idx_n8n_folders_server ON n8n_folders (server_id);
CREATE INDEX idx_n8n_folders_path ON n8n_folders (folder_path);
CREATE INDEX idx_folder_mappings_local ON folder_mappings (local_path);
CREATE INDEX idx_server_credentials_server ON server_credentials (server_id);
"""

UNMANAGED_TABLES = (
    "workflows",
    "configurations",
    "dependencies",
    "n8n_folders",
    "folder_mappings",
    "server_credentials",
)


def build_legacy(
    path: Path,
    *,
    servers: list[dict[str, Any]],
    keys: list[dict[str, Any]],
    links: list[dict[str, Any]],
    unmanaged_rows: bool = False,
    unique_names: bool = True,
) -> None:
    """A 0.9.1 file: rows are dicts in 0.9's columns (missing columns take 0.9's defaults).
    ``unique_names=False`` leaves out 0.9's UNIQUE on names, as a file made by hand might."""
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = LEGACY_SCHEMA
    if not unique_names:
        schema = schema.replace("name TEXT NOT NULL UNIQUE", "name TEXT NOT NULL")
    conn = sqlite3.connect(path)
    try:
        conn.executescript(schema)
        conn.execute(
            "INSERT INTO schema_info (version, applied_at, description) VALUES "
            "(8, '2025-10-01 10:00:00.000000', 'Server SSL verification setting')"
        )
        for server in servers:
            _insert(conn, "servers", server)
        for key in keys:
            _insert(conn, "api_keys", key)
        for link in links:
            _insert(conn, "server_api_keys", link)
        if unmanaged_rows:
            fill_unmanaged(conn)
        conn.commit()
    finally:
        conn.close()


def fill_unmanaged(conn: sqlite3.Connection) -> None:
    """Rows in every table 0.9 had and this project does not manage, pointing at server 1."""
    conn.executescript(
        """
        INSERT INTO workflows (id, name, file, server_id, status, created_at, push_count)
            VALUES ('wf-1', 'Ingest ✨', 'ingest.json', 1, 'ACTIVE', '2025-10-01 10:00:00', 3);
        INSERT INTO workflows (id, name, server_id) VALUES ('wf-2', 'Report', NULL);
        INSERT INTO dependencies (workflow_id, depends_on) VALUES ('wf-1', 'wf-2');
        INSERT INTO configurations (name, backup_path, checksum)
            VALUES ('nightly', '/backups/nightly', 'abc123');
        INSERT INTO n8n_folders (n8n_folder_id, n8n_project_id, folder_path, server_id)
            VALUES ('f-1', 'p-1', '/Team/Flows', 1);
        INSERT INTO folder_mappings (local_path, n8n_folder_id) VALUES ('./flows', 1);
        INSERT INTO server_credentials (server_id, email, session_cookie)
            VALUES (1, 'ops@example.com', 'cookie-value');
        """
    )


def legacy_server(
    id: int, name: str, url: str, created_at: str = "2025-10-01 10:00:00.000000", **more: Any
) -> dict[str, Any]:
    return {"id": id, "name": name, "url": url, "created_at": created_at, **more}


def legacy_key(
    id: int, name: str, api_key: str, created_at: str = "2025-10-01 10:00:00.000000", **more: Any
) -> dict[str, Any]:
    return {"id": id, "name": name, "api_key": api_key, "created_at": created_at, **more}


def legacy_link(
    server_id: int, api_key_id: int, created_at: str = "2025-10-01 10:00:00.000000", **more: Any
) -> dict[str, Any]:
    return {"server_id": server_id, "api_key_id": api_key_id, "created_at": created_at, **more}


def table_dump(path: Path, tables: tuple[str, ...]) -> dict[str, Any]:
    """Definitions (CREATE statements, indexes included) and rows of ``tables``."""
    conn = sqlite3.connect(path)
    try:
        marks = ",".join("?" for _ in tables)
        definitions = sorted(
            conn.execute(
                f"SELECT type, name, tbl_name, sql FROM sqlite_master WHERE tbl_name IN ({marks})",
                tables,
            ).fetchall()
        )
        rows = {
            table: sorted(
                conn.execute(f"SELECT * FROM {table}").fetchall(),
                key=repr,
            )
            for table in tables
        }
    finally:
        conn.close()
    return {"definitions": definitions, "rows": rows}


def utc(text: str) -> datetime:
    """A UTC timestamp as the models return it (aware)."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
