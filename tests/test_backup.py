"""db backup and db restore: consistent copies, permissions, names, and the round trip."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from n8n_deploy.base.settings import resolve_settings
from n8n_deploy.base.status import ExitStatus
from n8n_deploy.store import backups as backup
from n8n_deploy.store import schema
from n8n_deploy.store.engine import Database
from n8n_deploy.store.lifecycle import open_database
from n8n_deploy.store.repositories import ApiKeyRepository
from tests.dbfactory import build_at_revision, copy_fixture, snapshot
from tests.helpers import Run, backups, file_mode, make_jwt, set_revision, sqlite_file

Cli = Callable[..., Run]


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def _add_keys(*names: str) -> None:
    database = open_database(resolve_settings())
    try:
        with database.session(write=True) as s:
            for name in names:
                ApiKeyRepository(s).add(name, make_jwt(sub=name))
    finally:
        database.dispose()


def _key_names(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM api_keys")}
    finally:
        conn.close()


def _dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def _journal_mode(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


# -- db backup -------------------------------------------------------------------------------


def test_db_backup_writes_a_private_copy_beside_the_database(
    cli: Cli, data_dir: Path, umask_022: None
) -> None:
    _add_keys("prod_key", "ключ 🔑")
    result = cli("db", "backup")
    assert result.exit_code == 0, result.output
    (written,) = backups(data_dir)
    assert result.stdout.strip() == f"Backed up the database to {written}"
    assert written.parent == data_dir
    stamp = written.name.removeprefix("n8n-deploy.db.").removesuffix(".bak")
    assert datetime.strptime(stamp, "%Y%m%dT%H%M%SZ")
    assert file_mode(written) == 0o600
    assert _key_names(written) == {"prod_key", "ключ 🔑"}
    # One self-contained file: no -wal needed to read it.
    assert _journal_mode(written) == "delete"
    assert not Path(f"{written}-wal").exists()
    assert not list(data_dir.glob(".*partial"))


def test_a_backup_includes_what_is_still_in_the_wal_and_nothing_uncommitted(
    cli: Cli, data_dir: Path
) -> None:
    _add_keys("first")
    db = sqlite_file(data_dir)
    writer = sqlite3.connect(db, isolation_level=None)
    reader = sqlite3.connect(db)  # keeps the WAL from being checkpointed away
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute(
            "INSERT INTO api_keys (name, api_key, created_at, is_active) "
            "VALUES ('committed', 'x', '2025-01-01 00:00:00', 1)"
        )
        reader.execute("SELECT 1").fetchall()
        writer.execute("BEGIN IMMEDIATE")
        writer.execute(
            "INSERT INTO api_keys (name, api_key, created_at, is_active) "
            "VALUES ('uncommitted', 'y', '2025-01-01 00:00:00', 1)"
        )
        # A plain copy of the file would miss the committed row: it is only in the WAL.
        plain = data_dir / "plain-copy.db"
        plain.write_bytes(db.read_bytes())
        assert "committed" not in _key_names(plain)

        result = cli("db", "backup", str(data_dir / "consistent.db"))
        assert result.exit_code == 0, result.output
        writer.execute("ROLLBACK")
    finally:
        writer.close()
        reader.close()
    assert _key_names(data_dir / "consistent.db") == {"first", "committed"}


def test_db_backup_to_a_folder_or_a_new_file_and_never_over_an_existing_one(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    _add_keys("k")
    folder = tmp_path / "backups"
    folder.mkdir()
    into = cli("db", "backup", str(folder))
    assert into.exit_code == 0, into.output
    (written,) = folder.glob("n8n-deploy.db.*.bak")
    assert file_mode(written) == 0o600

    target = tmp_path / "exact.db"
    assert cli("db", "backup", str(target)).exit_code == 0
    assert _key_names(target) == {"k"}
    target.write_bytes(b"precious")
    again = cli("db", "backup", str(target))
    assert again.exit_code == ExitStatus.FAILED
    assert "already exists" in again.stderr
    assert target.read_bytes() == b"precious"

    missing = cli("db", "backup", str(tmp_path / "no" / "such" / "folder" / "x.db"))
    assert missing.exit_code == ExitStatus.FAILED
    assert "does not exist" in missing.stderr


def test_backups_in_the_same_second_get_distinct_names(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add_keys("k")
    fixed = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    real = backup.default_backup_path
    monkeypatch.setattr(backup, "default_backup_path", lambda db, now=None: real(db, fixed))
    db = sqlite_file(data_dir)
    first = backup.create_backup(db)
    second = backup.create_backup(db)
    assert first.name == "n8n-deploy.db.20260102T030405Z.bak"
    assert second.name == "n8n-deploy.db.20260102T030405Z-2.bak"
    assert _key_names(first) == _key_names(second) == {"k"}


def test_db_backup_without_a_database_says_so_and_creates_nothing(cli: Cli, data_dir: Path) -> None:
    result = cli("db", "backup")
    assert result.exit_code == ExitStatus.FAILED
    assert "nothing to back up" in result.stderr
    assert not data_dir.exists()


def test_db_backup_of_a_file_that_is_no_database_says_so(cli: Cli, data_dir: Path) -> None:
    data_dir.mkdir()
    sqlite_file(data_dir).write_text("not a database at all, but long enough to be read " * 20)
    result = cli("db", "backup")
    assert result.exit_code == ExitStatus.FAILED
    assert "is not a SQLite database file" in result.stderr
    assert sorted(p.name for p in data_dir.iterdir()) == ["n8n-deploy.db"]


def test_db_backup_of_a_database_server_is_left_to_its_own_tools(cli: Cli) -> None:
    result = cli("--database-url", "postgresql://u:secret@db.internal/n8n", "db", "backup")
    assert result.exit_code == ExitStatus.FAILED
    assert "SQLite" in result.stderr
    assert "secret" not in result.output


def test_db_backup_works_on_databases_this_program_refuses(cli: Cli, data_dir: Path) -> None:
    db = copy_fixture(sqlite_file(data_dir))
    before = db.read_bytes()
    assert cli("db", "backup").exit_code == 0
    (written,) = backups(data_dir)
    assert _key_names(written) == {"production_key", "staging_key", "old_key", "ключ 🔑"}
    assert db.read_bytes() == before


# -- db restore ------------------------------------------------------------------------------


def test_backup_and_restore_round_trip(cli: Cli, data_dir: Path, umask_022: None) -> None:
    _add_keys("keep_me", "ключ 🔑")
    db = sqlite_file(data_dir)
    saved = snapshot(db)
    made = cli("db", "backup", str(data_dir / "before-cleanup.bak"))
    assert made.exit_code == 0

    database = open_database(resolve_settings())
    try:
        with database.session(write=True) as s:
            repo = ApiKeyRepository(s)
            repo.delete(repo.get("keep_me"))
            repo.add("added_later", make_jwt(sub="later"))
    finally:
        database.dispose()

    result = cli("db", "restore", str(data_dir / "before-cleanup.bak"), "--confirm")
    assert result.exit_code == 0, result.output
    assert snapshot(db) == saved
    assert file_mode(db) == 0o600
    # The database it replaced was backed up first, and is private too.
    previous = next(p for p in backups(data_dir) if p.name.startswith("n8n-deploy.db."))
    assert f"Backup of the replaced database: {previous}" in result.stdout
    assert _key_names(previous) == {"ключ 🔑", "added_later"}
    assert file_mode(previous) == 0o600
    assert _journal_mode(db) == "wal"
    assert cli("db", "check").exit_code == 0


def test_restore_into_a_database_that_is_open_elsewhere(cli: Cli, data_dir: Path) -> None:
    _add_keys("old")
    db = sqlite_file(data_dir)
    assert cli("db", "backup", str(data_dir / "b.bak")).exit_code == 0
    _add_keys("new")
    other: Database = open_database(resolve_settings())
    try:
        with other.session() as s:  # another process that has the database open
            assert len(ApiKeyRepository(s).list()) == 2
        assert cli("db", "restore", str(data_dir / "b.bak"), "--confirm").exit_code == 0
        with other.session() as s:
            assert [k.name for k in ApiKeyRepository(s).list()] == ["old"]
    finally:
        other.dispose()
    assert _key_names(db) == {"old"}


def test_restore_creates_a_missing_database(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "elsewhere" / "n8n-deploy.db"
    source.parent.mkdir()
    build_at_revision(source, schema.HEAD)
    result = cli("db", "restore", str(source), "--confirm")
    assert result.exit_code == 0, result.output
    db = sqlite_file(data_dir)
    assert snapshot(db)["api_keys"] == snapshot(source)["api_keys"]
    assert file_mode(db) == 0o600
    assert file_mode(data_dir) == 0o700
    assert "Backup of the replaced database" not in result.stdout


def test_restoring_an_older_revision_says_to_upgrade(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    _add_keys("current")
    old = tmp_path / "old.db"
    build_at_revision(old, "0001")
    result = cli("db", "restore", str(old), "--confirm")
    assert result.exit_code == 0, result.output
    assert "run 'n8n-deploy db upgrade'" in result.stderr
    assert cli("db", "check").exit_code == ExitStatus.SCHEMA
    assert cli("db", "upgrade").exit_code == 0
    assert "prod_key" in _key_names(sqlite_file(data_dir))


def test_a_0_9_backup_can_be_restored_and_then_upgraded(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    _add_keys("current")
    old = copy_fixture(tmp_path / "from-0.9.db")
    result = cli("db", "restore", str(old), "--confirm")
    assert result.exit_code == 0, result.output
    assert "n8n-deploy 0.9 database, 4 API keys, 2 servers" in result.stdout
    assert cli("db", "upgrade").exit_code == 0
    assert "ключ 🔑" in _key_names(sqlite_file(data_dir))


@pytest.mark.parametrize(
    ("make", "status", "message"),
    [
        (lambda p: p.write_text("not a database"), ExitStatus.FAILED, "not a SQLite file"),
        (
            lambda p: sqlite3.connect(p).execute("CREATE TABLE notes (x)").connection.commit(),
            ExitStatus.FAILED,
            "is not an n8n-deploy database",
        ),
        (lambda p: None, ExitStatus.FAILED, "No file at"),
    ],
)
def test_restore_refuses_a_file_that_is_not_an_n8n_deploy_database(
    cli: Cli,
    data_dir: Path,
    tmp_path: Path,
    make: Callable[[Path], object],
    status: int,
    message: str,
) -> None:
    _add_keys("k")
    db = sqlite_file(data_dir)
    before = snapshot(db)
    source = tmp_path / "candidate.db"
    make(source)
    result = cli("db", "restore", str(source), "--confirm")
    assert result.exit_code == status, result.output
    assert message in result.stderr
    assert snapshot(db) == before
    assert backups(data_dir) == []
    assert not list(data_dir.glob(".*restore*"))


def test_restore_refuses_a_backup_from_a_newer_release(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    _add_keys("k")
    newer = tmp_path / "newer.db"
    build_at_revision(newer, schema.HEAD)
    conn = sqlite3.connect(newer)
    with conn:
        conn.execute("UPDATE alembic_version SET version_num = '0042'")
    conn.close()
    source_bytes = newer.read_bytes()
    result = cli("db", "restore", str(newer), "--confirm")
    assert result.exit_code == ExitStatus.SCHEMA
    assert "0042" in result.stderr
    assert _key_names(sqlite_file(data_dir)) == {"k"}
    assert newer.read_bytes() == source_bytes


def test_restore_refuses_a_damaged_file(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    _add_keys("k")
    damaged = tmp_path / "damaged.db"
    build_at_revision(damaged, schema.HEAD)
    data = bytearray(damaged.read_bytes())
    page = 4096
    for offset in range(2 * page + 8, len(data) - 16, page):  # scribble over b-tree pages
        data[offset : offset + 16] = b"\xff" * 16
    damaged.write_bytes(bytes(data))
    result = cli("db", "restore", str(damaged), "--confirm")
    assert result.exit_code == ExitStatus.FAILED, result.output
    assert _key_names(sqlite_file(data_dir)) == {"k"}


def test_restore_needs_confirmation(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add_keys("k")
    db = sqlite_file(data_dir)
    source = tmp_path / "b.bak"
    assert cli("db", "backup", str(source)).exit_code == 0
    _add_keys("later")
    before = snapshot(db)

    piped = cli("db", "restore", str(source))
    assert piped.exit_code == ExitStatus.FAILED  # refused, like 'apikey delete'
    assert "Refusing to restore without confirmation" in piped.stderr
    assert "--confirm" in piped.stderr

    monkeypatch.setattr("n8n_deploy.cli.prompts.stdin_is_terminal", lambda: True)
    declined = cli("db", "restore", str(source), input="n\n")
    assert declined.exit_code == ExitStatus.FAILED
    assert f"Replace the database {db} (revision {schema.HEAD}, 2 API keys" in declined.stderr
    assert f"(revision {schema.HEAD}, 1 API key, 0 servers)?" in declined.stderr
    assert snapshot(db) == before
    assert backups(data_dir) == []

    accepted = cli("db", "restore", str(source), input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert _key_names(db) == {"k"}


def test_restoring_the_database_onto_itself_is_refused(cli: Cli, data_dir: Path) -> None:
    _add_keys("k")
    db = sqlite_file(data_dir)
    result = cli("db", "restore", str(db), "--confirm")
    assert result.exit_code == ExitStatus.FAILED
    assert "is the database in use" in result.stderr


# -- what a restore may replace --------------------------------------------------------------


@pytest.mark.parametrize("at_terminal", [False, True])
def test_restore_never_replaces_a_database_from_a_newer_release(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at_terminal: bool
) -> None:
    source = tmp_path / "good.bak"
    build_at_revision(source, schema.HEAD)
    db = sqlite_file(data_dir)
    build_at_revision(db, schema.HEAD)
    set_revision(db, "0099")
    before = db.read_bytes()
    if at_terminal:  # refused before anything is asked
        monkeypatch.setattr("n8n_deploy.cli.prompts.stdin_is_terminal", lambda: True)
        result = cli("db", "restore", str(source), input="y\n")
        assert "Replace the database" not in result.stderr
    else:
        result = cli("db", "restore", str(source), "--confirm")
    assert result.exit_code == ExitStatus.SCHEMA, result.output
    assert "0099" in result.stderr
    assert "does not know" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert db.read_bytes() == before
    assert backups(data_dir) == []
    assert not list(data_dir.glob(".*restore*"))


def test_restore_never_replaces_a_database_of_another_program(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "good.bak"
    build_at_revision(source, schema.HEAD)
    data_dir.mkdir()
    db = sqlite_file(data_dir)
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    result = cli("db", "restore", str(source), "--confirm")
    assert result.exit_code == ExitStatus.SCHEMA, result.output
    assert "not an n8n-deploy database" in result.stderr
    assert db.read_bytes() == before
    assert backups(data_dir) == []


def test_restore_replaces_a_0_9_database_after_backing_it_up_whole(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upgrading first would gain nothing (the restore replaces the whole file); the backup
    keeps the 0.9 file as it was, 0.9's other tables included."""
    source = tmp_path / "good.bak"
    build_at_revision(source, schema.HEAD)
    db = copy_fixture(sqlite_file(data_dir))
    before = db.read_bytes()
    monkeypatch.setattr("n8n_deploy.cli.prompts.stdin_is_terminal", lambda: True)
    result = cli("db", "restore", str(source), input="y\n")
    assert result.exit_code == 0, result.output
    assert f"Replace the database {db} (n8n-deploy 0.9 database, 4 API keys" in result.stderr
    (previous,) = backups(data_dir)
    assert f"Backup of the replaced database: {previous}" in result.stdout
    assert "n8n-deploy 0.9" in result.stderr and "kept in that backup" in result.stderr
    assert _dump(previous) == _dump(copy_fixture(tmp_path / "fixture.db"))
    assert db.read_bytes() != before
    assert snapshot(db)["api_keys"] == snapshot(source)["api_keys"]
    assert cli("db", "check").exit_code == 0


def test_a_question_quoting_a_path_that_holds_a_key_hides_it(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key pasted into a file name is shown nowhere, the question on screen included."""
    key = make_jwt(exp_days=30, sub="in-a-file-name")
    source = tmp_path / f"{key}.bak"
    build_at_revision(source, schema.HEAD)
    monkeypatch.setattr("n8n_deploy.cli.prompts.stdin_is_terminal", lambda: True)
    result = cli("db", "restore", str(source), input="n\n")
    assert result.exit_code == ExitStatus.FAILED
    assert "Replace the database" in result.stderr and "[API key hidden]" in result.stderr
    assert key[-12:] not in result.output


def test_what_was_confirmed_is_what_is_restored(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is checked and copied once: changing it while the question is on screen
    changes nothing about what is restored."""
    _add_keys("live")
    source = tmp_path / "b.bak"
    build_at_revision(source, schema.HEAD)
    expected = snapshot(source)["api_keys"]
    monkeypatch.setattr("n8n_deploy.cli.prompts.stdin_is_terminal", lambda: True)

    def answer_yes_while_the_file_changes(*_: object, **__: object) -> bool:
        source.write_text("replaced by something else meanwhile")
        return True

    monkeypatch.setattr("n8n_deploy.cli.prompts.typer.confirm", answer_yes_while_the_file_changes)
    result = cli("db", "restore", str(source))
    assert result.exit_code == 0, result.output
    assert snapshot(sqlite_file(data_dir))["api_keys"] == expected
    assert not list(data_dir.glob(".*restore*"))


@pytest.mark.parametrize("kind", ["foreign", "newer", "declined"])
def test_a_restore_that_does_not_happen_leaves_a_fresh_folder_as_it_was(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    source = tmp_path / "candidate.db"
    if kind == "foreign":
        sqlite3.connect(source).execute("CREATE TABLE notes (x)").connection.commit()
    else:
        build_at_revision(source, schema.HEAD)
    if kind == "newer":
        set_revision(source, "0099")
    if kind == "declined":
        monkeypatch.setattr("n8n_deploy.cli.prompts.stdin_is_terminal", lambda: True)
        result = cli("db", "restore", str(source), input="n\n")
    else:
        result = cli("db", "restore", str(source), "--confirm")
    assert result.exit_code != 0, result.output
    assert not data_dir.exists()


# --- #15 defect 7: a backup or restore killed part-way --------------------------------------


def _dead_pid() -> int:
    """The id of no running process: above the largest Linux hands out (2**22)."""
    pid = 2**22 + 1
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    return pid


@pytest.mark.parametrize("command", [("db", "backup"), ("db", "restore"), ("apikey", "list")])
@pytest.mark.parametrize("suffix", [".partial", ".restore"])
def test_a_copy_left_by_a_killed_backup_or_restore_is_removed_on_the_next_run(
    cli: Cli, data_dir: Path, tmp_path: Path, command: tuple[str, ...], suffix: str
) -> None:
    """#15 defect 7: a full copy of the database (all keys) stayed as *.partial/*.restore."""
    _add_keys("prod_key")
    db = sqlite_file(data_dir)
    stamp = "20261201T120000Z.bak" if suffix == ".partial" else ""
    leftover = data_dir / f".{db.name}{'.' + stamp if stamp else ''}.{_dead_pid()}{suffix}"
    leftover.write_bytes(db.read_bytes())
    Path(f"{leftover}-journal").write_bytes(b"")
    busy = data_dir / f".{db.name}.{os.getppid()}{suffix}"  # a live process's: left alone
    busy.write_bytes(b"in use")
    args: tuple[str, ...] = command
    if command == ("db", "restore"):
        source = tmp_path / "backup.db"
        assert cli("db", "backup", str(source)).exit_code == 0
        leftover.write_bytes(db.read_bytes())  # (the backup above removed the first one)
        args = (*command, str(source), "--confirm")
    run = cli(*args)
    assert run.exit_code == 0, run.output
    assert f"Removed {leftover}: a copy of the database left by a backup or restore" in (run.stderr)
    assert not leftover.exists()
    assert not Path(f"{leftover}-journal").exists()
    assert busy.exists()
    assert cli("apikey", "list").stderr == ""  # said once, then nothing is left


def test_a_backup_interrupted_by_sigterm_leaves_no_copy(
    cli: Cli, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#15 defect 7 (on signals): SIGTERM killed the process without removing its copy."""
    import signal

    _add_keys("prod_key")
    copy = backup._copy

    def copy_then_terminated(*args: object, **kwargs: object) -> None:
        copy(*args, **kwargs)  # type: ignore[arg-type]
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(backup, "_copy", copy_then_terminated)
    run = cli("db", "backup")
    assert run.exit_code == ExitStatus.INTERRUPTED, run.output
    assert run.stderr.strip() == "Interrupted; nothing was changed."
    assert sorted(p.name for p in data_dir.iterdir()) == ["n8n-deploy.db"]


def test_a_damaged_database_says_how_to_recover_and_recovering_works(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    _add_keys("live")
    assert cli("db", "backup", str(tmp_path / "good.bak")).exit_code == 0
    db = sqlite_file(data_dir)
    with db.open("r+b") as damaged:
        damaged.seek(0)
        damaged.write(b"\0" * 100)  # the header gone
    for args in (("apikey", "list"), ("apikey", "list", "--json"), ("db", "check")):
        result = cli(*args)
        assert result.exit_code == ExitStatus.FAILED, (args, result.output)
        (line,) = result.stderr.splitlines()
        assert line.endswith("move it aside, then 'n8n-deploy db restore BACKUP'"), line
    db.rename(tmp_path / "damaged.db")
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    assert cli("db", "restore", str(tmp_path / "good.bak"), "--confirm").exit_code == 0
    assert [key["name"] for key in json.loads(cli("apikey", "list", "--json").stdout)] == ["live"]
