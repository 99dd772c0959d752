"""The ``n8n-deploy`` command line: argument parsing and presentation only.

Every command calls the use cases (``n8n_deploy.apikeys``), the repositories and the
schema tools (``n8n_deploy.store``); errors are mapped to exit statuses in one place,
``cli.root.RootGroup``.
"""

from __future__ import annotations

import gc
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from n8n_deploy.cli.app import app

__all__ = ["app", "main"]

#: Exit status and line of a Ctrl-C that arrives before any command runs (while Python
#: imports the program): n8n-deploy.base.status and cli.root say the same, but importing
#: them is what is being interrupted.
_INTERRUPTED_STATUS = 130


def __getattr__(name: str) -> Any:
    if name == "app":  # imported when first used, so that a Ctrl-C at start-up is caught
        return _load_app()
    raise AttributeError(name)


def _load_app() -> Any:
    from n8n_deploy.cli.app import app

    # Importing the submodule ``app`` bound its name here to the module: the Typer
    # application is what ``from n8n_deploy.cli import app`` means.
    globals()["app"] = app
    return app


#: What a signal that arrives as the command ends leaves (it did not stop the command).
ENDING_NOTE = (
    "Interrupt received as the command was ending: it had finished; its output and exit "
    "status say how it ended.\n"
)


def _sanitised_traceback(kind: type[BaseException], value: BaseException, tb: Any) -> None:
    """The traceback N8N_DEPLOY_DEBUG lets through, sanitised like everything printed: a
    stored value it quotes may be a key."""
    import traceback

    from n8n_deploy.base.text import sanitize

    text = "".join(traceback.format_exception(kind, value, tb))
    sys.stderr.write(sanitize(text, newlines=True))


#: How many new objects the cycle collector lets pass before it runs (Python's default is
#: 700): a run lasts a moment, and what it makes by the thousand (the rows of a listing of
#: 10,000 keys, the modules it imports) is not cyclic garbage; the collector ran every few
#: hundred of them, for a tenth of the listing's time.  Cycles are still collected.
GC_THRESHOLD = (100_000, 20, 20)


def _no_room(exc: OSError) -> None:
    """A full disk or quota where stdout goes (``> /dev/full``) outside a command (typer's
    own output, the last flush): said as the error mapping says it, exit 1."""
    from n8n_deploy.base.status import ExitStatus
    from n8n_deploy.cli.root import report_no_room

    if report_no_room(exc):
        sys.exit(int(ExitStatus.FAILED))


def main() -> None:
    gc.set_threshold(*GC_THRESHOLD)
    sys.excepthook = _sanitised_traceback
    ended = False  # the command ran to its end: not interrupted, nothing unexpected
    try:
        from n8n_deploy.base import interrupts

        interrupts.guard_process()
        application = _load_app()
        from n8n_deploy.cli.root import silence_stdout

        try:
            application(prog_name="n8n-deploy")
        except OSError as exc:  # raised before a command ran (`--version > /dev/full`)
            _no_room(exc)
            raise
        finally:
            try:
                sys.stdout.flush()
            except BrokenPipeError:  # the reader left early (`... | head -1`): not an error
                silence_stdout()
            except OSError as exc:  # what was buffered meets a full disk
                _no_room(exc)
                raise
    except KeyboardInterrupt:
        # Before the root command runs (imports, argument parsing): nothing was touched.
        sys.stderr.write("\nInterrupted; nothing was changed.\n")
        sys.exit(_INTERRUPTED_STATUS)
    except SystemExit as exit_:
        ended = exit_.code != _INTERRUPTED_STATUS
        raise
    finally:
        guard = sys.modules.get("n8n_deploy.base.interrupts")
        if guard is not None and guard.ending():  # Python's exit is not interrupted
            sys.stderr.write(ENDING_NOTE)
        # Python's exit ends in collections that go through every object left, the modules
        # imported included: 85 ms after `apikey test --all` (SQLAlchemy and httpx loaded),
        # 12 ms after a 20-key listing.  After a command that ran to its end nothing left
        # needs collecting (files are closed, the database disposed, the process's end
        # frees the memory), and frozen objects are skipped.  Not after an interrupted
        # one: a connection a signal cut off may still be open, in a cycle, and only its
        # collection closes it, so that SQLite rolls back and removes its -journal.
        if ended:
            gc.freeze()
