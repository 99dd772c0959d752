"""``n8n-deploy db ...``: where the database is, and its schema revision."""

from __future__ import annotations

import typer

from n8n_deploy.cli.core import JsonOption, state
from n8n_deploy.output import print_json, say

app = typer.Typer(
    help="Create, inspect and upgrade n8n-deploy's own database.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("path")
def path(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Print the data folder and database URL in use, and where each came from."""
    info = state(ctx).settings.describe()
    if json_output:
        print_json(info)
        return
    say(f"Data folder:  {info['data_dir']}  (from {info['data_dir_source']})")
    say(f"Database URL: {info['database_url']}  (from {info['database_url_source']})")
    if info["database_path"]:
        say(f"Database file: {info['database_path']}")


@app.command("init")
def init(ctx: typer.Context) -> None:
    """Create the database at the newest schema revision (harmless when it exists)."""
    from n8n_deploy import migrate
    from n8n_deploy.db import create_engine_for

    settings = state(ctx).settings
    engine = create_engine_for(settings.database_url)
    try:
        before = migrate.inspect_state(engine)
    finally:
        engine.dispose()
    database = state(ctx).database()  # creates an empty database; refuses others
    where = settings.database_path or settings.describe()["database_url"]
    if before.kind == "empty":
        say(f"Created the database at revision {migrate.HEAD}: {where}")
    else:
        say(f"The database is already at the newest revision ({migrate.HEAD}): {where}")
    database.dispose()


@app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Upgrade the database to the newest schema revision."""
    from n8n_deploy import migrate
    from n8n_deploy.db import create_engine_for
    from n8n_deploy.errors import LegacyDatabaseError, SchemaTooNewError

    settings = state(ctx).settings
    engine = create_engine_for(settings.database_url)
    try:
        before = migrate.inspect_state(engine)
        if before.kind == "current":
            say(f"The database is already at the newest revision ({migrate.HEAD}).")
            return
        if before.kind == "unknown":
            raise SchemaTooNewError(
                f"The database is at revision {before.revision}, which this program does not "
                f"know (newest known: {migrate.HEAD})",
                hint="Upgrade n8n-deploy; the database was not changed",
            )
        if before.kind in ("legacy", "foreign"):
            raise LegacyDatabaseError(
                "This database was not made by this n8n-deploy release and cannot be upgraded yet"
            )
        migrate.upgrade(engine, "head")
        say(f"Upgraded the database from {before.revision or 'empty'} to {migrate.HEAD}.")
    finally:
        engine.dispose()


@app.command("current")
def current(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Print the database's schema revision and whether it is the newest."""
    from n8n_deploy import migrate
    from n8n_deploy.db import create_engine_for

    settings = state(ctx).settings
    engine = create_engine_for(settings.database_url)
    try:
        found = migrate.inspect_state(engine)
    finally:
        engine.dispose()
    info = {
        "revision": found.revision,
        "head": migrate.HEAD,
        "state": found.kind,
        "up_to_date": found.is_current,
    }
    if json_output:
        print_json(info)
        return
    revision = found.revision or "none"
    verdict = {
        "current": "up to date",
        "empty": "no schema yet: any command (or 'n8n-deploy db init') creates it",
        "behind": "upgrade needed: run 'n8n-deploy db upgrade'",
        "unknown": "newer than this program: upgrade n8n-deploy",
        "legacy": "made by n8n-deploy 0.9: run 'n8n-deploy db upgrade'",
        "foreign": "not an n8n-deploy database",
    }[found.kind]
    say(f"Revision: {revision} (newest: {migrate.HEAD}) - {verdict}")
