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


@pytest.fixture(params=["in a command", "from Python"])
def ctrl_c_handler(request: pytest.FixtureRequest) -> Iterator[object]:
    """Ctrl-C as the CLI handles it (``interrupts.start``), or Python's own handler (the
    checks used as a library)."""
    from n8n_deploy.base import interrupts

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    if request.param == "in a command":
        interrupts.start()
    try:
        yield signal.getsignal(signal.SIGINT)
    finally:
        if request.param == "in a command":
            interrupts.finish()
        signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_during_the_checks_never_cuts_the_event_loops_own_work_midway(
    ctrl_c_handler: object,
) -> None:
    """The signal trials hung in ``apikey test --all``: the KeyboardInterrupt landed in the
    event loop's own bookkeeping and lost the wake-up of a check, whose clean-up then
    waited for it for ever.  Now a Ctrl-C cancels the checks inside the loop: the callback
    it arrived in runs to its end, the checks unwind through their own clean-up, and
    then the command stops."""
    import asyncio

    from n8n_deploy.n8n.probe import run_sync

    happened: list[str] = []

    async def checks() -> str:
        loop = asyncio.get_running_loop()
        woken = loop.create_future()

        def wake() -> None:  # a callback of the loop's own, as a socket's read is
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs here, inside the callback
                pass
            happened.append("the callback ran to its end")
            woken.set_result("woken")

        loop.call_soon(wake)
        try:
            await woken
            await asyncio.sleep(30)  # the cancellation comes first
            return "finished"
        finally:
            happened.append("the checks cleaned up")

    with pytest.raises(KeyboardInterrupt):
        run_sync(checks())
    assert happened == ["the callback ran to its end", "the checks cleaned up"]
    assert signal.getsignal(signal.SIGINT) is ctrl_c_handler


def test_a_second_ctrl_c_stops_checks_whose_clean_up_does_not_end(ctrl_c_handler: object) -> None:
    import asyncio

    from n8n_deploy.n8n.probe import run_sync

    async def stubborn() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:  # a clean-up that does not end by itself
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.sleep(30)

    with pytest.raises(KeyboardInterrupt):
        run_sync(stubborn())
    assert signal.getsignal(signal.SIGINT) is ctrl_c_handler


def test_checks_that_finish_leave_the_ctrl_c_handler_as_they_found_it(
    ctrl_c_handler: object,
) -> None:
    import asyncio

    from n8n_deploy.n8n.probe import run_sync

    async def checks() -> str:
        await asyncio.sleep(0)
        return "finished"

    assert run_sync(checks()) == "finished"
    assert signal.getsignal(signal.SIGINT) is ctrl_c_handler


def test_a_ctrl_c_during_the_checks_warns_of_no_work_it_stopped_before_it_began() -> None:
    """anyio starts each connection attempt in a task; one cancelled before it first ran
    leaves its coroutine never awaited, and Python warned of it on stderr, in a command
    (used as a library, Python's warnings are left as they are)."""
    import asyncio

    async def attempt() -> None:
        await asyncio.sleep(0)

    async def started(coroutine: Any) -> None:  # as anyio's task handle runs a coroutine
        await coroutine

    async def checks() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the handler runs here: the cancellation is on its way
            pass
        asyncio.get_running_loop().create_task(started(attempt()))
        await asyncio.sleep(30)

    assert _warnings_of_an_interrupted_command(checks()) == []


def test_a_ctrl_c_just_before_the_checks_began_warns_of_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The signal lands as the event loop is being set up, before it takes Ctrl-C over:
    the checks' coroutine was made but never run, and Python warned of it on stderr."""
    import asyncio
    import gc
    import warnings

    from n8n_deploy.base import interrupts
    from n8n_deploy.n8n.probe import run_sync

    def interrupted(cancel: object) -> Any:
        raise KeyboardInterrupt

    async def checks() -> None:
        await asyncio.sleep(0)

    monkeypatch.setattr(interrupts, "as_cancellation", interrupted)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(KeyboardInterrupt):
            run_sync(checks())
        gc.collect()
    assert [str(w.message) for w in caught] == []


def test_a_signal_while_the_event_loop_is_made_leaves_no_loop_open_and_nothing_said(
    monkeypatch: pytest.MonkeyPatch, ctrl_c_handler: object
) -> None:
    """A SIGTERM 0.2 s into `apikey test --all` landed inside asyncio.new_event_loop: the
    loop half made failed in its finaliser ("Exception ignored in BaseEventLoop.__del__",
    a traceback) and the checks' coroutine was never awaited, both printed after the
    interrupt's last line.  The loop is now made (and closed) with signals held."""
    import asyncio

    made: list[asyncio.AbstractEventLoop] = []
    unraisable: list[object] = []
    real_new_event_loop = asyncio.new_event_loop

    def new_event_loop() -> asyncio.AbstractEventLoop:
        made.append(real_new_event_loop())
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the handler runs here, while the loop is being made
            pass
        return made[-1]

    async def checks() -> str:
        await asyncio.sleep(0)
        return "finished"

    monkeypatch.setattr(asyncio, "new_event_loop", new_event_loop)
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    assert _warnings_of_an_interrupted_command(checks()) == []
    assert unraisable == []
    assert made and made[0].is_closed()


@pytest.mark.e2e
def test_run_as_python_m_an_interrupt_handled_on_the_way_does_not_end_it_by_sigint(
    tmp_path: Path,
) -> None:
    """`python -m n8n_deploy` interrupted while typer was evaluating an annotation printed
    its line and gave status 130, then Python killed the process with SIGINT (-2 to a
    parent): the interpreter remembers a KeyboardInterrupt that passed through an eval of
    a string, even one the program handled.  Here the interrupt comes out of such an eval
    as start-up begins."""
    (tmp_path / "interrupted_in_an_eval.py").write_text(
        "import runpy, sys\n"
        "from n8n_deploy.base import interrupts\n"
        "guard = interrupts.guard_process\n"
        "def guard_then_interrupted():\n"
        "    guard()\n"
        "    eval('(_ for _ in ()).throw(KeyboardInterrupt())')\n"
        "interrupts.guard_process = guard_then_interrupted\n"
        "sys.argv = ['n8n-deploy', '--version']\n"
        "runpy.run_module('n8n_deploy', run_name='__main__', alter_sys=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-m", "interrupted_in_an_eval"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == int(ExitStatus.INTERRUPTED), done.stderr
    assert done.stderr.strip() == "Interrupted; nothing was changed."


def test_an_upgrade_interrupted_after_a_revision_says_whether_the_revision_is_kept(
    cli: Cli, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite and PostgreSQL roll the whole upgrade back; MariaDB/MySQL commit each
    revision as it is applied, so an interrupt after one must not say nothing changed."""
    from n8n_deploy.cli.root import INTERRUPTED, INTERRUPTED_AFTER_SAVING
    from n8n_deploy.store import migrations

    assert cli("db", "init").exit_code == ExitStatus.SUCCESS
    assert cli("db", "downgrade", "0005", "--confirm", "--no-backup").exit_code == 0
    recorder = migrations._step_recorder

    def interrupted_after_the_first(steps: list[Any], **how: Any) -> Callable[..., None]:
        record = recorder(steps, **how)

        def record_then_interrupt(**kwargs: Any) -> None:
            record(**kwargs)
            raise KeyboardInterrupt  # as a signal right after revision 0006 is applied

        return record_then_interrupt

    monkeypatch.setattr(migrations, "_step_recorder", interrupted_after_the_first)
    run = cli("db", "upgrade", "--no-backup")
    assert run.exit_code == ExitStatus.INTERRUPTED, run.output
    monkeypatch.setattr(migrations, "_step_recorder", recorder)
    if engine.split("://")[0].split("+")[0] in ("mysql", "mariadb"):
        # 0006's change was committed with it (its record of the revision may not be).
        assert run.stderr.strip().splitlines()[-1] == INTERRUPTED_AFTER_SAVING
    else:
        assert run.stderr.strip().splitlines()[-1] == INTERRUPTED
        assert "Revision: 0005 " in cli("db", "current").stdout
    # Either way the next upgrade finishes the work.
    assert cli("db", "upgrade", "--no-backup").exit_code == ExitStatus.SUCCESS
    assert cli("db", "check").exit_code == ExitStatus.SUCCESS


def _warnings_of_an_interrupted_command(checks: Any) -> list[str]:
    """What Python warned of while ``run_sync(checks)`` ran in a command and was stopped
    by an interrupt (after a collection, where unawaited coroutines are reported)."""
    import gc
    import warnings

    from n8n_deploy.base import interrupts
    from n8n_deploy.n8n.probe import run_sync

    interrupts.start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(KeyboardInterrupt):
                run_sync(checks)
            gc.collect()
    finally:
        interrupts.finish()
    return [str(w.message) for w in caught]
