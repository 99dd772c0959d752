"""Ctrl-C and SIGTERM told apart by what they interrupt: before a change is saved, the
command stops and nothing was changed; from the moment a change is being saved, the signal
waits until the command has finished (what remains is printing what was done), so the exit
status and the last line say what happened, never "nothing was changed" after a commit.

The store wraps each commit in :func:`saving`; the root command calls :func:`start` and
:func:`finish` around every command; an event loop (the key checks) runs inside
:func:`as_cancellation`, where a signal cancels its work instead of interrupting it.
Signals are only handled in the main thread (Python delivers them there); elsewhere
these functions only keep the record.

In the program's own process (the console script, :func:`guard_process`) SIGTERM stops
start-up as Ctrl-C does, and once a command has finished a signal no longer changes how
the process ends: closing the database and Python's own exit are not interrupted, so the
exit status is the command's, never that of a signal arriving as it ends.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

#: The signals that end a command: Ctrl-C, and what `kill` and service managers send.
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Run:
    active = False  # start() was called: a command of the CLI is running
    saved = False  # a change of this run was saved (committed)
    deferring = False  # signals are being held until the command ends
    pending: int | None = None  # a signal that arrived while deferring
    raised: int | None = None  # the signal _raise last turned into a KeyboardInterrupt
    unraisable_before: Any = sys.unraisablehook
    previous: dict[int, Any] = {}
    process = False  # guard_process() was called: this is the program's own process


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


#: Where Python swallows an exception, printing "Exception ignored in" and a traceback:
#: weakref callbacks (importlib's module-lock ``cb``, WeakSet's ``_remove``,
#: WeakValueDictionary's ``remove``) and finalisers.  A function of the same name
#: elsewhere only has its interrupt delivered REDELIVER_SECONDS later.
_SWALLOWING = frozenset({"cb", "_remove", "remove", "__del__"})
#: How soon a signal that arrived in such a place is delivered again.
REDELIVER_SECONDS = 0.02


def _raise(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C and SIGTERM stop the command with a KeyboardInterrupt, unless the signal
    arrived inside a callback that would swallow it (with a traceback): then it is sent
    again in a moment, from outside."""
    if frame is not None and frame.f_code.co_name in _SWALLOWING:
        _redeliver(signum)
        return
    _Run.raised = signum
    raise KeyboardInterrupt


def _redeliver(signum: int) -> None:
    timer = threading.Timer(REDELIVER_SECONDS, os.kill, (os.getpid(), signum))
    timer.daemon = True
    timer.start()


def _unraisable(unraisable: Any) -> None:
    """``sys.unraisablehook`` while a command runs: a KeyboardInterrupt of ``_raise``
    that Python swallowed all the same (it landed in another library's weakref callback
    or finaliser, such as SQLAlchemy's ``_collection_gced``) is sent again in a moment,
    from outside, and no traceback is printed.  Anything else is reported as before."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and _Run.raised is not None:
        _redeliver(_Run.raised)
        return
    _Run.unraisable_before(unraisable)


def _catch_swallowed() -> None:
    if sys.unraisablehook is not _unraisable:
        _Run.unraisable_before = sys.unraisablehook
        sys.unraisablehook = _unraisable


def _hold(signum: int, frame: FrameType | None) -> None:
    _Run.pending = signum


def start() -> None:
    """At the start of a command: nothing saved yet, SIGTERM stops it as Ctrl-C does (so
    the same clean-up runs and the same line is printed)."""
    _Run.active = True
    _Run.saved = False
    _Run.deferring = False
    _Run.pending = None
    _Run.raised = None
    if _main_thread():
        _Run.previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
        signal.signal(signal.SIGINT, _raise)
        signal.signal(signal.SIGTERM, _raise)
        _catch_swallowed()


def guard_process() -> None:
    """First thing in the program's own process: SIGTERM stops start-up as Ctrl-C does
    (one line, exit 130), and :func:`finish` holds signals until the process ends."""
    if not _main_thread():
        return
    _Run.process = True
    signal.signal(signal.SIGINT, _raise)
    signal.signal(signal.SIGTERM, _raise)
    _catch_swallowed()


def finish() -> bool:
    """At the end of a command: the signal handlers it found are back (in the program's
    own process: signals are held until it ends, see :func:`ending`).  Whether a signal
    arrived while it was held (after a change was saved)."""
    if _main_thread():
        for sig, handler in _Run.previous.items():
            signal.signal(sig, _hold if _Run.process else handler)
        _Run.previous = {}
        if not _Run.process and sys.unraisablehook is _unraisable:
            sys.unraisablehook = _Run.unraisable_before
    _Run.active = False
    _Run.raised = None
    _Run.deferring = False
    held = _Run.pending is not None
    _Run.pending = None
    return held


def ending() -> bool:
    """The last thing in the program's own process: signals are ignored from here on
    (Python's exit would otherwise die of one, with the status of a signal).  Whether one
    arrived after the command had finished."""
    if _main_thread():
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
    held = _Run.pending is not None
    _Run.pending = None
    return held


def in_command() -> bool:
    """Whether a command of the CLI is running (between :func:`start` and :func:`finish`)."""
    return _Run.active


def note_saved() -> None:
    """A change of this command was saved outside :func:`saving`: a schema revision that
    MariaDB/MySQL committed as it was applied (their DDL cannot be rolled back).  An
    interrupt from here on says the change is kept."""
    _Run.saved = _Run.saved or _Run.active


def raised_by_an_interrupt(error: BaseException) -> bool:
    """Whether ``error`` was raised while a Ctrl-C or SIGTERM was being handled: a
    library's clean-up after the interrupt that failed in turn (Alembic's batch rebuild
    drops its new table on the connection SQLAlchemy invalidated on the interrupt:
    "Can't reconnect until invalid transaction is rolled back").  Such an error is the
    interrupt's, and is reported as the interrupt."""
    seen: set[int] = set()
    found: BaseException | None = error.__context__
    while found is not None and id(found) not in seen:
        if isinstance(found, KeyboardInterrupt):
            return True
        seen.add(id(found))
        found = found.__context__
    return False


def changes_saved() -> bool:
    """Whether this command has saved a change already."""
    return _Run.saved


@contextmanager
def saving(*, hold: bool = True) -> Iterator[None]:
    """Around a commit.  A signal arriving from here on waits for the end of the command
    once the commit has succeeded (``hold``: what follows is printing what was done);
    when the commit fails, one that arrived meanwhile stops the command as usual (nothing
    was saved).  Without ``hold`` (a schema migration, after which a long command may
    follow), and outside a command (the Python API), signals wait only for the commit
    itself; one that arrived meanwhile stops the command right after it."""
    if not _Run.active or not hold:
        with held():
            yield
            _Run.saved = _Run.saved or _Run.active
        return
    deferring_before = _Run.deferring
    if _main_thread() and not deferring_before:
        for sig in SIGNALS:
            signal.signal(sig, _hold)
        _Run.deferring = True
    try:
        yield
    except BaseException:
        if not deferring_before:
            _stop_deferring()
        raise
    _Run.saved = True


@contextmanager
def held() -> Iterator[None]:
    """Signals wait for the end of the block, a few statements that must not be cut short
    (a commit; an event loop made, which a signal halfway through its making leaves to
    fail in its finaliser, with a traceback); one that arrived meanwhile stops the
    command with a KeyboardInterrupt right after it.  Within a change being saved
    (``saving``), signals are held until the command ends already."""
    if _Run.deferring:  # held already, until the end of the command
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS} if _main_thread() else {}
    for sig in previous:
        signal.signal(sig, _hold)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if _Run.pending is not None:
        _Run.pending = None
        raise KeyboardInterrupt


def _stop_deferring() -> None:
    _Run.deferring = False
    if _main_thread():
        signal.signal(signal.SIGINT, _raise)
        signal.signal(signal.SIGTERM, _raise)
    if _Run.pending is not None:
        _Run.pending = None
        raise KeyboardInterrupt


class Caught:
    """The signal :func:`as_cancellation` turned into a cancellation (None: none came)."""

    signum: int | None = None


@contextmanager
def as_cancellation(cancel: Callable[[], object]) -> Iterator[Caught]:
    """Around an event loop's run.  A signal that would stop the command here (Ctrl-C, or
    SIGTERM in a command) calls ``cancel`` instead, which must only schedule the
    cancellation in the loop (``loop.call_soon_threadsafe``): the work then unwinds at an
    ``await``, with its clean-up, never midway through the loop's own bookkeeping.  A
    KeyboardInterrupt raised there could lose the wake-up of a task, and the clean-up after
    it would wait for that task for ever.  When the block ends, however it ends, the
    signal stops the command with a KeyboardInterrupt, as everywhere else.

    A second signal, if the first one's clean-up does not end, is raised at once.  Signals
    that are held (a change is being saved) or handled otherwise are left as they are."""
    caught = Caught()
    taken: dict[signal.Signals, Any] = {}
    if _main_thread():
        for each in SIGNALS:
            found = signal.getsignal(each)
            if found is _raise or (each == signal.SIGINT and found is signal.default_int_handler):
                taken[each] = found

    def cancelling(signum: int, frame: FrameType | None) -> None:
        if caught.signum is not None:
            _raise(signum, frame)  # the second: at once
            return
        caught.signum = signum
        cancel()

    try:
        for each in taken:
            signal.signal(each, cancelling)
        yield caught
    except BaseException:
        if caught.signum is None:
            raise
    finally:
        for each, handler in taken.items():
            signal.signal(each, handler)
    if caught.signum is not None:
        _Run.raised = caught.signum
        raise KeyboardInterrupt
