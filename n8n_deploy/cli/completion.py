"""Shell completion of key and server names.  Never creates or migrates a database."""

from __future__ import annotations

import typer

from n8n_deploy.base.settings import resolve_settings


def _names(ctx: typer.Context, kind: str, incomplete: str) -> list[str]:
    try:
        from sqlalchemy import select

        from n8n_deploy.store.engine import create_engine_for
        from n8n_deploy.store.models import ApiKey, Server

        root = ctx.find_root()
        settings = resolve_settings(root.params.get("data_dir"), root.params.get("database_url"))
        engine = create_engine_for(settings.database_url, create_file=False)
        try:
            column = ApiKey.name if kind == "key" else Server.name
            with engine.connect() as conn:
                names = list(conn.scalars(select(column).order_by(column)))
        finally:
            engine.dispose()
    except Exception:  # noqa: BLE001 - completion must never fail loudly
        return []
    return [n for n in names if n.startswith(incomplete)]


def complete_key_names(ctx: typer.Context, incomplete: str) -> list[str]:
    return _names(ctx, "key", incomplete)


def complete_server_names(ctx: typer.Context, incomplete: str) -> list[str]:
    return _names(ctx, "server", incomplete)
