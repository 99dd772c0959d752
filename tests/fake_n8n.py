"""Real HTTP(S) servers on 127.0.0.1, run in a thread by the tests that need them: one that
behaves like n8n's public API (or however a test tells it to answer), one that never
answers, and a port that refuses connections."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TLS_DIR = Path(__file__).parent / "data" / "tls"
CA_FILE = TLS_DIR / "ca.pem"


@dataclass
class Seen:
    """A request the server received."""

    path: str
    headers: dict[str, str]
    method: str = "GET"
    body: bytes = b""


Answer = tuple[int, dict[str, str], bytes]
Responder = Callable[[Seen], Answer]


def json_answer(status: int, data: Any, headers: dict[str, str] | None = None) -> Answer:
    return (
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(data).encode(),
    )


def n8n_like(valid_keys: set[str], prefix: str = "") -> Responder:
    """Answers like n8n 2.x: 200 with the workflow list for a known key, 401 otherwise,
    and 404 (HTML, as the editor would) for any other path."""

    def respond(seen: Seen) -> Answer:
        if seen.path.split("?")[0] != f"{prefix}/api/v1/workflows":
            return 404, {"Content-Type": "text/html"}, b"<!DOCTYPE html><html>Cannot GET</html>"
        if seen.headers.get("x-n8n-api-key", "").strip() in valid_keys:
            return json_answer(200, {"data": [], "nextCursor": None})
        return json_answer(401, {"message": "Unauthorized"})

    return respond


@dataclass
class FakeServer:
    url: str
    seen: list[Seen] = field(default_factory=list)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    #: A burst of checks opens up to 32 connections at once; beyond Python's backlog of 5
    #: the kernel drops them, and each client waits a second to try again.
    request_queue_size = 64

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that left before its answer was written (a check cancelled by a
        signal trial) is no error of the server's; anything else is printed as usual."""
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


@contextmanager
def fake_server(respond: Responder, *, tls: bool = False) -> Iterator[FakeServer]:
    """An HTTP(S) server on 127.0.0.1 answering every GET with ``respond``."""
    state = FakeServer(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            seen = Seen(
                self.path, {k.lower(): v for k, v in self.headers.items()}, self.command, body
            )
            state.seen.append(seen)
            status, headers, body = respond(seen)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    server = _Server(("127.0.0.1", 0), Handler)
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(TLS_DIR / "server.pem", TLS_DIR / "server.key")
        server.socket = context.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls else "http"
    state.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def silent_server() -> Iterator[str]:
    """A port that accepts connections (the kernel completes them) and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def refusing_url() -> str:
    """A URL on 127.0.0.1 whose port nothing listens on (connections are refused)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


FORBIDDEN = (403, {"Content-Type": "application/json"}, b'{"message":"Forbidden"}')
#: What n8n 2.41.1 answers a key that holds the scope, per probe (docs/ci.md, "Scopes").
SCOPED_ROUTES: dict[tuple[str, str], tuple[str, int, dict[str, Any]]] = {
    ("GET", "/workflows"): ("workflow:list", 200, {"data": [], "nextCursor": None}),
    ("GET", "/workflows/0-probe"): ("workflow:read", 404, {"message": "Not Found"}),
    ("POST", "/workflows"): (
        "workflow:create",
        400,
        {"message": "request/body must have required property 'name'"},
    ),
    ("PUT", "/workflows/0-probe"): (
        "workflow:update",
        400,
        {"message": "request/body must have required property 'name'"},
    ),
    ("DELETE", "/workflows/0-probe"): ("workflow:delete", 404, {"message": "Not Found"}),
    ("POST", "/workflows/0-probe/activate"): (
        "workflow:activate",
        404,
        {"message": "You do not have permission to activate this workflow"},
    ),
    ("POST", "/workflows/0-probe/deactivate"): (
        "workflow:deactivate",
        404,
        {"message": "You do not have permission to deactivate this workflow"},
    ),
    ("PUT", "/workflows/0-probe/tags"): (
        "workflowTags:update",
        400,
        {"message": "request/body Expected array, received object"},
    ),
    ("PUT", "/workflows/0-probe/transfer"): (
        "workflow:move",
        400,
        {"message": "request/body must have required property 'destinationProjectId'"},
    ),
    ("GET", "/tags"): ("tag:list", 200, {"data": [], "nextCursor": None}),
    ("POST", "/tags"): (
        "tag:create",
        400,
        {"message": "request/body must have required property 'name'"},
    ),
    ("PUT", "/tags/0-probe"): (
        "tag:update",
        400,
        {"message": "request/body must have required property 'name'"},
    ),
    ("DELETE", "/tags/0-probe"): ("tag:delete", 404, {"message": "Not Found"}),
    ("GET", "/executions"): ("execution:list", 200, {"data": [], "nextCursor": None}),
    ("POST", "/credentials"): (
        "credential:create",
        400,
        {"message": "request/body must have required property 'name'"},
    ),
    ("DELETE", "/credentials/0-probe"): ("credential:delete", 404, {"message": "Not Found"}),
}
EVERY_SCOPE = frozenset(scope for scope, _, _ in SCOPED_ROUTES.values()) | {
    "project:list",
    "variable:list",
    "sourceControl:pull",
}


def scoped_n8n(
    keys: dict[str, frozenset[str] | set[str]],
    *,
    discover: bool = True,
    licensed_out: dict[str, str] | None = None,
) -> Responder:
    """Answers as n8n 2.41.1 does for keys that hold the given scopes: /discover (or 404
    on an older server), 403 Forbidden for a missing scope, 400/404 for a probe whose scope
    is held, and 403 naming a feature for a scope whose feature the licence lacks
    (``licensed_out``: scope -> feature)."""

    def respond(seen: Seen) -> Answer:
        path = seen.path.split("?")[0]
        if not path.startswith("/api/v1/"):
            return 404, {"Content-Type": "text/html"}, b"<html>Cannot GET</html>"
        route = path[len("/api/v1") :]
        held = keys.get(seen.headers.get("x-n8n-api-key", "").strip())
        if held is None:
            return json_answer(401, {"message": "Unauthorized"})
        if route == "/discover" and seen.method == "GET":
            if not discover:
                return (
                    404,
                    {"Content-Type": "text/html"},
                    b"<html>Cannot GET /api/v1/discover</html>",
                )
            return json_answer(
                200, {"data": {"scopes": sorted(held), "resources": {}, "specUrl": "/x"}}
            )
        known = SCOPED_ROUTES.get((seen.method, route))
        if known is None:
            return json_answer(404, {"message": "Not Found"})
        scope, status, body = known
        feature = (licensed_out or {}).get(scope)
        if feature is not None:
            return json_answer(
                403,
                {
                    "message": f"Your license does not allow for {feature}. To enable "
                    f"{feature}, please upgrade to a license that supports this feature."
                },
            )
        if scope not in held:
            return FORBIDDEN
        return json_answer(status, body)

    return respond
