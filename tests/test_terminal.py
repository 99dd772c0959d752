"""At a real terminal and in a real shell: tables at ordinary widths keep every key name
whole, and Tab completion of a name with spaces gives a word the shell runs."""

from __future__ import annotations

import fcntl
import os
import re
import select
import shlex
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from n8n_deploy.store.engine import Database
from tests.helpers import add_key, add_server, installed_script, make_jwt

NAMES = ("production_deploy_key", "staging_key_for_the_team", "emoji 🔑 key")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def registry(database: Database) -> None:
    add_server(database, "Production Server 🚀", "https://n8n.example.com")
    for i, name in enumerate(NAMES):
        add_key(database, name, make_jwt(sub=f"u{i}", exp_days=40), ["Production Server 🚀"])
    with database.session(write=True) as s:
        from n8n_deploy.store.repositories import ApiKeyRepository

        for key in ApiKeyRepository(s).list():
            key.description = "The key our deploy pipeline uses for everything it pushes"


def at_terminal(columns: int, *args: str) -> tuple[str, str]:
    """Run n8n-deploy with stdout on a pseudo-terminal ``columns`` wide; (stdout, stderr)."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    process = subprocess.Popen(
        [sys.executable, "-m", "n8n_deploy", *args],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(follower)
    shown = _all_shown(leader)
    _, err = process.communicate(timeout=30)
    return ANSI.sub("", shown.decode("utf-8", "replace")), err.decode()


def _all_shown(leader: int) -> bytes:
    """Everything written to the pseudo-terminal until the program closes it (or 30 s
    pass without a byte); the terminal is closed here too."""
    chunks = []
    while select.select([leader], [], [], 30)[0]:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the program closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return b"".join(chunks)


def _cell_width(line: str) -> int:
    from rich.cells import cell_len

    return cell_len(line)


@pytest.mark.e2e
@pytest.mark.parametrize("columns", [60, 80, 100, 200])
@pytest.mark.parametrize(
    "command",
    [
        ("apikey", "list"),
        ("server", "keys", "Production Server 🚀"),
        ("server", "show", "Production Server 🚀"),
    ],
    ids=["apikey-list", "server-keys", "server-show"],
)
def test_every_key_name_is_whole_at_ordinary_widths(
    registry: None, columns: int, command: tuple[str, ...]
) -> None:
    out, err = at_terminal(columns, *command)
    rows = [line for line in out.splitlines() if line.startswith("│")]
    for name in NAMES:
        assert any(name in row for row in rows), (name, out)
    assert all(_cell_width(line) <= columns for line in out.splitlines()), out
    assert all("********" in row for row in rows[1:]) or command[1] == "show"  # keys whole
    if columns < 200:
        said = " ".join(err.split())
        assert "not shown at this width" in said and "--wide" in said
        assert all(_cell_width(line) <= columns for line in err.splitlines()), err
    else:
        assert "not shown" not in err


@pytest.mark.e2e
@pytest.mark.parametrize("columns", [60, 80])
def test_unmasked_keys_fold_whole_and_names_stay_whole(
    registry: None, database: Database, columns: int
) -> None:
    """--unmask at an ordinary terminal: each full key (some 200 characters) folds over
    lines in its column, every character of it there, and the names and statuses stay
    whole beside it (the key was once kept on one line, cut at the edge, and the other
    columns squeezed to nothing)."""
    from n8n_deploy.store.repositories import ApiKeyRepository

    with database.session() as s:
        secrets = [key.api_key for key in ApiKeyRepository(s).list()]
    out, _ = at_terminal(columns, "apikey", "list", "--unmask")
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert all(_cell_width(line) <= columns for line in out.splitlines()), out
    folded = "".join(row.split("│")[-2].strip() for row in rows)
    for secret in secrets:
        assert secret in folded, out
    for name in NAMES:
        assert any(name in row for row in rows), (name, out)
    assert sum("Active" in row for row in rows) == len(NAMES)


@pytest.mark.e2e
def test_the_report_of_test_all_keeps_names_and_words_whole_at_80_columns(
    registry: None,
) -> None:
    """The results table of ``apikey test --all`` at an ordinary terminal: key names and
    results whole, the message folded between words, the columns left out said (they
    were once all squeezed, names cut in two: ``staging_k|ey``)."""
    subprocess.run(
        [
            *(sys.executable, "-m", "n8n_deploy"),
            *("server", "update", "Production Server 🚀", "--url", "http://127.0.0.1:9"),
        ],
        check=True,
        capture_output=True,
    )
    out, err = at_terminal(80, "apikey", "test", "--all", "--timeout", "1")
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert all(_cell_width(line) <= 80 for line in out.splitlines()), out
    for name in NAMES:
        assert any(name in row and "unreachable" in row for row in rows), (name, out)
    words = " ".join(row.split("│")[-2].strip() for row in rows[1:]).split()
    assert words.count("Connection") == words.count("refused") == len(NAMES), out  # not halves
    assert "not shown at this width" in " ".join(err.split())


@pytest.mark.e2e
def test_apikey_test_says_what_it_tests_before_its_server_answers(registry: None) -> None:
    """At a terminal the report's first line shows as the check starts, as the
    reference's does, not once a slow server has answered (it once showed nothing for
    the whole wait, and a Ctrl-C then only '^C')."""
    import socket
    import time

    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        leader, follower = os.openpty()
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "n8n_deploy", "apikey", "test", NAMES[0]),
                *("--server-url", url, "--timeout", "6"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=subprocess.DEVNULL,
        )
        os.close(follower)
        seen, started = b"", time.monotonic()
        while b"Testing API key" not in seen and time.monotonic() - started < 5:
            if select.select([leader], [], [], 0.2)[0]:
                seen += os.read(leader, 65536)
        waiting = process.poll() is None
        process.kill()
        process.wait(timeout=30)
        os.close(leader)
    assert f"Testing API key: {NAMES[0]}".encode() in seen, seen
    assert waiting  # said while the check still waited for its server


@pytest.mark.e2e
def test_a_failed_test_at_a_terminal_says_its_reason_without_repeating_it(
    registry: None,
) -> None:
    """stdout and stderr on one terminal: the report (its reason, hint and verdict) is
    the whole story, without the 'Error:' line a job log gets beside it (once the same
    reason three times over)."""
    leader, follower = os.openpty()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "n8n_deploy", "apikey", "test", NAMES[0]),
            *("--server-url", "http://127.0.0.1:9", "--timeout", "2"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    seen = _all_shown(leader)
    assert process.wait(timeout=30) == 5  # server unreachable
    text = " ".join(ANSI.sub("", seen.decode("utf-8", "replace")).split())
    assert text.lower().count("connection refused by 127.0.0.1:9") == 2, text  # line, verdict
    assert text.count("Hint:") == 1 and "Error:" not in text, text

    # The report of --all alike, its server a closed port too: its summary said once.
    subprocess.run(
        [
            *(sys.executable, "-m", "n8n_deploy"),
            *("server", "update", "Production Server 🚀", "--url", "http://127.0.0.1:9"),
        ],
        check=True,
        capture_output=True,
    )
    leader, follower = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "n8n_deploy", "apikey", "test", "--all", "--timeout", "2"],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    text = ANSI.sub("", _all_shown(leader).decode("utf-8", "replace"))
    assert process.wait(timeout=30) == 5
    assert text.count("checks failed; exit status 5") == 1 and "Error:" not in text, text


@pytest.mark.e2e
def test_wide_keeps_every_column(registry: None) -> None:
    out, err = at_terminal(80, "apikey", "list", "--wide")
    assert "Description" in out and "not shown" not in err


def _complete_in_bash(line: str, home: Path) -> list[str]:
    """What bash's own completion, with the script n8n-deploy installs, offers for the
    last word of ``line``."""
    # The script runs the program by its name, as a user's shell would find it.
    scripts = str(Path(installed_script()).parent)
    env = dict(os.environ, HOME=str(home), PATH=f"{scripts}{os.pathsep}{os.environ['PATH']}")
    installed = subprocess.run(
        [sys.executable, "-m", "n8n_deploy", "--install-completion", "bash"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    script = installed.stdout.split(" installed in ")[1].splitlines()[0].strip()
    words = line.split(" ")
    bash = (
        f"source {shlex.quote(script)}\n"
        f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_n8n_deploy_completion n8n-deploy\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "-c", bash], capture_output=True, text=True, env=env, check=True
    )
    return [line for line in done.stdout.splitlines() if line]


@pytest.mark.e2e
def test_a_name_with_spaces_completes_to_a_word_that_runs(
    registry: None, tmp_path: Path, data_dir: Path
) -> None:
    home = tmp_path / "home"
    (completed,) = _complete_in_bash("n8n-deploy server keys Prod", home)
    assert " " not in completed.replace("\\ ", "")  # one shell word
    ran = subprocess.run(
        [
            "bash",
            "-c",
            f"{shlex.quote(sys.executable)} -m n8n_deploy server keys {completed} --json",
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, N8N_DEPLOY_DATA_DIR=str(data_dir)),
    )
    assert ran.returncode == 0, ran.stderr
    assert {key["name"] for key in __import__("json").loads(ran.stdout)} == set(NAMES)
    (key,) = _complete_in_bash("n8n-deploy apikey show emoji", home)
    assert (
        subprocess.run(
            ["bash", "-c", f"{shlex.quote(sys.executable)} -m n8n_deploy apikey show {key}"],
            capture_output=True,
            env=dict(os.environ, N8N_DEPLOY_DATA_DIR=str(data_dir)),
        ).returncode
        == 0
    )


@pytest.mark.e2e
@pytest.mark.parametrize("shell", ["zsh", "fish", "bash"])
def test_install_completion_installs_the_shell_it_is_given(tmp_path: Path, shell: str) -> None:
    env = dict(os.environ, HOME=str(tmp_path), SHELL="/bin/bash")
    done = subprocess.run(
        [sys.executable, "-m", "n8n_deploy", "--install-completion", shell],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{shell} completion installed in ")
    expected = {
        "zsh": tmp_path / ".zfunc" / "_n8n-deploy",
        "fish": tmp_path / ".config" / "fish" / "completions" / "n8n-deploy.fish",
        "bash": tmp_path / ".bash_completions" / "n8n-deploy.sh",
    }[shell]
    assert expected.is_file()
    assert "_N8N_DEPLOY_COMPLETE" in expected.read_text(encoding="utf-8")
    if shell != "bash":
        assert not (tmp_path / ".bash_completions").exists()  # never bash, silently


@pytest.mark.e2e
def test_install_completion_never_shows_a_key_in_the_home_folders_name(tmp_path: Path) -> None:
    key = make_jwt(exp_days=30, sub="in-home")
    home = tmp_path / key
    home.mkdir()
    env = dict(os.environ, HOME=str(home))
    done = subprocess.run(
        [sys.executable, "-m", "n8n_deploy", "--install-completion", "bash"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert (home / ".bash_completions" / "n8n-deploy.sh").is_file()
    assert done.stdout.startswith("bash completion installed in ")
    assert "[API key hidden]" in done.stdout and key[-12:] not in done.stdout + done.stderr


@pytest.mark.e2e
def test_apikey_get_works_in_command_substitution_and_warns_at_a_terminal(
    registry: None, data_dir: Path
) -> None:
    env = dict(os.environ, N8N_DEPLOY_DATA_DIR=str(data_dir))
    program = f"{shlex.quote(sys.executable)} -m n8n_deploy"
    script = f'KEY=$({program} apikey get production_deploy_key) && printf "%s" "${{#KEY}}"'
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 100 and done.stderr == ""
    out, err = at_terminal(80, "apikey", "get", "production_deploy_key")
    assert out.strip().startswith("eyJ")
    assert "the raw key is on the screen" in err


@pytest.mark.e2e
def test_apikey_test_all_shows_progress_at_a_terminal_only(registry: None) -> None:
    """The server is a closed port on loopback: what matters is where the progress goes."""
    env = dict(os.environ)
    subprocess.run(
        [
            *(sys.executable, "-m", "n8n_deploy"),
            *("server", "update", "Production Server 🚀", "--url", "http://127.0.0.1:9"),
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    leader, follower = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "n8n_deploy", "apikey", "test", "--all", "--timeout", "1"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    out, _ = process.communicate(timeout=60)
    seen = b""
    while select.select([leader], [], [], 0.5)[0]:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    raw = seen.decode("utf-8", "replace")
    text = ANSI.sub("", raw)
    # A bar redrawn in place, counting up to every check and the failures among them...
    assert re.search(r"Testing API keys \[[#.]+\] 1/3", text), text
    assert "3/3 · 3 failed" in text
    # ...a line above it for each failed check, as it happens...
    failures = [line for line in text.replace("\r\n", "\n").split("\n") if " -> " in line]
    assert len(failures) == 3 and all(line.endswith(": unreachable") for line in failures)
    # ...and erased at the end, so the summary starts on a clean line.
    assert "3/3 · 3 failed\r\x1b[KError: 3 of 3 checks failed" in raw
    assert b" -> " not in out and b"Testing" not in out  # never on stdout


@pytest.mark.e2e
@pytest.mark.parametrize(
    "args", [("--version",), ("--help",), ("db", "path"), ("apikey", "list", "--json")]
)
def test_output_to_a_full_disk_is_one_line_and_exit_1(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    env = dict(os.environ, N8N_DEPLOY_DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path))
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "n8n_deploy", *args],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()  # one line, no traceback
    assert line.startswith("Error: Cannot write the output: No space left on device")
    assert line.endswith("Free some space where the output goes, or send it elsewhere")
