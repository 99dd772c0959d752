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
from tests.helpers import Run, sqlite_file

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
