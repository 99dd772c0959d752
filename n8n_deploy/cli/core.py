"""What every command shares: the application state, the error-to-exit-status mapping
(the one place where domain errors become messages and exit statuses), and common options.

Only typer and light modules are imported here; commands import the database layer inside
their bodies, so --help, --version and shell completion stay fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from n8n_deploy.config import AUTO_UPGRADE_ENV, Settings, resolve_settings
from n8n_deploy.errors import ExitStatus, N8nDeployError
from n8n_deploy.output import error_line, note

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from n8n_deploy.db import Database

DEBUG_ENV = "N8N_DEPLOY_DEBUG"


class AppState:
    """Settings from the global options, and the database opened on first use."""

    def __init__(self, data_dir: str | None = None, database_url: str | None = None) -> None:
        self._data_dir = data_dir
        self._database_url = database_url
        self._settings: Settings | None = None
        self._database: Database | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = resolve_settings(self._data_dir, self._database_url)
        return self._settings

    def database(self, *, prepare: bool = True) -> Database:
        """The database, created at the newest revision on first run; exit 3 when its
        schema is behind, ahead of this program, or from n8n-deploy 0.9."""
        if self._database is None:
            from n8n_deploy.db import open_database

            self._database = open_database(self.settings, prepare=prepare)
            migrated = self._database.migration
            if migrated is not None and migrated.before.kind == "behind":
                backup = f"; backup: {migrated.backup}" if migrated.backup else ""
                note(
                    f"Upgraded the database from {migrated.before.revision} to "
                    f"{migrated.after} ({AUTO_UPGRADE_ENV} is set){backup}"
                )
        return self._database

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """One unit of work on the database: all of it is stored, or none of it."""
        with self.database().session(write=write) as session:
            yield session

    def close(self) -> None:
        if self._database is not None:
            self._database.dispose()
            self._database = None


def state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState(root.params.get("data_dir"), root.params.get("database_url"))
        root.call_on_close(root.obj.close)
    return root.obj


def report_error(error: N8nDeployError) -> None:
    _error(error.message, error.hint)


def _error(message: str, hint: str | None = None) -> None:
    """One line on stderr.  Anything shaped like an API key is hidden, whatever its source."""
    from n8n_deploy.keys import redact_keys

    sys.stderr.write(redact_keys(error_line(message, hint)) + "\n")
    sys.stderr.flush()


class RootGroup(TyperGroup):
    """Maps every error raised below it to one line on stderr and an exit status."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except N8nDeployError as error:
            report_error(error)
            raise typer.Exit(int(error.exit_status)) from None
        except (KeyboardInterrupt, typer.Abort):
            sys.stderr.write("\nInterrupted; nothing was changed.\n")
            raise typer.Exit(int(ExitStatus.INTERRUPTED)) from None
        except (typer.Exit, SystemExit):
            raise
        except BrokenPipeError:
            # The reader went away (`n8n-deploy apikey list | head -1`): stop quietly.
            silence_stdout()
            raise typer.Exit(int(ExitStatus.SUCCESS)) from None
        except Exception as exc:  # the last line of defence: never a traceback
            if _is_usage_error(exc):
                _report_usage_error(exc)
                raise typer.Exit(int(getattr(exc, "exit_code", ExitStatus.USAGE))) from None
            if os.environ.get(DEBUG_ENV):
                raise
            database_error = _database_error_message(exc)
            if database_error is not None:
                _error(*database_error)
            else:
                _error(
                    f"unexpected {type(exc).__name__}",
                    f"This is a bug in n8n-deploy; run again with {DEBUG_ENV}=1 "
                    "for details and report it",
                )
            raise typer.Exit(int(ExitStatus.FAILED)) from None


def _is_usage_error(exc: Exception) -> bool:
    # typer vendors click; its ClickException subclasses carry their own exit status (2).
    return any(cls.__name__ == "ClickException" for cls in type(exc).__mro__)


def _report_usage_error(exc: Exception) -> None:
    """Click prints usage, a "Try --help" line and the error; one line says it all."""
    message = str(getattr(exc, "format_message", lambda: str(exc))()).rstrip(".")
    context = getattr(exc, "ctx", None)
    command = context.command_path if context is not None else "n8n-deploy"
    _error(message, f"See '{command} --help'")


def silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # not a real file (tests): nothing more will be written anyway


def _database_error_message(exc: Exception) -> tuple[str, str | None] | None:
    """SQLAlchemy errors, without importing SQLAlchemy: only the driver's own first line
    (statements are printed without parameters: engines use hide_parameters)."""
    if not type(exc).__module__.startswith("sqlalchemy"):
        return None
    original = getattr(exc, "orig", None)
    text = str(original) if original is not None else type(exc).__name__
    first = text.splitlines()[0][:200] if text else type(exc).__name__
    hint = None
    if "locked" in first or "busy" in first:
        hint = "Another n8n-deploy command is using the database; try again in a moment"
    elif "readonly" in first or "read-only" in first:
        hint = "Check the permissions of the data folder and the database file"
    return f"Database error: {first}", hint


# Common options, shared so every command spells them the same way.
NoEmojiOption = Annotated[
    bool, typer.Option("--no-emoji", help="Plain text: no emoji, ASCII table borders.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout and nothing else.")]
UnmaskOption = Annotated[
    bool,
    typer.Option("--unmask", help="Show full API keys (SECURITY WARNING: never in logs or CI)."),
]
ConfirmOption = Annotated[
    bool,
    typer.Option(
        "--confirm",
        "--yes",
        "-y",
        help="Do not ask for confirmation (needed when not at a terminal).",
    ),
]


def stdin_is_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False
