"""The kinds of key events the audit trail records (``apikey history``, ``apikey events``).

Pure data, imported by help text: one home for the names.
"""

from __future__ import annotations

#: kind -> what it means, as ``apikey events --help`` lists them.
EVENT_KINDS: dict[str, str] = {
    "added": "the key was stored (apikey add, the new key of a rotation)",
    "tested": "the key was tested against a server (outcome and server recorded)",
    "rotated": "the key was replaced by another (old -> new)",
    "activated": "the key was made usable again",
    "deactivated": "the key was deactivated",
    "deleted": "the key was deleted (by hand, by a rotation, or pruned past its deadline)",
    "read": "the raw key was handed out (apikey get)",
    "linked": "the key was linked to a server",
    "unlinked": "the key was unlinked from a server (or the server was deleted)",
    "described": "the key's description was set or cleared",
    "renamed": "the key was renamed (old -> new)",
}
