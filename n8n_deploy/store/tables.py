"""The names of the tables and of the column every listing is keyed by: one home for them.

``store.metadata`` defines the tables under these names (and ``store.models`` maps them).
"""

from __future__ import annotations

API_KEYS = "api_keys"
SERVERS = "servers"
SERVER_API_KEYS = "server_api_keys"
KEY_EVENTS = "key_events"
REGISTRY_SETTINGS = "registry_settings"
NAME_COLUMN = "name"
