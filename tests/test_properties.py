"""Property-based tests: generated hostile input for every input a user or a file gives
(key names, server names, descriptions, keys piped to ``apikey add -``, server URLs, the
rows of an n8n-deploy 0.9 file), through the real CLI on real SQLite files.

Each example either works as documented (docs/keys-and-servers.md) or fails with one line
on stderr, a documented exit status (``base/status.py``), no traceback, and the database
file byte-for-byte unchanged.  Everything printed is checked too: no character that could
drive a terminal, no piece of a key.

Deterministic and bounded: the ``properties`` profile is derandomized (the same examples
on every run, no example database), has no deadline (a shared CI machine is slow at
times) and a modest number of examples.  Each example runs on its own copy of a database
prepared once, so it costs a file copy.  A defect found here is fixed where its rule
lives, and kept as an ``@example``.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import sqlite3
import string
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import typer.testing
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from n8n_deploy.base import dates
from n8n_deploy.base.status import ExitStatus
from n8n_deploy.base.text import contains_api_key, has_unsafe_characters
from n8n_deploy.base.urls import normalize_server_url
from n8n_deploy.cli import app
from tests.helpers import Run, leaked_piece, make_jwt, make_legacy_key, raw_jwt

settings.register_profile(
    "properties",
    derandomize=True,  # seeded: every run tries the same examples
    database=None,  # and remembers nothing between runs
    deadline=None,  # no timed assertions
    max_examples=30,
    # ``fresh`` is made once per test, but only hands out copies: every example runs in a
    # folder of its own, on its own copy of the prepared database (conftest's data
    # folder is not used).
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PROPERTIES = settings.get_profile("properties")

#: The key stored in the prepared database, under prod_key, linked to server Production.
STORED_KEY = make_jwt(exp_days=365, sub="stored")
DB_NAME = "n8n-deploy.db"

# -- what users type ---------------------------------------------------------------------

#: Characters that have broken programs like this one: controls (C0, C1, DEL), bidi
#: overrides and isolates, zero-width and invisible characters, separators, a lone
#: surrogate (undecodable bytes, as Python passes them on), shell and markup
#: metacharacters, combining marks, wide and right-to-left letters, emoji with joiners.
HOSTILE_CHARACTERS = (
    "\x00\x01\x07\x08\t\n\x0b\x0c\r\x1b\x7f\x85\x9b"
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
    "\u200b\u200c\u200d\u2060\u2062\u2065\u206f\ufeff\u180e\u00ad\u0600\ufff9"
    "\u2028\u2029\u00a0\u3000\u3164"
    "\udc80\udcff"
    "'\"\\`$;|&<>*?[]{}()%#=:@/ -"
    "\u0301\u20dd\uff28\u4f8b\u05d0\u0628\u00df\u0130"
    "\U0001f680\U0001f469\U0001f4bb\U000e0067"
)
PIECES = (
    "prod_key",
    "Production",
    "n8n_api_prod",
    "eyJhbGciOiJIUzI1NiJ9",
    STORED_KEY,
    make_legacy_key(7),
    "[bold red]x[/]",
    "$(id)",
    "--help",
    "\x1b[31m",
    "n" * 95,
    "d" * 995,
)


def hostile_text(max_pieces: int = 6) -> st.SearchStrategy[str]:
    """Text made of arbitrary characters, hostile ones and telling pieces."""
    characters = st.one_of(st.characters(), st.sampled_from(HOSTILE_CHARACTERS))
    piece = st.one_of(st.text(characters, min_size=1, max_size=12), st.sampled_from(PIECES))
    return st.lists(piece, max_size=max_pieces).map("".join)


#: Names anyone would type: letters of any script, digits, spaces, punctuation, emoji
#: (some joined by a zero-width joiner), never starting with "-" (an option, to a shell).
ORDINARY = (
    st.lists(
        st.one_of(
            st.sampled_from(string.ascii_letters + string.digits + " _-.'&+()"),
            st.sampled_from("äöüßéèçñøåØłŁğİıšžčćđ例え日本語한국어Ελληνικάкириллица"),
            st.sampled_from(["🚀", "🔑", "✅", "👩‍💻", "🏳️‍🌈"]),
        ),
        min_size=1,
        max_size=40,
    )
    .map("".join)
    .filter(lambda name: bool(name.strip()) and not name.startswith("-"))
)


def control_free(text: str) -> bool:
    """What docs/keys-and-servers.md calls "without control characters"."""
    return not has_unsafe_characters(text)


# -- running the CLI on a copy of a prepared database ------------------------------------


@pytest.fixture(scope="module")
def built_once() -> Iterator[None]:
    """The program's root command built once for the whole file: typer's runner builds it
    again on every call (most of the cost of a call that fails at the door)."""
    command = typer.main.get_command(app)
    build = typer.testing._get_command
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.testing, "_get_command", lambda t: command if t is app else build(t))
        yield


@pytest.fixture(scope="module")
def still_clock() -> Iterator[None]:
    """The program's clock stopped at one moment for the whole file, so that no example
    depends on how slow the machine is (every writer prunes first, ``store/pruning.py``)."""
    moment = dates.utcnow()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dates, "clock", lambda: moment)
        yield


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, still_clock: None, built_once: None) -> Path:
    """A database with a server (Production) and a key (prod_key) linked to it, made once."""
    folder = tmp_path_factory.mktemp("prepared")
    env = {"N8N_DEPLOY_DATA_DIR": str(folder / "data")}
    runner = typer.testing.CliRunner()
    for args, stdin in [
        (["server", "create", "Production", "https://n8n.example.com"], None),
        (["apikey", "add", "-", "--name", "prod_key", "--server", "Production"], STORED_KEY),
    ]:
        result = runner.invoke(app, args, input=stdin, env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    database = folder / "data" / DB_NAME
    assert not Path(f"{database}-wal").exists()  # all of it is in the one file
    return database


class Copy:
    """One example's own data folder, holding a copy of the prepared database."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.database = folder / DB_NAME
        self.runner = typer.testing.CliRunner()

    def run(
        self, *args: str, input: str | bytes | None = None, env: dict[str, str] | None = None
    ) -> Run:
        """The real CLI, in-process.  N8N_DEPLOY_DEBUG lets an unexpected error through as
        an exception (instead of the line asking for a bug report): hypothesis then shows
        the smallest input that raises it."""
        env = {"N8N_DEPLOY_DATA_DIR": str(self.folder), "N8N_DEPLOY_DEBUG": "1", **(env or {})}
        result = self.runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)
        run = Run(result.exit_code, result.stdout, result.stderr)
        assert "Traceback" not in run.output
        shown = run.output.replace("\n", "")
        assert not has_unsafe_characters(shown), f"a control character was printed: {shown!r}"
        return run

    def state(self) -> tuple[bytes, list[str]]:
        """The database file's bytes, and every file in the folder."""
        return self.database.read_bytes(), sorted(p.name for p in self.folder.iterdir())

    def json(self, *command: str, name: str) -> object:
        """``command --json -- name``: what a script reads about ``name``."""
        run = self.run(*command, "--json", "--", name)
        assert run.exit_code == 0, run.output
        return json.loads(run.stdout)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("examples")


Fresh = Callable[[], AbstractContextManager[Copy]]


@pytest.fixture
def fresh(prepared: Path, scratch: Path) -> Fresh:
    """``with fresh() as db``: a new copy of the prepared database for one example."""

    @contextmanager
    def copy() -> Iterator[Copy]:
        folder = Path(tempfile.mkdtemp(dir=scratch))  # 0700, as the program makes it
        shutil.copy2(prepared, folder / DB_NAME)
        try:
            yield Copy(folder)
        finally:
            shutil.rmtree(folder)

    return copy


def refused(run: Run, statuses: tuple[ExitStatus, ...] = (ExitStatus.USAGE,)) -> None:
    """How every failure looks: a documented status and one line on stderr."""
    assert run.exit_code in statuses, run.output
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), run.stderr
    assert run.stdout == "" or json.loads(run.stdout)["exit_status"] == run.exit_code


def outcome(db: Copy, run: Run, before: tuple[bytes, list[str]], *statuses: ExitStatus) -> bool:
    """True when ``run`` succeeded; otherwise check that it failed as documented (one of
    ``statuses``, one line) and changed nothing at all."""
    if run.exit_code == 0:
        return True
    refused(run, statuses)
    assert db.state() == before, "a failed command changed the database"
    return False


# -- names -------------------------------------------------------------------------------


@PROPERTIES
@given(raw=hostile_text(), description=st.one_of(st.none(), hostile_text()))
@example(raw="a\u2065b", description=None)  # listed as a\u2065b: a name nobody could type back
@example(raw="\u200d", description=None)  # a zero-width joiner alone: an invisible name
@example(raw=" \u200d\u200d ", description=None)
@example(raw="eyJhbGciOiJIUzI1NiJ9", description=None)  # listed as [API key hidden]
@example(raw="prod", description="eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9 header")
@example(raw="https://ops:hunter2@n8n.example.com", description=None)  # listed as ops:***@
def test_a_key_name_is_stored_trimmed_and_shown_as_stored_or_refused(
    fresh: Fresh, raw: str, description: str | None
) -> None:
    with fresh() as db:
        before = db.state()
        extra = () if description is None else (f"--description={description}",)
        run = db.run("apikey", "add", "-", f"--name={raw}", *extra, input=make_jwt(sub="new"))
        if not outcome(db, run, before, ExitStatus.USAGE, ExitStatus.FAILED):
            if run.exit_code == ExitStatus.FAILED:  # the only name already in use
                assert raw.strip() == "prod_key", run.stderr
            return
        name = raw.strip()
        assert 0 < len(name) <= 100 and control_free(name) and not contains_api_key(name)
        assert name.replace("\u200d", "").strip(), "an invisible name was accepted"
        text = (description or "").strip() or None
        shown = db.json("apikey", "show", name=raw)  # looked up as typed: trimmed again
        assert isinstance(shown, dict)
        assert (shown["name"], shown["description"]) == (name, text)
        table = db.run("apikey", "list", "--no-emoji")
        assert f" {name} " in table.stdout  # shown exactly as stored


@PROPERTIES
@given(raw=ORDINARY)
def test_an_ordinary_name_always_works(fresh: Fresh, raw: str) -> None:
    with fresh() as db:
        name = raw.strip()
        expected = ExitStatus.FAILED if name == "Production" else ExitStatus.SUCCESS
        run = db.run("server", "create", raw, "https://ordinary.example.com")
        assert run.exit_code == expected, run.output
        if expected == ExitStatus.SUCCESS:
            shown = db.json("server", "show", name=name)
            assert isinstance(shown, dict) and shown["name"] == name


@PROPERTIES
@given(raw=hostile_text(), description=st.one_of(st.none(), hostile_text()))
@example(raw="a\u2065b", description=None)
@example(raw="eyJhbGciOiJIUzI1NiJ9", description=None)
@example(raw="ok", description="d" * 995 + "\u2065" * 5)
@example(raw="ok", description="see https://ops:hunter2@n8n.example.com")
def test_a_server_name_and_description_are_stored_as_documented_or_refused(
    fresh: Fresh, raw: str, description: str | None
) -> None:
    with fresh() as db:
        before = db.state()
        extra = () if description is None else (f"--description={description}",)
        run = db.run("server", "create", *extra, "--", raw, "https://new.example.com")
        if not outcome(db, run, before, ExitStatus.USAGE, ExitStatus.FAILED):
            if run.exit_code == ExitStatus.FAILED:
                assert raw.strip() == "Production", run.stderr
            return
        name = raw.strip()
        assert 0 < len(name) <= 100 and control_free(name) and not contains_api_key(name)
        text = (description or "").strip() or None
        if text is not None:
            assert len(text) <= 1000 and control_free(text) and not contains_api_key(text)
        shown = db.json("server", "show", name=raw)
        assert isinstance(shown, dict)
        assert (shown["name"], shown["description"]) == (name, text)
        assert f" {name} " in db.run("server", "list", "--no-emoji").stdout


@PROPERTIES
@given(raw=hostile_text())
def test_looking_a_name_up_never_changes_anything(fresh: Fresh, raw: str) -> None:
    with fresh() as db:
        before = db.state()
        for command in (("apikey", "show"), ("server", "show"), ("server", "keys")):
            run = db.run(*command, "--", raw)
            if run.exit_code != 0:
                refused(run, (ExitStatus.USAGE, ExitStatus.FAILED))
                assert STORED_KEY not in run.output
            assert db.state() == before


# -- keys on stdin -----------------------------------------------------------------------


@st.composite
def piped_keys(draw: st.DrawFn) -> bytes:
    """What a pipe may carry to ``apikey add -``: keys of every shape, whole, expired,
    cut, with bytes inserted, wrapped in whitespace, or arbitrary bytes."""
    key = draw(
        st.one_of(
            st.builds(lambda days: make_jwt(exp_days=days), st.none() | st.floats(-30, 800)),
            st.builds(
                lambda exp: raw_jwt(claims={"sub": "u", "exp": exp}),
                st.one_of(st.text(max_size=5), st.integers(), st.floats(), st.none()),
            ),
            st.builds(make_legacy_key, st.integers(0, 255)),
            st.just(STORED_KEY),
            st.text(string.hexdigits, max_size=90).map(lambda h: "n8n_api_" + h),
            st.text(max_size=40),
        )
    ).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(key)))
        key = key[:cut] + draw(st.binary(max_size=4)) + key[cut:]
    if draw(st.booleans()):
        key = draw(st.sampled_from([b" ", b"\n", b"\r\n", b"\t", b"\xef\xbb\xbf", b""])) + key
        key += draw(st.sampled_from([b"\n", b"\r\n", b"\n\n", b" \t", b"\x00", b""]))
    return draw(st.one_of(st.just(key), st.binary(max_size=48)))


def key_pieces_shown(text: str, key: str) -> str | None:
    """A piece of ``key`` (12 characters) in ``text``, if the input could be a key."""
    return leaked_piece(key, text) if len(key) >= 12 else None


@PROPERTIES
@given(piped=piped_keys())
@example(piped=b"\xff\xfe" + STORED_KEY.encode())
@example(piped=STORED_KEY.encode() + b"\n")
def test_a_piped_key_is_stored_or_refused_and_never_shown(fresh: Fresh, piped: bytes) -> None:
    with fresh() as db:
        before = db.state()
        run = db.run("apikey", "add", "-", "--name=piped", input=piped)
        text = piped.decode("utf-8", "replace").strip()
        assert key_pieces_shown(run.output, text) is None, "a piece of the key was printed"
        if not outcome(
            db,
            run,
            before,
            ExitStatus.USAGE,  # not UTF-8, empty
            ExitStatus.FAILED,  # already stored under another name
            ExitStatus.INVALID_FORMAT,
            ExitStatus.KEY_EXPIRED,
        ):
            if run.exit_code == ExitStatus.FAILED:
                assert text == STORED_KEY, run.stderr
            return
        assert piped.decode("utf-8").strip() == text  # only valid UTF-8 is accepted
        assert db.run("apikey", "get", "piped").stdout == text + "\n"  # stored trimmed
        listing = db.run("apikey", "list", "--no-emoji")
        assert key_pieces_shown(listing.output, text) is None


# -- server URLs -------------------------------------------------------------------------

LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
HOST = st.one_of(
    st.lists(LABEL, min_size=1, max_size=3).map(".".join),
    st.lists(
        st.sampled_from(["bücher", "straße", "例え", "xn--bcher-kva", "ﬀ", "Ⅸ"]), max_size=2
    ).map(lambda labels: ".".join([*labels, "example"])),
    st.text(st.one_of(st.characters(), st.sampled_from(HOSTILE_CHARACTERS)), max_size=10),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda address: f"[{address}]"),
    # Numbers a resolver reads as an IPv4 address though they are not written as one.
    st.lists(st.one_of(LABEL, st.integers(0, 300).map(str), st.sampled_from(["0x7f", "0X1"])))
    .filter(bool)
    .map(".".join),
    st.sampled_from(["localhost", "999.1.1.1", "[::1%eth0]", "[v1.x]", "h.", "a..b", "-a.b"]),
)


@st.composite
def server_urls(draw: st.DrawFn) -> str:
    """URLs as people and files write them, and as they should not: each part usually
    right, sometimes wrong, so that most of them get far into the checks."""

    def part(usual: str, *odd: str) -> str:
        return draw(st.sampled_from([usual] * 3 * len(odd) + list(odd)))

    scheme = part("https://", "http://", "HTTPS://", "ftp://", "", "//", "h:", "http:/")
    user = part("", "user@", "user:pa55@", ":@", "a@b@")
    port = draw(
        st.one_of(
            st.sampled_from(["", ":8443", ":5678", ":443", ":80", ":0", ":65536", ":", ":x"]),
            st.integers(-1, 70000).map(lambda number: f":{number}"),
        )
    )
    path = draw(
        st.one_of(
            st.sampled_from(["", "", "/n8n", "/a/b"]),
            st.from_regex(r"(/[A-Za-z0-9._~%-]{1,6}){1,2}", fullmatch=True),
            hostile_text(2).map(lambda text: "/" + text),
        )
    )
    end = part("", "/", "//", "?a=1", "#top", "/api/v1", "%1b", "%e2%80%ae", "?")
    return f"{scheme}{user}{draw(HOST)}{port}{path}{end}"


@PROPERTIES
@given(raw=st.one_of(server_urls(), hostile_text()))
@example(raw="http://0x7f.1:5678")  # 127.0.0.1 to a resolver, yet told it travels to another host
@example(raw="https://192.168.0x1.1")
@example(raw="http://127.1")
def test_a_server_url_is_stored_in_normal_form_or_refused(fresh: Fresh, raw: str) -> None:
    with fresh() as db:
        before = db.state()
        run = db.run("server", "create", "--", "New", raw)
        if not outcome(db, run, before, ExitStatus.USAGE):
            for secret in ("pa55", "user:"):
                assert secret not in run.stderr  # a URL's user part is never quoted
            return
        shown = db.json("server", "show", name="New")
        assert isinstance(shown, dict)
        url = shown["url"]
        assert url == normalize_server_url(url), "the normal form is not stable"
        assert control_free(url) and url.startswith(("http://", "https://"))
        parsed = httpx.URL(url + "/api/v1/workflows")  # what apikey test will request
        assert parsed.userinfo == b"" and parsed.query == b"" and parsed.fragment == ""
        host = parsed.host
        if ":" not in host and re.fullmatch(r"[0-9]+|0[xX][0-9a-fA-F]*", host.rsplit(".")[-1]):
            # What browsers and resolvers read as an IPv4 address is written as one.
            assert str(ipaddress.IPv4Address(host)) == host


@PROPERTIES
@given(raw=server_urls())
def test_n8n_server_url_gets_the_same_answer_as_server_create(fresh: Fresh, raw: str) -> None:
    """One rule for a URL, whichever way it comes: an argument, or the environment
    (``apikey add`` then links the key to a server with that URL, made if need be)."""
    if "\x00" in raw or not raw.strip():
        return  # the environment cannot hold these; unset, N8N_SERVER_URL is not given
    try:
        raw.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return
    with fresh() as db:
        created = db.run("server", "create", "--", "New", raw).exit_code
    with fresh() as db:
        before = db.state()
        run = db.run(
            "apikey",
            "add",
            "-",
            "--name=viaenv",
            input=make_jwt(sub="env"),
            env={"N8N_SERVER_URL": raw},
        )
        assert run.exit_code == created, run.output
        if created != 0:
            refused(run)
            assert db.state() == before
            return
        shown = db.json("apikey", "show", name="viaenv")
        assert isinstance(shown, dict) and len(shown["servers"]) == 1


@PROPERTIES
@given(
    scheme=st.sampled_from(["http", "https", "HTTP", "Https"]),
    labels=st.lists(LABEL.filter(lambda label: not label.isdigit()), min_size=1, max_size=3),
    upper=st.booleans(),
    port=st.one_of(st.none(), st.integers(1, 65535)),
    path=st.lists(st.from_regex(r"[a-z0-9_-]{1,6}", fullmatch=True), max_size=2),
    slashes=st.sampled_from(["", "/", "//"]),
    dot=st.booleans(),
)
def test_a_valid_url_gets_exactly_the_documented_normal_form(
    fresh: Fresh,
    scheme: str,
    labels: list[str],
    upper: bool,
    port: int | None,
    path: list[str],
    slashes: str,
    dot: bool,
) -> None:
    host = ".".join(labels)
    typed_host = (host.upper() if upper else host) + ("." if dot else "")
    prefix = "".join("/" + part for part in path)
    typed = f"{scheme}://{typed_host}{'' if port is None else f':{port}'}{prefix}{slashes}"
    default = {"http": 80, "https": 443}[scheme.lower()]
    expected = f"{scheme.lower()}://{host}{'' if port in (None, default) else f':{port}'}{prefix}"
    with fresh() as db:
        run = db.run("server", "create", "New", typed)
        assert run.exit_code == 0, run.output
        shown = db.json("server", "show", name="New")
        assert isinstance(shown, dict) and shown["url"] == expected


# -- a failed write leaves even the prune bookkeeping alone -----------------------------


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (("server", "create", "Production", "https://other.example.com"), None),
        (("apikey", "add", "-", "--name=again"), STORED_KEY),
    ],
)
def test_a_failed_write_leaves_the_prune_bookkeeping_alone(
    fresh: Fresh, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], stdin: str | None
) -> None:
    later = dates.utcnow() + timedelta(minutes=2)  # the last prune is a minute old or more
    monkeypatch.setattr(dates, "clock", lambda: later)
    with fresh() as db:
        before = db.state()
        run = db.run(*args, input=stdin)
        refused(run, (ExitStatus.FAILED,))
        assert db.state() == before


# -- rows of a file: an n8n-deploy 0.9 database ------------------------------------------


def file_text() -> st.SearchStrategy[str]:
    """What a 0.9 file (written by hand or by another program) may hold in a text column."""
    return hostile_text(4).map(lambda text: text.encode("utf-8", "replace").decode("utf-8"))


@PROPERTIES
@given(
    server_name=file_text(),
    url=st.one_of(server_urls(), file_text()).map(
        lambda text: text.encode("utf-8", "replace").decode("utf-8")
    ),
    key_name=file_text(),
    secret=piped_keys().map(lambda raw: raw.decode("utf-8", "replace")),
    description=st.one_of(st.none(), file_text()),
    broken=st.sampled_from([None, "servers.name", "api_keys.description", "api_keys.api_key"]),
)
@example(
    server_name="Tok\x1b]0;owned\x07en",
    url="https://bob:Pa55word@n8n.example.org/?token=T0kenValue1",
    key_name="evil\x1b[2Jname",
    secret=STORED_KEY,
    description="d\u2028x",
    broken=None,
)
@example(  # SQLite's error quoted the stored value: the key, around the byte it could not read
    server_name="S",
    url="https://n8n.example.com",
    key_name="k",
    secret=STORED_KEY,
    description=None,
    broken="api_keys.api_key",
)
def test_rows_of_a_0_9_file_are_carried_or_reported_and_never_printed_raw(
    scratch: Path,
    built_once: None,
    server_name: str,
    url: str,
    key_name: str,
    secret: str,
    description: str | None,
    broken: str | None,
) -> None:
    from tests.dbfactory import build_legacy, legacy_key, legacy_link, legacy_server

    folder = Path(tempfile.mkdtemp(dir=scratch))
    try:
        db = Copy(folder)
        build_legacy(
            db.database,
            servers=[legacy_server(1, server_name, url)],
            keys=[legacy_key(1, key_name, secret, description=description)],
            links=[legacy_link(1, 1)],
        )
        if broken is not None:  # text that is not UTF-8, as only another program writes it
            table, column = broken.split(".")
            value = secret.encode() if column == "api_key" else b"ab"
            value = value[: len(value) // 2] + b"\xff" + value[len(value) // 2 :]
            with closing(sqlite3.connect(db.database)) as conn:
                conn.execute(f"UPDATE {table} SET {column} = CAST(? AS TEXT)", (value,))
                conn.commit()
        before = db.state()
        upgrade = db.run("db", "upgrade", "--no-backup")
        event(f"db upgrade: exit {upgrade.exit_code}")  # --hypothesis-show-statistics
        if upgrade.exit_code != 0:
            refused(upgrade, (ExitStatus.FAILED,))
            assert leaked_piece(secret, upgrade.output) is None, "a piece of the key was printed"
            assert db.state() == before, "a failed upgrade changed the 0.9 file"
            return
        if url.strip().lower().startswith(("http://", "https://")):
            assert "is not an http(s) URL" not in upgrade.stderr  # advice that contradicts it
        runs = [upgrade]
        for command in (("apikey", "list"), ("server", "list")):
            runs += [db.run(*command), db.run(*command, "--json")]
        for run in runs:
            assert run.exit_code == 0, run.output
            if contains_api_key(secret.strip()):
                assert leaked_piece(secret.strip(), run.output) is None
            for password in ("Pa55word", "T0kenValue1", "pa55"):
                assert password not in run.output
    finally:
        shutil.rmtree(folder)
