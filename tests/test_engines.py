"""One registry for a whole team: the same behaviour on SQLite, PostgreSQL and MariaDB.

Each test runs once per engine (the ``engine`` fixture, tests/conftest.py): the
reference's multi-environment example, names that differ only in case, accents or emoji,
"one secret, one entry" under concurrency, concurrent upgrades and first uses, a
migration failing part-way, the migration lock, and passwords in database URLs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from n8n_deploy.base.settings import resolve_settings
from n8n_deploy.base.status import ExitStatus
from n8n_deploy.store import migrations, schema
from n8n_deploy.store.engine import create_engine_for, database_url
from n8n_deploy.store.locks import MYSQL_LOCK_NAME, PG_LOCK_KEYS
from n8n_deploy.store.repositories import ApiKeyRepository, ServerRepository
from tests.fake_n8n import fake_server, n8n_like
from tests.helpers import Run, make_jwt

Cli = Callable[..., Run]
HEAD = schema.HEAD


def _kind(url: str) -> str:
    return make_url(url).get_backend_name()


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(database_url(url))
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


def _processes(env: dict[str, str], commands: list[list[str]], stdin: list[str]) -> list[Run]:
    """Start every command at once (the installed program, as separate processes)."""
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "n8n_deploy", *command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for command in commands
    ]
    runs = []
    for process, data in zip(started, stdin, strict=True):
        out, err = process.communicate(data, timeout=120)
        runs.append(Run(process.returncode, out, err))
    return runs


def _env(engine: str, **extra: str) -> dict[str, str]:
    return dict(os.environ, N8N_DEPLOY_DATABASE_URL=engine, **extra)


# -- the reference, as written ----------------------------------------------------------------


def test_the_reference_multi_environment_workflow_runs_as_written(engine: str, cli: Cli) -> None:
    keys = {name: make_jwt(sub=name) for name in ("dev_key", "staging_key", "prod_key")}
    for server, url, key in (
        ("Development", "http://n8n-dev.internal:5678", "dev_key"),
        ("Staging", "http://n8n-staging.internal:5678", "staging_key"),
        ("Production", "https://n8n.example.com", "prod_key"),
    ):
        created = cli("server", "create", server, url)
        assert created.exit_code == 0, created.output
        added = cli("apikey", "add", "-", "--name", key, "--server", server, input=keys[key])
        assert added.exit_code == 0, added.output
    servers = cli("server", "list", "--json")
    assert servers.exit_code == 0, servers.output
    assert {s["name"] for s in __import__("json").loads(servers.stdout)} == {
        "Development",
        "Staging",
        "Production",
    }
    listed = cli("apikey", "list", "--no-emoji")
    assert listed.exit_code == 0, listed.output
    for name in keys:
        assert name in listed.stdout
    assert all(secret not in listed.output for secret in keys.values())


# -- names and secrets compare exactly ----------------------------------------------------------


LOOKALIKES = [("emoji 🔑", "emoji 🚀"), ("CaseKey", "casekey"), ("Straße", "Strasse")]


@pytest.mark.parametrize(("first", "second"), LOOKALIKES)
def test_names_that_differ_only_in_case_accents_or_emoji_are_different_names(
    engine: str, cli: Cli, first: str, second: str
) -> None:
    secrets = {first: make_jwt(sub="a"), second: make_jwt(sub="b")}
    for name in (first, second):
        added = cli("apikey", "add", "-", "--name", name, input=secrets[name])
        assert added.exit_code == 0, added.output
        made = cli("server", "create", name, "https://n8n.example.com/" + str(len(name)))
        assert made.exit_code == 0, made.output
    shown = cli("apikey", "show", second, "--json", "--unmask")
    assert shown.exit_code == 0
    assert secrets[second] in shown.stdout and secrets[first] not in shown.stdout

    deleted = cli("apikey", "delete", second, "--confirm")
    assert deleted.exit_code == 0, deleted.output
    assert cli("apikey", "show", first).exit_code == 0  # the other one is still there
    assert cli("apikey", "show", second).exit_code == ExitStatus.FAILED
    assert cli("server", "delete", second, "--confirm").exit_code == 0
    assert cli("server", "show", first).exit_code == 0


def test_timestamps_keep_their_microseconds(engine: str, cli: Cli) -> None:
    assert cli("apikey", "add", "-", "--name", "k", input=make_jwt()).exit_code == 0
    database = __import__("n8n_deploy").open_database(resolve_settings())
    try:
        with database.session() as s:
            created = ApiKeyRepository(s).get("k").created_at
    finally:
        database.dispose()
    assert created.microsecond != 0 or created.second != 0  # not cut to whole seconds
    assert created.tzinfo is not None


def test_a_description_longer_than_the_limit_is_refused_before_the_database(
    engine: str, cli: Cli
) -> None:
    result = cli(
        "apikey", "add", "-", "--name", "k", "--description", "x" * 70_000, input=make_jwt()
    )
    assert result.exit_code == ExitStatus.USAGE
    assert result.stderr.startswith("Error: The description is 70000 characters long")
    assert cli("apikey", "list", "--json").stdout.strip() == "[]"


# -- concurrency --------------------------------------------------------------------------------


@pytest.mark.e2e
def test_eight_concurrent_adds_of_one_secret_store_it_once(engine: str, cli: Cli) -> None:
    assert cli("db", "init").exit_code == 0
    secret = make_jwt(sub="shared")
    runs = _processes(
        _env(engine),
        [["apikey", "add", "-", "--name", f"copy_{i}"] for i in range(8)],
        [secret] * 8,
    )
    assert sorted(run.exit_code for run in runs) == [0] + [1] * 7, [r.stderr for r in runs]
    for run in runs:
        if run.exit_code:
            assert "This key is already stored as 'copy_" in run.stderr, run.stderr
            assert len(run.stderr.strip().splitlines()) == 1, run.stderr
        assert secret not in run.stdout + run.stderr
    assert _rows(engine, "SELECT COUNT(*) FROM api_keys") == [(1,)]


@pytest.mark.e2e
def test_eight_concurrent_first_uses_of_an_empty_database_all_succeed(engine: str) -> None:
    runs = _processes(
        _env(engine),
        [["apikey", "add", "-", "--name", f"key_{i}"] for i in range(8)],
        [make_jwt(sub=f"user{i}") for i in range(8)],
    )
    assert [run.exit_code for run in runs] == [0] * 8, [r.stderr for r in runs]
    assert _rows(engine, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    assert _rows(engine, "SELECT COUNT(*) FROM api_keys") == [(8,)]


def _build_at(engine: str, revision: str) -> None:
    """A database at ``revision`` holding a server, two keys and a link."""
    made = create_engine_for(engine)
    try:
        migrations.upgrade(made, revision)
        with made.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO servers (id, name, url, skip_ssl_verify, created_at"
                    + (", updated_at" if revision >= "0003" else "")
                    + ") VALUES (1, 'Production', 'HTTPS://N8N.example.com/', false, "
                    + "'2025-01-02 03:04:05'"
                    + (", '2025-01-02 03:04:05'" if revision >= "0003" else "")
                    + ")"
                )
            )
            for key_id in (1, 2):
                conn.execute(
                    text(
                        "INSERT INTO api_keys (id, name, api_key, is_active, created_at) "
                        "VALUES (:id, :name, :key, true, '2025-01-02 03:04:05')"
                    ),
                    {"id": key_id, "name": f"key_{key_id}", "key": make_jwt(sub=str(key_id))},
                )
            conn.execute(
                text(
                    "INSERT INTO server_api_keys (server_id, api_key_id, created_at) "
                    "VALUES (1, 1, '2025-01-02 03:04:05')"
                )
            )
    finally:
        made.dispose()


@pytest.mark.e2e
@pytest.mark.parametrize("revision", schema.KNOWN_REVISIONS[:-1])
def test_two_concurrent_upgrades_from_each_older_revision_both_succeed(
    engine: str, revision: str
) -> None:
    _build_at(engine, revision)
    runs = _processes(_env(engine), [["db", "upgrade", "--no-backup"]] * 2, ["", ""])
    assert [run.exit_code for run in runs] == [0, 0], [r.stderr for r in runs]
    assert sum("nothing to do" in run.stdout for run in runs) == 1
    assert _rows(engine, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    assert _rows(engine, "SELECT COUNT(*) FROM api_keys") == [(2,)]
    # Revision 0003 writes the URL in normal form when the upgrade goes through it.
    url = "https://n8n.example.com" if revision < "0003" else "HTTPS://N8N.example.com/"
    assert _rows(engine, "SELECT url FROM servers") == [(url,)]
    assert _rows(engine, "SELECT server_id, api_key_id FROM server_api_keys") == [(1, 1)]


@pytest.mark.e2e
def test_keys_tested_while_others_are_added_rotated_and_deleted_lose_nothing(
    engine: str, cli: Cli
) -> None:
    """CI runners testing keys (each success writes last_used_at) while someone adds,
    rotates and deletes keys: every command ends as it should, no database error."""
    secrets = {f"key_{i}": make_jwt(sub=f"k{i}") for i in range(6)}
    fresh = {f"new_{i}": make_jwt(sub=f"n{i}") for i in range(3)}
    rotated = make_jwt(sub="rotated")
    valid = {*secrets.values(), *fresh.values(), rotated}
    with fake_server(n8n_like(valid)) as server:
        assert cli("server", "create", "Production", server.url).exit_code == 0
        for name, secret in secrets.items():
            assert (
                cli(
                    "apikey", "add", "-", "--name", name, "--server", "Production", input=secret
                ).exit_code
                == 0
            )
        commands = [["apikey", "test", "--all", "--json"]] * 4
        commands += [
            ["apikey", "add", "-", "--name", name, "--server", "Production"] for name in fresh
        ]
        commands += [["apikey", "rotate", "key_0", "-", "--name", "key_0_next"]]
        commands += [["apikey", "delete", "key_5", "--confirm"]]
        stdin = [""] * 4 + list(fresh.values()) + [rotated] + [""]
        runs = _processes(_env(engine), commands, stdin)
    for run in runs:
        assert "Database error" not in run.stderr and "unexpected" not in run.stderr, run.stderr
    testers, writers = runs[:4], runs[4:]
    assert all(run.exit_code in (0, 4) for run in testers), [r.stderr for r in testers]
    assert [run.exit_code for run in writers[:3]] == [0, 0, 0], [r.stderr for r in writers]
    assert writers[-1].exit_code == 0, writers[-1].stderr
    names = {row[0] for row in _rows(engine, "SELECT name FROM api_keys")}
    assert set(fresh) <= names and "key_5" not in names
    used = _rows(engine, "SELECT COUNT(*) FROM api_keys WHERE last_used_at IS NOT NULL")
    assert used[0][0] >= 1


# -- migrations failing, and the lock ----------------------------------------------------------


def _fail_on_second_server(engine: str) -> None:
    """A trigger that makes revision 0003 fail when it rewrites the second server's URL."""
    kind = _kind(engine)
    made = create_engine(database_url(engine))
    try:
        with made.begin() as conn:
            if kind == "postgresql":
                conn.execute(
                    text(
                        "CREATE FUNCTION fail_second() RETURNS trigger AS $$ BEGIN "
                        "IF OLD.id = 2 THEN RAISE EXCEPTION 'disk on fire'; END IF; "
                        "RETURN NEW; END $$ LANGUAGE plpgsql"
                    )
                )
                conn.execute(
                    text(
                        "CREATE TRIGGER fail_second BEFORE UPDATE ON servers "
                        "FOR EACH ROW EXECUTE FUNCTION fail_second()"
                    )
                )
            elif kind in ("mysql", "mariadb"):
                conn.execute(
                    text(
                        "CREATE TRIGGER fail_second BEFORE UPDATE ON servers FOR EACH ROW "
                        "BEGIN IF OLD.id = 2 THEN SIGNAL SQLSTATE '45000' "
                        "SET MESSAGE_TEXT = 'disk on fire'; END IF; END"
                    )
                )
            else:
                conn.execute(
                    text(
                        "CREATE TRIGGER fail_second BEFORE UPDATE ON servers "
                        "WHEN OLD.id = 2 BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
                    )
                )
            conn.execute(
                text(
                    "INSERT INTO servers (id, name, url, skip_ssl_verify, created_at) "
                    "VALUES (2, 'Staging', 'http://staging:5678/', false, '2025-01-02 03:04:05')"
                )
            )
    finally:
        made.dispose()


def _drop_trigger(engine: str) -> None:
    made = create_engine(database_url(engine))
    try:
        with made.begin() as conn:
            if _kind(engine) == "postgresql":
                conn.execute(text("DROP TRIGGER fail_second ON servers"))
            else:
                conn.execute(text("DROP TRIGGER fail_second"))
    finally:
        made.dispose()


def test_a_migration_failing_part_way_says_truthfully_where_the_database_is(
    engine: str, cli: Cli
) -> None:
    _build_at(engine, "0002")
    _fail_on_second_server(engine)
    result = cli("db", "upgrade", "--no-backup")
    assert result.exit_code == ExitStatus.FAILED, result.output
    assert "disk on fire" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    (revision,) = _rows(engine, "SELECT version_num FROM alembic_version")
    assert revision == ("0002",)  # 0003 did not finish, on every engine
    if _kind(engine) in ("mysql", "mariadb"):
        assert "rolled back" not in result.stderr
        assert "the database is now at revision 0002" in result.stderr
    else:
        assert "It was rolled back: the database is at its previous revision" in result.stderr
    assert _rows(engine, "SELECT COUNT(*) FROM api_keys") == [(2,)]

    _drop_trigger(engine)  # the cause fixed, running it again finishes the upgrade
    again = cli("db", "upgrade", "--no-backup")
    assert again.exit_code == 0, again.output
    assert _rows(engine, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    assert sorted(_rows(engine, "SELECT url FROM servers")) == [
        ("http://staging:5678",),
        ("https://n8n.example.com",),
    ]


@pytest.mark.servers_only  # SQLite's own lock: test_schema_lifecycle.py
def test_a_held_migration_lock_is_waited_for_within_a_bound_naming_its_holder(
    engine: str, cli: Cli
) -> None:
    kind = _kind(engine)
    _build_at(engine, "0001")
    holder = create_engine(database_url(engine))
    try:
        with holder.connect() as conn:
            if kind == "postgresql":
                conn.execute(
                    text("SELECT pg_advisory_lock(:a, :b)"),
                    {"a": PG_LOCK_KEYS[0], "b": PG_LOCK_KEYS[1]},
                )
            else:
                conn.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": MYSQL_LOCK_NAME})
            result = cli("db", "upgrade", env={"N8N_DEPLOY_LOCK_TIMEOUT": "1"})
    finally:
        holder.dispose()
    assert result.exit_code == ExitStatus.FAILED, result.output
    assert "its lock is held by" in result.stderr and "not free within 1 s" in result.stderr
    assert "N8N_DEPLOY_LOCK_TIMEOUT" in result.stderr
    assert _rows(engine, "SELECT version_num FROM alembic_version") == [("0001",)]
    assert cli("db", "upgrade").exit_code == 0  # released: it goes through


# -- secrets in database URLs --------------------------------------------------------------------


PASSWORD = "Pw-0nly-in-the-URL"


def test_no_command_prints_a_password_given_in_the_database_url(
    engine: str, cli: Cli, tmp_path: Path
) -> None:
    kind = _kind(engine)
    if kind == "sqlite":
        url = f"{engine}?password={PASSWORD}"  # nonsense for SQLite, but it must not show
        urls = [url]
    elif kind == "postgresql":  # trust authentication: any password is accepted
        parsed = make_url(engine)
        urls = [
            parsed.set(password=PASSWORD).render_as_string(hide_password=False),
            f"{engine}?password={PASSWORD}",
        ]
    else:  # MariaDB refuses a wrong password: the refusals must not show it either
        urls = [make_url(engine).set(password=PASSWORD).render_as_string(hide_password=False)]
    commands = [
        ("db", "path"),
        ("db", "path", "--json"),
        ("db", "init"),
        ("db", "current"),
        ("db", "current", "--json"),
        ("db", "check"),
        ("db", "history"),
        ("db", "upgrade"),
        ("db", "backup", str(tmp_path / "b.db")),
        ("apikey", "list"),
        ("server", "list", "--json"),
    ]
    for url in urls:
        for command in commands:
            for debug in ({}, {"N8N_DEPLOY_DEBUG": "1"}):
                try:
                    run = cli("--database-url", url, *command, env=debug or None)
                except Exception as exc:  # noqa: BLE001 - debug mode lets a bug through
                    text_shown = str(exc)
                else:
                    text_shown = run.output
                assert PASSWORD not in text_shown, (url, command)
                assert PASSWORD[3:15] not in text_shown, (url, command)


def test_the_server_list_and_repository_share_one_engine_semantics(engine: str) -> None:
    """The repositories, straight from Python, on this engine."""
    database = __import__("n8n_deploy").open_database(resolve_settings())
    try:
        with database.session(write=True) as s:
            servers = ServerRepository(s)
            servers.create("Produção 🚀", "https://n8n.example.com")
            key = ApiKeyRepository(s).add("ключ", make_jwt(), servers=[servers.get("Produção 🚀")])
        with database.session() as s:
            assert [srv.name for srv in ApiKeyRepository(s).get("ключ").servers] == ["Produção 🚀"]
            assert ApiKeyRepository(s).find("КЛЮЧ") is None
            assert key.name == "ключ"
    finally:
        database.dispose()


def test_a_unit_of_work_lost_to_another_writer_is_run_again(
    engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deadlock or serialization failure is retried a few times, then a clear error."""
    from sqlalchemy.exc import OperationalError

    from n8n_deploy import open_database
    from n8n_deploy.base.errors import DatabaseError

    class Deadlock(Exception):
        sqlstate = "40P01"
        args = (1213, "Deadlock found when trying to get lock")

    database = open_database(resolve_settings())
    calls: list[int] = []

    def flaky(session: object) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("UPDATE api_keys ...", {}, Deadlock())
        return "done"

    monkeypatch.setattr("n8n_deploy.store.engine.time.sleep", lambda _: None)
    try:
        assert database.write(flaky) == "done" and len(calls) == 3
        calls.clear()

        def always(session: object) -> str:
            raise OperationalError("UPDATE api_keys ...", {}, Deadlock())

        with pytest.raises(DatabaseError, match="gave up after 4 attempts; nothing was changed"):
            database.write(always)
    finally:
        database.dispose()


def test_opening_a_database_whose_names_compare_loosely_warns(engine: str, cli: Cli) -> None:
    assert cli("db", "init").exit_code == 0
    loose = _kind(engine) in ("mysql", "mariadb")
    if loose:  # as a server's default collation would have it, or a hand-made table
        made = create_engine(database_url(engine))
        try:
            with made.begin() as conn:
                conn.execute(
                    text(
                        "ALTER TABLE api_keys MODIFY name VARCHAR(255) "
                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL"
                    )
                )
        finally:
            made.dispose()
    result = cli("apikey", "list")
    assert result.exit_code == 0
    if loose:
        assert "api_keys.name compares text with utf8mb4_general_ci" in result.stderr
        assert "COLLATE utf8mb4_bin" in result.stderr
    else:
        assert "compares text" not in result.stderr
