"""Checks and normal forms for what users type: names and server URLs.  No heavy imports."""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit, urlunsplit

from n8n_deploy.errors import InvalidNameError, InvalidServerUrlError

MAX_NAME_LENGTH = 100


def clean_name(raw: str, kind: str = "API key") -> str:
    """Trim a name; refuse empty ones, control characters and more than 100 characters.
    UTF-8 and emoji are welcome."""
    name = raw.strip()
    if not name:
        raise InvalidNameError(f"The {kind} name is empty", hint="Give a name such as prod_key")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch != "\u200d" for ch in name):
        raise InvalidNameError(
            f"The {kind} name contains control characters",
            hint="Use letters, digits, spaces, punctuation or emoji",
        )
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(
            f"The {kind} name is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}"
        )
    return name


def normalize_server_url(raw: str) -> str:
    """``HTTPS://Host:443/n8n/`` -> ``https://host/n8n``.

    Scheme and host are lower-cased, default ports and trailing slashes dropped, a path
    prefix kept (n8n often sits under a sub-path behind a proxy).  Query strings,
    fragments and credentials in the URL are refused: they have no place in a base URL.
    """
    text = raw.strip()
    if not text:
        raise InvalidServerUrlError(
            "The server URL is empty", hint="Give a URL such as https://n8n.example.com"
        )
    if any(ch.isspace() for ch in text):
        raise InvalidServerUrlError(f"Not a server URL (contains spaces): {text!r}")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidServerUrlError(f"Not a server URL: {text!r} ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidServerUrlError(
            f"Not an http(s) URL: {text!r}",
            hint="Use http://host:port or https://host, e.g. http://localhost:5678",
        )
    host = (parts.hostname or "").lower()
    if not host:
        raise InvalidServerUrlError(f"The URL has no host: {text!r}")
    if parts.username or parts.password:
        raise InvalidServerUrlError(
            "The URL contains credentials; give the plain server URL",
        )
    if parts.query or parts.fragment:
        raise InvalidServerUrlError(
            f"The URL has a query or fragment: {text!r}; give the server's base URL"
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and not (
        (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
    ):
        netloc = f"{netloc}:{port}"
    path = parts.path.rstrip("/")
    return urlunsplit((scheme, netloc, path, "", ""))


def url_host_label(url: str) -> str:
    """``https://n8n.example.com:8443/x`` -> ``n8n.example.com:8443`` (a default server name)."""
    parts = urlsplit(url)
    return parts.netloc or url


def is_loopback_host(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.") or host.endswith(".localhost")
