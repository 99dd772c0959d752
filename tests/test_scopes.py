"""A gate that knows what the deploy needs: ``apikey test --require``, ``apikey scopes``,
and reports CI systems read (JUnit XML, GitHub annotations and job summary).

Servers behave as n8n 2.41.1 was observed to (tests/fake_n8n.py, ``scoped_n8n``): through
respx for every case in the reference's scope table, and once as a real local server."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import respx

from n8n_deploy.base.status import ExitStatus
from n8n_deploy.cli.reports import github_annotations
from n8n_deploy.n8n import probe as probing
from n8n_deploy.n8n import scopes
from n8n_deploy.store.engine import Database
from tests.fake_n8n import (
    EVERY_SCOPE,
    SCOPED_ROUTES,
    Seen,
    fake_server,
    json_answer,
    scoped_n8n,
)
from tests.helpers import Run, add_key, add_server, leaked_piece, make_jwt

Cli = Callable[..., Run]
PROD = "https://n8n.example.com"
RESTRICTED = frozenset({"workflow:list", "workflow:read"})
DEPLOY_MISSING = [s for s in scopes.DEPLOY if s not in RESTRICTED]


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr(probing, "_clock", lambda: now[0])
    monkeypatch.setattr(probing, "_sleep", sleep)


class Recorder:
    """respx in front of a fake n8n: every request the check sent, as the server saw it."""

    def __init__(self, responder: Callable[[Seen], tuple[int, dict[str, str], bytes]]):
        self.responder = responder
        self.seen: list[Seen] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        seen = Seen(
            request.url.raw_path.decode(),
            {k.lower(): v for k, v in request.headers.items()},
            request.method,
            request.content,
        )
        self.seen.append(seen)
        status, headers, body = self.responder(seen)
        return httpx.Response(status, headers=headers, content=body)


@pytest.fixture
def keys() -> dict[str, str]:
    return {"full": make_jwt(sub="full"), "restricted": make_jwt(sub="restricted")}


def _serve(keys: dict[str, str], **options: object) -> Iterator[Recorder]:
    recorder = Recorder(
        scoped_n8n({keys["full"]: EVERY_SCOPE, keys["restricted"]: RESTRICTED}, **options)  # type: ignore[arg-type]
    )
    with respx.mock(assert_all_called=False) as router:
        router.route(host="n8n.example.com").mock(side_effect=recorder)
        yield recorder


@pytest.fixture
def n8n_2_41(keys: dict[str, str]) -> Iterator[Recorder]:
    """A server with GET /api/v1/discover."""
    yield from _serve(keys)


@pytest.fixture
def older_n8n(keys: dict[str, str]) -> Iterator[Recorder]:
    """A server without /discover (404): the probes decide."""
    yield from _serve(keys, discover=False)


@pytest.fixture
def stored_keys(database: Database, keys: dict[str, str]) -> None:
    add_server(database, "Production", PROD)
    for name, secret in keys.items():
        add_key(database, name, secret, ["Production"])


def _assert_nothing_changed(recorder: Recorder) -> None:
    """Every request was a read, or a write the server must refuse: no body but {}, no id
    but one n8n can never have."""
    for seen in recorder.seen:
        if seen.method != "GET":
            assert "0-probe" in seen.path or seen.body in (b"{}", b""), seen
            assert seen.body in (b"{}", b""), seen


# -- the Done-when cases --------------------------------------------------------------------


@pytest.mark.parametrize("server", ["n8n_2_41", "older_n8n"])
def test_a_key_restricted_to_list_and_read_passes_a_plain_test_and_fails_deploy(
    cli: Cli, stored_keys: None, server: str, request: pytest.FixtureRequest
) -> None:
    recorder: Recorder = request.getfixturevalue(server)
    assert cli("apikey", "test", "restricted").exit_code == 0
    result = cli("apikey", "test", "restricted", "--require", "deploy")
    assert result.exit_code == ExitStatus.KEY_REJECTED, result.output
    for scope in DEPLOY_MISSING:
        assert scope in result.stdout
    assert "Settings -> n8n API" in result.stdout
    data = json.loads(cli("apikey", "test", "restricted", "--require", "deploy", "--json").stdout)
    assert data["outcome"] == "missing_scopes" and data["exit_status"] == 4
    assert data["missing_scopes"] == DEPLOY_MISSING
    if server == "n8n_2_41":
        assert data["scope_source"] == "discover" and data["scopes"] == sorted(RESTRICTED)
        assert data["unknown_scopes"] == []
    else:
        assert data["scope_source"] == "probes"
        assert data["unknown_scopes"] == ["workflow:read"]  # no probe shows it
    _assert_nothing_changed(recorder)


def test_a_full_key_passes_deploy_on_a_server_with_discover(
    cli: Cli, stored_keys: None, n8n_2_41: Recorder
) -> None:
    result = cli("apikey", "test", "full", "--require", "deploy")
    assert result.exit_code == 0, result.output
    assert "Scopes present: workflow:list" in result.stdout
    assert [s.path for s in n8n_2_41.seen] == [
        "/api/v1/workflows?limit=1",
        "/api/v1/discover",
    ]  # one extra request


def test_without_discover_an_unknown_scope_fails_unless_allowed(
    cli: Cli, stored_keys: None, older_n8n: Recorder
) -> None:
    refused = cli("apikey", "test", "full", "--require", "deploy")
    assert refused.exit_code == ExitStatus.FAILED, refused.output
    assert "whether the key holds workflow:read cannot be told" in refused.stdout
    assert "--allow-unknown-scopes" in refused.stdout
    allowed = cli("apikey", "test", "full", "--require", "deploy", "--allow-unknown-scopes")
    assert allowed.exit_code == 0, allowed.output
    assert "unknown, allowed: workflow:read" in allowed.stdout
    _assert_nothing_changed(older_n8n)


@pytest.mark.parametrize(("route", "answer"), sorted(SCOPED_ROUTES.items()))
def test_each_probe_reads_403_as_missing_and_its_documented_answer_as_present(
    route: tuple[str, str], answer: tuple[str, int, dict[str, object]]
) -> None:
    scope, status, body = answer
    probe = scopes.PROBES.get(scope)
    if probe is None:  # workflow:read: no probe was observed to tell
        assert scope == "workflow:read"
        return
    assert (probe.method, probe.path) == route
    assert scopes.read_probe(probe, status, json.dumps(body).encode()).verdict == "present"
    forbidden = scopes.read_probe(probe, 403, b'{"message":"Forbidden"}')
    assert forbidden.verdict == "missing"
    assert scopes.read_probe(probe, 500, b"").verdict == "unknown"


def test_a_licence_403_names_the_feature_not_a_missing_scope(
    cli: Cli, database: Database, keys: dict[str, str]
) -> None:
    add_server(database, "Production", PROD)
    add_key(database, "full", keys["full"], ["Production"])
    with respx.mock(assert_all_called=False) as router:
        recorder = Recorder(
            scoped_n8n(
                {keys["full"]: EVERY_SCOPE},
                discover=False,
                licensed_out={"credential:create": "feat:credentials"},
            )
        )
        router.route(host="n8n.example.com").mock(side_effect=recorder)
        result = cli("apikey", "test", "full", "--require", "credential:create", "--json")
    data = json.loads(result.stdout)
    assert result.exit_code == ExitStatus.KEY_REJECTED
    assert "licence does not allow feat:credentials" in data["message"]
    assert "lacks" not in data["message"]


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"data": {"scopes": "workflow:list"}}', b"[]", b'{"data": null}'],
    ids=["not-json", "scopes-not-a-list", "a-list", "no-data"],
)
def test_a_malformed_discover_answer_falls_back_to_the_probes(
    cli: Cli, stored_keys: None, keys: dict[str, str], body: bytes
) -> None:
    base = scoped_n8n({keys["restricted"]: RESTRICTED}, discover=False)

    def respond(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        if seen.path.startswith("/api/v1/discover"):
            return 200, {"Content-Type": "application/json"}, body
        return base(seen)

    with respx.mock(assert_all_called=False) as router:
        router.route(host="n8n.example.com").mock(side_effect=Recorder(respond))
        result = cli("apikey", "test", "restricted", "--require", "tag:create", "--json")
    data = json.loads(result.stdout)
    assert data["scope_source"] == "probes" and data["missing_scopes"] == ["tag:create"]
    assert result.exit_code == ExitStatus.KEY_REJECTED


def test_scope_checks_stay_within_the_time_budget(
    cli: Cli, stored_keys: None, keys: dict[str, str]
) -> None:
    """A server that answers the list but never the probes: the check ends within
    --timeout with the scopes unknown, never a pass."""

    def respond(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/workflows" and request.method == "GET":
            return httpx.Response(200, json={"data": [], "nextCursor": None})
        raise httpx.ConnectTimeout("timed out", request=request)

    with respx.mock(assert_all_called=False) as router:
        router.route(host="n8n.example.com").mock(side_effect=respond)
        result = cli("apikey", "test", "full", "--require", "tag:create", "--timeout", "2")
    assert result.exit_code == ExitStatus.FAILED, result.output


@pytest.mark.parametrize("value", ["deploy,tag:nope:x", "everything", "workflow"])
def test_a_require_value_that_is_no_scope_is_a_usage_error(cli: Cli, value: str) -> None:
    result = cli("apikey", "test", "k", "--require", value)
    assert result.exit_code == ExitStatus.USAGE
    assert "not a scope" in result.stderr


def test_require_values_repeat_and_combine_in_order() -> None:
    assert scopes.expand(["workflow:list,tag:create", "deploy"])[:2] == (
        "workflow:list",
        "tag:create",
    )
    assert len(scopes.expand(["deploy", "deploy"])) == len(scopes.DEPLOY)


# -- apikey scopes ---------------------------------------------------------------------------


def test_apikey_scopes_lists_them_per_server_grouped_by_resource(
    cli: Cli, stored_keys: None, n8n_2_41: Recorder
) -> None:
    table = cli("apikey", "scopes", "restricted", "--no-emoji")
    assert table.exit_code == 0, table.output
    assert "workflow" in table.stdout and "list, read" in table.stdout
    data = json.loads(cli("apikey", "scopes", "restricted", "--json").stdout)
    assert data == [
        {
            "key": "restricted",
            "server": "Production",
            "server_url": PROD,
            "outcome": "valid",
            "exit_status": 0,
            "message": data[0]["message"],
            "source": "discover",
            "scopes": {"workflow": ["list", "read"]},
            "missing_scopes": [],
            "unknown_scopes": [],
        }
    ]


def test_apikey_scopes_without_discover_shows_what_the_probes_found(
    cli: Cli, stored_keys: None, older_n8n: Recorder
) -> None:
    data = json.loads(cli("apikey", "scopes", "restricted", "--json").stdout)
    assert data[0]["source"] == "probes"
    assert data[0]["scopes"] == {"workflow": ["list"]}
    assert "workflow:create" in data[0]["missing_scopes"]
    _assert_nothing_changed(older_n8n)


# -- reports CI systems read ------------------------------------------------------------------


def test_junit_xml_has_one_case_per_key_and_server_and_the_failures(
    cli: Cli, stored_keys: None, n8n_2_41: Recorder, tmp_path: Path, keys: dict[str, str]
) -> None:
    report = tmp_path / "junit.xml"
    result = cli(
        "apikey",
        "test",
        "--all",
        "--require",
        "deploy",
        "--format",
        "junit",
        "--output",
        str(report),
    )
    assert result.exit_code == ExitStatus.KEY_REJECTED
    root = ET.parse(report).getroot()  # noqa: S314 - our own output
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    cases = {case.get("classname"): case for case in suite.findall("testcase")}
    assert set(cases) == {"full", "restricted"}
    assert all(case.get("name") == "Production" for case in cases.values())
    assert cases["full"].find("failure") is None
    failure = cases["restricted"].find("failure")
    assert failure is not None and failure.get("type") == "missing_scopes"
    assert "workflow:create" in (failure.get("message") or "")
    assert "Fix:" in (failure.text or "")
    text = report.read_text(encoding="utf-8")
    assert all(leaked_piece(secret, text) is None for secret in keys.values())
    assert not list(tmp_path.glob(".*.partial"))


def test_junit_to_stdout_is_the_document_and_nothing_else(
    cli: Cli, stored_keys: None, n8n_2_41: Recorder
) -> None:
    result = cli("apikey", "test", "full", "--format", "junit")
    assert result.exit_code == 0
    root = ET.fromstring(result.stdout)  # noqa: S314 - our own output
    assert root.find("testsuite").get("tests") == "1"  # type: ignore[union-attr]


def test_under_github_actions_failures_are_annotations_and_a_summary(
    cli: Cli, stored_keys: None, n8n_2_41: Recorder, tmp_path: Path, keys: dict[str, str]
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    result = cli("apikey", "test", "--all", "--require", "deploy", env=env)
    assert result.exit_code == ExitStatus.KEY_REJECTED
    annotations = [line for line in result.stdout.splitlines() if line.startswith("::error ")]
    assert len(annotations) == 1
    assert annotations[0].startswith(
        "::error title=API key 'restricted' on Production%3A key rejected::"
    )
    written = summary.read_text(encoding="utf-8")
    assert written.startswith("earlier step\n")  # appended, never replaced
    assert "| restricted | Production | ❌ key rejected |" in written
    assert "| full | Production | ✅ valid |" in written
    with_json = cli("apikey", "test", "--all", "--require", "deploy", "--json", env=env)
    json.loads(with_json.stdout)  # annotations go to stderr, stdout stays JSON
    assert "::error title=" in with_json.stderr
    for output in (result.output, with_json.output, written):
        assert all(leaked_piece(secret, output) is None for secret in keys.values())


def test_format_github_forces_annotations_outside_github(
    cli: Cli, stored_keys: None, n8n_2_41: Recorder
) -> None:
    result = cli("apikey", "test", "restricted", "--require", "deploy", "--format", "github")
    assert "::error title=" in result.stdout


def test_annotations_are_escaped_as_github_requires() -> None:
    from n8n_deploy.apikeys.check import KeyReport, Target, TargetResult
    from n8n_deploy.n8n.results import Outcome, ValidationResult

    result = ValidationResult(
        "https://h", Outcome.REJECTED, "100% wrong\nsecond line :: no, really", hint="a,b"
    )
    report = KeyReport("key:1,2", (TargetResult(Target("https://h", "srv"), result),))
    (line,) = github_annotations([report])
    title, message = line.removeprefix("::error title=").split("::", 1)
    assert title == "API key 'key%3A1%2C2' on srv%3A key rejected"
    assert message == "100%25 wrong%0Asecond line :: no, really. a,b"
    assert "\n" not in line


@pytest.mark.parametrize("fmt", ["table", "plain", "json", "junit", "github"])
@pytest.mark.parametrize("which", ["full", "restricted", "unknown"])
def test_no_report_format_ever_shows_a_key(
    cli: Cli, stored_keys: None, keys: dict[str, str], fmt: str, which: str
) -> None:
    """A sweep over formats and outcomes, with a server that echoes the key back."""
    base = scoped_n8n({keys["full"]: EVERY_SCOPE, keys["restricted"]: RESTRICTED})
    planted = make_jwt(sub="planted")

    def echoing(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        status, headers, body = base(seen)
        if status >= 400:
            return json_answer(status, {"message": f"bad key {seen.headers.get('x-n8n-api-key')}"})
        return status, headers, body

    if which == "unknown":
        add_key_name = "planted"
        secret = planted
    else:
        add_key_name, secret = which, keys[which]
    with respx.mock(assert_all_called=False) as router:
        router.route(host="n8n.example.com").mock(side_effect=Recorder(echoing))
        if which == "unknown":
            assert (
                cli(
                    "apikey",
                    "add",
                    "-",
                    "--name",
                    "planted",
                    "--server",
                    "Production",
                    input=planted,
                ).exit_code
                == 0
            )
        result = cli("apikey", "test", add_key_name, "--require", "deploy", "--format", fmt)
    assert leaked_piece(secret, result.output) is None, result.output


@pytest.mark.e2e
def test_end_to_end_against_a_real_local_server(
    cli: Cli, database: Database, keys: dict[str, str], tmp_path: Path
) -> None:
    """A real HTTP server that behaves like n8n 2.41.1 without /discover."""
    responder = scoped_n8n(
        {keys["full"]: EVERY_SCOPE, keys["restricted"]: RESTRICTED}, discover=False
    )
    with fake_server(responder) as server:
        add_server(database, "Local", server.url)
        add_key(database, "restricted", keys["restricted"], ["Local"])
        report = tmp_path / "junit.xml"
        result = cli(
            "apikey",
            "test",
            "restricted",
            "--require",
            "workflow:list,tag:create",
            "--format",
            "junit",
            "--output",
            str(report),
        )
        seen = list(server.seen)
    assert result.exit_code == ExitStatus.KEY_REJECTED, result.output
    failure = ET.parse(report).getroot().find("testsuite/testcase/failure")  # noqa: S314
    assert failure is not None and "tag:create" in (failure.get("message") or "")
    assert {(s.method, s.path.split("?")[0]) for s in seen} <= {
        ("GET", "/api/v1/workflows"),
        ("GET", "/api/v1/discover"),
        ("POST", "/api/v1/tags"),
    }
    assert all(s.body in (b"", b"{}") for s in seen)


def test_a_discover_answer_is_never_shown_as_it_came(
    cli: Cli, stored_keys: None, keys: dict[str, str]
) -> None:
    """A hostile server lists the key itself, and terminal escapes, as 'scopes'."""
    secret = keys["restricted"]

    def respond(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        if seen.path.startswith("/api/v1/discover"):
            body = {
                "data": {
                    "scopes": [secret, f"tag:{secret}", "\x1b[31mevil:x\x1b[0m", "workflow:list"]
                }
            }
            return json_answer(200, body)
        return scoped_n8n({secret: RESTRICTED})(seen)

    with respx.mock(assert_all_called=False) as router:
        router.route(host="n8n.example.com").mock(side_effect=Recorder(respond))
        table = cli("apikey", "scopes", "restricted")
        data = cli("apikey", "test", "restricted", "--require", "workflow:list", "--json")
    for output in (table.output, data.output):
        assert leaked_piece(secret, output) is None
        assert "\x1b" not in output
    assert json.loads(data.stdout)["scopes"] == ["workflow:list"]


@pytest.mark.parametrize("value", ["", ",,,", " , "])
def test_a_require_that_names_no_scope_is_refused_not_dropped(cli: Cli, value: str) -> None:
    result = cli("apikey", "test", "k", "--require", value)
    assert result.exit_code == ExitStatus.USAGE
    assert "--require names no scope" in result.stderr


def test_scopes_in_another_case_are_the_known_ones(
    cli: Cli, stored_keys: None, n8n_2_41: Recorder
) -> None:
    assert (
        cli("apikey", "test", "full", "--require", "WORKFLOW:LIST,workflowtags:UPDATE").exit_code
        == 0
    )


def test_an_empty_format_is_refused(cli: Cli) -> None:
    assert cli("apikey", "test", "k", "--format", "").exit_code == ExitStatus.USAGE


def test_the_junit_file_is_written_also_when_the_key_cannot_be_tested(
    cli: Cli, tmp_path: Path
) -> None:
    report = tmp_path / "junit.xml"
    result = cli("apikey", "test", "nope", "--format", "junit", "--output", str(report))
    assert result.exit_code == ExitStatus.FAILED
    failure = ET.parse(report).getroot().find("testsuite/testcase/failure")  # noqa: S314
    assert failure is not None and failure.get("type") == "not_found"


def test_an_output_that_a_report_would_wrongly_replace_is_refused_before_any_check(
    cli: Cli, tmp_path: Path
) -> None:
    """A link, a pipe, a device or a folder is never replaced by the report, and a name
    that is no file is refused: exit 2 before any key is looked at (none is stored)."""
    real = tmp_path / "real.xml"
    real.write_text("kept")
    link = tmp_path / "link.xml"
    link.symlink_to(real)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    for output in (str(link), str(pipe), str(tmp_path), "", "."):  # a device: like the pipe
        result = cli("apikey", "test", "nope", "--format", "junit", "--output", output)
        assert result.exit_code == ExitStatus.USAGE, (output, result.output)
        assert result.stderr.startswith("Error: --output") and len(result.stderr.splitlines()) == 1
    assert link.is_symlink() and real.read_text() == "kept" and pipe.is_fifo()
    assert not list(tmp_path.glob(".*partial"))  # no report started anywhere


@pytest.mark.parametrize("timeout", ["inf", "1e308", "3601"])
def test_a_timeout_beyond_an_hour_is_refused(cli: Cli, timeout: str) -> None:
    """A CI gate that may wait for ever is a hung job."""
    args = ("apikey", "test", "-", "--server-url", "http://127.0.0.1:9", "--timeout", timeout)
    result = cli(*args, input=make_jwt(exp_days=9))
    assert result.exit_code == ExitStatus.USAGE, result.output
    assert "--timeout" in result.stderr
