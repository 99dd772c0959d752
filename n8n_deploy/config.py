"""Where the data lives: the data folder and the database URL, and where each came from.

Precedence is always: command-line flag, then environment variable, then default.
This module is imported on every command, so it imports nothing heavy.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

DATA_DIR_ENV = "N8N_DEPLOY_DATA_DIR"
DATABASE_URL_ENV = "N8N_DEPLOY_DATABASE_URL"
AUTO_UPGRADE_ENV = "N8N_DEPLOY_AUTO_UPGRADE"
SERVER_URL_ENV = "N8N_SERVER_URL"
DATABASE_FILENAME = "n8n-deploy.db"

Source = Literal["flag", "environment", "default"]


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    data_dir_source: Source
    database_url: str
    database_url_source: Source | Literal["data folder"]

    @property
    def database_path(self) -> Path | None:
        """The SQLite file in use, or None for a server database / in-memory SQLite."""
        return sqlite_path_from_url(self.database_url)

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
    return Settings(data_dir, data_dir_source, url, url_source)


def sqlite_url_for(path: Path) -> str:
    return f"sqlite:///{path}"


_SQLITE_URL = re.compile(r"^sqlite(?:\+\w+)?://(?P<rest>.*)$")


def sqlite_path_from_url(url: str) -> Path | None:
    """The file behind a ``sqlite:///`` URL; None for memory or non-SQLite URLs."""
    match = _SQLITE_URL.match(url)
    if not match:
        return None
    rest = match.group("rest")
    if not rest.startswith("/"):
        return None  # sqlite:// (memory) or a host part, which SQLite does not use
    path = rest[1:].split("?", 1)[0]
    if path in ("", ":memory:") or path.startswith("file:"):
        return None
    return Path(path).expanduser().absolute()


_PASSWORD_IN_URL = re.compile(r"^(?P<head>[\w+.-]+://[^/:@]*:)(?P<password>[^@/]*)(?P<tail>@.*)$")


def mask_url_password(url: str) -> str:
    """``postgresql://u:secret@h/db`` -> ``postgresql://u:***@h/db``."""
    return _PASSWORD_IN_URL.sub(lambda m: m["head"] + "***" + m["tail"], url)


def auto_upgrade_enabled(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get(AUTO_UPGRADE_ENV, "").strip().lower() in ("1", "true", "yes", "on")
