"""Key hygiene a team can enforce: ``apikey history``, ``apikey events``, ``apikey audit``,
``apikey prune`` and ``n8n-deploy policy``.

Commands read their options, call the use cases (``apikeys.audit``, ``store.pruning``) and
the repositories, and render with ``cli.views``.  The database layer is imported inside
the command bodies (fast --help).
"""

from __future__ import annotations

from textwrap import fill
from typing import TYPE_CHECKING, Annotated

import typer

from n8n_deploy.base.dates import MAX_DAYS
from n8n_deploy.base.errors import UsageError
from n8n_deploy.base.events import EVENT_KINDS
from n8n_deploy.base.names import lookup_name
from n8n_deploy.base.policy import RULE_NAMES, RULES, STRICT
from n8n_deploy.base.status import ExitStatus
from n8n_deploy.cli.helptext import examples
from n8n_deploy.cli.json_writer import print_json
from n8n_deploy.cli.options import (
    JsonOption,
    KeyNameArgument,
    NoEmojiOption,
    WideOption,
    server_option,
)
from n8n_deploy.cli.output import icon, note, say
from n8n_deploy.cli.state import state

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

#: How many events ``apikey history`` shows unless --limit says otherwise.
HISTORY_LIMIT = 50

HISTORY_HELP = f"""Show everything that happened to a key: who added, tested, rotated,
linked, read and retired it, and when (UTC), also after it was deleted or renamed.

The newest {HISTORY_LIMIT} events are shown unless --limit says otherwise (0: all). Keys
stored before the audit trail existed start with a reconstructed "added" event at their
creation time (who added them is not known). The key itself is never recorded.
"""


def history(
    ctx: typer.Context,
    name: KeyNameArgument,
    limit: Annotated[
        int,
        typer.Option("--limit", metavar="N", min=0, help="Show the newest N events (0: all)."),
    ] = HISTORY_LIMIT,
    json_output: JsonOption = False,
    no_emoji: NoEmojiOption = False,
    wide: WideOption = False,
) -> None:
    """Show a key's history (help: HISTORY_HELP)."""
    from n8n_deploy.cli.views import event_record, print_events_table
    from n8n_deploy.store.events import EventRepository
    from n8n_deploy.store.repositories import ApiKeyRepository

    wanted = lookup_name(name)
    with state(ctx).session() as session:
        events, total = EventRepository(session).history(wanted, limit=limit or None)
        if not events:
            ApiKeyRepository(session).get(wanted)  # NotFoundError, with close names
        records = [event_record(event) for event in events]
    if json_output:
        print_json(records)
        return
    if not events:
        note(f"API key '{wanted}' has no recorded events.")
        return
    print_events_table(
        events, emoji=not no_emoji, title=f"History of {wanted}", with_key=False, wide=wide
    )
    if total > len(events):
        note(f"{total - len(events)} older events not shown; --limit 0 shows all")


EVENTS_HELP = f"""List key events across the registry, oldest first, for a review or a
SIEM: filter by time, server and kind.

Kinds: {", ".join(EVENT_KINDS)}. 'apikey events prune --older-than DAYS' keeps the table
bounded.
"""

events_app = typer.Typer(
    help="List key events across the registry; 'prune' deletes old ones.",
    rich_markup_mode=None,
    invoke_without_command=True,
)


@events_app.callback(
    invoke_without_command=True,
    help=EVENTS_HELP,
    epilog=examples(
        "n8n-deploy apikey events --since 7d --kind read --kind deleted",
        "n8n-deploy apikey events --server Production --json",
    ),
)
def events(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="WHEN",
            help="Only events at or after WHEN: a date (2026-12-01, UTC), a date and time "
            "(2026-12-01T18:00Z) or a span back from now (7d, 12h).",
        ),
    ] = None,
    server: Annotated[str | None, server_option("Only events about this server.")] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", metavar="KIND", help="Only events of KIND (repeatable)."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", metavar="N", min=0, help="Only the newest N events.")
    ] = 0,
    json_output: JsonOption = False,
    no_emoji: NoEmojiOption = False,
    wide: WideOption = False,
) -> None:
    """List key events (help: EVENTS_HELP)."""
    if ctx.invoked_subcommand is not None:
        return
    from n8n_deploy.base.dates import parse_since
    from n8n_deploy.cli.views import event_record, print_events_table
    from n8n_deploy.store.events import EventRepository

    typed = kind or []
    kinds = [k.strip().lower() for k in typed]
    # Quoted as typed: folded, a key typed here would lose the shape the printer hides.
    unknown = [raw for raw, k in zip(typed, kinds, strict=True) if k not in EVENT_KINDS]
    if unknown:
        raise UsageError(
            f"--kind {unknown[0]}: not an event kind", hint=f"Use one of: {', '.join(EVENT_KINDS)}"
        )
    moment = parse_since(since) if since is not None else None
    server_name = lookup_name(server, "server") if server is not None else None
    with state(ctx).session() as session:
        found = EventRepository(session).list(
            since=moment, server=server_name, kinds=kinds, limit=limit or None
        )
        records = [event_record(event) for event in found]
    if json_output:
        print_json(records)
        return
    if not found:
        note("No key events match.")
        return
    print_events_table(found, emoji=not no_emoji, title="Key events", wide=wide)


@events_app.command(
    "prune",
    epilog=examples("n8n-deploy apikey events prune --older-than 365"),
)
def prune_events(
    ctx: typer.Context,
    older_than: Annotated[
        int,
        typer.Option(
            "--older-than",
            metavar="DAYS",
            min=1,
            max=MAX_DAYS,
            help="Delete the events more than DAYS days old.",
            show_default=False,
        ),
    ],
    json_output: JsonOption = False,
) -> None:
    """Delete key events older than DAYS days, to keep the audit trail bounded.

    Keys are not touched; the newer events stay.
    """
    from datetime import timedelta

    from n8n_deploy.base.dates import utcnow
    from n8n_deploy.store.events import EventRepository

    before = utcnow() - timedelta(days=older_than)

    def work(session: Session) -> int:
        return EventRepository(session).prune(before)

    removed = state(ctx).database().write(work)
    if json_output:
        print_json({"deleted": removed, "older_than_days": older_than})
        return
    say(f"{removed} key event{'' if removed == 1 else 's'} older than {older_than} days deleted")


# -- apikey audit -------------------------------------------------------------------------

#: The rules' lines in the audit's help: click indents them by 2, under 80 columns.
_RULE_WIDTH = 76

AUDIT_HELP = f"""Check the whole registry against the team's policy and list each finding
with the command that fixes it.

\b
Rules (name: what it finds, severity, default):
{
    chr(10).join(
        fill(
            f"{r.name}: {r.finds}; {r.severity}, default {r.default_days if r.has_days else 'on'}",
            _RULE_WIDTH,
            initial_indent="  ",
            subsequent_indent="      ",
            break_on_hyphens=False,
        )
        for r in RULES
    )
}

Each rule's setting comes from its option here, else the team's policy in the database
('n8n-deploy policy set RULE VALUE'), else its default. --skip RULE turns a rule off.
Exit status {int(ExitStatus.POLICY)} when a finding is an error (with --strict: any
finding), 0 otherwise: a scheduled CI job fails on it.
"""


def _days_option(name: str, what: str) -> object:
    return typer.Option(
        f"--{name}",
        metavar="DAYS",
        min=1,
        max=MAX_DAYS,
        help=f"{what} (default: the policy's).",
        show_default=False,
    )


def audit(
    ctx: typer.Context,
    max_age: Annotated[
        int | None, _days_option("max-age", "Active keys older than DAYS days are an error")
    ] = None,
    unused_for: Annotated[
        int | None, _days_option("unused-for", "Active keys unused for DAYS days")
    ] = None,
    expiring_within: Annotated[
        int | None, _days_option("expiring-within", "Keys expiring within DAYS days")
    ] = None,
    inactive_for: Annotated[
        int | None, _days_option("inactive-for", "Inactive keys kept more than DAYS days")
    ] = None,
    skip: Annotated[
        list[str] | None,
        typer.Option("--skip", metavar="RULE", help="Turn RULE off (repeatable)."),
    ] = None,
    strict: Annotated[
        bool | None,
        typer.Option("--strict/--no-strict", help="Fail on warnings too (default: the policy's)."),
    ] = None,
    json_output: JsonOption = False,
    no_emoji: NoEmojiOption = False,
) -> None:
    """Check the registry against the policy (help: AUDIT_HELP)."""
    from n8n_deploy.apikeys.audit import audit_registry
    from n8n_deploy.base.policy import PREFIX, resolve_policy, rule
    from n8n_deploy.store.events import SettingsRepository

    skipped = tuple(rule(name).name for name in skip or [])
    options = {
        "max-age": max_age,
        "unused-for": unused_for,
        "expiring-within": expiring_within,
        "inactive-for": inactive_for,
    }
    emoji = not no_emoji
    with state(ctx).session() as session:
        stored = {
            name[len(PREFIX) :]: row.value
            for name, row in SettingsRepository(session).all(PREFIX).items()
        }
        policy = resolve_policy(stored, options=options, skipped=skipped, strict=strict)
        report = audit_registry(session, policy)
    if json_output:
        print_json(report.to_dict())
    else:
        for finding in report.findings:
            mark = icon("fail" if finding.severity == "error" else "warn", emoji)
            say(f"{mark}{finding.severity} [{finding.rule}] {finding.message}")
            say(f"    fix: {finding.fix}")
        line = report.summary()
        if report.failing():
            line += f" (exit status {int(ExitStatus.POLICY)})"
        say(("" if report.findings else icon("ok", emoji)) + line)
    if report.exit_status != ExitStatus.SUCCESS:
        raise typer.Exit(int(report.exit_status))


# -- apikey prune -------------------------------------------------------------------------

PRUNE_HELP = """Delete every ephemeral key past its deadline ('apikey add --ttl'), and with
--expired every key whose JWT exp has passed, printing what was removed.

Every command that writes also prunes ephemeral keys first (one read when none is due);
this does it on its own. Each removal is recorded in the key's history.
"""


def prune(
    ctx: typer.Context,
    expired: Annotated[
        bool, typer.Option("--expired", help="Also delete keys whose JWT exp has passed.")
    ] = False,
    json_output: JsonOption = False,
    no_emoji: NoEmojiOption = False,
) -> None:
    """Delete ephemeral keys past their deadline (help: PRUNE_HELP)."""
    from n8n_deploy.store.pruning import PrunedKey, prune_keys

    database = state(ctx).database()

    def work(conn: Connection) -> list[PrunedKey]:
        return prune_keys(conn, expired=expired, actor=database.settings.actor)

    removed = database.write_rows(work, before_write=False)  # this is the prune
    if json_output:
        print_json({"deleted": [key.to_dict() for key in removed]})
        return
    if not removed:
        say(
            "Nothing to prune: no ephemeral key is past its deadline"
            + (" and no key has expired" if expired else "")
        )
        return
    for key in removed:
        why = "ephemeral, deadline passed" if key.reason == "ephemeral" else "expired"
        linked = f", unlinked from {', '.join(key.servers)}" if key.servers else ""
        say(f"{icon('trash', not no_emoji)}API key '{key.name}' deleted ({why}{linked})")


# -- n8n-deploy policy --------------------------------------------------------------------

policy_app = typer.Typer(
    help="The team's audit policy, stored in the database: every member and runner "
    "applies the same rules.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

RULE_LIST = ", ".join((*RULE_NAMES, STRICT))


@policy_app.command(
    "set",
    epilog=examples("n8n-deploy policy set max-age 60", "n8n-deploy policy set single-key off"),
    # A negative number is a value to refuse as such, not an unknown option.
    context_settings={"ignore_unknown_options": True},
)
def policy_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="RULE", help=f"One of: {RULE_LIST}.")],
    value: Annotated[
        str,
        typer.Argument(
            metavar="VALUE", help="Days (1-36500) or off for a rule with DAYS; on or off else."
        ),
    ],
) -> None:
    """Set a rule of the team's audit policy (see 'apikey audit --help' for the rules)."""
    from n8n_deploy.base.policy import PREFIX, check_setting, parse_value
    from n8n_deploy.store.events import SettingsRepository

    rule_name = check_setting(name)
    stored = parse_value(rule_name, value)

    def work(session: Session) -> None:
        SettingsRepository(session).set(PREFIX + rule_name, stored)

    state(ctx).database().write(work)
    say(f"policy {rule_name} = {stored} (for everyone using this database)")


@policy_app.command("unset", epilog=examples("n8n-deploy policy unset max-age"))
def policy_unset(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="RULE", help=f"One of: {RULE_LIST}.")],
) -> None:
    """Go back to a rule's default."""
    from n8n_deploy.base.policy import PREFIX, check_setting
    from n8n_deploy.store.events import SettingsRepository

    rule_name = check_setting(name)

    def work(session: Session) -> bool:
        return SettingsRepository(session).unset(PREFIX + rule_name)

    if state(ctx).database().write(work):
        say(f"policy {rule_name} is back to its default")
    else:
        say(f"policy {rule_name} was not set; nothing changed")


@policy_app.command(
    "show", epilog=examples("n8n-deploy policy show", "n8n-deploy policy show --json")
)
def policy_show(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Show the rules in force, each with its value and where it comes from."""
    from n8n_deploy.base.policy import PREFIX, resolve_policy, rule
    from n8n_deploy.cli.output import print_table
    from n8n_deploy.store.events import SettingsRepository

    with state(ctx).session() as session:
        rows = SettingsRepository(session).all(PREFIX)
        stored = {name[len(PREFIX) :]: row.value for name, row in rows.items()}
        by = {name[len(PREFIX) :]: row.updated_by for name, row in rows.items()}
    policy = resolve_policy(stored)
    if json_output:
        print_json(policy.to_dict())
        return
    table = []
    for name, entry in policy.to_dict()["rules"].items():  # type: ignore[attr-defined]
        source = entry["source"] + (f" (set by {by[name]})" if name in by else "")
        table.append([name, str(entry["value"]), entry["severity"], source, rule(name).finds])
    table.append(
        [
            STRICT,
            "on" if policy.strict else "off",
            "-",
            "team policy" if STRICT in stored else "default",
            "warnings fail the audit too",
        ]
    )
    print_table(
        "Audit policy",
        ("Rule", "Value", "Severity", "Source", "Finds"),
        table,
        plain=True,
        keep_whole=("Rule", "Value"),
        droppable=("Finds", "Source"),
    )
