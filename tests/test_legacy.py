"""Databases made by n8n-deploy 0.9.x: the real 0.9.1 fixture, and files built from that
release's schema (orphan links, thousands of keys, rows in the tables we do not manage)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jwt
import pytest

from n8n_deploy.base.errors import LegacyDatabaseError
from n8n_deploy.base.settings import resolve_settings
from n8n_deploy.base.status import ExitStatus
from n8n_deploy.cli.views import key_counts, key_record, server_record
from n8n_deploy.store import legacy, schema
from n8n_deploy.store.lifecycle import open_database
from n8n_deploy.store.repositories import ApiKeyRepository, ServerRepository
from tests.dbfactory import (
    FIXTURE,
    UNMANAGED_TABLES,
    build_legacy,
    copy_fixture,
    legacy_key,
    legacy_link,
    legacy_server,
    snapshot,
    table_dump,
)
from tests.helpers import (
    Run,
    backups,
    file_mode,
    leaked_piece,
    make_jwt,
    make_legacy_key,
    sqlite_file,
)

Cli = Callable[..., Run]
HEAD = schema.HEAD


@pytest.fixture
def time_zone() -> Iterator[Callable[[str], None]]:
    """Run the test in a POSIX time zone (fixed offsets: no time zone database needed)."""
    original = os.environ.get("TZ")

    def use(name: str) -> None:
        os.environ["TZ"] = name
        time.tzset()

    yield use
    if original is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = original
    time.tzset()


def _fixture_secrets() -> list[str]:
    conn = sqlite3.connect(f"file:{FIXTURE}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("SELECT api_key FROM api_keys")]
    finally:
        conn.close()


def _dump(path: Path) -> list[str]:
    """Every schema object and row, as SQL."""
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def _tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()


# -- the real 0.9.1 file -----------------------------------------------------------------------


def test_the_schema_the_tests_build_is_the_one_of_the_fixture(tmp_path: Path) -> None:
    built = tmp_path / "built.db"
    build_legacy(built, servers=[], keys=[], links=[])

    def layout(path: Path) -> dict[str, list[tuple[str, str]]]:
        conn = sqlite3.connect(path)
        try:
            names = [
                row[0]
                for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'index') "
                    "AND name NOT LIKE 'sqlite_%' ORDER BY name"
                )
            ]
            return {
                name: [(r[1], r[2]) for r in conn.execute(f"PRAGMA table_info({name})")]
                for name in names
            }
        finally:
            conn.close()

    assert layout(built) == layout(copy_fixture(tmp_path / "fixture.db"))


def test_the_fixture_is_refused_by_other_commands_and_left_byte_for_byte(
    cli: Cli, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = copy_fixture(sqlite_file(data_dir))
    before = db.read_bytes()
    for args in (("db", "init"), ("db", "check"), ("db", "downgrade", "0001", "--confirm")):
        result = cli(*args)
        assert result.exit_code == ExitStatus.SCHEMA, (args, result.output)
        assert "n8n-deploy 0.9" in result.stderr
        assert "db upgrade" in result.stderr
    # Auto-upgrade does not cover a 0.9 file: carrying it over is a deliberate step.
    monkeypatch.setenv("N8N_DEPLOY_AUTO_UPGRADE", "1")
    assert cli("db", "init").exit_code == ExitStatus.SCHEMA
    with pytest.raises(LegacyDatabaseError):
        open_database(resolve_settings())
    current = json.loads(cli("db", "current", "--json").stdout)
    assert (current["state"], current["legacy_version"], current["upgrade_needed"]) == (
        "legacy",
        8,
        True,
    )
    assert db.read_bytes() == before
    assert backups(data_dir) == []


def test_the_fixture_upgrades_and_lists_its_four_keys_with_descriptions_status_and_servers(
    cli: Cli, data_dir: Path, time_zone: Callable[[str], None]
) -> None:
    time_zone("CET-1")  # where it was made: Europe/Berlin in November, UTC+1
    db = copy_fixture(sqlite_file(data_dir))
    original = _dump(db)

    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    (backup,) = backups(data_dir)
    assert _dump(backup) == original
    assert file_mode(backup) == 0o600
    assert file_mode(db) == 0o600
    out = result.stdout
    assert f"Backup written: {backup}" in out
    assert "Recognised a database made by n8n-deploy 0.9 (schema version 8)." in out
    assert "Carried over: 2 servers, 4 API keys, 2 links" in out
    assert "timestamps read as local time (CET-1) and stored as UTC" in out
    assert "Links dropped because their key or server no longer exists: 0" in out
    assert "Left untouched: configurations (0 rows), dependencies (0 rows)" in out
    assert f"Upgraded the database from 0.9 (schema version 8) to {HEAD}." in out
    assert result.stderr == ""  # nothing in this file is lost
    for secret in _fixture_secrets():
        assert secret not in result.output
        assert secret[-20:] not in result.output

    assert cli("db", "check").exit_code == 0
    database = open_database(resolve_settings())
    try:
        with database.session() as s:
            keys = {k.name: (k, key_record(k)) for k in ApiKeyRepository(s).list()}
            servers = {
                srv.name: server_record(srv, counts=key_counts(srv.api_keys))
                for srv in ServerRepository(s).list()
            }
    finally:
        database.dispose()

    assert set(keys) == {"production_key", "staging_key", "old_key", "ключ 🔑"}
    records = {name: record for name, (_, record) in keys.items()}
    assert records["production_key"]["description"] == "prod main"
    assert records["ключ 🔑"]["description"] == "utf8 name"
    assert records["staging_key"]["description"] is None
    assert records["production_key"]["servers"] == ["Production Server 🚀"]
    assert records["staging_key"]["servers"] == ["staging"]
    assert records["old_key"]["servers"] == []
    assert records["old_key"]["is_active"] is False
    assert records["old_key"]["status"] == "inactive"
    now = datetime.now(timezone.utc)
    for name, (key, record) in keys.items():
        assert record["last_used_at"] is None
        exp = jwt.decode(key.api_key, options={"verify_signature": False}).get("exp")
        if exp is None:
            assert key.expires_at is None
        else:
            assert key.expires_at == datetime.fromtimestamp(exp, timezone.utc)
        if name != "old_key":
            expired = key.expires_at is not None and key.expires_at <= now
            assert record["status"] == ("expired" if expired else "active")
    prod = keys["production_key"][0]
    assert prod.expires_at is not None
    assert timedelta(days=89) < prod.expires_at - prod.created_at < timedelta(days=91)
    # Naive local times (UTC+1) are stored as UTC.
    assert records["production_key"]["created_at"] == "2026-11-27T07:47:47Z"
    assert prod.created_at == datetime(2026, 11, 27, 7, 47, 47, 923946, tzinfo=timezone.utc)
    assert servers["Production Server 🚀"]["url"] == "https://n8n.example.com"
    assert servers["Production Server 🚀"]["created_at"] == "2026-11-27T07:47:46Z"
    assert servers["staging"]["url"] == "http://n8n-staging.internal:5678"
    assert (servers["staging"]["keys_active"], servers["staging"]["keys_total"]) == (1, 1)

    rows = snapshot(db)
    assert {(s, k) for s, k in rows["links"]} == {(1, 1), (2, 2)}
    assert rows["links"][(1, 1)] == datetime(2026, 11, 27, 7, 47, 47, 933707)
    assert "schema_info" in _tables(db)  # 0.9's history is kept


@pytest.mark.parametrize(
    ("zone", "offset"),
    [("UTC0", timedelta(0)), ("XST+5", timedelta(hours=5)), ("IST-5:30", -timedelta(hours=5.5))],
)
def test_naive_timestamps_are_read_as_local_time_of_the_machine(
    cli: Cli, data_dir: Path, time_zone: Callable[[str], None], zone: str, offset: timedelta
) -> None:
    time_zone(zone)
    copy_fixture(sqlite_file(data_dir))
    assert cli("db", "upgrade").exit_code == 0
    rows = snapshot(sqlite_file(data_dir))
    created = {row["name"]: row["created_at"] for row in rows["api_keys"].values()}
    assert created["production_key"] == datetime(2026, 11, 27, 8, 47, 47, 923946) + offset
    assert created["ключ 🔑"] == datetime(2026, 11, 27, 8, 47, 49, 199593) + offset


def test_a_timestamp_with_an_offset_uses_it_and_an_unreadable_one_is_reported(
    cli: Cli, data_dir: Path, time_zone: Callable[[str], None]
) -> None:
    time_zone("XST+5")
    db = sqlite_file(data_dir)
    build_legacy(
        db,
        servers=[legacy_server(1, "s", "https://a.example", created_at="2025-10-01T10:00:00Z")],
        keys=[
            legacy_key(1, "k1", make_jwt(), created_at="2025-10-01 12:00:00+02:00"),
            legacy_key(2, "k2", make_jwt(sub="2"), created_at="yesterday"),
        ],
        links=[],
    )
    started = datetime.now(timezone.utc).replace(tzinfo=None)
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    rows = snapshot(db)
    assert rows["servers"][1]["created_at"] == datetime(2025, 10, 1, 10, 0)
    assert rows["api_keys"][1]["created_at"] == datetime(2025, 10, 1, 10, 0)
    assert rows["api_keys"][2]["created_at"] >= started - timedelta(seconds=1)
    assert "not carried over: 1 creation time could not be read" in result.stderr


# -- files built from 0.9's schema ---------------------------------------------------------------


def test_links_to_deleted_keys_or_servers_are_dropped_and_counted(cli: Cli, data_dir: Path) -> None:
    db = sqlite_file(data_dir)
    build_legacy(
        db,
        servers=[
            legacy_server(1, "one", "https://one.example"),
            legacy_server(2, "two", "http://two"),
        ],
        keys=[legacy_key(i, f"k{i}", make_jwt(sub=str(i))) for i in (1, 2, 3)],
        links=[
            legacy_link(1, 1),
            legacy_link(2, 2),
            legacy_link(2, 3),
            legacy_link(1, 9),  # key deleted
            legacy_link(7, 2),  # server deleted
            legacy_link(8, 9),  # both
        ],
    )
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "Carried over: 2 servers, 3 API keys, 3 links" in result.stdout
    assert "Links dropped because their key or server no longer exists: 3" in result.stdout
    assert set(snapshot(db)["links"]) == {(1, 1), (2, 2), (2, 3)}


def test_only_links_that_are_carried_count_as_primary_or_holding_values(
    cli: Cli, data_dir: Path
) -> None:
    db = sqlite_file(data_dir)
    build_legacy(
        db,
        servers=[legacy_server(1, "one", "https://one.example")],
        keys=[legacy_key(1, "k", make_jwt())],
        links=[legacy_link(1, 1), legacy_link(1, 99999, is_primary=1)],
    )
    conn = sqlite3.connect(db)
    with conn:  # a column of its own, holding a value only on the dropped link
        conn.execute("ALTER TABLE server_api_keys ADD COLUMN note TEXT")
        conn.execute("UPDATE server_api_keys SET note = 'x' WHERE api_key_id = 99999")
    conn.close()
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "Carried over: 1 server, 1 API key, 1 link;" in result.stdout
    assert "Links dropped because their key or server no longer exists: 1\n" in result.stdout
    assert "primary" not in result.output
    assert "server_api_keys.note" not in result.output
    assert "not carried over" not in result.stderr
    assert set(snapshot(db)["links"]) == {(1, 1)}


def test_primary_links_are_counted_once_each_among_those_carried(cli: Cli, data_dir: Path) -> None:
    db = sqlite_file(data_dir)
    build_legacy(
        db,
        servers=[legacy_server(i, f"s{i}", f"https://s{i}.example") for i in (1, 2, 3)],
        keys=[legacy_key(i, f"k{i}", make_jwt(sub=str(i))) for i in (1, 2)],
        links=[
            legacy_link(1, 1, is_primary=1),
            legacy_link(2, 1, is_primary=1),
            legacy_link(3, 2),
            legacy_link(3, 7, is_primary=1),  # key deleted
            legacy_link(9, 2, is_primary=1),  # server deleted
        ],
    )
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "Carried over: 3 servers, 2 API keys, 3 links;" in result.stdout
    assert "Links dropped because their key or server no longer exists: 2\n" in result.stdout
    assert "not carried over: 2 links were marked primary (is_primary)" in result.stderr


@pytest.mark.parametrize("table", ["api_keys", "servers"])
def test_duplicate_names_in_a_hand_built_file_are_named_with_the_fix(
    cli: Cli, data_dir: Path, table: str
) -> None:
    """0.9 kept names unique; a file built or edited by hand may not have."""
    db = sqlite_file(data_dir)
    same = "prod's 🔑"
    build_legacy(
        db,
        servers=[
            legacy_server(1, same if table == "servers" else "one", "https://one.example"),
            legacy_server(2, "two", "https://two.example"),
            legacy_server(4, same if table == "servers" else "four", "https://four.example"),
        ],
        keys=[
            legacy_key(3, same if table == "api_keys" else "k3", make_jwt(sub="3")),
            legacy_key(5, "k5", make_jwt(sub="5")),
            legacy_key(8, same if table == "api_keys" else "k8", make_jwt(sub="8")),
        ],
        links=[legacy_link(1, 3)],
        unique_names=False,
    )
    before = db.read_bytes()
    result = cli("db", "upgrade")
    assert result.exit_code == ExitStatus.FAILED, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    kind, ids = ("API key", "3, 8") if table == "api_keys" else ("server", "1, 4")
    assert f"{kind} name 'prod's 🔑' is used by rows {ids}" in lines[0]
    assert "UNIQUE constraint" not in lines[0]
    second = ids.split(", ")[1]
    fix = f"UPDATE {table} SET name = 'prod''s 🔑 ({second})' WHERE id = {second}"
    assert fix in lines[0]
    assert "n8n-deploy db upgrade" in lines[0]
    assert "Nothing was changed" in lines[0]
    assert db.read_bytes() == before


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("api_keys", "name"),
        ("api_keys", "api_key"),
        ("api_keys", "description"),
        ("servers", "url"),
    ],
)
def test_a_blob_where_text_belongs_stops_the_import_with_the_fix(
    cli: Cli, data_dir: Path, table: str, column: str
) -> None:
    """A value written as a blob (a file edited by hand) is never carried as the text of
    its Python form (b'...'): the import stops, names the row and the fix, and the fix
    works."""
    db = sqlite_file(data_dir)
    secret = make_jwt(sub="blob")
    build_legacy(
        db,
        servers=[legacy_server(1, "one", "https://one.example")],
        keys=[legacy_key(5, "k5", secret, description="about k5")],
        links=[legacy_link(1, 5)],
    )
    row_id = 5 if table == "api_keys" else 1
    with closing(sqlite3.connect(db)) as conn:
        conn.execute(f"UPDATE {table} SET {column} = CAST({column} AS BLOB) WHERE id = {row_id}")
        conn.commit()
    before = db.read_bytes()
    result = cli("db", "upgrade", "--no-backup")
    assert result.exit_code == ExitStatus.FAILED, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{table}.{column} of row {row_id} is a blob, not text" in lines[0]
    assert leaked_piece(secret, result.stderr) is None
    assert db.read_bytes() == before
    fix = f"UPDATE {table} SET {column} = CAST({column} AS TEXT) WHERE id = {row_id}"
    assert fix in lines[0]
    with closing(sqlite3.connect(db)) as conn:
        conn.execute(fix)
        conn.commit()
    assert cli("db", "upgrade", "--no-backup").exit_code == 0
    rows = snapshot(db)
    assert rows["api_keys"][5]["api_key"] == secret
    assert rows["api_keys"][5]["name"] == "k5"
    assert rows["api_keys"][5]["description"] == "about k5"
    assert rows["servers"][1]["url"] == "https://one.example"


def test_thousands_of_keys_are_all_carried_with_their_links(cli: Cli, data_dir: Path) -> None:
    db = sqlite_file(data_dir)
    count = 4000
    secrets = {i: make_jwt(exp_days=30 + i % 50, sub=f"user-{i}") for i in range(1, count + 1)}
    secrets.update({i: make_legacy_key(i % 250) + "" for i in range(1, count + 1, 97)})
    build_legacy(
        db,
        servers=[
            legacy_server(i, f"server {i} ✨", f"https://n{i}.example.com") for i in (1, 2, 3)
        ],
        keys=[
            legacy_key(
                i,
                f"key-{i}-ключ",
                secret,
                description=f"описание {i}" if i % 3 else None,
                is_active=0 if i % 7 == 0 else 1,
                created_at=f"2025-{1 + i % 12:02d}-{1 + i % 28:02d} 10:{i % 60:02d}:00.{i:06d}",
            )
            for i, secret in secrets.items()
        ],
        links=[legacy_link(1 + i % 3, i) for i in range(1, count + 1)],
    )
    result = cli("db", "upgrade", "--no-backup")
    assert result.exit_code == 0, result.output
    assert f"Carried over: 3 servers, {count} API keys, {count} links" in result.stdout
    rows = snapshot(db)
    assert len(rows["api_keys"]) == count
    for i, secret in secrets.items():
        row = rows["api_keys"][i]
        assert row["name"] == f"key-{i}-ключ"
        assert row["api_key"] == secret
        assert row["description"] == (f"описание {i}" if i % 3 else None)
        assert row["is_active"] is (i % 7 != 0)
        assert row["last_used_at"] is None
        assert (row["expires_at"] is None) is secret.startswith("n8n_api_")
    assert set(rows["links"]) == {(1 + i % 3, i) for i in range(1, count + 1)}


def test_the_tables_this_project_does_not_manage_are_left_untouched(
    cli: Cli, data_dir: Path
) -> None:
    db = sqlite_file(data_dir)
    build_legacy(
        db,
        servers=[legacy_server(1, "prod", "https://n8n.example.com")],
        keys=[legacy_key(1, "k", make_jwt())],
        links=[legacy_link(1, 1)],
        unmanaged_rows=True,
    )
    kept = (*UNMANAGED_TABLES, "schema_info")
    before = table_dump(db, kept)
    assert all(before["rows"][t] for t in kept)  # every one of them holds rows
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "Left untouched: configurations (1 row), dependencies (1 row)" in result.stdout
    assert "workflows (2 rows)" in result.stdout
    assert table_dump(db, kept) == before
    # A downgrade leaves them alone too.
    assert cli("db", "downgrade", "0001", "--confirm").exit_code == 0
    assert table_dump(db, kept) == before
    assert cli("db", "upgrade").exit_code == 0
    assert table_dump(db, kept) == before


def test_the_upgraded_file_works_with_foreign_keys_on_beside_the_old_tables(
    cli: Cli, data_dir: Path
) -> None:
    db = sqlite_file(data_dir)
    build_legacy(
        db,
        servers=[legacy_server(1, "prod", "https://n8n.example.com")],
        keys=[legacy_key(1, "k", make_jwt())],
        links=[legacy_link(1, 1)],
        unmanaged_rows=True,
    )
    assert cli("db", "upgrade").exit_code == 0
    database = open_database(resolve_settings())
    try:
        with database.session(write=True) as s:
            servers = ServerRepository(s)
            servers.create("new", "https://new.example.com")
            servers.delete(servers.get("prod"))
        with database.session() as s:
            assert ServerRepository(s).names() == ["new"]
            assert ApiKeyRepository(s).get("k").servers == []
    finally:
        database.dispose()
    # 0.9's own foreign keys, as that release declared them (README).
    rows = table_dump(db, UNMANAGED_TABLES)["rows"]
    assert rows["n8n_folders"] == rows["folder_mappings"] == rows["server_credentials"] == []
    assert {row[0]: row[4] for row in rows["workflows"]} == {"wf-1": None, "wf-2": None}
    assert len(rows["configurations"]) == len(rows["dependencies"]) == 1


def test_ids_are_kept_and_ids_of_deleted_servers_are_not_handed_out_again(
    cli: Cli, data_dir: Path
) -> None:
    db = sqlite_file(data_dir)
    build_legacy(
        db,
        servers=[
            legacy_server(2, "two", "https://two.example"),
            legacy_server(5, "five", "http://5"),
        ],
        keys=[legacy_key(4, "four", make_jwt())],
        links=[legacy_link(5, 4)],
    )
    conn = sqlite3.connect(db)
    with conn:  # 0.9 had made (and deleted) servers up to id 9, and keys up to id 12
        conn.execute("UPDATE sqlite_sequence SET seq = 9 WHERE name = 'servers'")
        conn.execute("UPDATE sqlite_sequence SET seq = 12 WHERE name = 'api_keys'")
        conn.execute("INSERT INTO workflows (id, name, server_id) VALUES ('wf', 'old', 9)")
    conn.close()
    assert cli("db", "upgrade").exit_code == 0
    assert set(snapshot(db)["servers"]) == {2, 5}
    database = open_database(resolve_settings())
    try:
        with database.session(write=True) as s:
            assert ServerRepository(s).create("new", "https://new.example").id == 10
            assert ApiKeyRepository(s).add("new", make_jwt(sub="new")).id == 13
    finally:
        database.dispose()


def test_what_this_release_has_no_place_for_is_reported(cli: Cli, data_dir: Path) -> None:
    db = sqlite_file(data_dir)
    build_legacy(
        db,
        servers=[
            legacy_server(1, "retired", "https://old.example", is_active=0),
            legacy_server(2, "busy", "https://busy.example", last_used="2025-10-02 10:00:00"),
        ],
        keys=[legacy_key(1, "k", make_jwt())],
        links=[legacy_link(1, 1, is_primary=1), legacy_link(2, 1)],
    )
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("ALTER TABLE api_keys ADD COLUMN colour TEXT")
        conn.execute("UPDATE api_keys SET colour = 'blue'")
    conn.close()
    backup = data_dir / "as-built.db"
    assert cli("db", "backup", str(backup)).exit_code == 0
    plain = cli("db", "upgrade", "--no-emoji")
    assert plain.exit_code == 0, plain.output
    assert plain.stderr.count("Warning: not carried over") == 4
    assert "⚠" not in plain.output
    assert cli("db", "restore", str(backup), "--confirm").exit_code == 0
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "not carried over" in line]
    assert len(warnings) == 4, result.stderr
    assert any("inactive" in w and "retired" in w for w in warnings)
    assert any("servers.last_used" in w for w in warnings)
    assert any("1 link was marked primary" in w for w in warnings)
    assert any("api_keys.colour (1 value)" in w for w in warnings)
    assert all(w.startswith("⚠️ Warning: not carried over: ") for w in warnings)
    # The rows themselves are all there.
    rows = snapshot(db)
    assert {s["name"] for s in rows["servers"].values()} == {"retired", "busy"}
    assert set(rows["links"]) == {(1, 1), (2, 1)}


def test_a_legacy_upgrade_failing_part_way_leaves_the_file_as_it_was(
    cli: Cli, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = copy_fixture(sqlite_file(data_dir))
    before = db.read_bytes()
    real = legacy._insert

    def failing(conn: object, table: str, values: list[dict[str, object]]) -> None:
        if table == "server_api_keys":
            raise RuntimeError("power cut")
        real(conn, table, values)  # type: ignore[arg-type]

    monkeypatch.setattr(legacy, "_insert", failing)
    result = cli("db", "upgrade")
    assert result.exit_code == ExitStatus.FAILED
    assert "rolled back" in result.stderr
    assert db.read_bytes() == before
    assert "alembic_version" not in _tables(db)


def test_a_legacy_value_that_is_not_utf8_is_named_with_how_to_find_it(
    cli: Cli, data_dir: Path
) -> None:
    db = copy_fixture(sqlite_file(data_dir))
    conn = sqlite3.connect(db)
    with conn:  # another program wrote bytes that are not UTF-8 into a text column
        conn.execute(
            "UPDATE api_keys SET description = CAST(X'66ff6f' AS TEXT) "
            "WHERE rowid = (SELECT min(rowid) FROM api_keys)"
        )
    conn.close()
    before = db.read_bytes()
    result = cli("db", "upgrade", "--no-backup")
    assert result.exit_code == ExitStatus.FAILED
    assert result.stderr.startswith("Error: The migration failed (Could not decode to UTF-8")
    assert "not UTF-8 text" in result.stderr
    assert "SELECT rowid, hex(description) FROM api_keys" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert db.read_bytes() == before


@pytest.mark.e2e
def test_two_upgrades_of_a_legacy_file_at_once_carry_it_over_once(data_dir: Path) -> None:
    db = sqlite_file(data_dir)
    build_legacy(
        db,
        servers=[legacy_server(1, "prod", "https://n8n.example.com")],
        keys=[legacy_key(i, f"k{i}", make_jwt(sub=str(i))) for i in range(1, 2001)],
        links=[legacy_link(1, i) for i in range(1, 2001)],
    )
    command = [sys.executable, "-m", "n8n_deploy", "db", "upgrade"]
    runs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate() for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert sum("Recognised a database made by n8n-deploy 0.9" in o for o, _ in outputs) == 1
    rows = snapshot(db)
    assert rows["revision"] == HEAD
    assert len(rows["api_keys"]) == 2000
    assert len(rows["links"]) == 2000


@pytest.mark.parametrize(
    # The last changes its clocks at 02:30 and 03:30: not on a whole hour.
    "zone",
    ["CET-1CEST,M3.5.0,M10.5.0/3", "UTC0", "NPT-5:45", "XST-1XDT,M3.5.0/2:30,M10.5.0/3:30"],
)
def test_remembered_offsets_convert_every_second_as_the_c_library_does(
    time_zone: Callable[[str], None], zone: str
) -> None:
    """An upgrade remembers each minute's local offset; around both clock changes of the
    year (the skipped hour and the repeated one) every value comes out the same."""
    time_zone(zone)
    offsets: dict[str, timedelta] = {}
    for start in (datetime(2026, 3, 29, 1, 58), datetime(2026, 10, 25, 1, 58)):
        for step in range(0, 2 * 3600 + 240, 7):
            value = start + timedelta(seconds=step, microseconds=step * 13 % 1000000)
            assert legacy.to_utc(value, offsets) == legacy.to_utc(value), value
            # Every shape fromisoformat reads: the minute is remembered by the text's
            # first 16 characters only where they are YYYY-MM-DD?HH:MM.
            for text in (
                value.isoformat(" "),
                value.isoformat(),
                value.isoformat(" ", "minutes"),
                value.isoformat(" ", "hours"),
                f"  {value.isoformat('x')}  ",
                value.strftime("%Y%m%dT%H%M%S"),
                value.strftime("%Y%m%dT%H%M"),
                value.strftime("%G-W%V-%uT%H:%M:%S"),
                value.strftime("%GW%V%uT%H%M"),
                value.isoformat() + "Z",
                value.isoformat() + "+05:45",
            ):
                assert legacy.to_utc(text, offsets) == legacy.to_utc(text), text


def test_carried_timestamps_and_flags_are_stored_as_sqlalchemy_writes_them() -> None:
    """The import hands SQLite the text SQLAlchemy's DateTime would (written faster), and
    its 0/1 for a Boolean: every moment, whole seconds and year 1 included."""
    import random

    import sqlalchemy as sa
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    chance = random.Random(9)
    moments: list[datetime | None] = [datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)]
    moments += [datetime(2026, 11, 27, 8, 47, 46), None]
    moments += [
        datetime(1, 1, 1) + timedelta(microseconds=chance.randrange(315537897600 * 10**6))
        for _ in range(2000)
    ]
    for kind, values in ((sa.DateTime(), moments), (sa.Boolean(), [True, False, None, True])):
        processor = kind.dialect_impl(dialect).bind_processor(dialect)
        assert processor is not None
        expected = [None if v is None else processor(v) for v in values]
        assert legacy._stored(kind, dialect, values) == expected


def test_an_interrupt_whose_clean_up_fails_is_reported_as_the_interrupt(
    cli: Cli, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGTERM 0.6 s into `db upgrade` landed in Alembic's batch rebuild of a table:
    SQLAlchemy invalidated the connection on the interrupt, Alembic's clean-up (drop the
    new table) ran on it and failed with "Can't reconnect until invalid transaction is
    rolled back", and the upgrade said "The migration failed (...)", exit 1.  It is the
    interrupt: exit 130, and its line, with the file as it was."""
    from sqlalchemy import text

    db = copy_fixture(sqlite_file(data_dir))
    original = _dump(db)
    real_import = legacy.import_legacy

    def interrupted(conn: Any, **kwargs: Any) -> Any:
        real_import(conn, **kwargs)
        try:
            raise KeyboardInterrupt  # as a signal landing in a statement
        except KeyboardInterrupt:
            conn.invalidate()  # what SQLAlchemy does to a connection on an interrupt
            conn.execute(text("DROP TABLE IF EXISTS _alembic_tmp_api_keys"))  # the clean-up

    monkeypatch.setattr(legacy, "import_legacy", interrupted)
    result = cli("db", "upgrade", "--no-backup")
    assert result.exit_code == ExitStatus.INTERRUPTED, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "Interrupted; nothing was changed."
    assert "migration failed" not in result.stderr
    assert _dump(db) == original
