"""API key scopes: what a deploy needs, how to learn what a key holds, and what an answer
means.  Pure rules (no HTTP): ``n8n_deploy.n8n.probe`` sends the requests.

n8n 2.x enforces a key's scopes (docs/ci.md, "Scopes").  How to know them, best first:

1. ``GET /api/v1/discover`` answers with exactly the scopes the key holds (newer servers;
   older ones answer 404).
2. Otherwise, for each scope asked about, a request that cannot change anything: the
   server checks the scope before the body or the id, so it answers 403 without the scope
   and 400/404 with it (an invalid body, an id that cannot exist).  Only the probes
   observed on a real n8n 2.41.1 are used.
3. A scope that can be neither read nor probed is *unknown*, never taken as present.

A 403 whose message says the server's licence lacks a feature is not a missing scope.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

#: What pushing and activating workflows needs (``--require deploy``).
DEPLOY = (
    "workflow:list",
    "workflow:read",
    "workflow:create",
    "workflow:update",
    "workflow:activate",
    "workflow:deactivate",
    "tag:list",
    "tag:create",
)
#: What reading workflows, tags and executions needs (``--require read-only``).
READ_ONLY = ("workflow:list", "workflow:read", "tag:list", "execution:list")
BUNDLES: dict[str, tuple[str, ...]] = {"deploy": DEPLOY, "read-only": READ_ONLY}
#: Every scope named here, to match --require values written in another case.
KNOWN = {s.lower(): s for s in (*DEPLOY, *READ_ONLY)}

DISCOVER_PATH = "/discover"
#: An id n8n can never have (its ids are alphanumeric), so a probe never touches a record.
NO_SUCH_ID = "0-probe"
#: Where a key's scopes are set in n8n.
SCOPES_SCREEN = "n8n: Settings -> n8n API -> the key's Scopes"

_SCOPE = re.compile(r"[A-Za-z]{1,40}:[A-Za-z]{1,40}")

_LICENCE = re.compile(r"does not allow for (feat:[\w:.-]+)")


@dataclass(frozen=True)
class ScopeProbe:
    """A request that tells whether the key holds ``scope``: ``missing`` when the server
    answers 403 (Forbidden), present when it answers one of ``present``."""

    scope: str
    method: str
    path: str  # below /api/v1
    present: tuple[int, ...]
    body: dict[str, Any] | None = None
    params: dict[str, str] = field(default_factory=dict)


#: The probes observed to change nothing (docs/ci.md lists them).  ``workflow:read`` has
#: none: a key without it was never seen to get 403 from ``GET /workflows/{id}``.
PROBES: dict[str, ScopeProbe] = {
    probe.scope: probe
    for probe in (
        ScopeProbe("workflow:list", "GET", "/workflows", (200,), params={"limit": "1"}),
        ScopeProbe("workflow:create", "POST", "/workflows", (400,), body={}),
        ScopeProbe("workflow:update", "PUT", f"/workflows/{NO_SUCH_ID}", (400,), body={}),
        ScopeProbe("workflow:delete", "DELETE", f"/workflows/{NO_SUCH_ID}", (404,)),
        ScopeProbe("workflow:activate", "POST", f"/workflows/{NO_SUCH_ID}/activate", (404,)),
        ScopeProbe("workflow:deactivate", "POST", f"/workflows/{NO_SUCH_ID}/deactivate", (404,)),
        ScopeProbe("workflowTags:update", "PUT", f"/workflows/{NO_SUCH_ID}/tags", (400,), {}),
        ScopeProbe("workflow:move", "PUT", f"/workflows/{NO_SUCH_ID}/transfer", (400,), {}),
        ScopeProbe("tag:list", "GET", "/tags", (200,), params={"limit": "1"}),
        ScopeProbe("tag:create", "POST", "/tags", (400,), body={}),
        ScopeProbe("tag:update", "PUT", f"/tags/{NO_SUCH_ID}", (400,), body={}),
        ScopeProbe("tag:delete", "DELETE", f"/tags/{NO_SUCH_ID}", (404,)),
        ScopeProbe("execution:list", "GET", "/executions", (200,), params={"limit": "1"}),
        ScopeProbe("credential:create", "POST", "/credentials", (400,), body={}),
        ScopeProbe("credential:delete", "DELETE", f"/credentials/{NO_SUCH_ID}", (404,)),
    )
}

Verdict = Literal["present", "missing", "unknown", "licence"]


@dataclass(frozen=True)
class ProbeVerdict:
    verdict: Verdict
    detail: str = ""  # the licence feature, or why the answer says nothing


def expand(values: list[str]) -> tuple[str, ...]:
    """``--require`` values (repeated, comma-separated, bundle names) as scopes, in order
    and once each.  ValueError names a value that is neither a scope nor a bundle."""
    wanted: list[str] = []
    for value in values:
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            scopes = BUNDLES.get(item.lower())
            if scopes is None:
                if not _SCOPE.fullmatch(item):
                    raise ValueError(item)
                known = {**KNOWN, **{p.lower(): p for p in PROBES}}
                scopes = (known.get(item.lower(), item),)
            wanted.extend(scope for scope in scopes if scope not in wanted)
    return tuple(wanted)


def read_discover(status: int | None, body: bytes) -> tuple[str, ...] | None:
    """The scopes a ``/discover`` answer lists; None when the server has no such route
    (404) or the answer cannot be read (then the probes decide)."""
    if status != 200:
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    inner = data.get("data") if isinstance(data, dict) else None
    scopes = inner.get("scopes") if isinstance(inner, dict) else None
    if not isinstance(scopes, list):
        return None
    # Only what has the shape of a scope: a server's text is never shown as it came
    # (it could hold the key it was sent, or terminal escapes).
    return tuple(sorted({s for s in scopes if isinstance(s, str) and _SCOPE.fullmatch(s)}))


def read_probe(probe: ScopeProbe, status: int | None, body: bytes) -> ProbeVerdict:
    """What one probe's answer says about its scope."""
    if status == 403:
        message = _message(body)
        licence = _LICENCE.search(message)
        if licence:
            return ProbeVerdict("licence", licence.group(1))
        return ProbeVerdict("missing")
    if status in probe.present:
        return ProbeVerdict("present")
    shown = "no answer" if status is None else f"HTTP {status}"
    return ProbeVerdict("unknown", f"{shown} to {probe.method} {probe.path}")


def licence_feature(status: int | None, body: bytes) -> str | None:
    """The feature a 403 says the server's licence lacks (``feat:variables``), if any."""
    if status != 403:
        return None
    found = _LICENCE.search(_message(body))
    return found.group(1) if found else None


def by_resource(scopes: tuple[str, ...]) -> dict[str, list[str]]:
    """``{"workflow": ["create", "list"], "tag": ["list"]}``, each sorted."""
    grouped: dict[str, list[str]] = {}
    for scope in sorted(scopes):
        resource, _, operation = scope.partition(":")
        grouped.setdefault(resource, []).append(operation)
    return grouped


def _message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return ""
    message = data.get("message") if isinstance(data, dict) else None
    return message if isinstance(message, str) else ""
