"""Checks and normal forms for what users type: names and server URLs.  No heavy imports."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit, urlunsplit

from n8n_deploy.errors import InvalidNameError, InvalidServerUrlError, UsageError

MAX_NAME_LENGTH = 100
# One DNS label: letters (any script), digits, hyphens; underscores too, since container
# names such as ``n8n_main`` resolve inside Docker networks.
_HOST_LABEL = re.compile(r"(?!-)[\w-]{1,63}(?<!-)")
API_PATH = "/api/v1"
_HOST_PORT = re.compile(r"[\w.-]+:\d+(/|$)")
_LEGACY_KEY_LIKE = re.compile(r"n8n_api_[0-9a-fA-F]{32,}")
_KEY_INSIDE = re.compile(r"eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]*|n8n_api_[0-9a-fA-F]{32,}")


def check_text(text: str, what: str) -> str:
    """Refuse text that could not have been typed as UTF-8 (bytes the terminal or shell
    passed through undecoded) instead of failing later when it is stored or printed."""
    if any(unicodedata.category(ch) == "Cs" for ch in text):
        raise UsageError(
            f"The {what} is not valid UTF-8 text",
            hint="Check the terminal's encoding (LANG/LC_ALL) and type it again",
        )
    return text


def clean_description(raw: str | None) -> str | None:
    """Trim a description; empty means none.  Control characters (newlines included) are
    refused: they would break tables and one-line output, or drive the terminal."""
    if raw is None:
        return None
    text = check_text(raw, "description").strip()
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise UsageError(
            "The description contains control characters (such as a newline or tab)",
            hint="Give it on one line",
        )
    if _KEY_INSIDE.search(text):
        # A description is shown unmasked in every listing: it must not carry a secret.
        raise UsageError(
            "The description contains what looks like an API key",
            hint="Check the order of the arguments; the key itself was not stored or shown",
        )
    return text or None


def clean_name(raw: str, kind: str = "API key") -> str:
    """Trim a name; refuse empty ones, control characters and more than 100 characters.
    UTF-8 and emoji are welcome."""
    name = check_text(raw, f"{kind} name").strip()
    if not name:
        example = '"Production"' if kind == "server" else "prod_key"
        raise InvalidNameError(f"The {kind} name is empty", hint=f"Give a name such as {example}")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch != "\u200d" for ch in name):
        raise InvalidNameError(
            f"The {kind} name contains control characters",
            hint="Use letters, digits, spaces, punctuation or emoji",
        )
    if looks_like_api_key(name):
        # Said without echoing it: the user has probably swapped two arguments.
        raise InvalidNameError(
            f"The {kind} name looks like an API key",
            hint="Check the order of the arguments; the key itself was not stored or shown",
        )
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(
            f"The {kind} name is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}"
        )
    return name


def looks_like_api_key(text: str) -> bool:
    """An n8n key (a JWT, or ``n8n_api_`` and hex) typed where a name or URL was expected."""
    text = text.strip()
    if text.startswith("eyJ") and text.count(".") == 2 and len(text) >= 30:
        return True
    return bool(_LEGACY_KEY_LIKE.fullmatch(text))


def lookup_name(raw: str, kind: str = "API key") -> str:
    """A name given to find an existing entry: trimmed, never empty, never a key.

    Looser than ``clean_name`` (any stored name can be looked up), but an API key typed
    by mistake is refused without being echoed in a "not found" message."""
    name = check_text(raw, f"{kind} name").strip()
    if not name or looks_like_api_key(name):
        clean_name(name, kind)  # raises the right one-line error
    return name


def normalize_server_url(raw: str) -> str:
    """``HTTPS://Host:443/n8n/`` -> ``https://host/n8n``.

    Scheme and host are lower-cased, default ports, a trailing dot on the host and trailing
    slashes dropped, a path prefix kept (n8n often sits under a sub-path behind a proxy).
    Query strings, fragments and credentials in the URL are refused: they have no place in
    a base URL.  So are host names that cannot be one (``exa<mple``, ``a..b``, ``999.1.1.1``).
    """
    text = raw.strip()
    if not text:
        raise InvalidServerUrlError(
            "The server URL is empty", hint="Give a URL such as https://n8n.example.com"
        )
    if looks_like_api_key(text):
        raise InvalidServerUrlError(
            "The server URL looks like an API key",
            hint="Check the order of the arguments; the key itself was not stored or shown",
        )
    check_text(text, "server URL")
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise InvalidServerUrlError(
            "The server URL contains control characters",
            hint="Give a URL such as https://n8n.example.com",
        )
    if any(ch.isspace() for ch in text):
        raise InvalidServerUrlError(
            f"Not a server URL (contains spaces): {text!r}",
            hint="Give a URL such as https://n8n.example.com",
        )
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidServerUrlError(f"Not a server URL: {text!r} ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        if not parts.scheme or _HOST_PORT.match(text):  # "n8n.example.com", "host:5678"
            local = is_loopback_host(f"http://{text}")
            raise InvalidServerUrlError(
                f"The server URL has no http:// or https:// in front: {text!r}",
                hint=f"Write it in full, e.g. {'http' if local else 'https'}://{text.lstrip('/')}",
            )
        raise InvalidServerUrlError(
            f"Not an http(s) URL: {text!r}",
            hint="Use http://host:port or https://host, e.g. http://localhost:5678",
        )
    host = (parts.hostname or "").lower()
    if host.endswith(".") and ":" not in host:
        host = host[:-1]
    if not host:
        raise InvalidServerUrlError(
            f"The URL has no host: {text!r}", hint="Give a URL such as https://n8n.example.com"
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidServerUrlError(
            "The URL contains credentials; give the plain server URL",
        )
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise InvalidServerUrlError(
            f"The URL has a query or fragment: {text!r}; give the server's base URL"
        )
    _check_host(host, text)
    if port == 0:
        raise InvalidServerUrlError(
            f"Port 0 is not a server port: {text!r}",
            hint="Use the port n8n listens on (5678 by default), or none",
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and not (
        (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
    ):
        netloc = f"{netloc}:{port}"
    path = parts.path.rstrip("/")
    return urlunsplit((scheme, netloc, path, "", ""))


def _check_host(host: str, text: str) -> None:
    import ipaddress

    if ":" in host:  # an IPv6 literal; urlsplit has removed the brackets
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise InvalidServerUrlError(f"Not a valid IPv6 address in {text!r}") from None
        return
    labels = host.split(".")
    if not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise InvalidServerUrlError(
            f"Not a valid host name: {host!r}",
            hint="A host name has letters, digits, hyphens and dots, e.g. n8n.example.com",
        )
    if all(label.isdigit() for label in labels):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise InvalidServerUrlError(f"Not a valid IPv4 address in {text!r}") from None


def server_url_warnings(url: str) -> list[str]:
    """What is worth telling the user about a normalised server URL, without refusing it."""
    found = []
    if url.startswith("http://") and not is_loopback_host(url):
        found.append(
            f"{url} is plain http: API keys sent to it travel unencrypted "
            "(use https:// unless the network is trusted)"
        )
    if urlsplit(url).path.endswith(API_PATH):
        found.append(
            f"the URL ends in {API_PATH}, which n8n-deploy adds itself; "
            "give the server's base URL (e.g. https://host or https://host/n8n)"
        )
    return found


def url_host_label(url: str) -> str:
    """``https://n8n.example.com:8443/x`` -> ``n8n.example.com:8443`` (a default server name)."""
    parts = urlsplit(url)
    return parts.netloc or url


def is_loopback_host(url: str) -> bool:
    """Whether ``url`` points at this machine (where plain http is normal)."""
    import ipaddress

    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False
