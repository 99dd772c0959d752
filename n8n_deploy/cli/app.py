"""The ``n8n-deploy`` application: the root command, its global options, the groups.

Global options are resolved into settings once (``cli.state``), here at the edge; every
command below reads them from there.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated

import typer
from typer._completion_classes import completion_init

from n8n_deploy.base.settings import DATA_DIR_ENV, DATABASE_URL_ENV
from n8n_deploy.base.version import __version__
from n8n_deploy.cli.lazy import LazyGroup, holder
from n8n_deploy.cli.output import configure
from n8n_deploy.cli.root import RootGroup
from n8n_deploy.cli.state import state

# add_completion=False below (our options take the shell as a value) also leaves out
# typer's registration of the shells it completes for: register them.
completion_init()

# The groups and the commands registered into them from other modules, each made when
# first used (cli.lazy): `apikey list` imports cli/keys.py alone.


@cache
def _verify_commands() -> typer.Typer:
    from n8n_deploy.cli import verify
    from n8n_deploy.cli.helptext import examples

    commands = holder()
    commands.command(
        "test",
        epilog=examples(
            "n8n-deploy apikey test prod_key --require workflow:list,workflow:update",
            "n8n-deploy apikey test --all --format junit --output n8n-keys.xml",
            note=verify.TEST_EPILOG,
        ),
        short_help="Check a key against its servers (a CI gate).",
    )(verify.test)
    commands.command(
        "rotate",
        epilog=examples(
            'echo "$NEW_KEY" | n8n-deploy apikey rotate prod_key - --name prod_key_2026',
            note=verify.ROTATE_EPILOG,
        ),
        short_help="Replace a key by a new one, tested first on every server.",
    )(verify.rotate)
    commands.command(
        "scopes",
        epilog=examples(
            "n8n-deploy apikey scopes prod_key", "n8n-deploy apikey scopes prod_key --json"
        ),
        short_help="List a key's scopes on each server.",
    )(verify.scopes_command)
    return commands


@cache
def _hygiene_commands() -> typer.Typer:
    from n8n_deploy.cli import hygiene
    from n8n_deploy.cli.helptext import examples

    commands = holder()
    commands.command(
        "history",
        help=hygiene.HISTORY_HELP,
        epilog=examples(
            "n8n-deploy apikey history prod_key", "n8n-deploy apikey history prod_key --json"
        ),
        short_help="Who added, tested, rotated and retired a key, and when.",
    )(hygiene.history)
    commands.add_typer(hygiene.events_app, name="events")
    commands.command(
        "audit",
        help=hygiene.AUDIT_HELP,
        epilog=examples(
            "n8n-deploy apikey audit",
            "n8n-deploy apikey audit --max-age 60 --skip single-key --json",
        ),
        short_help="Check every key and server against the team's policy.",
    )(hygiene.audit)
    commands.command(
        "prune",
        help=hygiene.PRUNE_HELP,
        epilog=examples("n8n-deploy apikey prune", "n8n-deploy apikey prune --expired --json"),
        short_help="Delete ephemeral keys past their deadline.",
    )(hygiene.prune)
    commands.add_typer(hygiene.policy_app, name="policy")
    return commands


class ApikeyGroup(LazyGroup):
    """``apikey``: the commands of cli/keys.py, then those of cli/verify.py and
    cli/hygiene.py, in the order of --help."""

    lazy = {
        "test": _verify_commands,
        "rotate": _verify_commands,
        "scopes": _verify_commands,
        "history": _hygiene_commands,
        "audit": _hygiene_commands,
        "prune": _hygiene_commands,
        "events": _hygiene_commands,  # Typer lists a group after the commands
    }


@cache
def _apikey_group() -> typer.Typer:
    from n8n_deploy.cli import keys

    groups = holder()
    groups.add_typer(keys.app, name="apikey", cls=ApikeyGroup)
    return groups


@cache
def _server_group() -> typer.Typer:
    from n8n_deploy.cli import servers

    groups = holder()
    groups.add_typer(servers.app, name="server")
    return groups


@cache
def _db_group() -> typer.Typer:
    from n8n_deploy.cli import database

    groups = holder()
    groups.add_typer(database.app, name="db")
    return groups


class Root(RootGroup, LazyGroup):
    """The root command: its groups, each made when first used."""

    lazy = {
        "apikey": _apikey_group,
        "policy": _hygiene_commands,
        "server": _server_group,
        "db": _db_group,
    }


app = typer.Typer(
    name="n8n-deploy",
    cls=Root,
    help="Keep the API keys and server records used to reach n8n servers, check the keys "
    "against the servers, and migrate n8n-deploy's own database between releases.",
    no_args_is_help=True,
    # Tracebacks with local variables could show an API key; and plain help keeps
    # `--help` from importing rich.
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    # Our own --install-completion/--show-completion: they take the shell as a value.
    add_completion=False,
)


def _shell(value: str) -> str:
    from n8n_deploy.cli.completion import SHELLS, detected_shell

    shell = (value or detected_shell() or "").strip().lower()
    if shell not in SHELLS:
        shown = f"'{value}'" if value else "the current shell (it could not be told)"
        raise typer.BadParameter(
            f"completion is for bash, zsh or fish, not {shown}; name the shell, e.g. "
            "--install-completion zsh"
        )
    return shell


def _install_completion(value: str | None) -> None:
    if value is None:
        return
    from n8n_deploy.base.text import sanitize
    from n8n_deploy.cli.completion import install_completion

    shell = _shell(value)
    path = install_completion(shell)
    typer.echo(sanitize(f"{shell} completion installed in {path}"))  # a path of $HOME
    typer.echo("It takes effect in a new terminal (or: source the file now)")
    raise typer.Exit()


def _show_completion(value: str | None) -> None:
    if value is None:
        return
    from n8n_deploy.cli.completion import completion_script

    typer.echo(completion_script(_shell(value)))
    raise typer.Exit()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"n8n-deploy {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Annotated[
        str | None,
        typer.Option(
            "--data-dir",
            metavar="PATH",
            help=f"Data folder holding n8n-deploy.db [env: {DATA_DIR_ENV}; "
            "default: ~/.n8n-deploy]. Created 0700 if missing.",
            show_default=False,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            metavar="URL",
            help=f"Any SQLAlchemy database URL; overrides --data-dir [env: {DATABASE_URL_ENV}].",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
    install_completion: Annotated[
        str | None,
        typer.Option(
            "--install-completion",
            metavar="[SHELL]",
            is_flag=False,
            flag_value="",
            callback=_install_completion,
            is_eager=True,
            expose_value=True,
            help="Install Tab completion for SHELL (bash, zsh or fish; default: the "
            "current shell).",
            show_default=False,
        ),
    ] = None,
    show_completion: Annotated[
        str | None,
        typer.Option(
            "--show-completion",
            metavar="[SHELL]",
            is_flag=False,
            flag_value="",
            callback=_show_completion,
            is_eager=True,
            help="Print the completion script for SHELL, to install it by hand.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Options here go before the command group, e.g. n8n-deploy --data-dir ./d apikey list."""
    configure(no_color=state(ctx).settings.no_color)
