"""The root command group: the one place where errors become messages and exit statuses.

Every ``N8nDeployError`` raised below it becomes one line on stderr and the exit status
its type carries (``n8n_deploy.base.status``); a usage error of the argument parser, a
closed pipe, Ctrl-C and an unexpected exception each have their own, fixed treatment.
Nothing reaches the user as a traceback unless N8N_DEPLOY_DEBUG asks for it.
"""

from __future__ import annotations

import errno
import itertools
import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from n8n_deploy.base import interrupts
from n8n_deploy.base.errors import N8nDeployError, database_error_hint
from n8n_deploy.base.settings import DEBUG_ENV, resolve_settings
from n8n_deploy.base.status import ExitStatus
from n8n_deploy.base.text import error_text, sanitize
from n8n_deploy.cli.json_writer import json_printed, print_json
from n8n_deploy.cli.output import error_line
from n8n_deploy.cli.state import AppState


def report_error(error: N8nDeployError) -> None:
    """The one line on stderr for ``error``."""
    _error(error.message, error.hint)


def _error(message: str, hint: str | None = None) -> None:
    """One line on stderr, sanitised: keys, URL passwords and control characters never
    shown, whatever their source."""
    sys.stderr.write(sanitize(error_line(message, hint)) + "\n")
    sys.stderr.flush()


class RootGroup(TyperGroup):
    """Maps every error raised below it to one line on stderr and an exit status."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        _Interrupt.reported = False
        try:
            return super().main(*args, **kwargs)
        except SystemExit as exc:
            # typer turns a Ctrl-C outside invoke() (parsing the arguments, building the
            # context) into exit 130 without a word: say it, as invoke() does.
            if exc.code == ExitStatus.INTERRUPTED and not _Interrupt.reported:
                _report_interrupt()
            raise

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # The root's own options are parsed before invoke(): a mistake there (an unknown
        # option before the group) gets the same one line as one inside a command.
        try:
            return super().parse_args(ctx, args)
        except Exception as exc:
            if not _is_usage_error(exc) or type(exc).__name__ == "NoArgsIsHelpError":
                raise  # no arguments at all: click shows the help, as asked
            _report_usage_error(exc)
            raise typer.Exit(int(getattr(exc, "exit_code", ExitStatus.USAGE))) from None

    def invoke(self, ctx: Any) -> Any:
        interrupts.start()
        try:
            result = self._invoke(ctx)
        finally:
            held = interrupts.finish()
        if held:
            _note_held_interrupt()
        return result

    def _invoke(self, ctx: Any) -> Any:
        json_printed(reset=True)
        wants_json = _wants_json([*getattr(ctx, "_protected_args", []), *ctx.args])
        try:
            return super().invoke(ctx)
        except N8nDeployError as error:
            if interrupts.raised_by_an_interrupt(error):
                raise _interrupted() from None
            report_error(error)
            if wants_json:
                _json_error(error.message, error.hint, status=int(error.exit_status))
            raise typer.Exit(int(error.exit_status)) from None
        except (KeyboardInterrupt, typer.Abort):
            raise _interrupted() from None
        except (typer.Exit, SystemExit):
            raise
        except BrokenPipeError:
            # The reader went away (`n8n-deploy apikey list | head -1`): stop quietly.
            silence_stdout()
            raise typer.Exit(int(ExitStatus.SUCCESS)) from None
        except Exception as exc:  # the last line of defence: never a traceback
            if interrupts.raised_by_an_interrupt(exc):
                raise _interrupted() from None
            if type(exc).__name__ == "NoArgsIsHelpError":  # `n8n-deploy db`: its help,
                exc.show()  # type: ignore[attr-defined]  # as click shows the root's
                raise typer.Exit(int(getattr(exc, "exit_code", ExitStatus.USAGE))) from None
            if _is_usage_error(exc):
                _report_usage_error(exc)
                status = int(getattr(exc, "exit_code", ExitStatus.USAGE))
                if wants_json:
                    _json_error(*_usage_error(exc), status=status)
                raise typer.Exit(status) from None
            if _debug(ctx):
                raise  # the program's excepthook prints it sanitised (cli.main)
            # A failure after a commit must not read as if nothing had happened.
            kept = ""
            if interrupts.changes_saved():
                kept = " (a change was saved before it: it is kept)"
            database_error = _database_error_message(exc)
            if database_error is not None:
                message, hint = database_error
                _error(message + kept, hint)
            elif isinstance(exc, OSError) and report_no_room(exc, kept):
                pass
            else:
                _error(
                    f"unexpected {type(exc).__name__}{kept}",
                    f"This is a bug in n8n-deploy; run again with {DEBUG_ENV}=1 "
                    "for details and report it",
                )
            raise typer.Exit(int(ExitStatus.FAILED)) from None


#: A full disk or quota where the output goes (``> /dev/full``): said, not called a bug.
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def report_no_room(exc: OSError, kept: str = "") -> bool:
    """Say (one line) that the output met a full disk, when ``exc`` is that; stdout then
    points nowhere, so that what could not be written is not tried again at exit."""
    if exc.errno not in NO_ROOM:
        return False
    silence_stdout()
    _error(
        f"Cannot write the output: {exc.strerror}{kept}",
        "Free some space where the output goes, or send it elsewhere",
    )
    return True


#: The line a Ctrl-C (or SIGTERM) leaves, before any change was saved, and after one was.
class _Interrupt:
    reported = False  # the line of an interrupted command was written


def _interrupted() -> typer.Exit:
    """The last line of an interrupted command said; the exit that ends it (130)."""
    _report_interrupt()
    return typer.Exit(int(ExitStatus.INTERRUPTED))


def _report_interrupt() -> None:
    """The last line of an interrupted command: whether a change was saved."""
    _Interrupt.reported = True
    if interrupts.changes_saved():
        sys.stderr.write(f"\n{INTERRUPTED_AFTER_SAVING}\n")
    else:
        sys.stderr.write(f"\n{INTERRUPTED}\n")


INTERRUPTED = "Interrupted; nothing was changed."
INTERRUPTED_AFTER_SAVING = (
    "Interrupted after a change was saved: it is kept. Check the result (e.g. with "
    "'n8n-deploy apikey list') before running the command again."
)


def _note_held_interrupt() -> None:
    """A signal that arrived while a change was being saved waited for the command to end:
    its output and exit status are those of the finished command; say why it ignored it."""
    sys.stderr.write(
        "Interrupt received while the change was being saved: the command finished first; "
        "its exit status says how it ended.\n"
    )
    sys.stderr.flush()


def _wants_json(args: list[str]) -> bool:
    """Whether the command line asks for JSON (--json, or --format json)."""
    if "--json" in args or "--format=json" in args:
        return True
    return any(a == "--format" and b == "json" for a, b in itertools.pairwise(args))


def _json_error(message: str, hint: str | None, *, status: int) -> None:
    """With --json a failure is a JSON document on stdout too (unless the command printed
    one already): {"error", "exit_status", "hint"}.  The line on stderr stays."""
    if json_printed():
        return
    print_json(
        {
            "error": message,
            "exit_status": status,
            "hint": hint or None,
        }
    )


def _debug(ctx: Any) -> bool:
    obj = getattr(ctx, "obj", None)
    settings = obj.settings if isinstance(obj, AppState) else resolve_settings()
    return settings.debug


def _is_usage_error(exc: Exception) -> bool:
    # typer vendors click; its ClickException subclasses carry their own exit status (2).
    return any(cls.__name__ == "ClickException" for cls in type(exc).__mro__)


def _report_usage_error(exc: Exception) -> None:
    """Click prints usage, a "Try --help" line and the error; one line says it all."""
    _error(*_usage_error(exc))


def _usage_error(exc: Exception) -> tuple[str, str]:
    """A usage error's message and hint, as said on stderr and in --json's error."""
    message = str(getattr(exc, "format_message", lambda: str(exc))()).rstrip(".")
    context = getattr(exc, "ctx", None)
    command = context.command_path if context is not None else "n8n-deploy"
    for option in GLOBAL_OPTIONS:
        if message.startswith(f"No such option: {option}"):
            rest = command.removeprefix("n8n-deploy").strip()
            return (
                message,
                f"{option} is a global option: it goes before the command group, e.g. "
                f"n8n-deploy {option} VALUE {rest}",
            )
    return message, f"See '{command} --help'"


#: The root's own options, which a user may type after the group by mistake.
GLOBAL_OPTIONS = ("--data-dir", "--database-url")


def silence_stdout() -> None:
    """Point stdout at /dev/null: the reader left, and nothing more can reach it."""
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
    first = error_text(exc)
    return f"Database error: {first}", database_error_hint(first)
