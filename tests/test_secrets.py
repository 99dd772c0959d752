"""What is printed never shows a secret or drives the terminal, whatever the data's source:
a key pasted as a name, a URL password, a 0.9 database's rows, a server's answer.  Each
test names the defect of issue #15 it proves fixed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import respx

from n8n_deploy.base.status import ExitStatus
from n8n_deploy.base.text import sanitize
from n8n_deploy.store.engine import Database
from tests.dbfactory import build_legacy, legacy_key, legacy_link, legacy_server
from tests.helpers import (
    Run,
    add_key,
    add_server,
    leaked_piece,
    make_jwt,
    one_line_error,
    sqlite_file,
)
from tests.helpers import dump_database as snapshot

Cli = Callable[..., Run]
pytestmark = pytest.mark.usefixtures("no_waiting")
PROD = "https://n8n.example.com"
#: What must never reach a terminal as it is: ESC (colours, titles, cursor moves), CR,
#: a bidi override, the line separator.
RAW = ("\x1b", "\r", "\u202e", "\u2028", "\x07", "\x9b")


def shows_nothing_raw(text: str) -> bool:
    return not any(ch in text for ch in RAW)


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


# --- the one sanitiser --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain name ✨ 👨‍👩‍👧", "plain name ✨ 👨‍👩‍👧"),
        ("red \x1b[31mtext\x1b[0m", "red \\x1b[31mtext\\x1b[0m"),
        ("over\rwrite", "over\\x0dwrite"),
        ("abc\u202edef", "abc\\u202edef"),
        ("one\u2028two\u2029three", "one\\u2028two\\u2029three"),
        ("csi \x9b31m", "csi \\x9b31m"),
        ("https://u:p@ss/w@host/x", "https://u:***@host/x"),
        ("see https://host/x?token=abc&page=2 now", "see https://host/x?token=***&page=2 now"),
        ("mysql://root@db/x?password=pw", "mysql://root@db/x?password=***"),
    ],
)
def test_the_sanitiser_hides_credentials_and_neutralises_control_characters(
    raw: str, shown: str
) -> None:
    assert sanitize(raw) == shown


def test_the_sanitiser_hides_keys_unless_they_were_asked_for() -> None:
    secret = make_jwt(sub="asked")
    assert sanitize(f"key {secret}") == "key [API key hidden]"
    assert sanitize(f"key {secret}", keys=False) == f"key {secret}"


# --- defect 1: rotate --json ------------------------------------------------------------


@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize(
    "text",
    [
        "plain name 2026-01-01",
        "a\x7fb",
        "tab\there",
        "x=1",
        "eyJ",
        "n8n_api_",
        "a://b",
        "é",
        "\u202e",
        "",
    ],
)
def test_text_is_sanitised_exactly_when_sanitize_would_change_it(text: str) -> None:
    """needs_sanitizing (one search for a whole table) answers as the sanitiser acts: the
    quick answer for printable ASCII agrees with the full search."""
    from n8n_deploy.base.text import needs_sanitizing, sanitize

    changed = sanitize(text) != text
    assert needs_sanitizing(text) is (
        changed or any(h in text for h in ("eyJ", "n8n_api_", "://", "="))
    )
    if not needs_sanitizing(text):
        assert not changed


def test_rotate_json_never_shows_a_key_pasted_as_a_name(
    cli: Cli, database: Database, data_dir: Path
) -> None:
    """#15 defect 1: the refusal's JSON echoed `"new": "eyJ..."` while stderr hid it."""
    add_server(database, "Production", PROD)
    add_key(database, "old", make_jwt(sub="old"), ["Production"])
    pasted = make_jwt(sub="pasted")
    before = snapshot(data_dir)
    for args in (("old", "--name", pasted), (pasted, "--name", "new")):
        run = cli("apikey", "rotate", *args, "-", "--json", input=make_jwt(sub="new") + "\n")
        assert run.exit_code == ExitStatus.USAGE, run.output
        assert leaked_piece(pasted, run.output) is None, run.output
        document = json.loads(run.stdout)
        assert document["rotated"] is False
        assert "[API key hidden]" in (document["old"] + document["new"])
    assert snapshot(data_dir) == before


# --- defect 2: URL passwords in "Not a server URL" errors ----------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://admin:Hunter2secret@n8n.example.com:99999",  # port out of range
        "ftp://admin:Hunter2secret@n8n.example.com",  # wrong scheme
        "https://admin:Hunter2 secret@n8n.example.com",  # spaces
        "https://admin:Hunter2secret@",  # no host
        "admin:Hunter2secret@n8n.example.com",  # no scheme
        "https://admin:Hunter2secret@[::1",  # bad IPv6
        "https://admin:Hunter2secret@[fe80::zz]/",  # not an IPv6 address
        "https://admin:Hunter2secret@n8n.example.com/?x=1",  # a query
        "https://admin:Hunter2secret@n8n.example.com",  # only the credentials
    ],
)
@pytest.mark.parametrize("where", ["server create", "N8N_SERVER_URL", "--server-url"])
def test_a_url_password_is_never_echoed_in_an_error(
    cli: Cli, data_dir: Path, url: str, where: str
) -> None:
    """#15 defect 2: six paths of normalize_server_url quoted the whole URL."""
    key = make_jwt(sub="k")
    if where == "server create":
        run = cli("server", "create", "Production", url)
    elif where == "N8N_SERVER_URL":
        run = cli("apikey", "test", "-", input=key, env={"N8N_SERVER_URL": url})
    else:
        run = cli("apikey", "test", "-", "--server-url", url, input=key)
    one_line_error(run, ExitStatus.USAGE, "")
    assert "Hunter2" not in run.output
    assert "secret" not in run.output
    assert snapshot(data_dir) is None  # nothing was created


# --- defect 4: rows carried from a 0.9 database -------------------------------------------


@pytest.mark.sqlite_only
@pytest.mark.usefixtures("engine")
def test_hostile_rows_of_a_0_9_database_are_never_printed_raw(cli: Cli, data_dir: Path) -> None:
    """#15 defect 4: URLs with tokens or user:pass@, names with ESC sequences were printed
    raw by the upgrade notes and by every listing afterwards."""
    secret = make_jwt(sub="legacy")
    build_legacy(
        sqlite_file(data_dir),
        servers=[
            legacy_server(1, "Tok\x1b]0;owned\x07en", "https://n8n.example.com/?token=T0kenValue1"),
            legacy_server(2, "Creds\u202e", "https://bob:Pa$$w0rd!x@n8n.example.org"),
            legacy_server(3, "Odd", "https://bob:we/ird@pw@n8n.example.net/n8n"),
        ],
        keys=[
            legacy_key(1, "evil\x1b[2J\x1b[31mname", secret, description="d\x1b[5mesc\u2028x"),
            legacy_key(2, "ok", make_jwt(sub="ok")),
        ],
        links=[legacy_link(1, 1), legacy_link(2, 1), legacy_link(3, 2)],
    )
    runs = [cli("db", "upgrade")]
    assert runs[0].exit_code == 0, runs[0].output
    runs += [
        cli("apikey", "list"),
        cli("apikey", "list", "--json"),
        cli("apikey", "list", "--wide", "--no-emoji"),
        cli("server", "list"),
        cli("server", "list", "--json"),
        cli("apikey", "show", "ok"),
        cli("server", "show", "Odd"),
        cli("server", "show", "Odd", "--json"),
    ]
    for run in runs:
        assert shows_nothing_raw(run.output), run.output
        for password in ("T0kenValue1", "Pa$$w0rd", "we/ird", "ird@pw"):
            assert password not in run.output, run.output
        assert leaked_piece(secret, run.output) is None
    listed = json.loads(runs[2].stdout)
    assert "evil\x1b[2J\x1b[31mname" in [k["name"] for k in listed]  # JSON escapes, data kept


# --- defect 5: a server's message -----------------------------------------------------------


@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize("json_output", [False, True])
@pytest.mark.parametrize(
    ("status", "exit_status"),
    [(500, ExitStatus.UNEXPECTED_RESPONSE), (403, ExitStatus.KEY_REJECTED)],
)
def test_a_server_message_with_escape_sequences_is_never_printed_raw(
    cli: Cli,
    database: Database,
    mock: respx.MockRouter,
    json_output: bool,
    status: int,
    exit_status: ExitStatus,
) -> None:
    """#15 defect 5: a server's error message reached the terminal and CI logs as sent."""
    add_server(database, "Production", PROD)
    add_key(database, "prod", make_jwt(exp_days=30), ["Production"])
    hostile = "\x1b]0;pwned\x07\x1b[2J\x1b[31mdenied\u202e\r✅ valid\u2028ok"
    mock.get(f"{PROD}/api/v1/workflows?limit=1").mock(
        return_value=httpx.Response(status, json={"message": hostile})
    )
    run = cli("apikey", "test", "prod", *(["--json"] if json_output else []))
    assert run.exit_code == exit_status, run.output
    assert shows_nothing_raw(run.output), repr(run.output)
    if json_output:
        json.loads(run.stdout)
    for report in ("github", "junit"):
        ci = cli("apikey", "test", "prod", "--format", report)
        assert ci.exit_code == exit_status, ci.output
        assert shows_nothing_raw(ci.output), repr(ci.output)


# --- defect 3 and the door: what no URL or description may hold ---------------------------


@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize("cut", [None, 60, 40])
def test_a_url_holding_a_key_is_refused_without_showing_it(
    cli: Cli, data_dir: Path, cut: int | None
) -> None:
    """#15 defect 3: `http://host/eyJ...` (a key or a piece of one in the path) was stored
    by `server create` and N8N_SERVER_URL, then listed unmasked."""
    secret = make_jwt(sub="in-url")
    url = f"https://n8n.example.com/{secret[:cut]}"
    runs = [
        cli("server", "create", "Production", url),
        cli("apikey", "test", "-", input=make_jwt(sub="k"), env={"N8N_SERVER_URL": url}),
        cli("server", "create", "Encoded", url.replace("eyJ", "%65yJ")),
    ]
    for run in runs:
        one_line_error(run, ExitStatus.USAGE, "")
        assert "The server URL holds what looks like an API key" in run.stderr
        assert leaked_piece(secret, run.output) is None
    assert snapshot(data_dir) is None


@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("server", "create", "P", "https://n8n.example.com/a\u202eb"), "The server URL contains"),
        (("server", "create", "P", "https://n8n.example.com/%E2%80%AE"), "The server URL contains"),
        (("server", "create", "P", "https://n8n.example.com/a\u2028b"), "The server URL contains"),
        (("server", "create", "P", "https://a.example", "--description", "x\u202ey"), "The desc"),
        (("server", "create", "P", "https://a.example", "--description", "x\u2029y"), "The desc"),
        (("apikey", "add", "-", "--name", "k", "--description", "\u2066x\u2069"), "The desc"),
    ],
)
def test_bidi_and_separator_characters_are_refused_at_the_door(
    cli: Cli, data_dir: Path, args: tuple[str, ...], error: str
) -> None:
    run = cli(*args, input=make_jwt(sub="k") + "\n")
    one_line_error(run, ExitStatus.USAGE, error)
    assert shows_nothing_raw(run.output)
    assert cli("server", "list", "--json").stdout == "[]\n"
    assert cli("apikey", "list", "--json").stdout == "[]\n"


# --- defect 8: host names httpx would refuse ----------------------------------------------


@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize(
    ("typed", "stored_as"),
    [
        ("https://ﬀ.com", "https://ff.com"),
        ("https://Ⅸ.com", "https://ix.com"),
        ("https://ǅ.com", "https://dž.com"),
        ("https://Bücher.DE/n8n", "https://bücher.de/n8n"),
        ("https://xn--bcher-kva.de", "https://xn--bcher-kva.de"),
    ],
)
def test_international_host_names_are_normalised_by_the_rules_httpx_uses(
    cli: Cli, typed: str, stored_as: str
) -> None:
    """#15 defect 8: these were accepted as typed, then httpx refused them."""
    run = cli("server", "create", "Intl", typed)
    assert run.exit_code == 0, run.output
    (record,) = json.loads(cli("server", "list", "--json").stdout)
    assert record["url"] == stored_as
    httpx.URL(stored_as).host  # noqa: B018  (httpx takes it: it raised for these)


@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("https://xn--a.com", "Not a valid international host name"),
        ("https://n8n_main.bücher.de", "Not a valid international host name"),
        ("n8n.example.com[", "Not a server URL"),
        ("[n8n.example.com", "Not a server URL"),
    ],
)
def test_host_names_that_cannot_be_used_are_refused_with_status_2(
    cli: Cli, data_dir: Path, url: str, error: str
) -> None:
    """#15 defect 8: "unexpected InvalidURL" / "unexpected ValueError", exit 1."""
    for run in (
        cli("server", "create", "Intl", url),
        cli("apikey", "test", "-", "--server-url", url, input=make_jwt(sub="k")),
    ):
        one_line_error(run, ExitStatus.USAGE, error)
    assert snapshot(data_dir) is None


@pytest.mark.usefixtures("engine")
def test_a_stored_host_name_httpx_refuses_fails_only_its_server_in_test_all(
    cli: Cli, database: Database, data_dir: Path, mock: respx.MockRouter
) -> None:
    """#15 defect 8: a stored `xn--a.com` aborted the whole `apikey test --all` run."""
    from tests.helpers import change_database

    good, bad = make_jwt(exp_days=30, sub="good"), make_jwt(exp_days=30, sub="bad")
    add_server(database, "Production", PROD)
    add_server(database, "Broken", "https://broken.example.com")
    add_key(database, "good", good, ["Production"])
    add_key(database, "bad", bad, ["Broken"])
    change_database(
        data_dir, "UPDATE servers SET url = ? WHERE name = ?", "https://xn--a.com", "Broken"
    )
    mock.get(f"{PROD}/api/v1/workflows?limit=1").mock(
        return_value=httpx.Response(200, json={"data": [], "nextCursor": None})
    )
    run = cli("apikey", "test", "--all", "--json")
    assert run.exit_code == ExitStatus.FAILED, run.output
    assert "unexpected" not in run.output
    records = {r["key"]: r for r in json.loads(run.stdout)}
    assert records["good"]["valid"] is True
    assert records["bad"]["valid"] is False
