"""The names of the tables and of the column every listing is keyed by: one home for them.

``store.models`` maps these tables; ``store.names`` reads names from a SQLite file with the
standard library alone (completion, on every Tab), so it cannot import the models.
"""

from __future__ import annotations

API_KEYS = "api_keys"
SERVERS = "servers"
SERVER_API_KEYS = "server_api_keys"
KEY_EVENTS = "key_events"
REGISTRY_SETTINGS = "registry_settings"
NAME_COLUMN = "name"
