"""``n8n-deploy apikey ...``: store, list, show, test and retire API keys.

Commands read their input, call ``n8n_deploy.apikeys.add`` / the repositories, and render with
``cli.views``.  The database layer is imported inside the command bodies (fast --help).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from n8n_deploy.store.reads import StoredKey

from n8n_deploy.base.dates import MAX_DAYS, human_time
from n8n_deploy.base.errors import UsageError
from n8n_deploy.base.keyformat import EXPIRY_WARNING_DAYS
from n8n_deploy.base.names import MAX_NAME_LENGTH, clean_name, lookup_name
from n8n_deploy.base.settings import SERVER_URL_ENV
from n8n_deploy.base.status import ExitStatus
from n8n_deploy.cli import prompts
from n8n_deploy.cli.helptext import examples
from n8n_deploy.cli.json_writer import print_json
from n8n_deploy.cli.options import (
    ConfirmOption,
    JsonOption,
    KeyNameArgument,
    NoEmojiOption,
    UnmaskOption,
    WideOption,
    description_option,
    server_option,
)
from n8n_deploy.cli.output import icon, note, say, warn
from n8n_deploy.cli.state import state

app = typer.Typer(
    help="Store, list, test and retire n8n API keys.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

ADD_EXAMPLE = "n8n-deploy apikey add - --name NAME"


def _q(name: str) -> str:
    return shlex.quote(name)


ADD_HELP = f"""Store an API key under a name, checking its format first.

The key must be an n8n JWT (it is decoded, never verified: only the server can) or a
legacy n8n_api_ key. Surrounding whitespace is stripped. An expired key is refused
(exit {int(ExitStatus.KEY_EXPIRED)}); one expiring within {EXPIRY_WARNING_DAYS} days is
stored with a warning. Without --server, {SERVER_URL_ENV} links the key to the server with
that URL, created (named host[:port]) when there is none.
"""


@app.command(
    "add",
    help=ADD_HELP,
    epilog=examples(
        'echo "$KEY" | n8n-deploy apikey add - --name prod_key --server Production',
        'n8n-deploy apikey add - --name ci_key --description "CI deploys" < key.txt',
    ),
)
def add(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Option(
            "--name",
            metavar="NAME",
            help="Unique name for the key: trimmed, UTF-8 and emoji welcome, at most "
            f"{MAX_NAME_LENGTH} characters, no control characters.",
            show_default=False,
        ),
    ],
    key: Annotated[
        str | None,
        typer.Argument(
            metavar="KEY|-",
            help="The API key, or - to read it from stdin. Left out: prompted for without "
            "echo at a terminal, read from stdin when piped. A key typed here stays in "
            "shell history and shows in the process list (a warning says so).",
            show_default=False,
        ),
    ] = None,
    server: Annotated[
        list[str] | None,
        server_option(
            "Link the key to this server; a missing one is created (its URL from "
            f"{SERVER_URL_ENV}, or set later with 'server update NAME --url URL'). Give it "
            "once; link more servers afterwards with 'server link KEY SERVER'."
        ),
    ] = None,
    description: Annotated[str | None, description_option("Optional note about the key.")] = None,
    ttl: Annotated[
        str | None,
        typer.Option(
            "--ttl",
            metavar="DURATION",
            help="Ephemeral: delete the key after DURATION (30m, 2h, 1d12h; at most 366d), "
            "e.g. for a CI job's own key.",
            show_default=False,
        ),
    ] = None,
    expires_at: Annotated[
        str | None,
        typer.Option(
            "--expires-at",
            metavar="WHEN",
            help="Ephemeral: delete the key after WHEN (ISO 8601, UTC unless a zone is given).",
            show_default=False,
        ),
    ] = None,
    no_emoji: NoEmojiOption = False,
    json_output: JsonOption = False,
) -> None:
    """Store an API key under a name (help: ADD_HELP)."""
    from n8n_deploy.apikeys import add as adding
    from n8n_deploy.cli.views import key_record

    emoji = not no_emoji
    clean_name(name)  # refuse a bad name before asking for the key
    delete_after = _deadline(ttl, expires_at)
    from_argument = key is not None and key != "-"
    raw = prompts.read_key(key, prompt="API key (input hidden)", example=ADD_EXAMPLE)
    new = adding.plan_new_key(
        name,
        raw,
        description=description,
        server=_one_server(server),
        server_url=state(ctx).settings.server_url,
        delete_after=delete_after,
    )

    def store(session: Session) -> tuple[adding.AddedKey, dict[str, object]]:
        added = adding.store_new_key(session, new)
        return added, key_record(added.key)

    added, record = state(ctx).database().write(store)
    if from_argument:  # said once the key is stored, so that an error stays one line
        prompts.warn_key_on_command_line(
            f"n8n-deploy apikey add - --name {_q(new.name)}", emoji=emoji
        )
    for message in added.warnings:
        warn(message, emoji=emoji)
    if json_output:
        print_json(record)
        return
    line = f"{icon('ok', emoji)}API key '{added.key.name}' added"
    if added.server is not None:
        if added.server_created:
            where = added.server.url or "no URL yet"
            line += f", linked to new server '{added.server.name}' ({where})"
        else:
            line += f", linked to server '{added.server.name}'"
    if delete_after is not None:
        line += f"; ephemeral: deleted after {human_time(delete_after)} UTC"
    say(line)


def _deadline(ttl: str | None, expires_at: str | None) -> datetime | None:
    """When an ephemeral key is deleted (--ttl or --expires-at); None: an ordinary key."""
    from n8n_deploy.base.dates import parse_duration, parse_moment, utcnow

    if ttl is not None and expires_at is not None:
        raise UsageError("Give either --ttl or --expires-at, not both")
    if ttl is not None:
        return utcnow() + parse_duration(ttl, "--ttl")
    if expires_at is not None:
        from n8n_deploy.base.dates import MAX_TTL

        moment = parse_moment(expires_at, "--expires-at")
        if moment <= utcnow():
            raise UsageError(
                f"--expires-at {expires_at}: that moment has passed",
                hint="Give a moment in the future (UTC), or --ttl DURATION",
            )
        if moment > utcnow() + MAX_TTL:
            raise UsageError(
                f"--expires-at {expires_at}: more than {MAX_TTL.days} days away",
                hint="An ephemeral key is for a pipeline; store an ordinary key instead",
            )
        return moment
    return None


@app.command(
    "list",
    epilog=examples(
        "n8n-deploy apikey list --expiring-within 14 --sort expires",
        "n8n-deploy apikey list --server Production --active --json",
    ),
)
def list_keys(
    ctx: typer.Context,
    server: Annotated[str | None, server_option("Only keys linked to this server.")] = None,
    only_active: Annotated[
        bool, typer.Option("--active", help="Only active keys. Default: all.")
    ] = False,
    only_inactive: Annotated[
        bool, typer.Option("--inactive", help="Only deactivated keys. Default: all.")
    ] = False,
    expired: Annotated[
        bool, typer.Option("--expired", help="Only keys whose expiry date has passed.")
    ] = False,
    expiring_within: Annotated[
        int | None,
        typer.Option(
            "--expiring-within",
            metavar="DAYS",
            min=0,
            max=MAX_DAYS,
            help="Only keys that expire within DAYS days (expired ones included).",
        ),
    ] = None,
    unused_for: Annotated[
        int | None,
        typer.Option(
            "--unused-for",
            metavar="DAYS",
            min=0,
            max=MAX_DAYS,
            help="Only keys not used (tested) for DAYS days, never-used ones included.",
        ),
    ] = None,
    sort: Annotated[
        str,
        typer.Option(
            "--sort",
            metavar="COLUMN",
            help=f"Order by {', '.join(SORT_KEYS)} (default: name).",
        ),
    ] = "name",
    no_emoji: NoEmojiOption = False,
    unmask: UnmaskOption = False,
    json_output: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """List stored API keys, masked (last 4 characters only).

    Columns: Name, Created, Last Used, Status, Expires, Servers, Key, Description.
    Timestamps are UTC. --json prints an array (ISO-8601 UTC timestamps, [] when empty).
    """
    from n8n_deploy.base.dates import utcnow
    from n8n_deploy.cli.views import (
        key_listing_rows,
        key_record,
        print_key_listing,
        print_key_rows,
        print_keys_table,
    )

    if sort not in SORT_KEYS:
        raise UsageError(f"--sort {sort}: not a column", hint=f"Use one of: {', '.join(SORT_KEYS)}")
    if only_active and only_inactive:
        raise UsageError(
            "--active and --inactive together would list nothing", hint="Give one of them"
        )
    active = True if only_active else False if only_inactive else None
    emoji = not no_emoji
    # Masked keys in name order, as stored: JSON and tables written straight from the rows.
    as_stored = not unmask and sort == "name" and expired is False
    as_stored = as_stored and expiring_within is None and unused_for is None
    with state(ctx).reading() as reader:
        linked_to = reader.server(lookup_name(server, "server")) if server is not None else None
        server_id = linked_to.id if linked_to else None
        if as_stored:
            listing = reader.key_listing(active=active, server_id=server_id)
            keys = []
        else:
            keys = _filtered(
                reader.keys(active=active, server_id=server_id),
                expired=expired,
                expiring_within=expiring_within,
                unused_for=unused_for,
                sort=sort,
            )
        listed = listing.rows if as_stored else keys
        store_empty = not (as_stored and json_output) and not listed and not reader.key_names()
    now = utcnow()  # one moment for every key's status, as in the table
    if as_stored and json_output:
        print_key_listing(listing, now=now)
        return
    if unmask:
        prompts.warn_unmasked(emoji=emoji)
    if json_output:
        print_json([key_record(key, unmask=unmask, now=now) for key in keys], unmask=unmask)
        return
    if store_empty:
        note(
            "No API keys stored yet. Add your first one with: "
            'echo "$KEY" | n8n-deploy apikey add - --name NAME'
        )
        return
    if not listed:
        note(f"No API keys match ({_describe_filter(server, active)}).")
        return
    if as_stored:
        print_key_rows(
            key_listing_rows(listing, emoji=emoji, now=now), emoji=emoji, unmask=False, wide=wide
        )
        return
    print_keys_table(keys, emoji=emoji, unmask=unmask, wide=wide)


SORT_KEYS = ("name", "created", "last-used", "expires")


def _filtered(
    keys: Sequence[StoredKey],
    *,
    expired: bool,
    expiring_within: int | None,
    unused_for: int | None,
    sort: str,
) -> list[StoredKey]:
    """The keys the list filters keep, in the order --sort asks for (missing dates last)."""
    from datetime import datetime, timedelta, timezone

    from n8n_deploy.base.dates import utcnow
    from n8n_deploy.cli.views import key_expiry

    now = utcnow()
    filtering = expired or expiring_within is not None or unused_for is not None
    kept = [] if filtering else list(keys)
    for key in keys if filtering else ():
        expires = key_expiry(key)
        if expired and (expires is None or expires > now):
            continue
        if expiring_within is not None and (
            expires is None or expires > now + timedelta(days=expiring_within)
        ):
            continue
        if unused_for is not None:
            used = key.last_used_at
            if used is not None and used > now - timedelta(days=unused_for):
                continue
        kept.append(key)
    last = datetime.max.replace(tzinfo=timezone.utc)
    order = {
        "name": lambda k: (k.name,),
        "created": lambda k: (k.created_at, k.name),
        "last-used": lambda k: (k.last_used_at or last, k.name),
        "expires": lambda k: (key_expiry(k) or last, k.name),
    }[sort]
    return sorted(kept, key=order)


def _warn_stranded(servers: Sequence[str], emoji: bool) -> None:
    """A server left with no active key cannot be deployed to: say so (--confirm or not)."""
    for server in servers:
        warn(
            f"server '{server}' has no active API key left; add or activate one before the "
            f"next deploy (n8n-deploy apikey add - --name NAME --server {_q(server)})",
            emoji=emoji,
        )


def _one_server(values: list[str] | None) -> str | None:
    """The one --server given; a repeated one is refused, not resolved silently."""
    if not values:
        return None
    if len(set(values)) > 1:
        shown = ", ".join(f"'{value}'" for value in values)
        raise UsageError(
            f"--server is given {len(values)} times ({shown}); a key is added with one",
            hint="Add it with one --server, then: n8n-deploy server link KEY SERVER for each "
            "of the others",
        )
    return values[0]


def _describe_filter(server: str | None, active: bool | None) -> str:
    parts = []
    if active is not None:
        parts.append("active" if active else "inactive")
    if server is not None:
        parts.append(f"linked to server '{server.strip()}'")
    return ", ".join(parts)


@app.command(
    "show",
    epilog=examples("n8n-deploy apikey show prod_key", "n8n-deploy apikey show prod_key --json"),
)
def show(
    ctx: typer.Context,
    name: KeyNameArgument,
    no_emoji: NoEmojiOption = False,
    unmask: UnmaskOption = False,
    json_output: JsonOption = False,
) -> None:
    """Show one API key: all its fields and linked servers."""
    from n8n_deploy.cli.views import key_record, print_key_details

    emoji = not no_emoji
    with state(ctx).reading() as reader:
        key = reader.key(lookup_name(name))
    record = key_record(key, unmask=unmask)
    if unmask:
        prompts.warn_unmasked(emoji=emoji)
    if json_output:
        print_json(record, unmask=unmask)
    else:
        print_key_details(key, emoji=emoji, unmask=unmask)


GET_HELP = f"""Print the raw key and nothing else, for scripts.

A deactivated key is refused (exit {int(ExitStatus.KEY_INACTIVE)}); at a terminal a
warning on stderr says the key is on the screen. Reading a key is not a use: last_used_at
is not changed, but the read is recorded in the key's history (so it needs a database it
can write to).
"""


@app.command(
    "get",
    help=GET_HELP,
    epilog=examples('export N8N_API_KEY="$(n8n-deploy apikey get prod_key)"'),
)
def get(ctx: typer.Context, name: KeyNameArgument, no_emoji: NoEmojiOption = False) -> None:
    """Print the raw key (help: GET_HELP)."""
    import sys

    from n8n_deploy.base.errors import KeyInactiveError
    from n8n_deploy.store.repositories import ApiKeyRepository

    def read(session: Session) -> tuple[str, str, bool]:
        repo = ApiKeyRepository(session)
        key = repo.get(lookup_name(name))
        if key.is_active:  # handed out: recorded before it is printed
            repo.events.record("read", key)
        return key.name, key.api_key, key.is_active

    key_name, secret, active = state(ctx).database().write(read)
    if not active:
        raise KeyInactiveError(
            f"API key '{key_name}' is inactive; it is not handed out",
            hint=f"Reactivate it if it should be in use: n8n-deploy apikey activate {_q(key_name)}",
        )
    if prompts.stdout_is_terminal():
        warn(
            "the raw key is on the screen; use it in $(...) or a pipe to keep it off it",
            emoji=not no_emoji,
        )
    sys.stdout.write(secret + "\n")
    sys.stdout.flush()


@app.command(
    "update",
    short_help="Change a key's description or name.",
    epilog=examples(
        'n8n-deploy apikey update prod_key --description "CI deploys"',
        "n8n-deploy apikey update prod_key --rename prod_key_2026",
    ),
)
def update(
    ctx: typer.Context,
    name: KeyNameArgument,
    description: Annotated[
        str | None, description_option('New description; --description "" clears it.')
    ] = None,
    rename: Annotated[
        str | None, typer.Option("--rename", metavar="NEW", help="New unique name.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Change a key's description or name; the key itself and its links stay."""
    from n8n_deploy.base.names import clean_description
    from n8n_deploy.cli.views import key_record
    from n8n_deploy.store.repositories import ApiKeyRepository

    if description is None and rename is None:
        raise UsageError("Nothing to change", hint="Give --description TEXT and/or --rename NEW")
    new_name = clean_name(rename) if rename is not None else None
    new_description = clean_description(description) if description is not None else None
    if description is not None and new_description is None:
        new_description = ""  # --description "" clears it

    def change(session: Session) -> tuple[str, dict[str, object]]:
        repo = ApiKeyRepository(session)
        key = repo.get(lookup_name(name))
        before = key.name
        repo.update(key, name=new_name, description=new_description)
        return before, key_record(key)

    before, record = state(ctx).database().write(change)
    if json_output:
        print_json(record)
        return
    renamed = f", renamed to '{record['name']}'" if record["name"] != before else ""
    say(f"API key '{before}' updated{renamed}")


DEACTIVATE_HELP = f"""Deactivate a key (soft delete); 'apikey activate' undoes it.

The key is kept and listed as inactive; commands that would use it refuse it
(exit {int(ExitStatus.KEY_INACTIVE)}). Repeating it changes nothing."""


@app.command(
    "deactivate",
    help=DEACTIVATE_HELP,
    epilog=examples("n8n-deploy apikey deactivate old_key"),
)
def deactivate(
    ctx: typer.Context,
    name: KeyNameArgument,
    no_emoji: NoEmojiOption = False,
    json_output: JsonOption = False,
) -> None:
    """Deactivate a key (soft delete); 'apikey activate' undoes it. (help: DEACTIVATE_HELP)"""
    _set_active(ctx, name, active=False, emoji=not no_emoji, json_output=json_output)


@app.command("activate", epilog=examples("n8n-deploy apikey activate old_key"))
def activate(
    ctx: typer.Context,
    name: KeyNameArgument,
    no_emoji: NoEmojiOption = False,
    json_output: JsonOption = False,
) -> None:
    """Make a deactivated key usable again. Repeating it changes nothing."""
    _set_active(ctx, name, active=True, emoji=not no_emoji, json_output=json_output)


def _set_active(
    ctx: typer.Context, name: str, *, active: bool, emoji: bool, json_output: bool = False
) -> None:
    from n8n_deploy.cli.views import key_record
    from n8n_deploy.store.repositories import ApiKeyRepository

    with state(ctx).session(write=True) as session:
        repo = ApiKeyRepository(session)
        key = repo.get(lookup_name(name))
        stranded = (
            [] if active or not key.is_active else repo.servers_left_without_an_active_key(key)
        )
        changed = repo.set_active(key, active)
        record = key_record(key)
    _warn_stranded(stranded, emoji)
    if json_output:
        print_json({**record, "changed": changed})
        return
    word = "active" if active else "inactive"
    if not changed:
        say(f"API key '{key.name}' is already {word}; nothing changed")
    elif active:
        say(f"{icon('ok', emoji)}API key '{key.name}' activated")
    else:
        say(
            f"{icon('inactive', emoji)}API key '{key.name}' deactivated: kept and listed as "
            f"inactive; undo with: n8n-deploy apikey activate {_q(key.name)}"
        )


@app.command(
    "delete",
    epilog=examples(
        "n8n-deploy apikey delete old_key", "n8n-deploy apikey delete old_key --confirm"
    ),
)
def delete(
    ctx: typer.Context,
    name: KeyNameArgument,
    confirm: ConfirmOption = False,
    no_emoji: NoEmojiOption = False,
    json_output: JsonOption = False,
) -> None:
    """Delete a key for good, with its server links.

    The servers themselves stay. Asks first at a terminal; elsewhere --confirm (or
    --yes / -y) is required.
    """
    from n8n_deploy.store.repositories import ApiKeyRepository

    # Look the key up (and refuse an unknown name) before asking, without holding a lock
    # while the user thinks.
    with state(ctx).session() as session:
        found = ApiKeyRepository(session).get(lookup_name(name))
        key_name, servers = found.name, [server.name for server in found.servers]
    linked = ", ".join(f"'{server}'" for server in servers)
    if servers and not confirm and prompts.stdin_is_terminal():
        note(f"API key '{key_name}' is linked to server(s) {linked}; the links go with it.")
    prompts.confirm(
        f"Delete API key '{key_name}'? This cannot be undone",
        confirmed=confirm,
        action=f"delete API key '{key_name}'",
        kept=f"API key '{key_name}' was kept; nothing was deleted",
    )
    with state(ctx).session(write=True) as session:
        repo = ApiKeyRepository(session)
        doomed = repo.get(key_name)
        stranded = repo.servers_left_without_an_active_key(doomed) if doomed.is_active else ()
        repo.delete(doomed)
    _warn_stranded(stranded, not no_emoji)
    line = f"{icon('trash', emoji=not no_emoji)}API key '{key_name}' deleted"
    if json_output:
        print_json({"name": key_name, "deleted": True, "unlinked_from": servers})
        return
    say(line + (f" and unlinked from server(s) {linked}" if servers else ""))
