"""The ``n8n-deploy`` command line: argument parsing and presentation only.

Every command calls the Python API (repositories, validator, migrate); errors are mapped
to exit statuses in ``cli.core.RootGroup``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from n8n_deploy import __version__
from n8n_deploy.cli import (
    apikey,
    db,
    keycheck,  # noqa: F401  (registers apikey test and rotate)
    server,
)
from n8n_deploy.cli.core import RootGroup, silence_stdout
from n8n_deploy.config import DATA_DIR_ENV, DATABASE_URL_ENV

app = typer.Typer(
    name="n8n-deploy",
    cls=RootGroup,
    help="Keep the API keys and server records used to reach n8n servers, check the keys "
    "against the servers, and migrate n8n-deploy's own database between releases.",
    no_args_is_help=True,
    # Tracebacks with local variables could show an API key; and plain help keeps
    # `--help` from importing rich.
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"n8n-deploy {__version__}")
        raise typer.Exit()


@app.callback()
def root(
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
) -> None:
    """Options here go before the command group, e.g. n8n-deploy --data-dir ./d apikey list."""


app.add_typer(apikey.app, name="apikey")
app.add_typer(server.app, name="server")
app.add_typer(db.app, name="db")


def main() -> None:
    try:
        app(prog_name="n8n-deploy")
    finally:
        try:
            sys.stdout.flush()
        except BrokenPipeError:  # the reader left early (`... | head -1`): not an error
            silence_stdout()
