"""``n8n-deploy apikey ...``: store, list, show, test and retire API keys."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Store, list, test and retire n8n API keys.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
