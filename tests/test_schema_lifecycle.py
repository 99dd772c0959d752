"""The schema across releases: every revision up to the newest and back with every row,
the refusals every command follows, failures part-way, concurrent upgrades, and the
db current / check / history / upgrade / downgrade commands."""

from __future__ import annotations

import itertools
import json
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jwt
import pytest

from n8n_deploy.base.errors import SchemaOutOfDateError
from n8n_deploy.base.settings import resolve_settings
from n8n_deploy.base.status import ExitStatus
from n8n_deploy.cli.views import expiry_label, key_record
from n8n_deploy.store import migrations as migrate
from n8n_deploy.store import schema
from n8n_deploy.store.engine import Database
from n8n_deploy.store.lifecycle import open_database
from n8n_deploy.store.models import ApiKey
from n8n_deploy.store.repositories import ApiKeyRepository, ServerRepository
from tests.dbfactory import build_at_revision, expected_rows, snapshot
from tests.helpers import Run, backups, file_mode, make_jwt, set_revision, sqlite_file

Cli = Callable[..., Run]
REVISIONS = schema.KNOWN_REVISIONS
HEAD = schema.HEAD
OLDER = REVISIONS[:-1]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _table_sql(db: Path, table: str) -> str:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    finally:
        conn.close()
    return str(row[0])


def _columns(db: Path, table: str) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    finally:
        conn.close()


# -- every revision, up and down, every row -----------------------------------------------


@pytest.mark.parametrize("revision", REVISIONS)
def test_a_database_at_each_revision_upgrades_to_the_newest_and_back_with_every_row(
    cli: Cli, data_dir: Path, revision: str
) -> None:
    db = sqlite_file(data_dir)
    built = build_at_revision(db, revision)
    was_before_0003 = REVISIONS.index(revision) < REVISIONS.index("0003")
    started = _utcnow()

    up = cli("db", "upgrade")
    assert up.exit_code == 0, up.output
    at_head = snapshot(db)
    assert at_head["revision"] == HEAD
    expected = expected_rows(
        built,
        HEAD,
        normalised_urls=was_before_0003,
        rewritten_since=started if was_before_0003 else None,
    )
    assert at_head["servers"] == expected["servers"]
    assert at_head["api_keys"] == expected["api_keys"]
    assert at_head["links"] == expected["links"]
    assert at_head["sequences"] == {"api_keys": 10, "servers": 10}

    down = cli("db", "downgrade", revision, "--confirm")
    assert down.exit_code == 0, down.output
    back = snapshot(db)
    assert back["revision"] == revision
    expected = expected_rows(built, revision, normalised_urls=was_before_0003)
    assert back["servers"] == expected["servers"]
    assert back["api_keys"] == expected["api_keys"]
    assert back["links"] == expected["links"]
    assert back["sequences"] == {"api_keys": 10, "servers": 10}
    for table in ("api_keys", "servers"):
        assert "AUTOINCREMENT" in _table_sql(db, table).upper()


@pytest.mark.parametrize("revision", OLDER)
def test_a_database_made_at_the_newest_revision_goes_down_to_each_one_and_up_again(
    cli: Cli, data_dir: Path, revision: str
) -> None:
    db = sqlite_file(data_dir)
    built = build_at_revision(db, HEAD)

    down = cli("db", "downgrade", revision, "--confirm")
    assert down.exit_code == 0, down.output
    back = snapshot(db)
    expected = expected_rows(built, revision, normalised_urls=False)
    assert back["revision"] == revision
    assert (back["servers"], back["api_keys"], back["links"]) == (
        expected["servers"],
        expected["api_keys"],
        expected["links"],
    )

    started = _utcnow()
    up = cli("db", "upgrade")
    assert up.exit_code == 0, up.output
    again = snapshot(db)
    # Going up through 0003 again normalises the URLs the test stored as typed.
    through_0003 = REVISIONS.index(revision) < REVISIONS.index("0003")
    expected = expected_rows(
        built,
        HEAD,
        normalised_urls=through_0003,
        rewritten_since=started if through_0003 else None,
    )
    assert again["revision"] == HEAD
    assert (again["servers"], again["api_keys"], again["links"]) == (
        expected["servers"],
        expected["api_keys"],
        expected["links"],
    )


def test_revision_0002_stores_each_keys_expiry_decoded_from_its_exp_claim(
    cli: Cli, data_dir: Path
) -> None:
    db = sqlite_file(data_dir)
    built = build_at_revision(db, "0001")
    assert cli("db", "upgrade", "0002").exit_code == 0
    rows = {row["name"]: row for row in snapshot(db)["api_keys"].values()}
    prod_secret = next(k["api_key"] for k in built["keys"] if k["name"] == "prod_key")
    exp = jwt.decode(prod_secret, options={"verify_signature": False})["exp"]
    assert rows["prod_key"]["expires_at"] == datetime.fromtimestamp(exp, timezone.utc).replace(
        tzinfo=None
    )
    assert rows["expired"]["expires_at"] < _utcnow()
    # No exp, a legacy key, an absurd exp, something that is no key: no expiry, no crash.
    for name in ("ключ 🔑", "old legacy key", "absurd exp", "not a key"):
        assert rows[name]["expires_at"] is None, name


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def test_revision_0002_gives_each_key_the_expiry_pyjwt_reads_whatever_its_header(
    cli: Cli, data_dir: Path
) -> None:
    """Keys sharing a header, and headers that are not usable, one after another: each
    row's expiry is what PyJWT reads from that key (None where it reads none)."""
    db = sqlite_file(data_dir)
    build_at_revision(db, "0001")
    exp = int(datetime(2031, 5, 6, 7, 8, 9, tzinfo=timezone.utc).timestamp())
    claims = _b64(json.dumps({"sub": "u", "exp": exp}).encode())
    good = make_jwt(exp_days=10, sub="a").split(".")[0]
    headers = [
        good,
        _b64(b'{"alg": ""}'),  # empty alg
        _b64(b'["HS256"]'),  # not an object
        _b64(b"{not json"),
        good,
        _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "2"}).encode()),
        _b64(b'{"typ": "JWT"}'),  # no alg
        good,
    ]
    secrets = {
        f"h{i}_{j}": f"{header}.{claims}.c2ln" for i, header in enumerate(headers) for j in range(2)
    }
    with closing(sqlite3.connect(db)) as conn:
        conn.executemany(
            "INSERT INTO api_keys (name, api_key, created_at, is_active) "
            "VALUES (?, ?, '2026-01-01 00:00:00.000000', 1)",
            list(secrets.items()),
        )
        conn.commit()
    assert cli("db", "upgrade", "0002").exit_code == 0
    rows = {row["name"]: row for row in snapshot(db)["api_keys"].values()}
    for name, secret in secrets.items():
        try:
            header = jwt.get_unverified_header(secret)
            usable = isinstance(header.get("alg"), str) and bool(header["alg"])
        except jwt.PyJWTError:
            usable = False
        expected = datetime.fromtimestamp(exp, timezone.utc).replace(tzinfo=None)
        assert rows[name]["expires_at"] == (expected if usable else None), name
    assert rows["h0_0"]["expires_at"] is not None and rows["h1_0"]["expires_at"] is None


def _first_shipped_expiry_of(secret: str) -> datetime | None:
    """Revision 0002's ``expiry_of`` as first shipped (later made faster): what it must
    still answer for every key."""
    import base64
    import binascii
    import re

    def decoded(part: str) -> object:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))

    parts = secret.strip().split(".")
    if len(parts) != 3 or not all(re.fullmatch(r"[A-Za-z0-9_-]+", part) for part in parts):
        return None
    errors = (ValueError, binascii.Error, UnicodeDecodeError, RecursionError)
    try:
        header = decoded(parts[0])
    except errors:
        return None
    if not (isinstance(header, dict) and isinstance(header.get("alg"), str) and header["alg"]):
        return None
    try:
        claims = decoded(parts[1])
    except errors:
        return None
    if not isinstance(claims, dict):
        return None
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    if exp != exp or exp < 0 or exp > 253402300799:
        return None
    return datetime.fromtimestamp(int(exp), tz=timezone.utc).replace(tzinfo=None)


def _revision_module(name: str) -> Any:
    import importlib.util

    path = migrate.script_location() / "versions" / name
    spec = importlib.util.spec_from_file_location(f"revision_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_revision_0002_reads_every_key_as_it_first_did() -> None:
    """Random keys, most of them almost JWTs: any header, claims in any JSON (or none),
    any ``exp``, stray characters, whitespace, other encodings.  The faster decoding
    answers as the first one did, with and without the header memory."""
    import random

    expiry_of = _revision_module("0002_api_key_expiry.py").expiry_of
    chance = random.Random(2002)

    def b64(data: bytes) -> str:
        return _b64(data) if chance.random() < 0.9 else _b64(data) + "=" * chance.randint(1, 3)

    exps: list[object] = [1798898041, 1798898041.9, -1, 0, -0.5, 253402300799, 253402300800]
    exps += [True, None, "123", 1e308, 10**30, 86399.999, float("nan"), [1], {"a": 1}]
    headers = [b'{"alg":"HS256","typ":"JWT"}', b'{"alg":""}', b'["x"]', b"{bad", b'{"typ":1}']
    headers += [b'{"alg":"RS256","kid":"2"}', b"null", b'{"alg":1}', '{"alg":"é"}'.encode()]
    pieces = ["", "=", ".", "..", " ", "\n", "ä", "+", "/", "-", "_", "%", "\x00"]
    keys = []
    for _ in range(4000):
        claims: object = {"sub": "u", "exp": chance.choice(exps)}
        if chance.random() < 0.1:
            claims = chance.choice([[1, 2], "text", 7, {}, {"exp": {"x": 1}}])
        text = json.dumps(claims)
        encoded = chance.choice(
            [
                *(text.encode(), text.encode()),
                *(text.encode("utf-16"), text.encode("utf-8-sig"), text.encode("utf-16-le")),
                *(f" {text}\n".encode(), f"{text}\r\t ".encode()),  # whitespace is allowed
                *(f"{text} x".encode(), f"{text}{text}".encode(), b"{"),  # and nothing more
            ]
        )
        header = headers[0] if chance.random() < 0.5 else chance.choice(headers)
        key = f"{b64(header)}.{b64(encoded)}.{b64(b'sig')}"
        if chance.random() < 0.2:  # damaged anywhere
            at = chance.randrange(len(key) + 1)
            key = key[:at] + chance.choice(pieces) + key[at:]
        if chance.random() < 0.1:
            key = chance.choice(["  ", "\t", "\n"]) + key + chance.choice(["", " ", "\r\n"])
        keys.append(key)
    keys += ["n8n_api_" + "a" * 40, "not a key", "a.b.c", "a..c", "...", "", "eyJ.eyJ.x"]
    remembered: dict[str, bool] = {}
    found = [expiry_of(key, remembered) for key in keys]
    assert found == [expiry_of(key) for key in keys]
    assert found == [_first_shipped_expiry_of(key) for key in keys]
    assert sum(value is not None for value in found) > 300  # the cases that have an expiry


def test_revision_0003_normalises_server_urls_and_reports_one_it_cannot_read(
    cli: Cli, data_dir: Path
) -> None:
    db = sqlite_file(data_dir)
    build_at_revision(db, "0002")
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    urls = {row["name"]: row["url"] for row in snapshot(db)["servers"].values()}
    assert urls == {
        "Production 🚀": "https://n8n.example.com",
        "staging": "http://n8n-staging.internal:5678",
        "сервер без URL": "n8n.example.org",
    }
    assert "server 'сервер без URL': URL 'n8n.example.org' is not an http(s) URL" in result.stderr
    assert "1 server URL rewritten in normal form" in result.stderr


def test_upgrade_prints_each_step_and_the_backup_it_wrote_first(cli: Cli, data_dir: Path) -> None:
    db = sqlite_file(data_dir)
    build_at_revision(db, "0001")
    before = snapshot(db)
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    (backup,) = backups(data_dir)
    assert f"Backup written: {backup}" in lines[0]
    assert [line.split(":")[0] for line in lines if line.startswith("Applied")] == [
        f"Applied {old} -> {new}" for old, new in itertools.pairwise(REVISIONS)
    ]
    assert lines[-1] == f"Upgraded the database from 0001 to {HEAD}."
    assert file_mode(backup) == 0o600
    assert backup.name.startswith("n8n-deploy.db.") and backup.name.endswith("Z.bak")
    assert snapshot(backup) == before


def test_upgrade_to_a_given_revision_stops_there(cli: Cli, data_dir: Path) -> None:
    db = sqlite_file(data_dir)
    build_at_revision(db, "0001")
    result = cli("db", "upgrade", "0002")
    assert result.exit_code == 0, result.output
    assert "Applied 0001 -> 0002" in result.stdout
    assert "0002 -> 0003" not in result.stdout
    assert f"The newest revision is {HEAD}" in result.stderr
    assert snapshot(db)["revision"] == "0002"


def test_no_backup_writes_no_backup(cli: Cli, data_dir: Path) -> None:
    build_at_revision(sqlite_file(data_dir), "0001")
    result = cli("db", "upgrade", "--no-backup")
    assert result.exit_code == 0, result.output
    assert backups(data_dir) == []
    assert "Backup" not in result.output


def test_upgrading_a_current_database_changes_nothing_and_writes_no_backup(
    cli: Cli, data_dir: Path
) -> None:
    db = sqlite_file(data_dir)
    build_at_revision(db, HEAD)
    before = db.read_bytes()
    result = cli("db", "upgrade")
    assert result.exit_code == 0
    assert "already at the newest revision" in result.stdout
    assert backups(data_dir) == []
    assert db.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (("db", "upgrade", "0001"), ExitStatus.USAGE, "newer than 0001"),
        (("db", "upgrade", "nope"), ExitStatus.USAGE, "Unknown revision 'nope'"),
        (("db", "downgrade", HEAD, "--confirm"), ExitStatus.USAGE, f"older than {HEAD}"),
        (("db", "downgrade", "base", "--confirm"), ExitStatus.USAGE, "below its first revision"),
        (("db", "downgrade", "nope", "--confirm"), ExitStatus.USAGE, "Unknown revision"),
    ],
)
def test_impossible_revision_requests_are_refused_and_change_nothing(
    cli: Cli, data_dir: Path, args: tuple[str, ...], status: int, message: str
) -> None:
    db = sqlite_file(data_dir)
    build_at_revision(db, "0002")
    before = db.read_bytes()
    result = cli(*args)
    assert result.exit_code == status, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert db.read_bytes() == before
    assert backups(data_dir) == []


# -- downgrade confirmation ----------------------------------------------------------------


def test_downgrade_needs_confirm_when_not_at_a_terminal(cli: Cli, data_dir: Path) -> None:
    db = sqlite_file(data_dir)
    build_at_revision(db, HEAD)
    before = db.read_bytes()
    result = cli("db", "downgrade", "0001")
    # Refused (1), as 'apikey delete' and 'server delete' refuse: not a usage error.
    assert result.exit_code == ExitStatus.FAILED
    assert "Refusing to downgrade without confirmation" in result.stderr
    assert "--confirm" in result.stderr
    assert db.read_bytes() == before
    assert backups(data_dir) == []


def test_downgrade_asks_at_a_terminal_and_a_no_changes_nothing(
    cli: Cli, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("n8n_deploy.cli.prompts.stdin_is_terminal", lambda: True)
    db = sqlite_file(data_dir)
    build_at_revision(db, HEAD)
    before = db.read_bytes()
    declined = cli("db", "downgrade", "0001", input="n\n")
    assert declined.exit_code == ExitStatus.FAILED
    assert f"from revision {HEAD} to 0001?" in declined.stderr
    assert "Cancelled; nothing was changed" in declined.stderr
    assert db.read_bytes() == before
    assert backups(data_dir) == []

    accepted = cli("db", "downgrade", "0001", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert snapshot(db)["revision"] == "0001"
    (backup,) = backups(data_dir)
    assert f"Backup written: {backup}" in accepted.stdout
    assert snapshot(backup)["revision"] == HEAD


# -- refusals every command follows ----------------------------------------------------------


def test_a_database_behind_is_refused_naming_both_revisions_and_the_fix(
    cli: Cli, data_dir: Path
) -> None:
    db = sqlite_file(data_dir)
    build_at_revision(db, "0001")
    before = db.read_bytes()
    result = cli("db", "init")
    assert result.exit_code == ExitStatus.SCHEMA
    assert "revision 0001" in result.stderr
    assert f"needs {HEAD}" in result.stderr
    assert "Run 'n8n-deploy db upgrade'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    with pytest.raises(SchemaOutOfDateError):
        open_database(resolve_settings())
    assert db.read_bytes() == before


def test_auto_upgrade_upgrades_with_a_backup_instead_of_refusing(
    cli: Cli, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = sqlite_file(data_dir)
    built = build_at_revision(db, "0001")
    before = snapshot(db)
    monkeypatch.setenv("N8N_DEPLOY_AUTO_UPGRADE", "1")
    result = cli("db", "init")
    assert result.exit_code == 0, result.output
    (backup,) = backups(data_dir)
    assert f"Upgraded the database from 0001 to {HEAD}" in result.stderr
    assert str(backup) in result.stderr
    assert snapshot(backup) == before
    assert file_mode(backup) == 0o600
    after = snapshot(db)
    assert after["revision"] == HEAD
    assert {k["name"] for k in after["api_keys"].values()} == {k["name"] for k in built["keys"]}
    assert set(after["links"]) == {(s, k) for s, k, _ in built["links"]}


def test_auto_upgrade_from_python_reports_what_it_did(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_at_revision(sqlite_file(data_dir), "0002")
    monkeypatch.setenv("N8N_DEPLOY_AUTO_UPGRADE", "1")
    database = open_database(resolve_settings())
    try:
        report = database.migration
        assert report is not None
        assert (report.before.revision, report.after) == ("0002", HEAD)
        assert report.backup is not None and report.backup.exists()
        with database.session() as s:
            assert len(ApiKeyRepository(s).list()) == 6
    finally:
        database.dispose()


UNKNOWN_REFUSED = [
    ("db", "upgrade"),
    ("db", "upgrade", "0002"),
    ("db", "init"),
    ("db", "check"),
    ("db", "downgrade", "0001", "--confirm"),
]


@pytest.mark.parametrize("args", UNKNOWN_REFUSED)
def test_a_database_from_a_newer_release_is_refused_and_left_byte_for_byte(
    cli: Cli, data_dir: Path, args: tuple[str, ...]
) -> None:
    db = sqlite_file(data_dir)
    build_at_revision(db, HEAD)
    set_revision(db, "0009_from_the_future")
    before = db.read_bytes()
    result = cli(*args)
    assert result.exit_code == ExitStatus.SCHEMA, result.output
    assert "0009_from_the_future" in result.stderr
    assert "does not know" in result.stderr
    assert db.read_bytes() == before
    assert backups(data_dir) == []


def test_current_and_history_describe_a_newer_database_without_touching_it(
    cli: Cli, data_dir: Path
) -> None:
    db = sqlite_file(data_dir)
    build_at_revision(db, HEAD)
    set_revision(db, "0009_from_the_future")
    before = db.read_bytes()
    current = json.loads(cli("db", "current", "--json").stdout)
    assert current["state"] == "unknown"
    assert current["revision"] == "0009_from_the_future"
    history = cli("db", "history")
    assert history.stdout.splitlines()[0].startswith("* 0009_from_the_future")
    assert "newer n8n-deploy" in history.stdout
    assert db.read_bytes() == before


def test_a_database_of_another_program_is_refused(cli: Cli, data_dir: Path) -> None:
    data_dir.mkdir()
    db = sqlite_file(data_dir)
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    for args in (("db", "upgrade"), ("db", "check"), ("db", "init")):
        result = cli(*args)
        assert result.exit_code == ExitStatus.SCHEMA, result.output
        assert "not an n8n-deploy database" in result.stderr
    assert db.read_bytes() == before


# -- failures part-way ---------------------------------------------------------------------


def test_an_upgrade_failing_part_way_leaves_the_previous_revision_and_every_row(
    cli: Cli, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = sqlite_file(data_dir)
    build_at_revision(db, "0001")
    # Fail in 0003 on its second server: by then 0002 has added its column and filled
    # every key's expiry, and 0003 has added its column and rewritten one URL.  (Revisions
    # are frozen code: the failure comes from the database, as a real one would.)
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TRIGGER fail_on_second_server BEFORE UPDATE ON servers "
        "WHEN OLD.id = (SELECT id FROM servers ORDER BY id LIMIT 1 OFFSET 1) "
        "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
    )
    conn.commit()
    conn.close()
    before = snapshot(db)
    before_bytes = db.read_bytes()
    result = cli("db", "upgrade")
    assert result.exit_code == ExitStatus.FAILED
    assert "The migration failed (disk on fire)" in result.stderr
    assert "rolled back" in result.stderr
    assert "Traceback" not in result.output
    assert snapshot(db) == before
    assert "expires_at" not in _columns(db, "api_keys")
    assert "updated_at" not in _columns(db, "servers")
    assert db.read_bytes() == before_bytes
    # The backup written first is still there, and the upgrade can simply be run again.
    assert len(backups(data_dir)) == 1
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER fail_on_second_server")
    conn.commit()
    conn.close()
    assert cli("db", "upgrade").exit_code == 0
    assert snapshot(db)["revision"] == HEAD


NEXT = f"{int(HEAD) + 1:04d}"  # a revision after the newest, which fails
FAILING_REVISION = f'''"""Test only: changes schema and data, then fails.

Revision ID: {NEXT}
Revises: {HEAD}
"""

import sqlalchemy as sa
from alembic import op

revision = "{NEXT}"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("scratch", sa.Column("id", sa.Integer(), primary_key=True))
    with op.batch_alter_table("api_keys", recreate="always") as batch:
        batch.alter_column("description", existing_type=sa.Text(), type_=sa.String(10))
    op.execute("UPDATE api_keys SET description = 'overwritten', is_active = 0")
    op.execute("DELETE FROM server_api_keys")
    op.execute("DELETE FROM servers WHERE id = 1")
    raise RuntimeError("fails after rebuilding a table and changing rows")


def downgrade() -> None:
    pass
'''


def _ship_a_failing_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make this program ship a revision after the newest that fails after changing things."""
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.script_location(), scripts)
    (scripts / "versions" / f"{NEXT}_fails.py").write_text(FAILING_REVISION)
    monkeypatch.setattr(migrate, "script_location", lambda: scripts)
    monkeypatch.setattr(schema, "KNOWN_REVISIONS", (*REVISIONS, NEXT))
    monkeypatch.setattr(schema, "HEAD", NEXT)


def test_a_failing_revision_rolls_back_table_rebuilds_deletes_and_updates(
    cli: Cli, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = sqlite_file(data_dir)
    build_at_revision(db, HEAD)
    before = snapshot(db)
    before_bytes = db.read_bytes()
    _ship_a_failing_revision(tmp_path, monkeypatch)

    result = cli("db", "upgrade")
    assert result.exit_code == ExitStatus.FAILED, result.output
    assert "rolled back" in result.stderr
    assert snapshot(db) == before
    assert db.read_bytes() == before_bytes


# -- two upgrades at once ----------------------------------------------------------------------


@pytest.mark.e2e
def test_two_upgrades_started_at_once_do_not_corrupt_anything(data_dir: Path) -> None:
    db = sqlite_file(data_dir)
    build_at_revision(db, "0001")
    conn = sqlite3.connect(db)
    with conn:  # enough rows that the upgrades overlap
        conn.executemany(
            "INSERT INTO api_keys (name, api_key, created_at, is_active) VALUES (?, ?, ?, 1)",
            [(f"bulk-{i}", make_jwt(exp_days=30, n=i), "2025-01-01 00:00:00") for i in range(3000)],
        )
    conn.close()
    command = [sys.executable, "-m", "n8n_deploy", "db", "upgrade"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    runs.append(
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    )
    outputs = [run.communicate() for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    stdouts = [out for out, _ in outputs]
    # One applied the steps; the other found nothing left to do (waiting if it had to).
    assert sum("Upgraded the database from 0001" in out for out in stdouts) == 1
    assert sum("already at the newest revision" in out for out in stdouts) == 1
    # Only the one that had something to do wrote a backup.
    assert len(backups(data_dir)) == 1
    assert sum("Backup written" in out for out in stdouts) == 1
    after = snapshot(db)
    assert after["revision"] == HEAD
    assert len(after["api_keys"]) == 6 + 3000
    assert all(
        row["expires_at"] is not None
        for row in after["api_keys"].values()
        if row["name"].startswith("bulk-")
    )
    check = sqlite3.connect(db)
    assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    check.close()


def test_an_upgrade_that_cannot_get_the_lock_says_another_is_in_progress(
    cli: Cli, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = sqlite_file(data_dir)
    build_at_revision(db, "0001")
    before = snapshot(db)
    monkeypatch.setattr("n8n_deploy.store.engine.BUSY_TIMEOUT_SECONDS", 0.2)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of an upgrade
    try:
        result = cli("db", "upgrade")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == ExitStatus.FAILED
    assert "locked by another n8n-deploy process (an upgrade may be in progress)" in result.stderr
    assert "nothing was changed" in result.stderr
    assert snapshot(db) == before
    assert backups(data_dir) == []  # no backup of a database it did not get to upgrade


def test_an_upgrade_waits_for_one_in_progress_and_then_has_nothing_to_do(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic overlap: the first upgrade is paused inside its transaction while the
    second starts; the second waits for the lock and then finds the newest revision."""
    db = sqlite_file(data_dir)
    build_at_revision(db, "0001")
    real = migrate.create_backup
    inside, release = threading.Event(), threading.Event()

    def paused(database: Path, target: Path | None = None) -> Path:
        # Called holding the write lock, once the first upgrade knows it has work to do.
        if threading.current_thread().name == "first" and not inside.is_set():
            inside.set()
            release.wait()
        return real(database, target)

    monkeypatch.setattr(migrate, "create_backup", paused)
    url = f"sqlite:///{db}"
    before = snapshot(db)
    reports: dict[str, migrate.MigrationReport] = {}

    def run(name: str) -> None:
        from n8n_deploy.store.engine import create_engine_for

        engine = create_engine_for(url)
        try:
            reports[name] = migrate.upgrade_database(engine)
        finally:
            engine.dispose()

    first = threading.Thread(target=run, args=("first",), name="first")
    first.start()
    assert inside.wait(timeout=60)
    second = threading.Thread(target=run, args=("second",), name="second")
    second.start()
    release.set()
    first.join()
    second.join()
    assert [s.target for s in reports["first"].steps] == list(REVISIONS[1:])
    assert reports["second"].steps == []
    assert reports["second"].after == HEAD
    assert snapshot(db)["revision"] == HEAD
    # The backup is taken under the lock, once there is something to do: the first wrote
    # one (of the database as it was), the second, finding nothing to do, none.
    backup = reports["first"].backup
    assert backup is not None and snapshot(backup) == before
    assert reports["second"].backup is None
    assert backups(data_dir) == [backup]


# -- current, check, history -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("revision", "status"), [(rev, 0 if rev == HEAD else ExitStatus.SCHEMA) for rev in REVISIONS]
)
def test_db_check_exits_0_only_at_the_newest_revision(
    cli: Cli, data_dir: Path, revision: str, status: int
) -> None:
    build_at_revision(sqlite_file(data_dir), revision)
    result = cli("db", "check")
    assert result.exit_code == status, result.output
    if status:
        assert "n8n-deploy db upgrade" in result.stderr


def test_db_check_on_a_missing_database_exits_3_and_creates_nothing(
    cli: Cli, data_dir: Path
) -> None:
    result = cli("db", "check")
    assert result.exit_code == ExitStatus.SCHEMA
    assert "no schema yet" in result.stderr
    assert not data_dir.exists()


def test_a_ci_job_can_gate_on_db_check(cli: Cli, data_dir: Path) -> None:
    """The README's CI example: check, upgrade when needed, check again."""
    build_at_revision(sqlite_file(data_dir), "0001")
    assert cli("db", "check").exit_code == ExitStatus.SCHEMA
    assert cli("db", "upgrade").exit_code == 0
    assert cli("db", "check").exit_code == 0


def test_db_current_reports_revision_newest_and_whether_an_upgrade_is_needed(
    cli: Cli, data_dir: Path
) -> None:
    db = sqlite_file(data_dir)
    build_at_revision(db, "0002")
    info = json.loads(cli("db", "current", "--json").stdout)
    assert info == {
        "revision": "0002",
        "head": HEAD,
        "state": "behind",
        "up_to_date": False,
        "upgrade_needed": True,
        "legacy_version": None,
    }
    text = cli("db", "current").stdout
    assert f"Revision: 0002 (newest: {HEAD}) - upgrade needed" in text


def test_db_history_lists_newest_first_and_marks_the_current_revision(
    cli: Cli, data_dir: Path
) -> None:
    build_at_revision(sqlite_file(data_dir), "0002")
    result = cli("db", "history")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line[2:6] for line in lines] == list(reversed(REVISIONS))
    assert lines[0].endswith("(newest)") and not lines[0].startswith("*")
    (current,) = [line for line in lines if line.startswith("*")]
    assert current.startswith("* 0002") and current.endswith("(current)")
    assert "expiry" in current
    rows = json.loads(cli("db", "history", "--json").stdout)
    assert [(r["revision"], r["current"], r["newest"]) for r in rows] == [
        (rev, rev == "0002", rev == HEAD) for rev in reversed(REVISIONS)
    ]


def test_db_history_of_a_missing_database_marks_nothing_and_creates_nothing(
    cli: Cli, data_dir: Path
) -> None:
    result = cli("db", "history")
    assert result.exit_code == 0
    assert not any(line.startswith("*") for line in result.stdout.splitlines())
    assert "no schema yet" in result.stderr
    assert not data_dir.exists()


# -- what the new revisions give the product ---------------------------------------------------


def test_a_new_key_gets_its_expiry_stored_and_listing_uses_the_stored_value(
    database: Database,
) -> None:
    with database.session(write=True) as s:
        repo = ApiKeyRepository(s)
        key = repo.add("soon", make_jwt(exp_days=3))
        legacy = repo.add("legacy", "n8n_api_" + "ab" * 40)
        assert key.expires_at is not None
        assert key.expires_at - datetime.now(timezone.utc) < timedelta(days=3, minutes=1)
        assert legacy.expires_at is None
    with database.session(write=True) as s:
        key = ApiKeyRepository(s).get("soon")
        # The stored date is what listings show: they never decode the key.
        key.expires_at = datetime(2030, 1, 2, tzinfo=timezone.utc)
    with database.session() as s:
        assert key_record(ApiKeyRepository(s).get("soon"))["expires_at"] == "2030-01-02T00:00:00Z"
    with database.session(write=True) as s:
        s.get(ApiKey, key.id).expires_at = None  # type: ignore[union-attr]
    with database.session() as s:
        stored = ApiKeyRepository(s).get("soon")
        record = key_record(stored)
        assert record["expires_at"] is None and record["status"] == "active"
        # The key does carry an exp that is not stored: shown as unknown, not as "Never".
        assert expiry_label(stored) == "Unknown"


def test_changing_a_server_records_when(database: Database) -> None:
    with database.session(write=True) as s:
        server = ServerRepository(s).create("prod", "https://n8n.example.com")
        created = server.updated_at
        assert created >= server.created_at
    with database.session(write=True) as s:
        repo = ServerRepository(s)
        repo.update(repo.get("prod"), url="https://n8n2.example.com")
    with database.session() as s:
        assert ServerRepository(s).get("prod").updated_at > created


def test_a_password_in_a_stored_url_is_never_printed_by_the_upgrade(
    cli: Cli, data_dir: Path
) -> None:
    db = sqlite_file(data_dir)
    build_at_revision(db, "0002")
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "UPDATE servers SET url = 'https://deploy:hunter2@n8n.example.com' WHERE id = 1"
        )
    conn.close()
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    assert "https://deploy:***@n8n.example.com" in result.stderr
    assert snapshot(db)["servers"][1]["url"] == "https://deploy:hunter2@n8n.example.com"


def test_db_upgrade_of_no_database_creates_it_at_the_newest_revision(
    cli: Cli, data_dir: Path
) -> None:
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert f"Created the database at revision {HEAD}" in result.stdout
    assert backups(data_dir) == []


# -- a fresh data folder: a command that fails leaves nothing behind ---------------------------

FAILING_IN_A_FRESH_FOLDER = [
    (("db", "upgrade", NEXT), ExitStatus.USAGE, f"Unknown revision '{NEXT}'"),
    (("db", "upgrade", "nope", "--no-backup"), ExitStatus.USAGE, "Unknown revision 'nope'"),
    (("db", "downgrade", NEXT, "--confirm"), ExitStatus.USAGE, f"Unknown revision '{NEXT}'"),
    (("db", "downgrade", "base", "--confirm"), ExitStatus.USAGE, "below its first revision"),
    (("db", "downgrade", "0001", "--confirm"), ExitStatus.FAILED, "No database at"),
    (("db", "downgrade", "0001"), ExitStatus.FAILED, "No database at"),
    (("db", "check"), ExitStatus.SCHEMA, "no schema yet"),
    (("db", "backup"), ExitStatus.FAILED, "nothing to back up"),
]


@pytest.mark.parametrize(("args", "status", "message"), FAILING_IN_A_FRESH_FOLDER)
def test_a_db_command_failing_in_a_fresh_folder_creates_nothing(
    cli: Cli, data_dir: Path, args: tuple[str, ...], status: int, message: str
) -> None:
    result = cli(*args)
    assert result.exit_code == status, result.output
    assert message in result.stderr
    assert not data_dir.exists()


@pytest.mark.parametrize("args", [("db", "current"), ("db", "history"), ("db", "path")])
def test_looking_at_a_fresh_folder_creates_nothing(
    cli: Cli, data_dir: Path, args: tuple[str, ...]
) -> None:
    assert cli(*args).exit_code == 0
    assert not data_dir.exists()


@pytest.mark.parametrize("args", [("db", "upgrade"), ("db", "init"), ("apikey", "list")])
def test_creating_the_database_failing_part_way_leaves_no_empty_file(
    cli: Cli,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
) -> None:
    _ship_a_failing_revision(tmp_path, monkeypatch)
    result = cli(*args)
    assert result.exit_code == ExitStatus.FAILED, result.output
    assert "rolled back" in result.stderr
    assert not data_dir.exists()
