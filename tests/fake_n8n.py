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


@contextmanager
def fake_server(respond: Responder, *, tls: bool = False) -> Iterator[FakeServer]:
    """An HTTP(S) server on 127.0.0.1 answering every GET with ``respond``."""
    state = FakeServer(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            seen = Seen(self.path, {k.lower(): v for k, v in self.headers.items()})
            state.seen.append(seen)
            status, headers, body = respond(seen)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
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
