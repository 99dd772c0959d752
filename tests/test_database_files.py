"""The SQLite file and the folders around it when they are not what they should be: an
empty file, a symbolic link to nothing, a file where the data folder belongs (#15, 10).

Every test here is about SQLite files, so none takes the ``engine`` fixture."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from n8n_deploy.base.status import ExitStatus
from tests.helpers import Run, file_mode, one_line_error, sqlite_file

Cli = Callable[..., Run]

READ_ONLY = [("db", "check"), ("db", "current"), ("db", "history")]


def listing(folder: Path) -> dict[str, tuple[int, int, int, str]]:
    """Every entry under ``folder``: its mode, size, mtime and content's digest (links as
    where they point), so any file created, changed or touched shows."""
    found: dict[str, tuple[int, int, int, str]] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            found[str(path)] = (0, 0, 0, os.readlink(path))
            continue
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        found[str(path)] = (info.st_mode, info.st_size, info.st_mtime_ns, digest)
    return found


@pytest.mark.parametrize("args", [*READ_ONLY, ("db", "current", "--json")], ids=" ".join)
def test_read_only_commands_leave_a_zero_byte_database_as_it_is(
    cli: Cli, data_dir: Path, args: tuple[str, ...]
) -> None:
    data_dir.mkdir(mode=0o700)
    empty = sqlite_file(data_dir)
    empty.touch(mode=0o600)
    old = 1_600_000_000_000_000_000
    os.utime(empty, ns=(old, old))  # a change of mtime shows even within a second
    before = listing(data_dir)
    run = cli(*args)
    assert "Traceback" not in run.output
    assert run.exit_code in (ExitStatus.SUCCESS, ExitStatus.SCHEMA), run.output
    assert empty.stat().st_size == 0
    assert listing(data_dir) == before  # no -wal, -shm or -journal either


@pytest.mark.parametrize(
    "args", [("db", "init"), ("apikey", "list"), ("server", "create", "P", "https://n8n.example")]
)
def test_a_database_path_that_is_a_link_to_nothing_is_refused(
    cli: Cli, data_dir: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    data_dir.mkdir(mode=0o700)
    vault = tmp_path / "vault"
    vault.mkdir()
    sqlite_file(data_dir).symlink_to(vault / "n8n-deploy.db")
    before = listing(tmp_path)
    run = cli(*args)
    one_line_error(run, ExitStatus.FAILED, f"The database {sqlite_file(data_dir)} is a link to ")
    assert str(vault / "n8n-deploy.db") in run.stderr
    assert "db init" in run.stderr and "remove the link" in run.stderr
    assert listing(tmp_path) == before  # nothing was created where it points


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_read_only_commands_on_a_link_to_nothing_give_the_same_advice(
    cli: Cli, data_dir: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    data_dir.mkdir(mode=0o700)
    sqlite_file(data_dir).symlink_to(tmp_path / "gone.db")
    before = listing(tmp_path)
    run = cli(*args)
    assert run.exit_code == ExitStatus.FAILED, run.output
    assert run.stderr.startswith(f"Error: The database {sqlite_file(data_dir)} is a link to ")
    assert len(run.stderr.strip().splitlines()) == 1
    assert listing(tmp_path) == before


def test_a_link_to_an_existing_database_still_works_and_stays_private(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    vault = tmp_path / "vault"
    run = cli("--data-dir", str(vault), "db", "init")
    assert run.exit_code == 0, run.output
    data_dir.mkdir(mode=0o700)
    sqlite_file(data_dir).symlink_to(sqlite_file(vault))
    assert cli("server", "create", "P", "https://n8n.example.com").exit_code == 0
    assert "P" in cli("server", "list", "--no-emoji").stdout
    assert file_mode(sqlite_file(vault)) == 0o600


@pytest.mark.parametrize("via", ["--data-dir", "N8N_DEPLOY_DATA_DIR", "--database-url"])
@pytest.mark.parametrize(
    "args",
    [("db", "init"), ("apikey", "list"), *READ_ONLY, ("db", "downgrade", "0001")],
    ids=" ".join,
)
@pytest.mark.parametrize("below", [False, True], ids=["the folder", "a folder above it"])
def test_a_data_folder_that_is_a_file_is_one_clear_error(
    cli: Cli, tmp_path: Path, via: str, args: tuple[str, ...], below: bool
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    folder = blocker / "sub" if below else blocker
    options: tuple[str, ...] = {
        "--data-dir": ("--data-dir", str(folder)),
        "N8N_DEPLOY_DATA_DIR": (),
        "--database-url": ("--database-url", f"sqlite:///{folder}/x.db"),
    }[via]
    before = listing(tmp_path)
    run = cli(*options, *args, env={"N8N_DEPLOY_DATA_DIR": str(folder)})
    one_line_error(run, ExitStatus.FAILED, f"The folder {folder} for the database ")
    assert f"{blocker if below else 'database'} is a file, not a folder" in run.stderr
    assert "Move that file away" in run.stderr
    assert "db init" not in run.stderr  # the advice of an empty database: it would fail too
    assert listing(tmp_path) == before
