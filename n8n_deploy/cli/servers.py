"""``n8n-deploy server ...``: n8n server records and the keys linked to them."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Annotated

import typer

from n8n_deploy.base.dates import human_time
from n8n_deploy.base.errors import UsageError
from n8n_deploy.base.names import clean_description, clean_name, lookup_name
from n8n_deploy.base.urls import normalize_server_url, server_url_warnings
from n8n_deploy.cli import prompts
from n8n_deploy.cli.helptext import examples
from n8n_deploy.cli.json_writer import print_json
from n8n_deploy.cli.options import (
    ConfirmOption,
    JsonOption,
    NoEmojiOption,
    UnmaskOption,
    WideOption,
    description_option,
    key_name_argument,
    server_name_argument,
)
from n8n_deploy.cli.output import icon, note, say, warn
from n8n_deploy.cli.state import state
from n8n_deploy.cli.views import (
    NO_URL,
    key_counts,
    key_record,
    print_keys_table,
    print_servers_table,
    server_record,
    tls_label,
)

if TYPE_CHECKING:
    from n8n_deploy.store.models import ApiKey, Server
    from n8n_deploy.store.repositories import ApiKeyRepository, ServerRepository

app = typer.Typer(
    help="Manage n8n server records and link API keys to them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


_STORED_SERVER = "Name of a stored server (see 'n8n-deploy server list')."
ServerName = Annotated[str, server_name_argument(_STORED_SERVER, metavar="NAME")]
ServerArg = Annotated[str, server_name_argument(_STORED_SERVER)]
KeyName = Annotated[
    str,
    key_name_argument("Name of a stored API key (see 'n8n-deploy apikey list').", metavar="KEY"),
]
DescriptionOption = Annotated[str | None, description_option("Free text about the server.")]


@app.command(
    "create",
    epilog=examples(
        "n8n-deploy server create Production https://n8n.example.com",
        'n8n-deploy server create "Staging 🧪" https://n8n.test.local --skip-ssl-verify',
    ),
)
def create(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME",
            help="Unique name, e.g. Production (trimmed; UTF-8 and emoji welcome).",
            show_default=False,
        ),
    ],
    url: Annotated[
        str,
        typer.Argument(
            metavar="URL",
            help="Base URL, http(s)://host[:port][/prefix], e.g. https://n8n.example.com "
            "or http://localhost:5678.",
            show_default=False,
        ),
    ],
    description: DescriptionOption = None,
    skip_ssl_verify: Annotated[
        bool,
        typer.Option(
            "--skip-ssl-verify",
            help="Do not check the server's TLS certificate (e.g. self-signed; https only).",
        ),
    ] = False,
    no_emoji: NoEmojiOption = False,
    json_output: JsonOption = False,
) -> None:
    """Store a server record.

    The URL is stored in normal form: lower-case scheme and host, no default port, no
    trailing slash; a path prefix (https://host/n8n) is kept. A plain http:// URL to a
    host other than this machine is stored with a warning: keys sent to it travel
    unencrypted.
    """
    from n8n_deploy.store.repositories import ServerRepository

    server_name = clean_name(name, "server")
    server_url = normalize_server_url(url)
    with state(ctx).session(write=True) as session:
        servers = ServerRepository(session)
        twin = servers.find_by_url(server_url)
        twin_name = twin.name if twin is not None else None
        created = servers.create(
            server_name,
            server_url,
            description=_description(description),
            skip_ssl_verify=skip_ssl_verify,
        )
        record = server_record(created, counts=(0, 0))
    _warn_about_url(server_url, twin_name, emoji=not no_emoji)
    if json_output:
        print_json(record)
        return
    tls = " (TLS certificate not verified)" if skip_ssl_verify and _is_https(server_url) else ""
    say(f"Server '{server_name}' created: {server_url}{tls}")


@app.command(
    "list",
    short_help="List servers with their URL, keys and TLS setting.",
    epilog=examples("n8n-deploy server list", "n8n-deploy server list --json"),
)
def list_servers(
    ctx: typer.Context,
    json_output: JsonOption = False,
    no_emoji: NoEmojiOption = False,
    wide: WideOption = False,
) -> None:
    """List servers: name, URL, linked keys (active/total), TLS verification, created."""
    with state(ctx).reading() as reader:
        found = reader.servers()
        counts = reader.link_counts()
    if json_output:
        print_json([server_record(s, counts=counts.get(s.id, (0, 0))) for s in found])
        return
    if not found:
        note("No servers yet. Add one: n8n-deploy server create NAME URL")
        return
    print_servers_table(found, counts, emoji=not no_emoji, wide=wide)


@app.command(
    "show",
    short_help="Show one server and the keys linked to it.",
    epilog=examples("n8n-deploy server show Production"),
)
def show(
    ctx: typer.Context,
    name: ServerName,
    json_output: JsonOption = False,
    no_emoji: NoEmojiOption = False,
    wide: WideOption = False,
) -> None:
    """Show one server and the API keys linked to it (masked; see 'server keys --unmask')."""
    emoji = not no_emoji
    with state(ctx).reading() as reader:
        server = reader.server(lookup_name(name, "server"))
        linked = reader.keys(server_id=server.id)
    record = server_record(server, keys=linked)
    if json_output:
        print_json(record)
        return
    say(f"{icon('server', emoji)}{server.name}")
    details = (
        ("URL", server.url or NO_URL),
        ("Description", server.description or "-"),
        ("TLS verification", tls_label(server, emoji)),
        ("Created", human_time(server.created_at)),
        ("Linked keys", f"{record['keys_active']} active / {record['keys_total']} total"),
    )
    for label, value in details:
        say(f"  {label + ':':<18}{value}")
    if not linked:
        note(_no_keys_hint(server.name))
        return
    say("")
    print_keys_table(linked, emoji=emoji, unmask=False, title=_keys_title(server.name), wide=wide)


@app.command(
    "update",
    epilog=examples(
        "n8n-deploy server update Production --url https://n8n.example.com",
        'n8n-deploy server update Production --rename "Production EU"',
    ),
)
def update(
    ctx: typer.Context,
    name: ServerName,
    url: Annotated[
        str | None,
        typer.Option("--url", metavar="URL", help="New base URL (normalised as in 'create')."),
    ] = None,
    rename: Annotated[
        str | None, typer.Option("--rename", metavar="NEW", help="New unique name.")
    ] = None,
    description: Annotated[
        str | None, description_option('New description; --description "" clears it.')
    ] = None,
    skip_ssl_verify: Annotated[
        bool | None,
        typer.Option(
            "--skip-ssl-verify/--verify-ssl",
            help="Stop or resume checking the server's TLS certificate.",
            show_default=False,
        ),
    ] = None,
    no_emoji: NoEmojiOption = False,
    json_output: JsonOption = False,
) -> None:
    """Change a server's URL, name, description or TLS verification. Its key links stay."""
    from n8n_deploy.store.repositories import ServerRepository

    if url is None and rename is None and description is None and skip_ssl_verify is None:
        raise UsageError(
            "Nothing to update",
            hint="Give --url, --rename, --description, --skip-ssl-verify or --verify-ssl",
        )
    current = lookup_name(name, "server")
    new_name = clean_name(rename, "server") if rename is not None else None
    new_url = normalize_server_url(url) if url is not None else None
    new_description = _description(description)
    with state(ctx).session(write=True) as session:
        servers = ServerRepository(session)
        server = servers.get(current)
        changes = _changes(server, new_name, new_url, new_description, skip_ssl_verify)
        url_changed = new_url is not None and new_url != server.url
        twin = servers.find_by_url(new_url, exclude=server) if url_changed and new_url else None
        twin_name = twin.name if twin is not None else None
        servers.update(
            server,
            name=new_name,
            url=new_url,
            description=new_description,
            skip_ssl_verify=skip_ssl_verify,
        )
        final_url = server.url
        record = server_record(server, counts=key_counts(server.api_keys))
    if url_changed and final_url is not None:
        _warn_about_url(final_url, twin_name, emoji=not no_emoji)
    if json_output:
        print_json({**record, "changed": bool(changes)})
        return
    if not changes:
        say(f"Server '{current}' unchanged: it already has these settings")
        return
    say(f"Server '{current}' updated: " + "; ".join(changes))


@app.command("link", epilog=examples("n8n-deploy server link prod_key Production"))
def link(
    ctx: typer.Context, key: KeyName, server: ServerArg, json_output: JsonOption = False
) -> None:
    """Link an API key to a server (harmless if they are linked already)."""
    from n8n_deploy.store.repositories import ApiKeyRepository, ServerRepository

    key_name, server_name = lookup_name(key, "API key"), lookup_name(server, "server")
    with state(ctx).session(write=True) as session:
        servers = ServerRepository(session)
        api_key, target = _key_and_server(
            ApiKeyRepository(session), servers, key_name, server_name, "link"
        )
        added = servers.link(api_key, target)
        inactive = not api_key.is_active
    if json_output:
        print_json({"key": key_name, "server": server_name, "linked": True, "changed": added})
        return
    if added:
        say(f"Linked API key '{key_name}' to server '{server_name}'")
    else:
        say(f"API key '{key_name}' is already linked to server '{server_name}'; nothing changed")
    if inactive:
        note(f"Note: API key '{key_name}' is deactivated, so it cannot be used for operations")


@app.command(
    "unlink",
    short_help="Remove the link between a key and a server.",
    epilog=examples("n8n-deploy server unlink old_key Production"),
)
def unlink(
    ctx: typer.Context, key: KeyName, server: ServerArg, json_output: JsonOption = False
) -> None:
    """Remove the link between an API key and a server (harmless if there is none).
    Both stay stored."""
    from n8n_deploy.store.repositories import ApiKeyRepository, ServerRepository

    key_name, server_name = lookup_name(key, "API key"), lookup_name(server, "server")
    with state(ctx).session(write=True) as session:
        servers = ServerRepository(session)
        api_key, target = _key_and_server(
            ApiKeyRepository(session), servers, key_name, server_name, "unlink"
        )
        removed = servers.unlink(api_key, target)
    if json_output:
        print_json({"key": key_name, "server": server_name, "linked": False, "changed": removed})
        return
    if removed:
        say(f"Unlinked API key '{key_name}' from server '{server_name}'")
    else:
        say(f"API key '{key_name}' is not linked to server '{server_name}'; nothing changed")


@app.command(
    "keys",
    short_help="List the API keys linked to a server.",
    epilog=examples(
        "n8n-deploy server keys Production", "n8n-deploy server keys Production --json"
    ),
)
def keys(
    ctx: typer.Context,
    server: ServerArg,
    json_output: JsonOption = False,
    no_emoji: NoEmojiOption = False,
    wide: WideOption = False,
    unmask: UnmaskOption = False,
) -> None:
    """List the API keys linked to a server (same columns and masking as 'apikey list')."""
    with state(ctx).reading() as reader:
        target = reader.server(lookup_name(server, "server"))
        linked = reader.keys(server_id=target.id)
    if unmask:
        prompts.warn_unmasked(emoji=not no_emoji)
    if json_output:
        print_json([key_record(k, unmask=unmask) for k in linked], unmask=unmask)
        return
    if not linked:
        note(_no_keys_hint(target.name))
        return
    print_keys_table(
        linked, emoji=not no_emoji, unmask=unmask, title=_keys_title(target.name), wide=wide
    )


@app.command(
    "delete",
    short_help="Delete a server and its links; the keys stay.",
    epilog=examples("n8n-deploy server delete Staging --confirm"),
)
def delete(
    ctx: typer.Context,
    name: ServerName,
    confirm: ConfirmOption = False,
    json_output: JsonOption = False,
) -> None:
    """Delete a server and its key links; the keys themselves stay (a key may serve other
    servers). Asks first at a terminal; elsewhere --confirm is required."""
    from n8n_deploy.store.repositories import ServerRepository

    server_name = lookup_name(name, "server")
    app_state = state(ctx)
    # Look up and count in a read-only unit of work: no lock is held while the user answers.
    with app_state.reading() as reader:
        found = reader.server(server_name)
        linked = reader.link_counts().get(found.id, (0, 0))[1]
    unlinks = f"{_keys_phrase(linked)} will be unlinked (the keys stay). " if linked else ""
    prompts.confirm(
        f"Delete server '{server_name}'? {unlinks}This cannot be undone",
        confirmed=confirm,
        action=f"delete server '{server_name}'",
        kept=f"server '{server_name}' was kept; nothing was deleted",
    )
    with app_state.session(write=True) as session:
        servers = ServerRepository(session)
        target = servers.get(server_name)
        linked = len(target.api_keys)
        servers.delete(target)
    if json_output:
        print_json({"name": server_name, "deleted": True, "keys_unlinked": linked})
        return
    unlinked = f"; {_keys_phrase(linked)} unlinked (the keys are kept)" if linked else ""
    say(f"Server '{server_name}' deleted{unlinked}")


def _description(raw: str | None) -> str | None:
    """None: leave as is; "" (or only spaces): clear it.  Control characters are refused."""
    if raw is None:
        return None
    return clean_description(raw) or ""


def _is_https(url: str) -> bool:
    return url.startswith("https:")


def _keys_phrase(count: int) -> str:
    return f"{count} linked API key{'' if count == 1 else 's'}"


def _keys_title(server_name: str) -> str:
    return f"API Keys linked to '{server_name}'"


def _no_keys_hint(server_name: str) -> str:
    return (
        f"No API keys are linked to server '{server_name}'. "
        f"Link one: n8n-deploy server link KEY {shlex.quote(server_name)}"
    )


def _warn_about_url(url: str, twin_name: str | None, *, emoji: bool) -> None:
    for message in server_url_warnings(url):
        warn(message, emoji=emoji)
    if twin_name is not None:
        warn(f"server '{twin_name}' has the same URL", emoji=emoji)


def _changes(
    server: Server,
    name: str | None,
    url: str | None,
    description: str | None,
    skip_ssl_verify: bool | None,
) -> list[str]:
    """What an update would change, in words (empty when nothing would)."""
    changes = []
    if name is not None and name != server.name:
        changes.append(f"renamed to '{name}'")
    if url is not None and url != server.url:
        changes.append(f"URL {server.url} -> {url}")
    if description is not None and (description or None) != server.description:
        changes.append("description set" if description else "description cleared")
    if skip_ssl_verify is not None and skip_ssl_verify != server.skip_ssl_verify:
        changes.append(
            "TLS certificate no longer verified" if skip_ssl_verify else "TLS certificate verified"
        )
    return changes


def _key_and_server(
    keys: ApiKeyRepository,
    servers: ServerRepository,
    key_name: str,
    server_name: str,
    command: str,
) -> tuple[ApiKey, Server]:
    """The key and the server, or NotFoundError (with suggestions) for the missing one."""
    api_key, server = keys.find(key_name), servers.find(server_name)
    if (
        api_key is None
        and server is None
        and servers.find(key_name) is not None
        and keys.find(server_name) is not None
    ):
        raise UsageError(
            f"'{key_name}' is a server and '{server_name}' is an API key",
            hint=f"Give the key first: n8n-deploy server {command} KEY SERVER",
        )
    return (
        api_key if api_key is not None else keys.get(key_name),
        server if server is not None else servers.get(server_name),
    )
