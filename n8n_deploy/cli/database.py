"""``n8n-deploy db ...``: where the database is, its schema revision, upgrades, downgrades,
backups and restores.  The work is done by n8n_deploy.store (schema, migrations, backups)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from n8n_deploy.base.errors import OperationFailed
from n8n_deploy.base.status import ExitStatus
from n8n_deploy.base.text import counted
from n8n_deploy.cli import prompts
from n8n_deploy.cli.helptext import examples
from n8n_deploy.cli.json_writer import print_json
from n8n_deploy.cli.options import ConfirmOption, JsonOption, NoEmojiOption
from n8n_deploy.cli.output import note, say, warn
from n8n_deploy.cli.state import note_leftovers, state

if TYPE_CHECKING:
    from n8n_deploy.base.settings import Settings
    from n8n_deploy.store.schema import MigrationReport

app = typer.Typer(
    help="Create, inspect, upgrade, downgrade, back up and restore n8n-deploy's own database.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

NoBackupOption = Annotated[
    bool,
    typer.Option(
        "--no-backup",
        help="Do not write a backup first (e.g. on a throwaway copy in CI). By default a "
        "SQLite database is copied beside itself as <file>.<UTC time>.bak, mode 0600.",
    ),
]


@app.command(
    "path",
    short_help="Print the data folder and database URL in use.",
    epilog=examples("n8n-deploy db path", "n8n-deploy --data-dir ./team db path --json"),
)
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


INIT_HELP = f"""Create the database at the newest schema revision (harmless when it exists).

A database at an older revision, from a newer n8n-deploy or from n8n-deploy 0.9 is
refused (exit {int(ExitStatus.SCHEMA)}); 'db upgrade' carries it forward."""


@app.command(
    "init",
    help=INIT_HELP,
    short_help="Create the database at the newest revision.",
    epilog=examples(
        "n8n-deploy db init",
        "n8n-deploy --database-url postgresql://deploy@db.example.com/n8n_deploy db init",
    ),
)
def init(ctx: typer.Context) -> None:
    """Create the database at the newest revision (help: INIT_HELP)."""
    from n8n_deploy.store import lifecycle, schema

    settings = state(ctx).settings
    before = lifecycle.inspect_settings(settings)
    state(ctx).database()  # creates an empty database; refuses others
    if before.kind == "empty":
        say(f"Created the database at revision {schema.HEAD}: {_where(settings)}")
    elif before.is_current:
        say(f"The database is already at the newest revision ({schema.HEAD}): {_where(settings)}")
    else:  # upgraded because N8N_DEPLOY_AUTO_UPGRADE is set (reported on stderr)
        say(f"The database is now at the newest revision ({schema.HEAD}): {_where(settings)}")


@app.command(
    "upgrade",
    short_help="Upgrade the database (a SQLite file is backed up first).",
    epilog=examples("n8n-deploy db upgrade", "n8n-deploy db upgrade 0003 --no-backup"),
)
def upgrade(
    ctx: typer.Context,
    revision: Annotated[
        str,
        typer.Argument(
            metavar="[REVISION]",
            help="Revision to upgrade to (see 'db history'); default: the newest.",
            show_default=False,
        ),
    ] = "head",
    no_backup: NoBackupOption = False,
    no_emoji: NoEmojiOption = False,
) -> None:
    """Upgrade the database to the newest (or the given) schema revision.

    A SQLite database is backed up first, beside itself (the path is printed); back a server
    database up with its own tools (pg_dump, mariadb-dump). Each step is printed as it is
    applied. On SQLite and PostgreSQL all steps run in one transaction, so a failure leaves
    the database as it was; MariaDB/MySQL cannot roll schema changes back, so there each
    revision is applied and recorded on its own, and a failure says which one was reached.
    A database made by n8n-deploy 0.9 is carried forward too: every
    server, key and link is kept (0.9's naive timestamps are read as this machine's local
    time, TZ honoured, and stored as UTC), links to deleted keys
    or servers are dropped and counted, 0.9's other tables are left untouched, and anything
    that cannot be carried is reported. Another upgrade running at the same time is waited
    for (at most N8N_DEPLOY_LOCK_TIMEOUT seconds, default 60); the backup is taken only
    once there is something left to do."""
    from n8n_deploy.store import lifecycle, migrations, schema
    from n8n_deploy.store.engine import create_engine_for
    from n8n_deploy.store.files import removed_if_left_empty

    settings = state(ctx).settings
    target = schema.resolve_revision(revision)  # before anything is created
    with removed_if_left_empty(settings.database_path):
        engine = create_engine_for(settings.database_url)
        try:
            report = migrations.upgrade_database(
                engine, target, backup=not no_backup, lock_timeout=settings.lock_timeout
            )
            if report.changed:
                lifecycle.prune_when_current(engine, settings.actor)
        finally:
            engine.dispose()
    if not report.changed:  # e.g. another process upgraded it while this one waited
        newest = " newest" if report.after == schema.HEAD else ""
        say(f"The database is already at the{newest} revision {report.after}; nothing to do.")
        return
    _show_migration(report, settings, backup=not no_backup, emoji=not no_emoji)
    if report.before.kind == "empty":
        say(f"Created the database at revision {report.after}: {_where(settings)}")
    else:
        say(f"Upgraded the database from {report.before.describe()} to {report.after}.")
    if report.after != schema.HEAD:
        note(f"The newest revision is {schema.HEAD}; other commands need it.")


@app.command(
    "downgrade",
    short_help="Downgrade the database, keeping every row.",
    epilog=examples("n8n-deploy db downgrade 0002 --confirm"),
)
def downgrade(
    ctx: typer.Context,
    revision: Annotated[
        str,
        typer.Argument(
            metavar="REVISION", help="Revision to go back to, e.g. 0002 (see 'db history')."
        ),
    ],
    confirm: ConfirmOption = False,
    no_backup: NoBackupOption = False,
) -> None:
    """Downgrade the database to an older schema revision, keeping every row.

    For going back to an older n8n-deploy release. Asks for confirmation at a terminal
    (pass --confirm otherwise) and backs a SQLite database up first. Never below the first
    revision. This program itself needs the newest revision: run 'db upgrade' to use it
    again."""
    from n8n_deploy.store import lifecycle, migrations, schema
    from n8n_deploy.store.engine import create_engine_for

    settings = state(ctx).settings
    schema.downgrade_revision(revision)  # a bad revision is a usage error, database or not
    engine = create_engine_for(settings.database_url, create_file=False)
    try:
        before = migrations.settled_state(engine, settings.lock_timeout)
        target = schema.downgrade_target(before, revision)
        if target is None:
            say(f"The database is already at revision {before.revision}; nothing to do.")
            return
        prompts.confirm(
            f"Downgrade the database {_where(settings)} from revision {before.revision} to "
            f"{target}? This n8n-deploy will refuse to use it until it is upgraded again.",
            confirmed=confirm,
            action="downgrade",
            kept="nothing was changed",
        )
        # Keys past their deadline go first: below 0007 they would be kept for good.
        lifecycle.prune_when_current(engine, settings.actor)
        report = migrations.downgrade_database(
            engine, target, backup=not no_backup, lock_timeout=settings.lock_timeout
        )
    finally:
        engine.dispose()
    _show_migration(report, settings, backup=not no_backup, emoji=False)
    say(f"Downgraded the database from {report.before.describe()} to {report.after}.")


@app.command(
    "current",
    short_help="Print the database's revision and whether it is current.",
    epilog=examples("n8n-deploy db current", "n8n-deploy db current --json"),
)
def current(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Print the database's schema revision, the newest this program knows, and whether an
    upgrade is needed."""
    from n8n_deploy.store import lifecycle, schema

    found = lifecycle.inspect_settings(state(ctx).settings)
    info = {
        "revision": found.revision,
        "head": schema.HEAD,
        "state": found.kind,
        "up_to_date": found.is_current,
        "upgrade_needed": found.upgrade_needed,
        "legacy_version": found.legacy_version,
    }
    if json_output:
        print_json(info)
        return
    verdict = {
        "current": "up to date",
        "empty": "no schema yet: any command (or 'n8n-deploy db init') creates it",
        "behind": "upgrade needed: run 'n8n-deploy db upgrade'",
        "unknown": "newer than this program: upgrade n8n-deploy",
        "legacy": "made by n8n-deploy 0.9: run 'n8n-deploy db upgrade'",
        "foreign": "not an n8n-deploy database",
    }[found.kind]
    say(f"Revision: {found.describe()} (newest: {schema.HEAD}) - {verdict}")


@app.command(
    "check",
    short_help="Exit 0 if the database is current, 3 if not (a CI gate).",
    epilog=examples("n8n-deploy db check || n8n-deploy db upgrade"),
)
def check(ctx: typer.Context) -> None:
    """Exit 0 when the database is at the newest revision, 3 otherwise (a CI gate).

    Changes nothing, and creates nothing when there is no database."""
    from n8n_deploy.store import lifecycle, schema

    settings = state(ctx).settings
    found = lifecycle.inspect_settings(settings)
    error = schema.refusal(found, backend=settings.backend)
    if error is not None:
        raise error
    say(f"The database is at the newest revision ({schema.HEAD}).")


@app.command(
    "history",
    short_help="List the revisions this program ships.",
    epilog=examples("n8n-deploy db history"),
)
def history(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List the schema revisions this program ships, newest first, marking the database's."""
    from n8n_deploy.store import lifecycle, migrations, schema

    found = lifecycle.inspect_settings(state(ctx).settings)
    revisions = migrations.shipped_revisions()
    rows = [
        {
            "revision": rev.revision,
            "description": rev.description,
            "current": rev.revision == found.revision,
            "newest": rev.revision == schema.HEAD,
        }
        for rev in revisions
    ]
    if found.kind == "unknown":
        rows.insert(
            0,
            {
                "revision": found.revision,
                "description": "unknown to this program: written by a newer n8n-deploy",
                "current": True,
                "newest": False,
            },
        )
    if found.kind == "legacy":
        rows.append(
            {
                "revision": "0.9",
                "description": f"made by n8n-deploy 0.9 (schema version {found.legacy_version}): "
                "run 'n8n-deploy db upgrade'",
                "current": True,
                "newest": False,
            }
        )
    if json_output:
        print_json(rows)
        return
    width = max(len(str(row["revision"])) for row in rows)
    for row in rows:
        tags = [tag for tag in ("current", "newest") if row[tag]]
        suffix = f"  ({', '.join(tags)})" if tags else ""
        marker = "*" if row["current"] else " "
        say(f"{marker} {str(row['revision']).ljust(width)}  {row['description']}{suffix}")
    if found.kind == "empty":
        note("The database has no schema yet.")


@app.command(
    "backup",
    short_help="Back the SQLite database up, mode 0600.",
    epilog=examples("n8n-deploy db backup", "n8n-deploy db backup ~/backups/"),
)
def backup(
    ctx: typer.Context,
    target: Annotated[
        Path | None,
        typer.Argument(
            metavar="[PATH]",
            help="File to write (must not exist) or folder to write into; "
            "default: beside the database.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write a consistent copy of the SQLite database, mode 0600, and print its path.

    Uses SQLite's online backup API, so it is safe while other commands run. Works at any
    revision (including n8n-deploy 0.9 databases). Default name: <file>.<UTC time>.bak."""
    from n8n_deploy.store.backups import create_backup

    settings = state(ctx).settings
    database = _sqlite_file(settings, "back up")
    note_leftovers(settings)
    written = create_backup(database, target, is_the_change=True)
    say(f"Backed up the database to {written}")


RESTORE_HELP = f"""Replace the database with a backup, after backing the current one up.

The file must be an n8n-deploy database (of this release, an older revision, or
n8n-deploy 0.9) and pass SQLite's integrity check; it is read once, and what is checked
is what is restored. A database written by a newer n8n-deploy, or another program's, is
never replaced (exit {int(ExitStatus.SCHEMA)}); an n8n-deploy 0.9 database is, after it is
backed up whole.
Asks for confirmation at a terminal (pass --confirm otherwise). The replacement is one
transaction: other commands see the old database or the restored one, never a
mixture."""


@app.command(
    "restore",
    help=RESTORE_HELP,
    short_help="Replace the database with a backup.",
    epilog=examples("n8n-deploy db restore ~/backups/n8n-deploy.db.20261201T120000Z.bak --confirm"),
)
def restore(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(metavar="PATH", help="The backup file to restore.")],
    confirm: ConfirmOption = False,
) -> None:
    """Replace the database with a backup, after backing the current one up. (help: RESTORE_HELP)"""
    from n8n_deploy.store import schema
    from n8n_deploy.store.backups import staged_restore

    settings = state(ctx).settings
    database = _sqlite_file(settings, "restore")
    note_leftovers(settings)
    with staged_restore(source, database) as staged:
        replaced = f" ({staged.existing.describe()})" if staged.existing else ""
        prompts.confirm(
            f"Replace the database {database}{replaced} with {staged.incoming.path} "
            f"({staged.incoming.describe()})? The current database is backed up first.",
            confirmed=confirm,
            action="restore",
            kept="nothing was changed",
        )
        result = staged.apply()
    _prune_restored(settings)
    if result.previous_backup is not None:
        say(f"Backup of the replaced database: {result.previous_backup}")
        if result.replaced is not None and result.replaced.state.kind == "legacy":
            note(
                "The replaced database was made by n8n-deploy 0.9; all of it, 0.9's other "
                "tables included, is kept in that backup."
            )
    say(f"Restored {result.restored.path} ({result.restored.describe()}) to {database}.")
    if result.restored.state.upgrade_needed:
        note(
            f"It needs an upgrade ({result.restored.state.describe()} -> {schema.HEAD}): "
            "run 'n8n-deploy db upgrade' before using it."
        )


def _prune_restored(settings: Settings) -> None:
    """Keys of the restored database past their deadline are deleted, as by every command
    that writes: a restore never brings back a key n8n-deploy promised to delete."""
    from n8n_deploy.store import lifecycle
    from n8n_deploy.store.engine import create_engine_for

    engine = create_engine_for(settings.database_url, create_file=False)
    try:
        lifecycle.prune_when_current(engine, settings.actor)
    finally:
        engine.dispose()


def _show_migration(
    report: MigrationReport, settings: Settings, *, backup: bool, emoji: bool
) -> None:
    if report.backup is not None:
        say(f"Backup written: {report.backup}")
    elif backup and settings.database_path is None and report.before.tables:
        note("No backup was made (not a SQLite file): use your database server's tools.")
    legacy = report.legacy
    if legacy is not None:
        version = legacy.schema_version
        say(f"Recognised a database made by n8n-deploy 0.9 (schema version {version}).")
        say(
            f"Carried over: {counted(legacy.servers, 'server')}, {counted(legacy.keys, 'API key')}"
            f", {counted(legacy.links, 'link')}; timestamps read as local time "
            f"({settings.time_zone}) and stored as UTC."
        )
        say(f"Links dropped because their key or server no longer exists: {legacy.orphan_links}")
        if legacy.duplicate_links:
            say(f"Duplicate links merged: {legacy.duplicate_links}")
        if legacy.untouched:
            tables = ", ".join(f"{t} ({counted(n, 'row')})" for t, n in legacy.untouched.items())
            say(f"Left untouched: {tables}")
        for item in legacy.not_carried:
            warn(f"not carried over: {item}", emoji=emoji)
    for step in report.steps:
        say(f"Applied {step}")
    for message in report.notes:
        note(message)


def _sqlite_file(settings: Settings, action: str) -> Path:
    path = settings.database_path
    if path is None:
        tools = {
            "postgresql": "pg_dump and pg_restore",
            "mysql": "mysqldump and mysql",
            "mariadb": "mariadb-dump and mariadb",
        }.get(settings.backend, "the database server's own tools")
        raise OperationFailed(
            f"n8n-deploy can only {action} a SQLite database file; this one is on a "
            f"{settings.backend} server",
            hint=f"Use {tools}, e.g. before 'n8n-deploy db upgrade'",
        )
    return path


def _where(settings: Settings) -> str:
    return str(settings.database_path or settings.describe()["database_url"])
