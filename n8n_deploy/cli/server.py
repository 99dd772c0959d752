"""``n8n-deploy server ...``: n8n server records and the keys linked to them."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Manage n8n server records and link API keys to them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
