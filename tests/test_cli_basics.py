"""The command line's skeleton: version, groups, data location, first run, exit statuses."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from n8n_deploy import __version__
from n8n_deploy.base.status import ExitStatus
from n8n_deploy.store import schema
from tests.helpers import Run, change_database, database_rows, dump_database, file_mode, make_jwt

# Every test here runs on SQLite, PostgreSQL and MariaDB (tests/conftest.py), except those
# marked sqlite_only: they are about the SQLite file itself.
pytestmark = pytest.mark.usefixtures("engine")

Cli = Callable[..., Run]


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"n8n-deploy {__version__}"


def test_the_three_command_groups_are_registered(cli: Cli) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for group in ("apikey", "server", "db"):
        assert group in result.stdout


@pytest.mark.sqlite_only
def test_db_path_reports_each_value_and_its_source(cli: Cli, data_dir: Path) -> None:
    result = cli("db", "path", "--json")
    info = json.loads(result.stdout)
    assert info["data_dir"] == str(data_dir)
    assert info["data_dir_source"] == "environment"
    assert info["database_url_source"] == "data folder"
    assert info["database_path"] == str(data_dir / "n8n-deploy.db")


def test_the_data_dir_flag_beats_the_environment(cli: Cli, tmp_path: Path) -> None:
    result = cli("--data-dir", str(tmp_path / "flag"), "db", "path")
    assert f"{tmp_path / 'flag'}  (from flag)" in result.stdout


def test_db_path_masks_a_password_in_the_url(cli: Cli) -> None:
    result = cli("--database-url", "postgresql://deploy:hunter2@db.internal/n8n", "db", "path")
    assert result.exit_code == 0
    assert "hunter2" not in result.output
    assert "postgresql://deploy:***@db.internal/n8n" in result.stdout


def test_db_path_does_not_create_anything(cli: Cli, data_dir: Path) -> None:
    cli("db", "path")
    assert not data_dir.exists()


def test_db_init_creates_the_database_and_is_idempotent(cli: Cli, engine: str) -> None:
    first = cli("db", "init")
    assert first.exit_code == 0, first.output
    assert "Created the database" in first.stdout
    second = cli("db", "init")
    assert second.exit_code == 0
    assert "already at the newest revision" in second.stdout


def test_db_current_says_whether_the_database_is_newest(cli: Cli) -> None:
    cli("db", "init")
    result = cli("db", "current", "--json")
    assert json.loads(result.stdout) == {
        "revision": schema.HEAD,
        "head": schema.HEAD,
        "state": "current",
        "up_to_date": True,
        "upgrade_needed": False,
        "legacy_version": None,
    }
    assert "up to date" in cli("db", "current").stdout


@pytest.mark.sqlite_only
def test_a_new_sqlite_database_is_private(cli: Cli, data_dir: Path) -> None:
    assert cli("db", "init").exit_code == 0
    assert file_mode(data_dir) == 0o700
    assert file_mode(data_dir / "n8n-deploy.db") == 0o600


def test_db_upgrade_creates_a_fresh_database_at_head(cli: Cli, data_dir: Path) -> None:
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert database_rows(data_dir, "SELECT version_num FROM alembic_version") == [(schema.HEAD,)]


def test_a_database_from_a_newer_release_is_refused_and_left_alone(
    cli: Cli, data_dir: Path
) -> None:
    cli("db", "init")
    change_database(data_dir, "UPDATE alembic_version SET version_num = 'ffff_from_the_future'")
    before = dump_database(data_dir)
    for args in (("db", "upgrade"), ("db", "init"), ("apikey", "list")):
        result = cli(*args)
        assert result.exit_code == ExitStatus.SCHEMA, result.output
        assert "ffff_from_the_future" in result.stderr
        assert "Traceback" not in result.output
    assert dump_database(data_dir) == before


@pytest.mark.parametrize(
    ("url", "starts"),
    [
        ("not a url", "Error: The database URL cannot be read (not a URL)"),
        ("postgresql://deploy:s3cr3t@db:port/n8n", "Error: The database URL cannot be read"),
        ("postgresql://deploy:s3cr@t@db/n8n", "Error: The database URL has an '@' or '/'"),
        ("oracle://deploy:s3cr3t@db/n8n", "Error: n8n-deploy does not work with 'oracle'"),
    ],
)
def test_a_bad_database_url_is_a_one_line_usage_error_that_never_shows_it(
    cli: Cli, url: str, starts: str
) -> None:
    result = cli("--database-url", url, "db", "init")
    assert result.exit_code == ExitStatus.USAGE
    assert result.stderr.startswith(starts), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "s3cr" not in result.output and "3t@" not in result.output


@pytest.mark.sqlite_only
def test_an_unwritable_data_folder_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = cli("--data-dir", str(blocker / "sub"), "db", "init")
    assert result.exit_code == ExitStatus.FAILED
    assert result.stderr.startswith(
        f"Error: The folder {blocker / 'sub'} for the database cannot be used: {blocker} is a file"
    )


@pytest.mark.parametrize("args", [(), ("apikey",), ("server",), ("db",)])
def test_a_group_without_a_command_shows_its_help(cli: Cli, args: tuple[str, ...]) -> None:
    """As click shows the root's: the help, line by line, on stderr, exit 2 (it once came
    as one 'Error:' line with its line breaks escaped)."""
    result = cli(*args)
    assert result.exit_code == ExitStatus.USAGE
    lines = result.stderr.splitlines()
    assert lines[0].startswith(" ".join(("Usage: n8n-deploy", *args, "[OPTIONS] COMMAND")))
    assert "Commands:" in lines
    assert "Error" not in result.stderr and "\\x0a" not in result.stderr


@pytest.mark.parametrize(
    ("args", "starts"),
    [
        (("--bogus", "apikey", "list"), "Error: No such option: --bogus"),
        (("--data-dir",), "Error: Option '--data-dir' requires an argument"),
        (("nosuch",), "Error: No such command 'nosuch'"),
    ],
)
def test_a_mistake_in_the_global_options_is_one_line(
    cli: Cli, args: tuple[str, ...], starts: str
) -> None:
    result = cli(*args)
    assert result.exit_code == ExitStatus.USAGE
    assert result.stderr.startswith(starts), result.stderr
    assert result.stderr.rstrip().endswith("See 'n8n-deploy --help'")
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def _fail_listing(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    from n8n_deploy.store.reads import Reader

    def fail(*_: object, **__: object) -> None:
        raise error

    # Whichever way apikey list reads (a listing as stored, or the keys to filter).
    monkeypatch.setattr(Reader, "keys", fail)
    monkeypatch.setattr(Reader, "key_listing", fail)


def test_a_bug_is_one_line_that_says_how_to_report_it(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = make_jwt()
    _fail_listing(monkeypatch, RuntimeError(f"internal state {key}"))
    result = cli("apikey", "list")
    assert result.exit_code == ExitStatus.FAILED
    # (On a new server database the command created the schema first, and says it kept it.)
    assert result.stderr.startswith("Error: unexpected RuntimeError")
    assert "This is a bug in n8n-deploy" in result.stderr
    assert "N8N_DEPLOY_DEBUG=1" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output and key not in result.output


def test_n8n_deploy_debug_lets_the_traceback_through(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_listing(monkeypatch, RuntimeError("for the bug report"))
    with pytest.raises(RuntimeError, match="for the bug report"):
        cli("apikey", "list", env={"N8N_DEPLOY_DEBUG": "1"})


def test_ctrl_c_exits_130_and_says_nothing_was_changed(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("db", "init").exit_code == 0
    _fail_listing(monkeypatch, KeyboardInterrupt())
    result = cli("apikey", "list")
    assert result.exit_code == ExitStatus.INTERRUPTED == 130
    assert result.stderr.strip() == "Interrupted; nothing was changed."


def test_ctrl_c_after_the_database_was_created_says_so(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#15 defect 6: the first command of a fresh folder creates the database; a Ctrl-C
    later in that command must not claim that nothing was changed."""
    _fail_listing(monkeypatch, KeyboardInterrupt())
    result = cli("apikey", "list")
    assert result.exit_code == ExitStatus.INTERRUPTED == 130
    assert result.stderr.strip().startswith("Interrupted after a change was saved: it is kept")
    assert "Traceback" not in result.output


def test_a_global_option_after_the_group_says_where_it_goes(cli: Cli) -> None:
    result = cli("apikey", "list", "--data-dir", "/tmp/x")
    assert result.exit_code == ExitStatus.USAGE
    assert "--data-dir is a global option: it goes before the command group" in result.stderr
    assert "n8n-deploy --data-dir VALUE apikey list" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
