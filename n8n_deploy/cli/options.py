"""Option and argument declarations shared by the commands, so each is spelled once.

The flags, metavars and completion of ``--server``, ``--description``, ``--json``, the key
name argument and the rest live here; a command only says what the option means to it
(its help text).  Only typer is imported: ``--help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from n8n_deploy.cli.completion import complete_key_names, complete_server_names


def key_name_argument(help: str = "Name of the stored API key.", metavar: str = "NAME") -> Any:
    """A stored key's name, completed from the database."""
    return typer.Argument(
        metavar=metavar, help=help, autocompletion=complete_key_names, show_default=False
    )


def server_name_argument(help: str, metavar: str = "SERVER") -> Any:
    """A stored server's name, completed from the database."""
    return typer.Argument(
        metavar=metavar, help=help, autocompletion=complete_server_names, show_default=False
    )


def server_option(help: str, metavar: str = "SERVER") -> Any:
    """``--server SERVER``: a stored server's name, completed from the database."""
    return typer.Option(
        "--server",
        metavar=metavar,
        help=help,
        autocompletion=complete_server_names,
        show_default=False,
    )


def description_option(help: str) -> Any:
    """``--description TEXT``."""
    return typer.Option("--description", metavar="TEXT", help=help)


KeyNameArgument = Annotated[str, key_name_argument()]
NoEmojiOption = Annotated[
    bool,
    typer.Option(
        "--no-emoji",
        envvar="N8N_DEPLOY_NO_EMOJI",
        help="Plain text: no emoji in messages, ASCII table borders (N8N_DEPLOY_NO_EMOJI=1 "
        "makes it the default).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout and nothing else.")]
UnmaskOption = Annotated[
    bool,
    typer.Option("--unmask", help="Show full API keys (SECURITY WARNING: never in logs or CI)."),
]
WideOption = Annotated[
    bool,
    typer.Option(
        "--wide",
        help="Every column, even at a narrow terminal (by default the least important are "
        "left out there, and a note names them).",
    ),
]
ConfirmOption = Annotated[
    bool,
    typer.Option(
        "--confirm",
        "--yes",
        "-y",
        help="Do not ask for confirmation (needed when not at a terminal).",
    ),
]
