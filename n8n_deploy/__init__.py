"""n8n-deploy: keep, check and migrate the API keys and server records used to reach n8n.

The package is a Python API first; the ``cli`` package is a thin Typer layer over it.
Everything below is importable from here (``from n8n_deploy import add_key``) and is
loaded only when first used, so importing the package stays cheap (documented in
docs/python-api.md)::

    settings = resolve_settings()              # flags > environment > defaults
    database = open_database(settings)         # created at the newest revision if new
    with database.session(write=True) as session:
        add_key(session, "prod_key", key, server="Production")
    result = validate_key(key, "https://n8n.example.com", timeout=10)

Layers, each importing only from those below it: ``cli`` -> ``apikeys`` (use cases) ->
``store`` (database) and ``n8n`` (the HTTP check) -> ``base`` (settings, errors, exit
statuses, text rules).  See docs/development.md.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from n8n_deploy.base.version import __version__

if TYPE_CHECKING:
    from n8n_deploy.apikeys.add import AddedKey, add_key
    from n8n_deploy.apikeys.check import (
        CheckOptions,
        KeyReport,
        check_all_keys,
        check_secret,
        check_stored_key,
    )
    from n8n_deploy.apikeys.rotate import RotationReport, rotate_key
    from n8n_deploy.base.errors import N8nDeployError
    from n8n_deploy.base.settings import Settings, resolve_settings
    from n8n_deploy.base.status import ExitStatus
    from n8n_deploy.n8n.probe import (
        Probe,
        Trust,
        check_locally,
        read_key_scopes,
        validate_key,
        validate_many,
    )
    from n8n_deploy.n8n.results import Outcome, ScopeReport, ValidationResult
    from n8n_deploy.store.backups import create_backup
    from n8n_deploy.store.engine import Database, create_engine_for
    from n8n_deploy.store.lifecycle import open_database
    from n8n_deploy.store.migrations import downgrade_database, upgrade_database
    from n8n_deploy.store.models import ApiKey, Server
    from n8n_deploy.store.repositories import ApiKeyRepository, ServerRepository

#: The declared Python API: name -> the module that holds it.
_API: dict[str, str] = {
    "resolve_settings": "n8n_deploy.base.settings",
    "Settings": "n8n_deploy.base.settings",
    "ExitStatus": "n8n_deploy.base.status",
    "N8nDeployError": "n8n_deploy.base.errors",
    "open_database": "n8n_deploy.store.lifecycle",
    "Database": "n8n_deploy.store.engine",
    "create_engine_for": "n8n_deploy.store.engine",
    "ApiKey": "n8n_deploy.store.models",
    "Server": "n8n_deploy.store.models",
    "ApiKeyRepository": "n8n_deploy.store.repositories",
    "ServerRepository": "n8n_deploy.store.repositories",
    "upgrade_database": "n8n_deploy.store.migrations",
    "downgrade_database": "n8n_deploy.store.migrations",
    "create_backup": "n8n_deploy.store.backups",
    "validate_key": "n8n_deploy.n8n.probe",
    "validate_many": "n8n_deploy.n8n.probe",
    "read_key_scopes": "n8n_deploy.n8n.probe",
    "ScopeReport": "n8n_deploy.n8n.results",
    "check_locally": "n8n_deploy.n8n.probe",
    "Probe": "n8n_deploy.n8n.probe",
    "Trust": "n8n_deploy.n8n.probe",
    "Outcome": "n8n_deploy.n8n.results",
    "ValidationResult": "n8n_deploy.n8n.results",
    "add_key": "n8n_deploy.apikeys.add",
    "AddedKey": "n8n_deploy.apikeys.add",
    "check_stored_key": "n8n_deploy.apikeys.check",
    "check_all_keys": "n8n_deploy.apikeys.check",
    "check_secret": "n8n_deploy.apikeys.check",
    "CheckOptions": "n8n_deploy.apikeys.check",
    "KeyReport": "n8n_deploy.apikeys.check",
    "rotate_key": "n8n_deploy.apikeys.rotate",
    "RotationReport": "n8n_deploy.apikeys.rotate",
    "audit_registry": "n8n_deploy.apikeys.audit",
    "AuditReport": "n8n_deploy.apikeys.audit",
    "resolve_policy": "n8n_deploy.base.policy",
    "EventRepository": "n8n_deploy.store.events",
    "prune_keys": "n8n_deploy.store.pruning",
}

__all__ = [
    "AddedKey",
    "ApiKey",
    "ApiKeyRepository",
    "AuditReport",
    "CheckOptions",
    "Database",
    "EventRepository",
    "ExitStatus",
    "KeyReport",
    "N8nDeployError",
    "Outcome",
    "Probe",
    "RotationReport",
    "ScopeReport",
    "Server",
    "ServerRepository",
    "Settings",
    "Trust",
    "ValidationResult",
    "__version__",
    "add_key",
    "audit_registry",
    "check_all_keys",
    "check_locally",
    "check_secret",
    "check_stored_key",
    "create_backup",
    "create_engine_for",
    "downgrade_database",
    "open_database",
    "prune_keys",
    "read_key_scopes",
    "resolve_policy",
    "resolve_settings",
    "rotate_key",
    "upgrade_database",
    "validate_key",
    "validate_many",
]


def __getattr__(name: str) -> Any:
    """Load a name of the declared API on first use (PEP 562)."""
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'n8n_deploy' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
