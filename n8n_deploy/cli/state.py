"""The state of one run of the program: the settings resolved from the global options
and the environment (once), and the database, opened on first use.

Only light modules are imported here; the database layer is imported when it is first
needed, so --help, --version and shell completion stay fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from n8n_deploy.base.settings import AUTO_UPGRADE_ENV, Settings, resolve_settings
from n8n_deploy.cli.output import note, warn

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from n8n_deploy.store.engine import Database
    from n8n_deploy.store.reads import Reader


class AppState:
    """Settings from the global options, and the database opened on first use."""

    def __init__(self, data_dir: str | None = None, database_url: str | None = None) -> None:
        self.settings: Settings = resolve_settings(data_dir, database_url)
        self._database: Database | None = None
        self._leftovers_noted = False

    def database(self) -> Database:
        """The database, created at the newest revision on first run; exit 3 when its
        schema is behind, ahead of this program, or from n8n-deploy 0.9."""
        if self._database is None:
            from n8n_deploy.store.lifecycle import open_database

            self._note_leftovers()
            self._database = open_database(self.settings)
            migrated = self._database.migration
            if migrated is not None and migrated.before.kind == "behind":
                backup = f"; backup: {migrated.backup}" if migrated.backup else ""
                note(
                    f"Upgraded the database from {migrated.before.revision} to "
                    f"{migrated.after} ({AUTO_UPGRADE_ENV} is set){backup}"
                )
            for message in self._database.warnings:
                warn(message)
        return self._database

    @contextmanager
    def reading(self) -> Iterator[Reader]:
        """A unit of work that only reads: the read queries.  A SQLite file at the newest
        revision is read with the standard library alone (``store.sqlite_reading``: no
        SQLAlchemy import); any other database is opened as every command opens it."""
        if self._database is None:
            from n8n_deploy.store.sqlite_reading import plain_file, reading_current

            path = plain_file(self.settings.database_url, self.settings.database_path)
            if path is not None:
                self._note_leftovers()
                with reading_current(path) as reader:
                    if reader is not None:
                        yield reader
                        return
        with self.database().reading() as reader:
            yield reader

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """One unit of work on the database: all of it is stored, or none of it."""
        with self.database().session(write=write) as session:
            yield session

    def _note_leftovers(self) -> None:
        if not self._leftovers_noted:
            self._leftovers_noted = True
            note_leftovers(self.settings)

    def close(self) -> None:
        if self._database is not None:
            self._database.dispose()
            self._database = None


def note_leftovers(settings: Settings) -> None:
    """Remove the copies of the database that a killed backup or restore left beside it
    (each holds every key), and say so."""
    path = settings.database_path
    if path is None:
        return
    from n8n_deploy.store.files import remove_leftovers

    for leftover in remove_leftovers(path.parent, path.name):
        note(
            f"Removed {leftover}: a copy of the database left by a backup or restore "
            "that was killed"
        )


def state(ctx: typer.Context) -> AppState:
    """The run's state, made from the root command's options on first use."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState(root.params.get("data_dir"), root.params.get("database_url"))
        root.call_on_close(root.obj.close)
    return root.obj
