"""Private files and folders for SQLite databases and their backups.

The data folder is created 0700 and every database file (with SQLite's ``-wal`` and
``-shm`` companions) 0600, whatever the umask; a command that fails leaves no new file.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from n8n_deploy.base.errors import DatabaseError, OperationFailed
from n8n_deploy.base.text import shell_word
from n8n_deploy.base.urls import sqlite_url_for

FOLDER_MODE = 0o700
FILE_MODE = 0o600
COMPANIONS = ("-wal", "-shm", "-journal")
#: How long a SQLite connection waits for another process's lock before giving up.
BUSY_TIMEOUT_SECONDS = 15.0


def check_database_place(path: Path) -> None:
    """Refuse, in one line that says how to fix it, a SQLite path no command can use as
    it is: a symbolic link to nothing, or a file where one of its folders belongs.

    Every command asks this first, those that only read as well as those that would create
    the file, so each gives the same advice, and none creates anything.  A dangling link
    is refused rather than followed: it usually means the real database is missing (an
    unmounted volume, a moved file), and SQLite would create an empty one there with the
    umask's mode (0644), its journals too, until the command ends."""
    if path.is_symlink() and not path.exists():
        target = _link_target(path)
        raise DatabaseError(
            f"The database {path} is a link to {target}, which does not exist",
            hint="Put the database back where the link points, create a new one there "
            f"(n8n-deploy --database-url {shell_word(sqlite_url_for(target))} db init), "
            "or remove the link",
        )
    folder = path.parent
    for candidate in (folder, *folder.parents):
        if candidate.is_dir():
            return
        if not os.path.lexists(candidate):
            continue  # missing: created (0700) with the database
        if candidate.is_symlink() and not candidate.exists():
            raise DatabaseError(
                f"The folder {folder} for the database cannot be used: {candidate} is a "
                f"link to {_link_target(candidate)}, which does not exist",
                hint="Create the folder it points to, or remove the link",
            )
        where = "is" if candidate == folder else f"cannot be used: {candidate} is"
        raise DatabaseError(
            f"The folder {folder} for the database {where} a file, not a folder",
            hint="Move that file away, or choose another folder with --data-dir or "
            "N8N_DEPLOY_DATA_DIR (or another database with --database-url)",
        )


def _link_target(link: Path) -> Path:
    return link.parent / os.readlink(link)


def ensure_private_folder(folder: Path) -> None:
    """Create ``folder`` (and missing parents) with mode 0700; leave an existing one alone."""
    if folder.is_dir():
        return
    try:
        folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        os.chmod(folder, FOLDER_MODE)  # mkdir's mode is filtered by the umask
    except OSError as exc:
        raise DatabaseError(
            f"Cannot create the data folder {folder}: {exc.strerror or exc}",
            hint="Choose another folder with --data-dir or N8N_DEPLOY_DATA_DIR",
        ) from None


def ensure_private_file(path: Path) -> None:
    """Create an empty SQLite file with mode 0600 before SQLite does (SQLite would use 0644)."""
    check_database_place(path)
    ensure_private_folder(path.parent)
    try:
        _create_private(path)
    except FileExistsError:
        return
    except OSError as exc:
        raise DatabaseError(f"Cannot create the database {path}: {exc.strerror or exc}") from None


@contextmanager
def removed_if_left_empty(path: Path | None) -> Iterator[None]:
    """Around a block that may create the SQLite file ``path``: when the block fails, a file
    it created that still holds no table is removed, with the folders made for it, so a
    failed command leaves nothing behind.  A file that existed before is never touched."""
    if path is None or path.exists():
        yield
        return
    missing = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    try:
        yield
    except BaseException:
        if _remove_if_empty(path):
            for folder in missing:  # deepest first; a folder someone filled meanwhile stays
                with contextlib.suppress(OSError):
                    folder.rmdir()
        raise


def _remove_if_empty(path: Path) -> bool:
    """Remove ``path`` (and its -wal/-shm) if it holds no table; False if it does, or if
    another process is writing it (it may be creating the schema right now)."""
    if not path.exists():
        return True
    try:
        conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    except sqlite3.Error:
        return False
    removed = False
    try:
        conn.execute("BEGIN IMMEDIATE")  # nobody else is writing while we look and remove
        if conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0:
            path.unlink()
            removed = True
        conn.execute("ROLLBACK")
    except (sqlite3.Error, OSError):
        pass
    finally:
        conn.close()
    if removed:
        for companion in COMPANIONS:
            with contextlib.suppress(FileNotFoundError):
                Path(f"{path}{companion}").unlink()
    return removed


def fix_sqlite_permissions(path: Path) -> None:
    """Take the group's and others' permissions off the database and its -wal/-shm
    companions (0600 for a file SQLite made 0644).  Permissions are only ever taken away:
    a file its owner made read-only (0400) stays read-only.  A file this user may read
    but not change (a team member's, an immutable file, a read-only mount) is left as it
    is: reading it must still work."""
    for candidate in (path, *(Path(f"{path}{suffix}") for suffix in COMPANIONS)):
        try:
            mode = stat.S_IMODE(candidate.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            try:
                os.chmod(candidate, mode & ~0o077)
            except OSError:
                continue


def new_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600; refuse (OperationFailed) if it exists."""
    try:
        _create_private(path)
    except OSError as exc:
        raise OperationFailed(f"Cannot write {path}: {exc.strerror or exc}") from None


def _create_private(path: Path) -> None:
    """Create ``path`` empty, mode 0600 whatever the umask; FileExistsError if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def remove_with_companions(path: Path) -> None:
    """Remove ``path`` and SQLite's ``-wal``/``-shm``/``-journal`` files beside it."""
    for candidate in (path, *(Path(f"{path}{suffix}") for suffix in COMPANIONS)):
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()


#: The staging copies of a backup being written and of a restore being checked:
#: ``.<name>.<process id>.partial`` beside the backup, ``.<name>.<process id>.restore``
#: beside the database.
PARTIAL_SUFFIX = ".partial"
RESTORE_SUFFIX = ".restore"
_STAGING = re.compile(r"^\.(?P<name>.+)\.(?P<pid>[0-9]+)(?:\.partial|\.restore)$")


def remove_leftovers(folder: Path, name: str) -> list[Path]:
    """Remove the staging copies in ``folder`` that a backup or restore of the file
    ``name`` (a database, or a backup named after it) left when it was killed: those of
    processes that are no longer running.  Returns what was removed."""
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    removed = []
    for path in entries:
        match = _STAGING.match(path.name)
        if match is None or not match["name"].startswith(name):
            continue
        if _running(int(match["pid"])):
            continue  # another command is writing it right now
        remove_with_companions(path)
        removed.append(path)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process, or not ours to judge: leave its file
    return True
