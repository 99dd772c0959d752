"""Key hygiene through the real CLI: the audit trail (``apikey history``/``events``), the
policy gate (``apikey audit``, ``policy``) and ephemeral keys (``--ttl``, ``apikey prune``),
on every engine.  Servers are mocked with respx; deadlines use a fake clock, not sleeps."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import respx

from n8n_deploy.base import dates
from n8n_deploy.base.status import ExitStatus
from n8n_deploy.store import schema
from tests.dbfactory import build_at_revision, copy_fixture
from tests.helpers import (
    Run,
    database_rows,
    make_jwt,
    one_line_error,
    sqlite_file,
)

pytestmark = pytest.mark.usefixtures("engine", "no_waiting")

Cli = Callable[..., Run]
PROD = "https://n8n.example.com"
WORKFLOWS = {"data": [], "nextCursor": None}
ACTOR = "alice@laptop"


class FakeClock:
    """The one clock (``base.dates.clock``), moved by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **span: float) -> None:
        self.now += timedelta(**span)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock(datetime.now(timezone.utc).replace(microsecond=0))
    monkeypatch.setattr(dates, "clock", fake)
    return fake


@pytest.fixture(autouse=True)
def actor(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("N8N_DEPLOY_ACTOR", ACTOR)
    return ACTOR


@pytest.fixture
def n8n() -> Iterator[set[str]]:
    """A mocked n8n at PROD accepting the keys in the returned set (401 for others)."""
    valid: set[str] = set()

    def respond(request: httpx.Request) -> httpx.Response:
        if request.headers.get("X-N8N-API-KEY") in valid:
            return httpx.Response(200, json=WORKFLOWS)
        return httpx.Response(401, json={"message": "unauthorized"})

    with respx.mock(assert_all_called=False) as router:
        router.get(url__startswith=PROD).mock(side_effect=respond)
        yield valid


def add(cli: Cli, name: str, key: str, *args: str) -> Run:
    run = cli("apikey", "add", "-", "--name", name, *args, input=key + "\n")
    assert run.exit_code == 0, run.output
    return run


def history(cli: Cli, name: str) -> list[dict[str, object]]:
    run = cli("apikey", "history", name, "--json")
    assert run.exit_code == 0, run.output
    found: list[dict[str, object]] = json.loads(run.stdout)
    return found


def kinds(cli: Cli, name: str) -> list[str]:
    return [str(event["kind"]) for event in history(cli, name)]


def event_count(data_dir: Path) -> int:
    return int(database_rows(data_dir, "SELECT COUNT(*) FROM key_events")[0][0])


# -- the audit trail ------------------------------------------------------------------------


def test_history_shows_who_added_tested_rotated_and_deactivated_a_key_also_once_deleted(
    cli: Cli, n8n: set[str]
) -> None:
    old, new = make_jwt(exp_days=90, sub="old"), make_jwt(exp_days=90, sub="new")
    n8n.update({old, new})
    assert cli("server", "create", "Production", PROD).exit_code == 0
    add(cli, "prod_key", old, "--server", "Production")
    assert cli("apikey", "test", "prod_key").exit_code == 0
    rotated = cli("apikey", "rotate", "prod_key", "-", "--name", "prod_key_2026", input=new)
    assert rotated.exit_code == 0, rotated.output
    assert cli("apikey", "delete", "prod_key", "--confirm").exit_code == 0

    events = history(cli, "prod_key")
    assert [e["kind"] for e in events] == ["added", "tested", "rotated", "deactivated", "deleted"]
    assert {e["actor"] for e in events} == {ACTOR}
    assert events[0]["server"] == "Production"
    assert events[1]["server"] == "Production" and events[1]["outcome"] == "valid"
    assert events[2]["other_name"] == "prod_key_2026"
    # The new key's history starts with the rotation that brought it in.
    assert kinds(cli, "prod_key_2026") == ["added", "tested", "rotated"]
    table = cli("apikey", "history", "prod_key", "--no-emoji")
    assert table.exit_code == 0
    for word in ("added", "tested", "rotated", "deactivated", "deleted", ACTOR):
        assert word in table.stdout
    for secret in (old, new):
        assert secret not in table.output and secret[-12:] not in table.output


def test_each_change_records_exactly_one_event_of_its_kind(cli: Cli, data_dir: Path) -> None:
    key = make_jwt(sub="k")
    add(cli, "k", key)
    assert cli("server", "create", "S", PROD).exit_code == 0
    steps = [
        (("server", "link", "k", "S"), "linked"),
        (("server", "unlink", "k", "S"), "unlinked"),
        (("apikey", "update", "k", "--description", "note"), "described"),
        (("apikey", "update", "k", "--rename", "k2"), "renamed"),
        (("apikey", "deactivate", "k2"), "deactivated"),
        (("apikey", "activate", "k2"), "activated"),
        (("apikey", "get", "k2"), "read"),
        (("apikey", "delete", "k2", "--confirm"), "deleted"),
    ]
    for args, kind in steps:
        before = event_count(data_dir)
        run = cli(*args)
        assert run.exit_code == 0, run.output
        assert event_count(data_dir) == before + 1, args
        assert database_rows(data_dir, "SELECT kind FROM key_events ORDER BY id DESC")[0] == (kind,)
    assert kinds(cli, "k2") == ["added"] + [kind for _, kind in steps]


def test_a_change_that_changes_nothing_or_fails_records_nothing(cli: Cli, data_dir: Path) -> None:
    key = make_jwt(sub="k")
    add(cli, "k", key)
    add(cli, "other", make_jwt(sub="other"))
    before = event_count(data_dir)
    for args in (
        ("apikey", "activate", "k"),  # already active
        ("apikey", "update", "k", "--rename", "other"),  # name taken
        ("apikey", "add", "-", "--name", "k"),  # name taken (with a key on stdin)
        ("server", "link", "k", "nowhere"),  # no such server
        ("apikey", "delete", "missing", "--confirm"),
        ("apikey", "add", "-", "--name", "dup"),  # the same key as 'k'
    ):
        run = cli(*args, input=key if args[:2] == ("apikey", "add") else None)
        assert run.exit_code != 0 or "nothing changed" in run.stdout, args
        assert "Traceback" not in run.output
    assert event_count(data_dir) == before


def test_a_test_records_its_outcome_and_server_with_the_last_used_update(
    cli: Cli, n8n: set[str], data_dir: Path
) -> None:
    good, bad = make_jwt(sub="good"), make_jwt(sub="bad")
    n8n.add(good)
    assert cli("server", "create", "Production", PROD).exit_code == 0
    add(cli, "good", good, "--server", "Production")
    add(cli, "bad", bad, "--server", "Production")
    run = cli("apikey", "test", "--all")
    assert run.exit_code == int(ExitStatus.KEY_REJECTED), run.output
    tested = {
        e["key"]: e
        for e in json.loads(cli("apikey", "events", "--kind", "tested", "--json").stdout)
    }
    assert tested["good"]["outcome"] == "valid" and tested["good"]["server"] == "Production"
    assert tested["bad"]["outcome"] == "rejected"
    assert "exit status 4" in str(tested["bad"]["detail"])
    used = dict(database_rows(data_dir, "SELECT name, last_used_at FROM api_keys"))
    assert used["good"] is not None and used["bad"] is None
    # A key read from stdin is not stored: nothing is recorded for it.
    before = event_count(data_dir)
    cli("apikey", "test", "-", "--server-url", PROD, input=make_jwt(sub="stdin"))
    assert event_count(data_dir) == before


def test_history_of_a_name_leaves_out_a_key_renamed_away_from_it(cli: Cli) -> None:
    add(cli, "alpha", make_jwt(sub="first"))
    assert cli("apikey", "update", "alpha", "--rename", "beta").exit_code == 0
    add(cli, "alpha", make_jwt(sub="second"))
    assert kinds(cli, "alpha") == ["added"]
    assert kinds(cli, "beta") == ["added", "renamed"]


def test_events_filter_by_kind_server_and_time(cli: Cli, clock: FakeClock) -> None:
    assert cli("server", "create", "A", PROD).exit_code == 0
    assert cli("server", "create", "B", "https://b.example.com").exit_code == 0
    add(cli, "a", make_jwt(sub="a"), "--server", "A")
    clock.advance(days=10)
    add(cli, "b", make_jwt(sub="b"), "--server", "B")
    assert cli("apikey", "deactivate", "b").exit_code == 0

    def names(*args: str) -> list[tuple[str, str]]:
        run = cli("apikey", "events", *args, "--json")
        assert run.exit_code == 0, run.output
        return [(e["kind"], e["key"]) for e in json.loads(run.stdout)]

    assert names() == [("added", "a"), ("added", "b"), ("deactivated", "b")]
    assert names("--server", "A") == [("added", "a")]
    assert names("--kind", "deactivated") == [("deactivated", "b")]
    assert names("--since", "5d") == [("added", "b"), ("deactivated", "b")]
    since = (clock.now - timedelta(days=1)).date().isoformat()
    assert names("--since", since) == [("added", "b"), ("deactivated", "b")]
    one_line_error(cli("apikey", "events", "--kind", "stolen"), 2, "--kind stolen")
    one_line_error(cli("apikey", "events", "--since", "yesterday"), 2, "--since")
    # The trail keeps years: a span longer than a --ttl reaches back as far as asked.
    assert len(names("--since", "400d")) == 3
    huge = "9" * 5000  # beyond Python's int() limit: still a usage error, not a crash
    one_line_error(cli("apikey", "events", "--since", f"{huge}d"), 2, "--since")


def test_events_prune_keeps_the_table_bounded(cli: Cli, clock: FakeClock) -> None:
    add(cli, "a", make_jwt(sub="a"))
    clock.advance(days=400)
    add(cli, "b", make_jwt(sub="b"))
    run = cli("apikey", "events", "prune", "--older-than", "365")
    assert run.exit_code == 0 and "1 key event older than 365 days deleted" in run.stdout
    assert kinds(cli, "a") == [] and kinds(cli, "b") == ["added"]


def test_history_of_an_unknown_name_is_not_found(cli: Cli) -> None:
    add(cli, "prod_key", make_jwt(sub="p"))
    run = cli("apikey", "history", "prod_ky")
    one_line_error(run, 1, "API key 'prod_ky' not found")


def test_the_actor_is_the_ci_job_when_the_environment_says_so(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("N8N_DEPLOY_ACTOR")
    for name, value in {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": "team/infra",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_ACTOR": "bob",
    }.items():
        monkeypatch.setenv(name, value)
    add(cli, "ci_key", make_jwt(sub="ci"))
    assert history(cli, "ci_key")[0]["actor"] == "github-actions team/infra run 4242 (bob)"
    monkeypatch.setenv("GITHUB_ACTIONS", "false")
    monkeypatch.setenv("GITLAB_CI", "true")
    monkeypatch.setenv("CI_PROJECT_PATH", "team/infra")
    monkeypatch.setenv("CI_JOB_ID", "77")
    assert cli("apikey", "deactivate", "ci_key").exit_code == 0
    assert history(cli, "ci_key")[1]["actor"] == "gitlab-ci team/infra job 77"


def test_a_key_in_the_environment_never_reaches_the_audit_trail(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = make_jwt(sub="leak")
    monkeypatch.setenv("N8N_DEPLOY_ACTOR", f"bot {secret}")
    add(cli, "k", make_jwt(sub="k"))
    out = cli("apikey", "events", "--json").stdout
    assert secret not in out and secret[:40] not in out and "[API key hidden]" in out


# -- the policy gate ------------------------------------------------------------------------


@pytest.fixture
def registry(cli: Cli, clock: FakeClock, data_dir: Path) -> FakeClock:
    """A registry breaking every rule, built 200 days ago and since."""
    start = clock.now
    clock.now = start - timedelta(days=200)
    assert cli("server", "create", "Lonely", PROD).exit_code == 0
    assert cli("server", "create", "Empty", "https://empty.example.com").exit_code == 0
    assert cli("server", "create", "Pair", "https://pair.example.com").exit_code == 0
    add(cli, "ancient", make_jwt(sub="ancient"), "--server", "Lonely")  # max-age, unused-for
    add(cli, "retired", make_jwt(sub="retired"), "--server", "Empty")
    assert cli("apikey", "deactivate", "retired").exit_code == 0  # inactive-for; Empty: none
    clock.now = start - timedelta(days=1)
    add(cli, "pair_a", make_jwt(exp_days=5, sub="pa"), "--server", "Pair")  # expiring
    add(cli, "pair_b", make_jwt(sub="pb"), "--server", "Pair")
    add(cli, "stray", make_jwt(sub="stray"))  # unlinked
    clock.now = start
    return clock


def audit(cli: Cli, *args: str) -> tuple[int, dict[str, object]]:
    run = cli("apikey", "audit", "--json", *args)
    assert "Traceback" not in run.output
    return run.exit_code, json.loads(run.stdout)


def found(report: dict[str, object]) -> set[tuple[str, str]]:
    return {(str(f["rule"]), str(f["name"])) for f in report["findings"]}  # type: ignore[attr-defined]


def test_audit_finds_each_rule_with_its_fix_and_fails_on_an_error(
    cli: Cli, registry: FakeClock
) -> None:
    status, report = audit(cli)
    assert status == int(ExitStatus.POLICY)
    assert report["ok"] is False and report["exit_status"] == int(ExitStatus.POLICY)
    assert found(report) == {
        ("max-age", "ancient"),
        ("unused-for", "ancient"),
        ("inactive-for", "retired"),
        ("expiring-within", "pair_a"),
        ("unlinked", "stray"),
        ("no-active-key", "Empty"),
        ("single-key", "Lonely"),
    }
    by_rule = {f["rule"]: f for f in report["findings"]}  # type: ignore[attr-defined]
    assert by_rule["max-age"]["severity"] == "error"
    assert "apikey rotate 'ancient'" in by_rule["max-age"]["fix"]
    assert by_rule["unlinked"]["fix"] == "link it: n8n-deploy server link 'stray' SERVER"
    text = cli("apikey", "audit", "--no-emoji")
    assert text.exit_code == int(ExitStatus.POLICY)
    assert "error [max-age] API key 'ancient' is 200 days old (the maximum is 90)" in text.stdout
    assert "1 error, 6 warnings" in text.stdout


def test_audit_passes_when_only_warnings_remain_unless_strict(
    cli: Cli, registry: FakeClock
) -> None:
    status, report = audit(cli, "--max-age", "365")
    assert status == 0 and report["ok"] is True and ("max-age", "ancient") not in found(report)
    assert audit(cli, "--max-age", "365", "--strict")[0] == int(ExitStatus.POLICY)
    everything_off = [
        arg
        for rule in ("max-age", "unused-for", "inactive-for", "expiring-within", "unlinked")
        for arg in ("--skip", rule)
    ] + ["--skip", "no-active-key", "--skip", "single-key"]
    status, report = audit(cli, *everything_off)
    assert status == 0 and report["findings"] == []
    one_line_error(cli("apikey", "audit", "--skip", "nonsense"), 2, "No policy rule named")


@pytest.mark.parametrize("command", ["set", "unset"])
def test_an_unknown_policy_setting_names_every_setting_strict_included(
    cli: Cli, command: str
) -> None:
    args = ("policy", command, "nope", *(["90"] if command == "set" else []))
    result = cli(*args)
    one_line_error(result, 2, "No policy setting named 'nope'")
    assert "single-key, strict" in result.stderr


def test_rule_and_kind_names_are_taken_in_any_case_and_quoted_as_typed(cli: Cli) -> None:
    assert cli("policy", "set", " Max-Age ", "365").exit_code == 0
    assert "policy max-age is back to its default" in cli("policy", "unset", "MAX-AGE").stdout
    skipping = json.loads(cli("apikey", "audit", "--skip", "Single-Key", "--json").stdout)
    assert skipping["policy"]["rules"]["single-key"] == {
        "value": "off",
        "severity": "warning",
        "source": "option",
    }
    assert cli("apikey", "events", "--kind", "ADDED").exit_code == 0
    # Folded, a key typed as a name would lose the shape that the error printer hides.
    one_line_error(cli("policy", "set", "NoPe", "on"), 2, "No policy setting named 'NoPe'")
    one_line_error(cli("apikey", "audit", "--skip", "NoPe"), 2, "No policy rule named 'NoPe'")
    one_line_error(cli("apikey", "events", "--kind", "NoPe"), 2, "--kind NoPe: not an event")


def test_a_negative_number_of_days_is_refused_as_a_value(cli: Cli) -> None:
    one_line_error(cli("policy", "set", "max-age", "-5"), 2, "policy max-age takes a number")


def test_the_teams_policy_is_stored_and_applied_and_options_win(
    cli: Cli, registry: FakeClock
) -> None:
    assert cli("policy", "set", "max-age", "365").exit_code == 0
    assert cli("policy", "set", "single-key", "off").exit_code == 0
    status, report = audit(cli)
    assert status == 0
    assert ("max-age", "ancient") not in found(report)
    assert ("single-key", "Lonely") not in found(report)
    rules = report["policy"]["rules"]  # type: ignore[index]
    assert rules["max-age"] == {"value": 365, "severity": "error", "source": "team policy"}
    assert audit(cli, "--max-age", "30")[0] == int(ExitStatus.POLICY)  # the option wins
    shown = json.loads(cli("policy", "show", "--json").stdout)
    assert shown["rules"]["max-age"]["value"] == 365
    assert cli("policy", "unset", "max-age").exit_code == 0
    assert audit(cli)[0] == int(ExitStatus.POLICY)
    assert cli("policy", "set", "strict", "on").exit_code == 0
    assert audit(cli, "--max-age", "365")[0] == int(ExitStatus.POLICY)
    one_line_error(cli("policy", "set", "max-age", "soon"), 2, "policy max-age takes")
    one_line_error(cli("policy", "set", "max-age", "9" * 5000), 2, "policy max-age takes")
    one_line_error(cli("policy", "set", "single-key", "7"), 2, "policy single-key takes")


def test_an_audit_of_a_clean_registry_exits_zero(cli: Cli) -> None:
    assert cli("server", "create", "S", PROD).exit_code == 0
    add(cli, "a", make_jwt(exp_days=300, sub="a"), "--server", "S")
    add(cli, "b", make_jwt(exp_days=300, sub="b"), "--server", "S")
    run = cli("apikey", "audit", "--no-emoji")
    assert run.exit_code == 0, run.output
    assert "No findings: 2 keys and 1 server checked" in run.stdout


# -- ephemeral keys -------------------------------------------------------------------------


def test_an_ephemeral_key_is_gone_after_its_ttl(
    cli: Cli, clock: FakeClock, data_dir: Path, n8n: set[str]
) -> None:
    key = make_jwt(sub="ci")
    n8n.add(key)
    assert cli("server", "create", "Production", PROD).exit_code == 0
    added = add(cli, "ci_42", key, "--ttl", "2h", "--server", "Production")
    assert "ephemeral: deleted after" in added.stdout
    listed = json.loads(cli("apikey", "list", "--json").stdout)[0]
    assert listed["ephemeral"] is True
    assert listed["delete_after"] == (clock.now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "until" in cli("apikey", "list").stdout
    assert cli("apikey", "test", "ci_42").exit_code == 0

    clock.advance(hours=2, seconds=1)
    refused = cli("apikey", "test", "ci_42")
    one_line_error(refused, int(ExitStatus.KEY_EXPIRED), "API key 'ci_42' is ephemeral")
    # The next command that writes prunes it, and says so in the key's history.
    add(cli, "other", make_jwt(sub="other"))
    assert database_rows(data_dir, "SELECT name FROM api_keys") == [("other",)]
    last = history(cli, "ci_42")[-1]
    assert last["kind"] == "deleted" and "pruned" in str(last["detail"])


def test_apikey_prune_deletes_what_is_due_and_says_what(cli: Cli, clock: FakeClock) -> None:
    add(cli, "ci_1", make_jwt(sub="1"), "--ttl", "30m")
    add(cli, "ci_2", make_jwt(sub="2"), "--expires-at", (clock.now + timedelta(days=2)).isoformat())
    add(cli, "short", make_jwt(exp_days=1, sub="s"))
    clock.advance(hours=1)
    run = cli("apikey", "prune", "--no-emoji")
    assert run.exit_code == 0, run.output
    assert run.stdout == "API key 'ci_1' deleted (ephemeral, deadline passed)\n"
    clock.advance(days=3)
    run = cli("apikey", "prune", "--expired", "--json")
    assert [k["name"] for k in json.loads(run.stdout)["deleted"]] == ["ci_2", "short"]
    assert cli("apikey", "prune").stdout.startswith("Nothing to prune")


def test_no_writer_acts_on_a_key_past_its_deadline(
    cli: Cli, clock: FakeClock, n8n: set[str]
) -> None:
    """A user review found `apikey get` handing out, and `server link` linking, a key a
    few seconds past its deadline, when the last prune was less than a minute old."""
    assert cli("server", "create", "Production", PROD).exit_code == 0
    add(cli, "ci", make_jwt(sub="ci"), "--ttl", "1m")
    add(cli, "ci2", make_jwt(sub="ci2"), "--ttl", "90s")
    clock.advance(seconds=61)
    one_line_error(cli("apikey", "get", "ci"), 1, "API key 'ci' not found")
    clock.advance(seconds=30)  # ci2's deadline passed seconds after that prune
    one_line_error(cli("server", "link", "ci2", "Production"), 1, "API key 'ci2' not found")
    assert kinds(cli, "ci2") == ["added", "deleted"]


def test_apikey_test_prunes_like_every_command_that_writes(
    cli: Cli, clock: FakeClock, data_dir: Path, n8n: set[str]
) -> None:
    gate = make_jwt(sub="gate")
    n8n.add(gate)
    assert cli("server", "create", "Production", PROD).exit_code == 0
    add(cli, "gate", gate, "--server", "Production")
    add(cli, "ci", make_jwt(sub="ci"), "--ttl", "1m", "--server", "Production")
    clock.advance(seconds=61)
    # The gate records its use, and prunes first: no other command needs to run.
    assert cli("apikey", "test", "gate").exit_code == 0
    assert database_rows(data_dir, "SELECT name FROM api_keys") == [("gate",)]
    assert kinds(cli, "ci") == ["added", "deleted"]
    assert history(cli, "ci")[-1]["server"] == "Production"
    assert kinds(cli, "gate") == ["added", "tested"]


@pytest.mark.sqlite_only
def test_a_restored_backup_keeps_no_key_past_its_deadline(
    cli: Cli, clock: FakeClock, data_dir: Path
) -> None:
    add(cli, "ci", make_jwt(sub="ci"), "--ttl", "1h")
    add(cli, "kept", make_jwt(sub="kept"))
    run = cli("db", "backup", str(data_dir / "saved.bak"))
    assert run.exit_code == 0, run.output
    clock.advance(hours=2)
    assert cli("apikey", "prune").exit_code == 0
    restored = cli("db", "restore", str(data_dir / "saved.bak"), "--confirm")
    assert restored.exit_code == 0, restored.output
    assert database_rows(data_dir, "SELECT name FROM api_keys") == [("kept",)]
    assert kinds(cli, "ci")[-1] == "deleted"


def test_a_downgrade_prunes_first_so_no_key_past_its_deadline_becomes_permanent(
    cli: Cli, clock: FakeClock, data_dir: Path
) -> None:
    add(cli, "ci", make_jwt(sub="ci"), "--ttl", "1h")
    add(cli, "later", make_jwt(sub="later"), "--ttl", "1d")
    clock.advance(hours=2)
    down = cli("db", "downgrade", "0006", "--confirm")
    assert down.exit_code == 0, down.output
    assert "ephemeral keys kept as ordinary keys (no deadline): 'later'" in down.output
    assert database_rows(data_dir, "SELECT name FROM api_keys") == [("later",)]


def test_bad_ttl_and_expiry_are_refused_before_anything_is_stored(cli: Cli) -> None:
    key = make_jwt(sub="k")
    for args, starts in (
        (("--ttl", "soon"), "--ttl 'soon': not a duration"),
        (("--ttl", "\u0663h"), "--ttl '\u0663h': not a duration"),  # an Arabic-Indic 3
        (("--ttl", "1d1d"), "--ttl '1d1d': the unit 'd' is given twice"),
        (("--ttl", "9" * 5000 + "h"), "--ttl '999"),  # beyond int()'s limit: no crash
        (("--ttl", "0h"), "--ttl '0h': must be more than 0"),
        (("--ttl", "400d"), "--ttl '400d': must be more than 0 and at most 366 days"),
        (("--expires-at", "2001-01-01"), "--expires-at 2001-01-01: that moment has passed"),
        (("--expires-at", "tomorrow"), "--expires-at 'tomorrow': not a date"),
        (("--ttl", "1h", "--expires-at", "2099-01-01"), "Give either --ttl or --expires-at"),
    ):
        run = cli("apikey", "add", "-", "--name", "k", *args, input=key)
        one_line_error(run, 2, starts)
    assert json.loads(cli("apikey", "list", "--json").stdout) == []


# -- history starts complete on an upgraded database ----------------------------------------


@pytest.mark.sqlite_only
@pytest.mark.parametrize("revision", schema.KNOWN_REVISIONS[:-1])
def test_an_upgraded_database_gives_every_key_a_reconstructed_added_event(
    cli: Cli, data_dir: Path, revision: str
) -> None:
    built = build_at_revision(sqlite_file(data_dir), revision)
    up = cli("db", "upgrade")
    assert up.exit_code == 0, up.output
    rows = database_rows(
        data_dir,
        "SELECT key_id, key_name, kind, at, actor, reconstructed FROM key_events ORDER BY key_id",
    )
    assert rows == [
        (key["id"], key["name"], "added", key["created_at"], "unknown", 1)
        for key in sorted(built["keys"], key=lambda k: k["id"])
    ]
    first = history(cli, "prod_key")
    assert len(first) == 1 and first[0]["reconstructed"] is True
    assert first[0]["at"] == "2025-01-02T03:04:05Z"


@pytest.mark.sqlite_only
def test_a_09_database_upgrades_with_a_starting_history_for_each_of_its_keys(
    cli: Cli, data_dir: Path
) -> None:
    copy_fixture(sqlite_file(data_dir))
    assert cli("db", "upgrade").exit_code == 0
    keys = database_rows(data_dir, "SELECT id, name, created_at FROM api_keys ORDER BY id")
    events = database_rows(
        data_dir, "SELECT key_id, key_name, at FROM key_events WHERE reconstructed = 1"
    )
    assert sorted(events) == sorted(keys) and keys
    for _, name, _ in keys:
        assert kinds(cli, name) == ["added"]


def test_events_outlive_a_downgrade_and_upgrade_only_as_reconstructed(
    cli: Cli, data_dir: Path
) -> None:
    add(cli, "k", make_jwt(sub="k"), "--ttl", "1h")
    assert cli("apikey", "deactivate", "k").exit_code == 0
    down = cli("db", "downgrade", "0006", "--confirm")
    assert down.exit_code == 0, down.output
    assert "ephemeral keys kept as ordinary keys (no deadline): 'k'" in down.output
    assert cli("db", "upgrade").exit_code == 0
    assert [(e["kind"], e["reconstructed"]) for e in history(cli, "k")] == [("added", True)]


def test_a_command_on_a_key_pruned_at_its_deadline_finds_it_gone_and_it_stays_gone(
    cli: Cli, clock: FakeClock, data_dir: Path
) -> None:
    add(cli, "ci", make_jwt(sub="ci"), "--ttl", "90s")
    clock.advance(minutes=2)
    one_line_error(cli("apikey", "deactivate", "ci"), 1, "API key 'ci' not found")
    # The prune committed on its own: the failed command did not bring the key back.
    assert database_rows(data_dir, "SELECT COUNT(*) FROM api_keys") == [(0,)]
    assert kinds(cli, "ci") == ["added", "deleted"]


def test_events_about_several_servers_are_found_by_each(cli: Cli, n8n: set[str]) -> None:
    old, new = make_jwt(sub="o"), make_jwt(sub="n")
    n8n.update({old, new})
    for name, url in (("Production", PROD), ("Staging", f"{PROD}/staging")):
        assert cli("server", "create", name, url).exit_code == 0
    add(cli, "k", old, "--server", "Production")
    assert cli("server", "link", "k", "Staging").exit_code == 0
    assert cli("apikey", "rotate", "k", "-", "--name", "k2", input=new).exit_code == 0
    for server in ("Production", "Staging"):
        run = cli("apikey", "events", "--server", server, "--kind", "rotated", "--json")
        assert [e["key"] for e in json.loads(run.stdout)] == ["k"], server
    assert json.loads(cli("apikey", "events", "--server", "Prod", "--json").stdout) == []


def test_numbers_too_large_are_usage_errors_not_crashes(cli: Cli) -> None:
    key = make_jwt(sub="k")
    one_line_error(
        cli("apikey", "add", "-", "--name", "k", "--ttl", "9999999999999999d", input=key),
        2,
        "--ttl '9999999999999999d': must be more than 0 and at most 366 days",
    )
    one_line_error(
        cli("apikey", "add", "-", "--name", "k", "--expires-at", "9999-12-31", input=key),
        2,
        "--expires-at 9999-12-31: more than 366 days away",
    )
    for args in (
        ("apikey", "audit", "--max-age", "1000000000"),
        ("apikey", "events", "prune", "--older-than", "99999999"),
    ):
        run = cli(*args)
        assert (
            run.exit_code == 2 and "Traceback" not in run.output and "unexpected" not in run.output
        )
    one_line_error(cli("policy", "set", "max-age", "٣٠"), 2, "policy max-age takes")


def test_the_audit_help_lists_each_rule_on_its_own_lines(cli: Cli) -> None:
    """Not run together into one paragraph (a new-user review): each rule starts a line,
    its text folded under it, within 80 columns."""
    from n8n_deploy.base.policy import RULES

    lines = cli("apikey", "audit", "--help").stdout.splitlines()
    for rule in RULES:
        assert any(line.startswith(f"    {rule.name}: ") for line in lines), rule.name
    assert all(len(line) <= 80 for line in lines)
