"""Reading a SQLite file with the standard library alone (``store.sqlite_reading``): the
same answers as SQLAlchemy Core gives, from the same statements, and the ordinary way
whenever the file is not plainly ready."""

from __future__ import annotations

import random
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from n8n_deploy.base.dates import stored_texts
from n8n_deploy.base.errors import DatabaseError, NotFoundError
from n8n_deploy.base.settings import resolve_settings
from n8n_deploy.base.status import ExitStatus
from n8n_deploy.store import queries, sqlite_statements
from n8n_deploy.store.engine import Database
from n8n_deploy.store.lifecycle import open_database
from n8n_deploy.store.reads import Reader
from n8n_deploy.store.repositories import ApiKeyRepository, ServerRepository
from n8n_deploy.store.sqlite_reading import SqliteSource, plain_file, reading_current
from tests.helpers import Run, add_key, add_server, make_jwt, set_revision, sqlite_file

Cli = Callable[..., Run]


@pytest.fixture
def filled(database: Database) -> Database:
    """Keys active and not, with and without expiry, description, deadline and servers;
    servers with and without URL, keys and TLS verification."""
    add_server(database, "Production", "https://n8n.example.com")
    add_server(database, "Staging", "http://staging:5678", skip_ssl_verify=True)
    add_server(database, "Empty", "https://empty.example.com")
    add_key(database, "prod_key", make_jwt(exp_days=30), ["Production", "Staging"])
    add_key(database, "old_key", make_jwt(exp_days=-3), ["Staging"], active=False)
    add_key(database, "no_exp", make_jwt(), [])
    with database.session(write=True) as session:
        keys = ApiKeyRepository(session)
        key = keys.add(
            "ci_key",
            make_jwt(exp_days=2),
            description="CI ✨ runner",
            delete_after=datetime.now(timezone.utc) + timedelta(hours=3),
        )
        key.last_used_at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
        ServerRepository(session).create("Pending", None)
    return database


@pytest.fixture
def both(filled: Database) -> Iterator[tuple[Reader, Reader]]:
    """A reader over SQLAlchemy Core and one over sqlite3, on the same file."""
    path = filled.settings.database_path
    assert path is not None
    with filled.reading() as core, reading_current(path) as fast:
        assert fast is not None
        yield core, fast


def test_the_sqlite_statements_are_the_core_statements_compiled() -> None:
    assert queries.sqlite_statements() == sqlite_statements.STATEMENTS
    assert set(sqlite_statements.STATEMENTS) == set(queries.STATEMENTS)


@pytest.mark.parametrize(
    ("active", "server"), [(None, None), (True, None), (False, None), (None, "Staging")]
)
def test_both_ways_list_the_same_keys_with_the_same_values(
    both: tuple[Reader, Reader], active: bool | None, server: str | None
) -> None:
    core, fast = both
    server_id = core.server(server).id if server else None
    listed = core.keys(active=active, server_id=server_id)
    assert listed, "the case lists something"
    assert fast.keys(active=active, server_id=server_id) == listed
    for key in listed:
        assert all(
            value is None or value.tzinfo is timezone.utc
            for value in (key.created_at, key.last_used_at, key.expires_at, key.delete_after)
        )
        assert isinstance(key.is_active, bool)


@pytest.mark.parametrize(("active", "server"), [(None, None), (False, None), (None, "Staging")])
def test_a_listing_as_stored_holds_the_same_keys(
    both: tuple[Reader, Reader], active: bool | None, server: str | None
) -> None:
    core, fast = both
    server_id = core.server(server).id if server else None
    listed = core.keys(active=active, server_id=server_id)
    for reader in (core, fast):
        listing = reader.key_listing(active=active, server_id=server_id)
        assert [listing.key(row) for row in listing.rows] == listed
    as_stored = fast.key_listing(active=active, server_id=server_id).rows[0]
    assert isinstance(as_stored[4], str), "SQLite's text, written without a datetime made"


def _list_json(cli: Cli, *args: str) -> str:
    result = cli("apikey", "list", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("written", ["2026-01-02 03:04:05", "2026-01-02T03:04:05.5+00:00"])
def test_a_timestamp_written_another_way_is_listed_as_any_other(
    cli: Cli, data_dir: Path, filled: Database, written: str
) -> None:
    filled.dispose()
    with closing(sqlite3.connect(sqlite_file(data_dir))) as conn, conn:
        conn.execute("UPDATE api_keys SET created_at = ? WHERE name = 'no_exp'", (written,))
    listed = _list_json(cli)
    assert '"created_at": "2026-01-02T03:04:05Z"' in listed
    assert listed == _list_json(cli, "--sort", "name", "--unused-for", "0")  # key by key


def test_a_timestamp_that_is_no_moment_is_reported_by_every_listing(
    cli: Cli, data_dir: Path, filled: Database
) -> None:
    filled.dispose()
    with closing(sqlite3.connect(sqlite_file(data_dir))) as conn, conn:
        conn.execute("UPDATE api_keys SET expires_at = '2026-02-30 10:00:00.000000'")
    for args in (("--json",), ("--json", "--expired"), ()):
        result = cli("apikey", "list", *args)
        assert result.exit_code == ExitStatus.FAILED, result.stderr
        assert "cannot be read" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def _a_moment_as_first_checked(value: object) -> bool:
    """The first check of a stored timestamp, value by value: the shape by a regular
    expression, the moment by datetime (below hour 24, which some Pythons read as the
    next day)."""
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    shape = r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}"
    if re.fullmatch(shape, value) is None or value[11:13] > "23":
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _stored_or_damaged(rng: random.Random) -> object:
    moment = datetime(2020, 1, 1) + timedelta(seconds=rng.randint(0, 10**9))
    text = moment.isoformat(" ", "microseconds")
    roll = rng.random()
    if roll < 0.55:
        return text
    if roll < 0.6:
        return None
    if roll < 0.65:
        return rng.choice([7, b"2026-01-02 03:04:05.000000", moment])
    at = rng.randrange(len(text) + 1)
    damage = rng.choice(
        ["0", "1", "2", "3", "4", "5", "6", "9", "x", " ", "\n", "-", ":", ".", "\u0663", ""]
    )
    if rng.random() < 0.5:  # a character put in, dropped or changed
        return text[:at] + damage + text[at + 1 :]
    fields = rng.choice(
        [
            ("2024-02-29", "2023-02-29", "2026-04-31", "2026-13-01", "0000-01-01", "2026-00-10"),
            (" 24:00:00", " 23:60:00", " 23:59:60", " 19:99:00", " 29:00:00", " 23:59:59"),
        ]
    )
    part = rng.choice(fields)
    return part + text[10:] if part[0] != " " else text[:10] + part + text[19:]


def test_stored_timestamps_are_checked_as_each_was_checked_alone() -> None:
    rng = random.Random(16)
    accepted = refused = 0
    for _ in range(4000):
        column = [_stored_or_damaged(rng) for _ in range(rng.choice([1, 2, 3, 8]))]
        expected = all(map(_a_moment_as_first_checked, column))
        assert stored_texts(column) is expected, column
        accepted, refused = accepted + expected, refused + (not expected)
    assert accepted > 500 and refused > 500


@pytest.mark.parametrize(
    "damaged",
    [
        "2026-02-30 00:00:00.000000",
        "2023-02-29 12:00:00.000000",
        "2026-06-31 08:00:00.000000",
        "2026-01-00 08:00:00.000000",
        "2026-13-01 08:00:00.000000",
        "2026-01-01 24:00:00.000000",
        "0000-01-01 00:00:00.000000",
        "2026-01-01 23:60:00.000000",
    ],
)
def test_one_timestamp_that_is_no_moment_is_found_anywhere_in_a_long_column(damaged: str) -> None:
    # A listing checks its columns a thousand values at a time, each field of them at once.
    rng = random.Random(damaged)
    start = datetime(2020, 1, 1)
    column: list[object] = [
        (start + timedelta(seconds=rng.randint(0, 10**9))).isoformat(" ", "microseconds")
        for _ in range(2500)
    ]
    column[::7] = [None] * len(column[::7])
    column[1200] = "2024-02-29 00:00:00.000000"  # a leap day, late in its month: a moment
    assert stored_texts(column)
    for at in (0, 1023, 1024, 1025, 2047, 2499):
        assert not stored_texts([*column[:at], damaged, *column[at + 1 :]]), at


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("api_keys", "name"),
        ("api_keys", "description"),
        ("api_keys", "api_key"),
        ("servers", "name"),
    ],
)
def test_a_blob_where_text_belongs_is_unreadable_both_ways(
    cli: Cli, data_dir: Path, filled: Database, table: str, column: str
) -> None:
    path = sqlite_file(data_dir)
    filled.dispose()
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(f"UPDATE {table} SET {column} = x'6869' WHERE id = 1")
    listings = [("apikey", "list", "--json"), ("apikey", "list")]
    for args in listings + ([("server", "list")] if table == "servers" else []):
        result = cli(*args)
        assert result.exit_code == ExitStatus.FAILED, (args, result.stderr)
        assert result.stderr.startswith("Error: The database holds a value that cannot be read")
        assert len(result.stderr.strip().splitlines()) == 1
    with filled.reading() as core, pytest.raises(DatabaseError, match="cannot be read"):
        core.keys() if table == "api_keys" else core.servers()


def test_both_ways_show_the_same_key_server_and_counts(both: tuple[Reader, Reader]) -> None:
    core, fast = both
    for name in ("prod_key", "old_key", "no_exp", "ci_key"):
        assert fast.key(name) == core.key(name)
    assert fast.key("ci_key").last_used_at == datetime(
        2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc
    )
    assert fast.servers() == core.servers()
    assert fast.server("Staging") == core.server("Staging")
    assert fast.server("Staging").skip_ssl_verify is True
    assert (
        fast.link_counts()
        == core.link_counts()
        == {
            core.server("Production").id: (1, 1),
            core.server("Staging").id: (1, 2),
        }
    )
    assert fast.key_names() == core.key_names()
    assert fast.server_names() == core.server_names()
    assert fast.find_key("prod") is None
    with pytest.raises(NotFoundError) as found:
        fast.key("prod_ky")
    assert found.value.suggestions == ["prod_key"]


def test_only_a_plain_regular_file_is_read_this_way(data_dir: Path, database: Database) -> None:
    path = sqlite_file(data_dir)
    assert plain_file(f"sqlite:///{path}", path) == path
    assert plain_file(f"sqlite:///file:{path}?uri=true", path) is None
    assert plain_file(f"sqlite:///{path}", None) is None
    link = data_dir / "link.db"
    link.symlink_to(path)
    assert plain_file(f"sqlite:///{link}", link) is None
    empty = data_dir / "empty.db"
    empty.touch()
    assert plain_file(f"sqlite:///{empty}", empty) is None
    assert plain_file(f"sqlite:///{data_dir / 'none.db'}", data_dir / "none.db") is None


@pytest.mark.parametrize("revision", ["0006", "9999"])
def test_a_file_at_another_revision_is_not_read_this_way_but_refused(
    cli: Cli, data_dir: Path, database: Database, revision: str
) -> None:
    add_key(database, "prod_key", make_jwt(exp_days=30))
    database.dispose()
    set_revision(sqlite_file(data_dir), revision)
    with reading_current(sqlite_file(data_dir)) as reader:
        assert reader is None
    result = cli("apikey", "list")
    assert result.exit_code == ExitStatus.SCHEMA
    assert "prod_key" not in result.stdout
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_listing_reads_while_another_process_holds_the_write_lock(
    cli: Cli, data_dir: Path, database: Database
) -> None:
    add_key(database, "prod_key", make_jwt(exp_days=30))
    database.dispose()
    writer = sqlite3.connect(sqlite_file(data_dir), isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE api_keys SET description = 'uncommitted'")
        result = cli("apikey", "list", "--json")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert result.exit_code == 0, result.stderr
    assert '"name": "prod_key"' in result.stdout
    assert "uncommitted" not in result.stdout


def test_a_read_error_is_one_line_naming_the_database(
    cli: Cli, data_dir: Path, database: Database
) -> None:
    add_key(database, "prod_key", make_jwt(exp_days=30))
    database.dispose()
    conn = sqlite3.connect(sqlite_file(data_dir))
    with conn:
        conn.execute("DROP TABLE server_api_keys")  # damaged behind the program's back
    conn.close()
    result = cli("apikey", "list")
    assert result.exit_code != 0
    assert result.stderr.startswith("Error: Cannot read the database: ")
    assert "server_api_keys" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_the_file_keeps_its_private_mode_after_a_read(
    cli: Cli, data_dir: Path, database: Database
) -> None:
    add_key(database, "prod_key", make_jwt(exp_days=30))
    database.dispose()
    path = sqlite_file(data_dir)
    path.chmod(0o644)
    assert cli("apikey", "list").exit_code == 0
    assert path.stat().st_mode & 0o777 == 0o600


def test_settings_resolve_to_the_fast_path_for_the_default_folder(data_dir: Path) -> None:
    settings = resolve_settings()
    assert settings.database_path is not None
    open_database(settings).dispose()
    assert plain_file(settings.database_url, settings.database_path) is not None


def test_a_database_locked_by_another_process_is_waited_for_once_then_named(
    cli: Cli, data_dir: Path, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from n8n_deploy.store import lifecycle, sqlite_reading

    add_key(database, "prod_key", make_jwt(exp_days=30))
    database.dispose()
    path = sqlite_file(data_dir)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")  # a reader waits for a writer here
    conn.close()
    monkeypatch.setattr(sqlite_reading, "BUSY_TIMEOUT_SECONDS", 0.2)

    def opened_again(*_: object) -> None:
        raise AssertionError("the lock was waited for a second time, the ordinary way")

    monkeypatch.setattr(lifecycle, "open_database", opened_again)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        result = cli("apikey", "list")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == ExitStatus.FAILED
    assert result.stderr.strip() == (
        "Error: Cannot read the database: database is locked. "
        "Another n8n-deploy command is using the database; try again in a moment"
    )


def test_a_read_only_folder_or_file_is_said_with_its_fix() -> None:
    """What SQLite says when the -shm or -wal file cannot be written (a folder or file
    made read-only: root, who runs the tests, is not held back by permissions)."""

    class ReadOnly:
        def execute(self, *_: object) -> None:
            raise sqlite3.OperationalError("attempt to write a readonly database")

    source = SqliteSource(ReadOnly())  # type: ignore[arg-type]
    with pytest.raises(DatabaseError) as raised:
        source.rows("key_names")
    assert raised.value.message == "Cannot read the database: attempt to write a readonly database"
    assert raised.value.hint is not None and "-wal and -shm files" in raised.value.hint
