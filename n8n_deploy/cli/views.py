"""How keys and servers are shown: one JSON shape and one table layout for each, shared by
``apikey list/show``, ``server keys/show`` and anything else that prints them.

Keys are masked unless ``unmask`` is asked for.  Each function takes what the read
queries return (``store.reads.StoredKey``/``StoredServer``) or the ORM objects a command
that writes holds: anything with the fields of ``KeyLike``/``ServerLike``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import partial
from itertools import chain
from json.encoder import encode_basestring as _encode_string  # the C one, ensure_ascii=False
from operator import is_not, itemgetter
from typing import TYPE_CHECKING, Any, TypeVar, cast

from n8n_deploy.base.dates import (
    human_date,
    human_time,
    iso_utc,
    isos_from_stored,
    stored_text,
    stored_utc,
    utcnow,
)
from n8n_deploy.base.keyformat import (
    claims_exp,
    key_info_or_none,
    key_kind,
    key_kinds,
    mask_key,
    mask_keys,
)
from n8n_deploy.base.text import may_hold_secrets
from n8n_deploy.cli.output import icon, print_table, say

if TYPE_CHECKING:
    from n8n_deploy.store.models import KeyEvent
    from n8n_deploy.store.reads import KeyLike, KeyListing, ServerLike

T = TypeVar("T")


def key_expiry(key: KeyLike) -> datetime | None:
    """The expiry decoded when the key was stored (revision 0002 decoded older rows); None:
    the key has no exp.  Listings never decode keys: 10,000 rows would take seconds."""
    return key.expires_at


def key_status(key: KeyLike, now: datetime | None = None) -> str:
    """``active``, ``inactive`` or ``expired`` (an active key whose exp has passed)."""
    return status_of(key.is_active, key_expiry(key), now or utcnow())


def status_of(is_active: bool, expires: T | None, now: T) -> str:
    """The status rule, for a key's datetimes or (a listing from SQLite) its stored text
    and ``stored_text(now)``, which compare alike."""
    if not is_active:
        return "inactive"
    if expires is not None and expires <= now:  # type: ignore[operator]
        return "expired"
    return "active"


def key_record(
    key: KeyLike, *, unmask: bool = False, now: datetime | None = None
) -> dict[str, Any]:
    """The JSON form of a key (timestamps ISO-8601 UTC); print_key_listing writes the same
    of each row of a listing."""
    return {
        "name": key.name,
        "description": key.description,
        "api_key": key.api_key if unmask else mask_key(key.api_key),
        "kind": key_kind(key.api_key),
        "created_at": iso_utc(key.created_at),
        "last_used_at": iso_utc(key.last_used_at),
        "expires_at": iso_utc(key_expiry(key)),
        "is_active": key.is_active,
        "status": key_status(key, now),
        "servers": [server.name for server in key.servers],
        "ephemeral": key.delete_after is not None,
        "delete_after": iso_utc(key.delete_after),
    }


def print_key_listing(listing: KeyListing, *, now: datetime) -> None:
    """``print_json`` of the records of a listing's keys (masked), 10,000 in a blink: each
    written straight from its row, without a StoredKey, a record or a datetime made, a few
    hundred rows at a time and field by field (``tests/test_json_output.py`` holds the
    bytes to key_record's).  Stored text is written as it is read; datetimes (a database
    server's rows) through iso_utc.  A row whose text people wrote may hold a secret, or
    holding something that is not text (a row written by another program), is written
    from its record, the careful way."""
    from n8n_deploy.cli.json_writer import print_json_items

    linked = listing.servers
    # What the rows hold that people wrote (the rest is written here: a masked key, times,
    # words), searched at once: when none of it may hold a secret, no item's text can.
    clean = _plain_text(listing)
    moments = (now, stored_text(now))
    servers = _listed_servers_of(linked) if clean else {}

    def texts(rows: Sequence[Sequence[Any]]) -> Sequence[str | None]:
        if clean:
            return _listed_records(rows, servers, moments)
        care = [_needs_care(row[1], row[2], row[3], linked.get(row[0])) for row in rows]
        plain_rows = [row for row, row_care in zip(rows, care, strict=True) if not row_care]
        plain_servers = {row[0]: _listed_servers(linked.get(row[0], ())) for row in plain_rows}
        plain = iter(_listed_records(plain_rows, plain_servers, moments))
        return [None if c else next(plain) for c in care]  # None: written from its record

    def record(row: Sequence[Any]) -> dict[str, Any]:
        return key_record(listing.key(row), now=now)

    print_json_items(listing.rows, texts, record)


def _listed_records(
    rows: Sequence[Sequence[Any]], servers: Mapping[int, str], moments: tuple[datetime, str]
) -> list[str]:
    """The JSON of the records of rows whose text is plain (not _needs_care): what costs
    most worked out a column at a time (in C, where the column allows), the rest a row at
    a time."""
    if not rows:
        return []
    ids, names, secrets, abouts, created, used, expires, active, deadline = zip(*rows, strict=True)
    fields = zip(
        ids,
        names,
        map(_encode_string, mask_keys(secrets)),
        abouts,
        active,
        deadline,
        key_kinds(secrets),
        _json_moments(created),
        _json_moments(used),
        _json_moments(expires),
        _json_moments(deadline),
        _statuses(active, expires, moments),
        strict=True,
    )
    # key_record's fields, in its order (the test of print_key_listing holds them alike).
    return [
        f'{{\n    "name": {_encode_string(name)},'
        f'\n    "description": {"null" if about is None else _encode_string(about)},'
        f'\n    "api_key": {masked},'
        f'\n    "kind": "{kind}",'
        f'\n    "created_at": {made},'
        f'\n    "last_used_at": {seen},'
        f'\n    "expires_at": {expiry},'
        f'\n    "is_active": {"null" if on is None else "true" if on else "false"},'
        f'\n    "status": "{status}",'
        f'\n    "servers": {servers.get(key, "[]")},'
        f'\n    "ephemeral": {"false" if ends is None else "true"},'
        f'\n    "delete_after": {ending}'
        "\n  }"
        for key, name, masked, about, on, ends, kind, made, seen, expiry, ending, status in fields
    ]


def _json_moments(column: Sequence[datetime | str | None]) -> list[str]:
    """The JSON of a column of timestamps: stored text (as stored_texts accepted it) or
    datetimes, as iso_utc writes them; null for None."""
    nulls = column.count(None)
    if nulls == len(column):
        return ["null"] * nulls
    if not nulls and _TEXT_ONLY.issuperset(map(type, column)):
        return isos_from_stored(cast("Sequence[str]", column), quote='"')
    return ["null" if value is None else _listed_moment(value) for value in column]


_TEXT_ONLY = frozenset({str})


def _statuses(
    active: Sequence[Any], expires: Sequence[datetime | str | None], moments: tuple[datetime, str]
) -> Iterable[str]:
    """``status_of`` each key; at once when every key is active and even the soonest
    expiry leaves a key active."""
    now, now_stored = moments
    if all(active):
        try:
            soonest: Any = min(filter(partial(is_not, None), expires), default=None)  # type: ignore[type-var]
        except TypeError:  # stored text beside datetimes: never from one source
            pass
        else:
            now_of = now_stored if soonest.__class__ is str else now
            if status_of(True, soonest, now_of) == "active":
                return ["active"] * len(active)
    return [
        status_of(is_active, expiry, now_stored if expiry.__class__ is str else now)
        for is_active, expiry in zip(active, expires, strict=True)
    ]


def _listed_moment(value: datetime | str) -> str:
    if isinstance(value, str):
        return isos_from_stored((value,), quote='"')[0]
    return f'"{iso_utc(value)}"'


def _listed_servers_of(linked: Mapping[int, Sequence[ServerLike]]) -> dict[int, str]:
    """key id -> ``_listed_servers`` of its servers, each list of them written once: the
    keys on one server share its tuple (``store.reads``), so 5,000 links are a few lists,
    and the rest is done in C."""
    found = list(linked.values())
    distinct = dict(zip(map(id, found), found, strict=True))  # ids of objects all alive here
    written = {at: _listed_servers(servers) for at, servers in distinct.items()}
    return dict(zip(linked, map(written.__getitem__, map(id, found)), strict=True))


def _listed_servers(servers: Sequence[ServerLike]) -> str:
    if not servers:
        return "[]"
    if len(servers) == 1:
        return f"[\n      {_encode_string(servers[0].name)}\n    ]"
    names = ",\n      ".join([_encode_string(server.name) for server in servers])
    return f"[\n      {names}\n    ]"


def _plain_text(listing: KeyListing) -> bool:
    """Whether no name or description of the listing may hold a secret (one search for
    them all); every key, name and description is text (the sources checked it)."""
    rows = listing.rows
    names = map(itemgetter(1), rows)
    descriptions = filter(None, map(itemgetter(3), rows))
    servers = {server.name for linked in listing.servers.values() for server in linked}
    try:
        return not may_hold_secrets("\n".join(chain(names, descriptions, servers)))
    except TypeError:  # a value that is not text (a row written by another program)
        return False


def _needs_care(
    name: object, secret: object, description: object, servers: Sequence[ServerLike] | None
) -> bool:
    """Whether a row must be written from its record: what people wrote in it may hold a
    secret, or a value in it is not text."""
    written = [name, description or "", *(server.name for server in servers or ())]
    texts = [text for text in written if isinstance(text, str)]
    if len(texts) < len(written) or not isinstance(secret, str):
        return True
    return may_hold_secrets("\n".join(texts))


_STATUS_LABEL = {
    "active": ("ok", "Active"),
    "inactive": ("inactive", "Inactive"),
    "expired": ("expired", "Expired"),
}


def status_label(status: str, emoji: bool, delete_after: datetime | None = None) -> str:
    """``Active``; an ephemeral key also shows its deadline (UTC):
    ``Active, until 2026-12-02 18:00``."""
    icon_name, text = _STATUS_LABEL[status]
    if delete_after is not None:
        text += f", until {delete_after:%Y-%m-%d %H:%M}"
    return f"{icon(icon_name, emoji)}{text}"


def expiry_label(key: KeyLike) -> str:
    """``2025-12-31``; ``Never`` when the key has no ``exp``; ``Unknown`` when the key is
    not a recognisable n8n key (it is still shown, never a crash).  From what is stored:
    nothing is decoded ('apikey show' decodes its one key, see key_details)."""
    return _expiry_label(key.api_key, key_expiry(key), human_date)


def _expiry_label(secret: str, expires: T | None, date: Callable[[T | None], str]) -> str:
    kind = key_kind(secret)
    if kind == "unknown":
        return "Unknown"
    if expires is None and kind == "jwt" and claims_exp(secret):
        return "Unknown"  # an exp that could not be read when the key was stored
    return date(expires)


# The reference's four columns first, then what the issue adds.
KEY_HEADERS = ("Name", "Created", "Last Used", "Status", "Expires", "Servers", "Key", "Description")


def key_row(key: KeyLike, *, emoji: bool, unmask: bool, now: datetime | None = None) -> list[str]:
    return [
        key.name,
        human_time(key.created_at),
        human_date(key.last_used_at),
        status_label(key_status(key, now), emoji, key.delete_after),
        expiry_label(key),
        ", ".join([server.name for server in key.servers]) or "-",
        key.api_key if unmask else mask_key(key.api_key),
        key.description or "",
    ]


def key_listing_rows(listing: KeyListing, *, emoji: bool, now: datetime) -> list[list[Any]]:
    """``key_row`` of each key of a listing (masked), 10,000 in a blink: from the rows as
    read, a stored timestamp sliced instead of read as a datetime and formatted again
    (``tests/test_tables.py`` holds the rows to key_row's)."""
    linked, now_stored, none = listing.servers, stored_text(now), ()
    rows = []
    for key_id, name, secret, description, created, used, expires, active, deadline in listing.rows:
        status = status_of(active, expires, now_stored if expires.__class__ is str else now)
        if deadline.__class__ is str:  # an ephemeral key: its deadline beside its status
            deadline = stored_utc(deadline)
        rows.append(
            [
                name,
                _listed_time(created),
                _listed_date(used),
                status_label(status, emoji, deadline),
                _expiry_label(secret, expires, _listed_date),
                ", ".join([server.name for server in linked.get(key_id, none)]) or "-",
                mask_key(secret),
                description or "",
            ]
        )
    return rows


def _listed_time(value: datetime | str | None) -> str:
    """human_time of a listing's timestamp, stored text or a datetime."""
    return value[:19] if isinstance(value, str) else human_time(value)


def _listed_date(value: datetime | str | None) -> str:
    """human_date of a listing's timestamp, stored text or a datetime."""
    return value[:10] if isinstance(value, str) else human_date(value)


#: Left out first at a narrow terminal (the name, status and masked key always stay).
KEY_DROPPABLE = ("Description", "Created", "Last Used", "Servers", "Expires")
KEYS_HOW_TO_SEE = "--wide, 'apikey show NAME' or --json shows them"


def print_keys_table(
    keys: Sequence[KeyLike],
    *,
    emoji: bool,
    unmask: bool,
    title: str = "API Keys",
    wide: bool = False,
) -> None:
    now = utcnow()
    print_key_rows(
        [key_row(key, emoji=emoji, unmask=unmask, now=now) for key in keys],
        emoji=emoji,
        unmask=unmask,
        title=title,
        wide=wide,
    )


def print_key_rows(
    rows: list[list[Any]],
    *,
    emoji: bool,
    unmask: bool,
    title: str = "API Keys",
    wide: bool = False,
) -> None:
    """The table of keys whose rows ``key_row`` (or ``key_listing_rows``) made."""
    print_table(
        f"{icon('key', emoji)}{title}",
        KEY_HEADERS,
        rows,
        plain=not emoji,
        keep_whole=("Name", "Created", "Last Used", "Status", "Expires", "Key"),
        droppable=KEY_DROPPABLE,
        wide=wide,
        how_to_see=KEYS_HOW_TO_SEE,
        unmask=unmask,
    )


_KIND_LABEL = {"jwt": "JWT", "legacy": "legacy n8n key (n8n_api_...)"}


def key_details(
    key: KeyLike, *, emoji: bool, unmask: bool, now: datetime | None = None
) -> list[tuple[str, str]]:
    """Every field of one key as (label, value) lines, linked servers with their URLs."""
    info = key_info_or_none(key.api_key)
    expires = expiry_label(key)
    if info is None:
        expires = "Unknown"
    elif info.problems:
        expires = f"Unknown ({'; '.join(info.problems)})"
    servers = [f"{server.name} ({server.url or 'no URL yet'})" for server in key.servers] or [
        "none"
    ]
    lines = [
        ("Name", key.name),
        ("Status", status_label(key_status(key, now), emoji)),
        *(
            [("Ephemeral", f"deleted after {human_time(key.delete_after)} UTC")]
            if key.delete_after is not None
            else []
        ),
        ("Description", key.description or "-"),
        ("Key", key.api_key if unmask else mask_key(key.api_key)),
        ("Format", _KIND_LABEL[info.kind] if info else "not a recognisable n8n API key"),
        ("Created", human_time(key.created_at)),
        ("Last used", human_time(key.last_used_at)),
        ("Expires", expires),
        ("Servers", servers[0]),
    ]
    lines.extend(("", server) for server in servers[1:])
    return lines


def print_key_details(key: KeyLike, *, emoji: bool, unmask: bool) -> None:
    say(f"{icon('key', emoji)}API key: {key.name}")
    for label, value in key_details(key, emoji=emoji, unmask=unmask)[1:]:
        say(f"  {label + ':' if label else '':<13}{value}", unmask=unmask and label == "Key")


def server_record(
    server: ServerLike,
    *,
    counts: tuple[int, int] | None = None,
    keys: Sequence[KeyLike] | None = None,
) -> dict[str, Any]:
    """The JSON form of a server; ``counts`` is (active keys, all keys) linked to it, and
    ``keys``, when given, the linked keys, listed in it (and counted, without ``counts``)."""
    active, total = counts if counts is not None else key_counts(keys or ())
    record: dict[str, Any] = {
        "name": server.name,
        "url": server.url,
        "description": server.description,
        "skip_ssl_verify": server.skip_ssl_verify,
        "created_at": iso_utc(server.created_at),
        "keys_active": active,
        "keys_total": total,
    }
    if keys is not None:
        record["api_keys"] = [key_record(key) for key in keys]
    return record


def key_counts(keys: Sequence[KeyLike]) -> tuple[int, int]:
    """(active, all) of ``keys``."""
    return sum(1 for k in keys if k.is_active), len(keys)


SERVER_HEADERS = ("Name", "URL", "Keys (active/total)", "TLS Verification", "Created")
#: How a server without a URL shows in tables (JSON: null).
NO_URL = "(no URL yet)"


def tls_label(server: ServerLike, emoji: bool) -> str:
    """Whether n8n-deploy checks the server's TLS certificate (only https has one)."""
    if server.url is None:
        return "n/a (no URL)"
    if not server.url.startswith("https:"):
        return "n/a (http)"
    if server.skip_ssl_verify:
        return f"{icon('warn', emoji)}Skipped"
    return f"{icon('ok', emoji)}Verified"


def server_row(server: ServerLike, counts: tuple[int, int], *, emoji: bool) -> list[str]:
    active, total = counts
    return [
        server.name,
        server.url or NO_URL,
        f"{active}/{total}",
        tls_label(server, emoji),
        human_time(server.created_at),
    ]


def print_servers_table(
    servers: Sequence[ServerLike],
    counts: dict[int, tuple[int, int]],
    *,
    emoji: bool,
    title: str = "Servers",
    wide: bool = False,
) -> None:
    """``counts`` maps server id -> (active keys, all keys), as ServerRepository.count_links."""
    print_table(
        f"{icon('server', emoji)}{title}",
        SERVER_HEADERS,
        [server_row(server, counts.get(server.id, (0, 0)), emoji=emoji) for server in servers],
        plain=not emoji,
        keep_whole=("Name", "Created"),
        droppable=("Created", "TLS Verification", "Keys (active/total)"),
        wide=wide,
        how_to_see="--wide, 'server show NAME' or --json shows them",
    )


# -- key events (apikey history / apikey events) --------------------------------------------


def event_details(event: KeyEvent) -> str:
    """What an event says beyond its kind: the other name, the outcome, the detail."""
    parts = []
    if event.kind == "renamed" and event.other_name:
        parts.append(f"'{event.key_name}' -> '{event.other_name}'")
    elif event.kind == "rotated" and event.other_name:
        parts.append(f"replaced by '{event.other_name}'")
    if event.detail:
        parts.append(event.detail)
    return "; ".join(parts)


def event_record(event: KeyEvent) -> dict[str, Any]:
    """The JSON form of an event (timestamps ISO-8601 UTC)."""
    return {
        "at": iso_utc(event.at),
        "kind": event.kind,
        "key": event.key_name,
        "other_name": event.other_name,
        "server": event.server,
        "outcome": event.outcome,
        "detail": event.detail,
        "actor": event.actor,
        "reconstructed": event.reconstructed,
    }


EVENT_HEADERS = ("When (UTC)", "Event", "Key", "Server", "By", "Details")


def print_events_table(
    events: Sequence[KeyEvent],
    *,
    emoji: bool,
    title: str,
    with_key: bool = True,
    wide: bool = False,
) -> None:
    headers = EVENT_HEADERS if with_key else tuple(h for h in EVENT_HEADERS if h != "Key")
    rows = []
    for event in events:
        row = [
            human_time(event.at),
            event.kind + (" (reconstructed)" if event.reconstructed else ""),
            event.key_name,
            event.server or "-",
            event.actor,
            event_details(event),
        ]
        if not with_key:
            del row[2]
        rows.append(row)
    print_table(
        f"{icon('key', emoji)}{title}",
        headers,
        rows,
        plain=not emoji,
        keep_whole=("When (UTC)", "Event"),
        droppable=("By", "Server", "Details"),
        folding=("Details",),
        wide=wide,
        how_to_see="--wide or --json shows them",
    )
