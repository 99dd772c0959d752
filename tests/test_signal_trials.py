"""Signal trials (issue #15): SIGINT and SIGTERM sent at seeded random moments during
``apikey add``, ``apikey delete``, ``apikey rotate``, ``db upgrade`` (of the 0.9
fixture), ``db backup``, ``db restore`` and ``apikey test --all`` (against a slow
server), each run by the installed script in a subprocess.

Each trial asks what a user would: does the exit status tell the truth (0: it finished;
130: it stopped, and the last line says whether a change was kept), is there no
traceback, is the SQLite file sound (``integrity_check``, ``foreign_key_check``), is the
state fully the one before or fully the one after (never a mixture, and the one the
message names), and is nothing left behind (``*.partial``, ``*.restore``, ``-journal``)?

The moments are drawn from ``random.Random(SEED)`` between 0 and a little more than an
uninterrupted run takes on this machine (measured first, and itself a trial that must
finish), so they land in start-up, in the work and in the commit alike.  Nothing is
asserted about time.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from n8n_deploy.base.settings import resolve_settings
from n8n_deploy.base.status import ExitStatus
from n8n_deploy.store.lifecycle import open_database
from tests.dbfactory import copy_fixture
from tests.fake_n8n import Answer, Seen, fake_server, n8n_like
from tests.helpers import (
    INTERRUPTED_LINE,
    SAVED_LINE,
    add_key,
    add_server,
    backups,
    installed_script,
    make_jwt,
    script_env,
    sqlite_problems,
    stray_files,
)

SEED = 20261215
#: Trials per command and signal (besides the uninterrupted run that measures it).
TRIALS = 5
SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Keys checked by the ``apikey test --all`` trials, and how slowly the server answers.
TEST_ALL_KEYS = 40
SLOW_ANSWER_SECONDS = 0.25
#: A trial that has not ended by then has hung.
HANG_SECONDS = 120

OLD = make_jwt(exp_days=60, sub="trial-old")
NEW = make_jwt(exp_days=60, sub="trial-new")
OTHER = make_jwt(exp_days=60, sub="trial-other")
VALID = {OLD, NEW, OTHER}


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return list(conn.execute(sql))


def key_rows(db: Path) -> list[tuple[Any, ...]]:
    """Every key (name, secret, active) and its links: what a change must move as one."""
    keys = _rows(db, "SELECT name, api_key, is_active FROM api_keys ORDER BY name")
    links = _rows(
        db,
        "SELECT k.name, s.name FROM server_api_keys l JOIN api_keys k ON k.id = l.api_key_id "
        "JOIN servers s ON s.id = l.server_id ORDER BY 1, 2",
    )
    return [*keys, *links]


def revision(db: Path) -> str:
    tables = {row[0] for row in _rows(db, "SELECT name FROM sqlite_master WHERE type='table'")}
    if "alembic_version" in tables:
        return str(_rows(db, "SELECT version_num FROM alembic_version")[0][0])
    return "0.9" if "schema_info" in tables else "none"


@dataclass
class Trial:
    """One command: how to set its data folder up, run it, and tell its states apart."""

    args: tuple[str, ...]
    setup: Callable[[Path, Path], None]  # (data folder, folder of the trial)
    state: Callable[[Path, Path], object]  # what the user would compare, before/after
    input: str | None = None


def _database(data: Path) -> Any:
    return open_database(resolve_settings(data_dir_flag=str(data), environ={}))


def _with_keys(data: Path, *keys: tuple[str, str], url: str = "https://n8n.example.com") -> None:
    db = _database(data)
    try:
        add_server(db, "Production", url)
        for name, secret in keys:
            add_key(db, name, secret, ["Production"])
    finally:
        db.dispose()


def trials(url: str, slow_url: str) -> dict[str, Trial]:
    def db(data: Path) -> Path:
        return data / "n8n-deploy.db"

    def keys_state(data: Path, _: Path) -> object:
        return key_rows(db(data))

    def setup_add(data: Path, _: Path) -> None:
        _with_keys(data, ("existing", OTHER))

    def setup_delete(data: Path, _: Path) -> None:
        _with_keys(data, ("existing", OTHER), ("victim", OLD))

    def setup_rotate(data: Path, _: Path) -> None:
        _with_keys(data, ("old", OLD), url=url)

    def setup_upgrade(data: Path, _: Path) -> None:
        data.mkdir(mode=0o700)
        copy_fixture(db(data))

    def upgrade_state(data: Path, _: Path) -> object:
        return revision(db(data)), _rows(
            db(data), "SELECT name, api_key, is_active FROM api_keys ORDER BY name"
        )

    def backup_state(data: Path, _: Path) -> object:
        copies = backups(data)
        for copy in copies:
            assert sqlite_problems(copy) == [], copy
        return key_rows(db(data)), [key_rows(copy) for copy in copies]

    def setup_restore(data: Path, trial: Path) -> None:
        _with_keys(data, ("backed_up", OLD))
        shutil.copyfile(db(data), trial / "restore-me.db")
        for companion in data.glob("n8n-deploy.db-*"):
            shutil.copyfile(companion, trial / f"restore-me.db{companion.name[13:]}")
        db_ = _database(data)
        try:
            add_key(db_, "added_since", NEW, ["Production"])
        finally:
            db_.dispose()

    def setup_test_all(data: Path, _: Path) -> None:
        _with_keys(
            data,
            *((f"key{i:02}", make_jwt(exp_days=60, sub=f"all-{i}")) for i in range(TEST_ALL_KEYS)),
            url=slow_url,
        )

    def uses_state(data: Path, _: Path) -> object:
        used = _rows(db(data), "SELECT last_used_at IS NOT NULL FROM api_keys ORDER BY name")
        return sorted({bool(row[0]) for row in used})  # [False] before, [True] after

    return {
        "apikey add": Trial(
            ("apikey", "add", "-", "--name", "new", "--server", "Production"),
            setup_add,
            keys_state,
            input=NEW + "\n",
        ),
        "apikey delete": Trial(
            ("apikey", "delete", "victim", "--confirm"), setup_delete, keys_state
        ),
        "apikey rotate": Trial(
            ("apikey", "rotate", "old", "-", "--name", "new"), setup_rotate, keys_state, NEW + "\n"
        ),
        "db upgrade": Trial(("db", "upgrade"), setup_upgrade, upgrade_state),
        "db backup": Trial(("db", "backup"), setup_add, backup_state),
        "db restore": Trial(
            ("db", "restore", "{trial}/restore-me.db", "--confirm"), setup_restore, keys_state
        ),
        "apikey test --all": Trial(("apikey", "test", "--all"), setup_test_all, uses_state),
    }


def slow_n8n(seen: Seen) -> Answer:
    """n8n on a bad day: every key is valid, each answer takes a while."""
    time.sleep(SLOW_ANSWER_SECONDS)
    return n8n_like({seen.headers.get("x-n8n-api-key", "").strip()})(seen)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    with fake_server(n8n_like(VALID)) as quick, fake_server(slow_n8n) as slow:
        yield quick.url, slow.url


@dataclass
class Outcome:
    status: int
    stderr: str
    signalled: bool  # the signal reached the process before it ended


def run_trial(trial: Trial, folder: Path, delay: float | None, signum: int) -> Outcome:
    args = [a.replace("{trial}", str(folder)) for a in trial.args]
    source = folder / "stdin"
    source.write_text(trial.input or "")
    with source.open() as stdin:
        process = subprocess.Popen(
            [installed_script(), *args],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=script_env(folder / "data", NO_COLOR="1"),
        )
    signalled = False
    if delay is not None:
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signum)
            signalled = True
    _, stderr = process.communicate(timeout=HANG_SECONDS)
    return Outcome(process.returncode, stderr, signalled)


#: A frame of the program in a traceback: its file inside the package, and its function.
_FRAME = re.compile(r'File "(?P<file>[^"]*)", line \d+, in (?P<function>\S+)')
#: The modules Python loads for the script's first line, before ``main()`` can handle a
#: signal: the package and ``n8n_deploy.cli`` (their imports of typing, version).
_BEFORE_MAIN = (f"n8n_deploy{os.sep}__init__.py", f"n8n_deploy{os.sep}cli{os.sep}__init__.py")


def pythons_own(stderr: str) -> bool:
    """A KeyboardInterrupt that Python printed before any of the program ran: in its own
    start-up (site, the editable install's finder), in the script's ``from n8n_deploy.cli
    import main`` while the package's first modules load, or "ignored" in an import
    lock's callback.  No frame of the package but the module level of those two."""
    if "KeyboardInterrupt" not in stderr:
        return False
    ours = [
        frame for frame in _FRAME.finditer(stderr) if f"{os.sep}n8n_deploy{os.sep}" in frame["file"]
    ]
    return all(
        frame["file"].endswith(_BEFORE_MAIN) and frame["function"] == "<module>" for frame in ours
    )


def before_the_program(outcome: Outcome) -> bool:
    """The signal came while Python itself was starting, before n8n-deploy's ``main()``
    ran: SIGTERM's default action (or SIGINT's, before Python installs its handler), or
    Python's own KeyboardInterrupt (:func:`pythons_own`).  ``judge`` checks that nothing
    changed."""
    if outcome.status in (-signal.SIGINT, -signal.SIGTERM, ExitStatus.FAILED):
        return outcome.stderr == "" or pythons_own(outcome.stderr)
    return False


def judge(trial: Trial, folder: Path, outcome: Outcome, before: object, after: object) -> list[str]:
    """What a user would find wrong with the trial's outcome ([]: nothing)."""
    data = folder / "data"
    problems = []
    if "Traceback" in outcome.stderr and not pythons_own(outcome.stderr):
        problems.append(f"a traceback: {outcome.stderr[-1500:]}")
    state = trial.state(data, folder)
    last = outcome.stderr.strip().splitlines()[-1] if outcome.stderr.strip() else ""
    if outcome.status == ExitStatus.SUCCESS:
        if state != after:
            problems.append(f"exit 0 but the change is not (all) there: {state!r}")
    elif outcome.status == ExitStatus.INTERRUPTED and outcome.signalled:
        if last == INTERRUPTED_LINE:
            if state != before:
                problems.append(f"said nothing was changed, but: {state!r}")
        elif last.startswith(SAVED_LINE):
            if state != after:
                problems.append(f"said the change was kept, but: {state!r}")
        else:
            problems.append(f"exit 130 without saying what was kept: {last!r}")
    elif outcome.signalled and before_the_program(outcome):
        if state != before:
            problems.append(f"killed before the program ran, but: {state!r}")
    else:
        problems.append(f"exit {outcome.status}: {outcome.stderr[-500:]!r}")
    database = data / "n8n-deploy.db"
    if database.exists():
        problems += sqlite_problems(database)
    leftovers = stray_files(data) + stray_files(folder)
    if leftovers:
        problems.append(f"left behind: {leftovers}")
    return problems


def _prepare(trial: Trial, folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    trial.setup(folder / "data", folder)


def _states(trial: Trial, folder: Path) -> tuple[object, object, float]:
    """The state before and after an uninterrupted run, and how long the run took."""
    _prepare(trial, folder)
    before = trial.state(folder / "data", folder)
    started = time.monotonic()
    outcome = run_trial(trial, folder, None, signal.SIGINT)
    took = time.monotonic() - started
    assert outcome.status == ExitStatus.SUCCESS, outcome.stderr
    assert "Traceback" not in outcome.stderr
    after = trial.state(folder / "data", folder)
    assert after != before, "the trial's states cannot tell before from after"
    assert sqlite_problems(folder / "data" / "n8n-deploy.db") == []
    assert stray_files(folder / "data") == []
    return before, after, took


@pytest.mark.e2e
@pytest.mark.parametrize(
    "command",
    [
        "apikey add",
        "apikey delete",
        "apikey rotate",
        "db upgrade",
        "db backup",
        "db restore",
        "apikey test --all",
    ],
)
def test_a_signal_at_any_moment_leaves_the_truth(
    command: str, tmp_path: Path, servers: tuple[str, str]
) -> None:
    trial = trials(*servers)[command]
    rng = random.Random(f"{SEED}:{command}")
    before, after, took = _states(trial, tmp_path / "calibration")
    problems = []
    seen: dict[str, int] = {}
    for number in range(TRIALS):
        for signum in SIGNALS:
            delay = rng.uniform(0.0, took * 1.2)
            folder = tmp_path / f"trial{number}-{signum.name}"
            _prepare(trial, folder)
            outcome = run_trial(trial, folder, delay, signum)
            kind = "finished" if outcome.status == 0 else f"exit {outcome.status}"
            if before_the_program(outcome):
                kind = "before the program ran"
            seen[kind] = seen.get(kind, 0) + 1
            for problem in judge(trial, folder, outcome, before, after):
                problems.append(f"{signum.name} after {delay:.3f}s: {problem}")
    assert not problems, f"{command} ({seen}):\n" + "\n".join(problems)
