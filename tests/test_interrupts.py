"""Ctrl-C, SIGTERM and a process killed part-way: the exit status and the last line say
what happened, no traceback, nothing left behind (issue #15, defects 6 and 7)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from n8n_deploy.base.status import ExitStatus
from n8n_deploy.store.engine import Database
from tests.helpers import (
    INTERRUPTED_LINE,
    Run,
    add_key,
    add_server,
    key_names,
    make_jwt,
    script_env,
)

Cli = Callable[..., Run]


@pytest.fixture
def signal_after_commit(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], list[int]]]:
    """The race the signal trials hit: the signal arrives the moment the first commit of a
    change returns (a real signal, sent to this process, on a real database)."""
    commit = Session.commit
    wrote: set[int] = set()

    def flushed(session: Session, context: Any) -> None:
        wrote.add(id(session))

    def arm(signum: int) -> list[int]:
        sent: list[int] = []

        def commit_then_signal(self: Session) -> None:
            commit(self)
            if id(self) in wrote and not sent:
                sent.append(signum)
                os.kill(os.getpid(), signum)

        monkeypatch.setattr(Session, "commit", commit_then_signal)
        return sent

    event.listen(Session, "after_flush", flushed)
    yield arm
    event.remove(Session, "after_flush", flushed)


@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_after_the_commit_never_says_nothing_was_changed(
    cli: Cli, database: Database, signal_after_commit: Callable[[int], list[int]], signum: int
) -> None:
    """#15 defect 6: exit 130 "nothing was changed" although the key was stored."""
    add_server(database, "Production", "https://n8n.example.com")
    sent = signal_after_commit(signum)
    run = cli("apikey", "add", "-", "--name", "prod_key", input=make_jwt() + "\n")
    assert sent
    assert "nothing was changed" not in run.output
    assert "Traceback" not in run.output
    assert key_names(database) == ["prod_key"]
    # What happened: the key is stored, the command finished, and says so.
    assert run.exit_code == ExitStatus.SUCCESS, run.output
    assert "API key 'prod_key' added" in run.stdout
    assert "Interrupt received while the change was being saved" in run.stderr


@pytest.mark.usefixtures("engine")
def test_a_signal_after_a_rotation_is_committed_reports_the_rotation(
    cli: Cli, database: Database, signal_after_commit: Callable[[int], list[int]]
) -> None:
    import httpx
    import respx

    add_server(database, "Production", "https://n8n.example.com")
    add_key(database, "old", make_jwt(sub="old"), ["Production"])
    new = make_jwt(sub="new")
    with respx.mock() as mock:
        mock.get("https://n8n.example.com/api/v1/workflows?limit=1").mock(
            return_value=httpx.Response(200, json={"data": [], "nextCursor": None})
        )
        sent = signal_after_commit(signal.SIGINT)
        run = cli("apikey", "rotate", "old", "-", "--name", "new", input=new + "\n")
    assert sent
    assert run.exit_code == ExitStatus.SUCCESS, run.output
    assert "Rotated" in run.stdout
    assert "nothing was changed" not in run.output
    assert sorted(key_names(database)) == ["new", "old"]


@pytest.mark.usefixtures("engine")
def test_a_signal_before_anything_is_saved_still_says_nothing_was_changed(
    cli: Cli, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted_flush(self: Session, *args: Any) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(Session, "flush", interrupted_flush)
    run = cli("apikey", "add", "-", "--name", "prod_key", input=make_jwt() + "\n")
    assert run.exit_code == ExitStatus.INTERRUPTED, run.output
    assert run.stderr.strip() == INTERRUPTED_LINE
    monkeypatch.undo()
    assert key_names(database) == []


@pytest.mark.e2e
@pytest.mark.parametrize("module", ["typer", "n8n_deploy.cli.app", "n8n_deploy.cli.root"])
def test_ctrl_c_during_start_up_prints_one_line_and_no_traceback(
    module: str, data_dir: Path
) -> None:
    """#15 defect 6: a Ctrl-C while Python imports the program printed a traceback. The
    interrupt is raised when ``module`` is first imported, as a real Ctrl-C would be."""
    code = f"""
import sys
class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            raise KeyboardInterrupt
        return None
sys.meta_path.insert(0, Interrupt())
sys.argv = ["n8n-deploy", "apikey", "list"]
from n8n_deploy.cli import main
main()
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=script_env(data_dir),
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == ExitStatus.INTERRUPTED, result.stderr
    assert result.stderr.strip() == INTERRUPTED_LINE
    assert not data_dir.exists()


def test_a_signal_inside_a_callback_that_would_swallow_it_comes_again_outside() -> None:
    """A signal trial: SIGTERM landed in importlib's module-lock callback (``cb``), where
    Python prints "Exception ignored in" with a traceback and loses the interrupt."""
    import time

    from n8n_deploy.base import interrupts

    def cb() -> str:  # named as importlib's callback is
        os.kill(os.getpid(), signal.SIGTERM)
        return "the callback ran to its end"

    interrupts.start()
    try:
        try:
            ran = cb()
        except KeyboardInterrupt:  # what Python would swallow, printing a traceback
            ran = "interrupted inside the callback"
        assert ran == "the callback ran to its end"
        with pytest.raises(KeyboardInterrupt):
            for _ in range(1000):  # a bound, not a timing: the signal comes again soon
                time.sleep(0.01)
    finally:
        interrupts.finish()


def test_a_signal_that_another_librarys_callback_swallows_comes_again_outside() -> None:
    """A signal trial: SIGINT landed in SQLAlchemy's weakref callback ``_collection_gced``
    during db upgrade; Python swallowed the KeyboardInterrupt there, printing "Exception
    ignored in" and a traceback, and the command ran on.  Now it comes again, outside,
    and nothing is printed."""
    import sys
    import time
    import weakref

    from n8n_deploy.base import interrupts

    class Collection:
        pass

    reported: list[object] = []

    def _collection_gced(ref: object) -> None:  # another library's weakref callback
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100):  # the handler runs here, inside the callback
            pass

    hook = sys.unraisablehook
    sys.unraisablehook = reported.append  # what Python would report (print)
    interrupts.start()
    try:
        collection = Collection()
        ref = weakref.ref(collection, _collection_gced)
        with pytest.raises(KeyboardInterrupt):
            del collection  # the callback runs, and swallows the first KeyboardInterrupt
            for _ in range(1000):  # a bound, not a timing: the signal comes again soon
                time.sleep(0.01)
        assert ref() is None
    finally:
        interrupts.finish()
        restored = sys.unraisablehook
        sys.unraisablehook = hook
    assert reported == []  # no "Exception ignored in", no traceback
    assert restored == reported.append  # the hook the command found is back


def test_a_ctrl_c_while_the_arguments_are_parsed_says_so_in_one_line(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # typer turns a KeyboardInterrupt outside the command itself into a silent exit 130.
    from n8n_deploy.cli.root import RootGroup

    def interrupted(*_: Any, **__: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(RootGroup, "make_context", interrupted)
    result = cli("db", "restore", "backup.db", "--confirm")
    assert result.exit_code == ExitStatus.INTERRUPTED
    assert result.stderr.strip() == INTERRUPTED_LINE
    assert result.stdout == ""
