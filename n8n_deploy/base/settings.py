"""Every input from outside the command line, resolved once: where the data lives, the
database URL, and the environment switches; each value with where it came from.

Precedence is always: command-line flag, then environment variable, then default.  The
CLI resolves a :class:`Settings` at its edge and passes it (or the values in it) down;
no other module of the package reads the environment.  Imported on every command, so it
imports nothing heavy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

from n8n_deploy.base.actor import actor_from
from n8n_deploy.base.dates import local_zone_name
from n8n_deploy.base.errors import UsageError
from n8n_deploy.base.urls import database_backend, mask_url_password, sqlite_path, sqlite_url_for

#: Seconds to wait for another process's migration lock, unless N8N_DEPLOY_LOCK_TIMEOUT says.
DEFAULT_LOCK_TIMEOUT = 60.0

DATA_DIR_ENV = "N8N_DEPLOY_DATA_DIR"
DATABASE_URL_ENV = "N8N_DEPLOY_DATABASE_URL"
AUTO_UPGRADE_ENV = "N8N_DEPLOY_AUTO_UPGRADE"
DEBUG_ENV = "N8N_DEPLOY_DEBUG"
LOCK_TIMEOUT_ENV = "N8N_DEPLOY_LOCK_TIMEOUT"
SERVER_URL_ENV = "N8N_SERVER_URL"
CA_FILE_ENV = "SSL_CERT_FILE"
CA_DIR_ENV = "SSL_CERT_DIR"
NO_COLOR_ENV = "NO_COLOR"
DATABASE_FILENAME = "n8n-deploy.db"

Source = Literal["flag", "environment", "default"]
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    """The resolved inputs of one run of the program."""

    data_dir: Path
    data_dir_source: Source
    database_url: str
    database_url_source: Source | Literal["data folder"]
    #: N8N_DEPLOY_AUTO_UPGRADE: upgrade a database that is behind instead of refusing it.
    auto_upgrade: bool = False
    #: N8N_SERVER_URL: the server used when a command names none (as typed; not checked).
    server_url: str | None = None
    #: SSL_CERT_FILE / SSL_CERT_DIR: CA certificates to verify servers with (else certifi's).
    ca_file: str | None = None
    ca_dir: str | None = None
    #: NO_COLOR (https://no-color.org): no colour, even at a terminal.
    no_color: bool = False
    #: N8N_DEPLOY_DEBUG: let an unexpected error's traceback through (for bug reports).
    debug: bool = False
    #: How the local time zone is named in messages (TZ when set), e.g. for 0.9 timestamps.
    time_zone: str = "local time"
    #: N8N_DEPLOY_LOCK_TIMEOUT: seconds to wait for another process's migration (servers).
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    #: GITHUB_ACTIONS=true: failures also become workflow annotations.
    github_actions: bool = False
    #: GITHUB_STEP_SUMMARY: the file a job's Markdown summary is appended to.
    github_step_summary: str | None = None
    #: The environment these settings were resolved from, for what is worked out only
    #: when it is needed (the actor: asking the system for the user and host costs a
    #: command that only reads for nothing).  Never shown, never compared.
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def actor(self) -> str:
        """Who the audit trail records (N8N_DEPLOY_ACTOR, the CI job, or user@host),
        worked out from the environment of the run the first time an event needs it."""
        return actor_from(self.environ)

    @property
    def database_path(self) -> Path | None:
        """The SQLite file in use, or None for a server database / in-memory SQLite."""
        return sqlite_path(self.database_url)

    @property
    def backend(self) -> str:
        """``sqlite``, ``postgresql``, ``mysql`` or ``mariadb``."""
        return database_backend(self.database_url)

    def describe(self) -> dict[str, str]:
        """What ``db path`` shows: every value with its source; passwords masked."""
        path = self.database_path
        return {
            "data_dir": str(self.data_dir),
            "data_dir_source": self.data_dir_source,
            "database_url": mask_url_password(self.database_url),
            "database_url_source": self.database_url_source,
            "database_path": str(path) if path else "",
        }


def resolve_settings(
    data_dir_flag: str | None = None,
    database_url_flag: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """The settings of a run: flags first, then ``environ`` (default: the process's)."""
    env = os.environ if environ is None else environ
    data_dir: Path
    data_dir_source: Source
    if data_dir_flag:
        data_dir, data_dir_source = Path(data_dir_flag), "flag"
    elif env.get(DATA_DIR_ENV):
        data_dir, data_dir_source = Path(env[DATA_DIR_ENV]), "environment"
    else:
        data_dir, data_dir_source = Path.home() / ".n8n-deploy", "default"
    data_dir = data_dir.expanduser().absolute()

    url_source: Source | Literal["data folder"]
    if database_url_flag:
        url, url_source = database_url_flag, "flag"
    elif env.get(DATABASE_URL_ENV):
        url, url_source = env[DATABASE_URL_ENV], "environment"
    else:
        url, url_source = sqlite_url_for(data_dir / DATABASE_FILENAME), "data folder"
    return Settings(
        data_dir,
        data_dir_source,
        url,
        url_source,
        auto_upgrade=env.get(AUTO_UPGRADE_ENV, "").strip().lower() in _TRUE,
        server_url=env.get(SERVER_URL_ENV, "").strip() or None,
        ca_file=env.get(CA_FILE_ENV) or None,
        ca_dir=env.get(CA_DIR_ENV) or None,
        no_color=NO_COLOR_ENV in env,
        debug=env.get(DEBUG_ENV, "").strip().lower() in _TRUE,
        time_zone=env.get("TZ") or local_zone_name(),
        lock_timeout=_seconds(env, LOCK_TIMEOUT_ENV, DEFAULT_LOCK_TIMEOUT),
        github_actions=env.get("GITHUB_ACTIONS", "").strip().lower() == "true",
        github_step_summary=env.get("GITHUB_STEP_SUMMARY") or None,
        environ=dict(env),
    )


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A number of seconds from the environment; a usage error (exit 2) if it is not one."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (0 <= value <= 86_400):
        raise UsageError(
            f"{name} must be a number of seconds from 0 to 86400, not {raw!r}",
            hint=f"Set it like {name}=120, or unset it (default {default:g})",
        )
    return value
