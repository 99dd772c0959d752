"""Server URLs: the normal form a base URL is stored in, and the other URL rules (the
SQLite file behind a database URL, a password hidden in a URL).  No heavy imports."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from n8n_deploy.base.errors import InvalidServerUrlError
from n8n_deploy.base.names import check_text
from n8n_deploy.base.text import contains_api_key, contains_key_fragment, has_unsafe_characters

API_PATH = "/api/v1"
# One DNS label: letters (any script), digits, hyphens; underscores too, since container
# names such as ``n8n_main`` resolve inside Docker networks.
_HOST_LABEL = re.compile(r"(?!-)[\w-]{1,63}(?<!-)")
_HOST_PORT = re.compile(r"[\w.-]+:\d+(/|$)")
#: The last label of a host that makes it an IPv4 address: a decimal or hexadecimal number.
_NUMBER = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")
#: ``scheme://`` (or ``scheme:``) and the user part up to the last ``@``.
_USER_PART = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?/*)[^@]*@")


def _quoted(text: str) -> str:
    """``text`` as an error message quotes it: the user part (``user:password@``) hidden,
    whatever else is wrong with the URL."""
    return repr(_USER_PART.sub(r"\1***@", text))


#: An IPv6 literal in brackets (with a zone), then at most a port: nothing else.
_BRACKETED_HOST = re.compile(r"\[[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*(?:%[^\[\]/?#@]+)?\](?::[0-9]*)?")


def normalize_server_url(raw: str) -> str:
    """``HTTPS://Host:443/n8n/`` -> ``https://host/n8n``.

    Scheme and host are lower-cased, default ports, a trailing dot on the host and trailing
    slashes dropped, a path prefix kept (n8n often sits under a sub-path behind a proxy).
    Query strings, fragments and credentials in the URL are refused: they have no place in
    a base URL.  So are host names that cannot be one (``exa<mple``, ``a..b``, ``999.1.1.1``),
    and hosts ending in a number that are not a dotted-quad IPv4 address (``0x7f.1``, ``127.1``).
    """
    text = raw.strip()
    if not text:
        raise InvalidServerUrlError(
            "The server URL is empty", hint="Give a URL such as https://n8n.example.com"
        )
    if contains_api_key(text) and not text.lower().startswith(("http://", "https://")):
        raise InvalidServerUrlError(
            "The server URL looks like an API key",
            hint="Check the order of the arguments; the key itself was not stored or shown",
        )
    if contains_key_fragment(text) or contains_key_fragment(unquote(text)):
        # Printed in every listing, sent in every request: a key has no place in a URL.
        raise InvalidServerUrlError(
            "The server URL holds what looks like an API key",
            hint="Give the server's base URL alone (the key was not stored or shown); "
            "store the key with: n8n-deploy apikey add",
        )
    check_text(text, "server URL")
    # Nowhere in a URL (its path included, encoded or not): what would drive a terminal or
    # reorder what is shown when the URL is printed.
    if has_unsafe_characters(text) or has_unsafe_characters(unquote(text)):
        raise InvalidServerUrlError(
            "The server URL contains control characters (or bidi or invisible ones)",
            hint="Type it again, e.g. https://n8n.example.com",
        )
    shown = _quoted(text)
    if any(ch.isspace() for ch in text):
        raise InvalidServerUrlError(
            f"Not a server URL (contains spaces): {shown}",
            hint="Give a URL such as https://n8n.example.com",
        )
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidServerUrlError(f"Not a server URL: {shown} ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        if not parts.scheme or _HOST_PORT.match(text):  # "n8n.example.com", "host:5678"
            try:
                local = is_loopback_host(f"http://{text}")
            except ValueError:  # "host[": not a URL even with a scheme in front
                raise InvalidServerUrlError(
                    f"Not a server URL: {shown}", hint="Give a URL such as https://n8n.example.com"
                ) from None
            raise InvalidServerUrlError(
                f"The server URL has no http:// or https:// in front: {shown}",
                hint=f"Write it in full, e.g. {'http' if local else 'https'}://{text.lstrip('/')}",
            )
        raise InvalidServerUrlError(
            f"Not an http(s) URL: {shown}",
            hint="Use http://host:port or https://host, e.g. http://localhost:5678",
        )
    host_port = parts.netloc.rpartition("@")[2]
    if ("[" in host_port or "]" in host_port) and not _BRACKETED_HOST.fullmatch(host_port):
        # urlsplit would take "[v1.evil.com]" for v1.evil.com and drop what follows "]".
        raise InvalidServerUrlError(
            f"Not a valid IPv6 address in {shown}",
            hint="Only an IPv6 address goes in brackets, e.g. http://[::1]:5678",
        )
    host = (parts.hostname or "").lower()
    if host.endswith(".") and ":" not in host:
        host = host[:-1]
    if not host:
        raise InvalidServerUrlError(
            f"The URL has no host: {shown}", hint="Give a URL such as https://n8n.example.com"
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidServerUrlError(
            "The URL contains credentials; give the plain server URL",
        )
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise InvalidServerUrlError(
            f"The URL has a query or fragment: {shown}; give the server's base URL"
        )
    host = _check_host(host, shown)
    if port == 0:
        raise InvalidServerUrlError(
            f"Port 0 is not a server port: {shown}",
            hint="Use the port n8n listens on (5678 by default), or none",
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and not (
        (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
    ):
        netloc = f"{netloc}:{port}"
    path = parts.path.rstrip("/")
    return urlunsplit((scheme, netloc, path, "", ""))


def _check_host(host: str, shown: str) -> str:
    """The host in normal form (an international name by the IDNA rules httpx uses), or an
    error saying why it cannot be one."""
    if ":" in host:  # an IPv6 literal; urlsplit has removed the brackets
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise InvalidServerUrlError(f"Not a valid IPv6 address in {shown}") from None
        return host
    if not host.isascii():
        host = _idna_host(host)
    elif "xn--" in host:
        _idna_host(host)  # kept as typed, once it is known to decode
    labels = host.split(".")
    if not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise InvalidServerUrlError(
            f"Not a valid host name: {host!r}",
            hint="A host name has letters, digits, hyphens and dots, e.g. n8n.example.com",
        )
    if all(label.isdigit() for label in labels) or _NUMBER.fullmatch(labels[-1]):
        # A host that ends in a number is an IPv4 address to browsers (the WHATWG URL
        # standard) and resolvers (inet_aton: 0x7f.1 and 127.1 are 127.0.0.1): only the
        # dotted-quad form says which machine it is, to the user and to the loopback check.
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise InvalidServerUrlError(
                f"Not a valid IPv4 address in {shown}",
                hint="Write it as four decimal numbers, e.g. http://192.168.1.10:5678",
            ) from None
    return host


def _idna_host(host: str) -> str:
    """An international host name in the form httpx connects to: compatibility forms
    mapped as browsers do (UTS #46: ``ﬀ.com`` -> ``ff.com``, ``Ⅸ.com`` -> ``ix.com``), then
    held to IDNA 2008, which httpx applies (``idna.encode``) to any host that is not ASCII
    and which an ``xn--`` label must decode by.  Refused when it cannot be made to."""
    import idna  # httpx's own dependency; only for the rare non-ASCII or xn-- host

    try:
        ascii_form = idna.encode(host, uts46=True).decode("ascii")
        unicode_form = idna.decode(ascii_form)
        idna.encode(unicode_form)  # what httpx does with it
    except (idna.IDNAError, UnicodeError, ValueError):
        raise InvalidServerUrlError(
            f"Not a valid international host name: {host!r}",
            hint="Check the spelling, or give its xn-- (punycode) form, e.g. xn--bcher-kva.de",
        ) from None
    return str(unicode_form)


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
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


# -- database URLs -----------------------------------------------------------------------

_SQLITE_URL = re.compile(r"^sqlite(?:\+\w+)?://(?P<rest>.*)$", re.S)
#: Query parameters that carry a secret in a database URL (libpq and the MySQL drivers).
_SECRET_PARAMETER = re.compile(
    r"(?i)((?:^|&)(?:password|passwd|pwd|sslpassword|sslkey_password|secret|token)=)[^&]*"
)


_BACKENDS = frozenset({"sqlite", "postgresql", "mysql", "mariadb"})


def database_backend(url: str) -> str:
    """The kind of database a URL names, as SQLAlchemy calls it: ``sqlite``,
    ``postgresql``, ``mysql`` or ``mariadb`` in any case; else the scheme itself, as typed
    (messages quote it: folded, a key typed there would lose the shape that hides it)."""
    scheme = url.split("://", 1)[0].split("+", 1)[0]
    folded = scheme.lower()
    if folded == "postgres":
        return "postgresql"
    return folded if folded in _BACKENDS else scheme


def sqlite_url_for(path: Path) -> str:
    """The URL of the SQLite file ``path``.  ``%`` and ``?`` are escaped: SQLAlchemy reads
    a ``?`` as the start of the URL's query and decodes ``%XX`` in the path (sqlite_path
    decodes them alike), so a folder called ``q?x=1`` is not taken for ``q``."""
    return "sqlite:///" + str(path).replace("%", "%25").replace("?", "%3F")


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite database URL; None for memory and for other databases.

    ``sqlite:////abs/file.db`` and ``sqlite:///rel/file.db`` name a file; so does a SQLite
    URI, ``sqlite:///file:/abs/file.db?uri=true`` (the part after ``file:``, without its
    own query), unless it asks for ``mode=memory``.  The one parser of such URLs: every
    module that needs the file asks this function.
    """
    match = _SQLITE_URL.match(url)
    if not match:
        return None
    rest = match.group("rest")
    if not rest.startswith("/"):
        return None  # sqlite:// (memory) or a host part, which SQLite does not use
    path, _, query = rest[1:].partition("?")
    if path.startswith("file:"):
        if "true" not in [v.lower() for v in parse_qs(query).get("uri", [])]:
            return None  # without uri=true, SQLite does not read it as a URI
        inner, _, inner_query = path[len("file:") :].partition("?")
        modes = parse_qs(inner_query).get("mode", []) + parse_qs(query).get("mode", [])
        if "memory" in modes:
            return None
        if inner.startswith("//"):  # file://host/path: only an empty host or localhost
            host, _, inner = inner[2:].partition("/")
            if host not in ("", "localhost"):
                return None
            inner = "/" + inner
        path = inner
    else:
        path = unquote(path)  # as SQLAlchemy reads the path part: %20 is a space
    if path in ("", ":memory:"):
        return None
    return Path(path).expanduser().absolute()


def mask_url_password(url: str) -> str:
    """A URL safe to show: ``postgresql://u:secret@h/db?password=x`` ->
    ``postgresql://u:***@h/db?password=***``.

    The password in the user part is hidden up to the last ``@`` (so an unencoded ``@``
    or ``/`` inside it hides nothing of it), and so are the query parameters that carry
    one (``password``, ``passwd``, ``pwd``, ``sslpassword``, ...)."""
    scheme_end = url.find("://")
    if scheme_end < 0:
        return url
    head, rest = url[: scheme_end + 3], url[scheme_end + 3 :]
    # The user part ends at the last "@": a password may hold "?", "/" or "#" unencoded.
    at = rest.rfind("@")
    if at >= 0 and ":" in rest[:at]:
        user = rest[:at].partition(":")[0]
        rest = f"{user}:***{rest[at:]}"
    main, question, query = rest.partition("?")
    if question:
        query = _SECRET_PARAMETER.sub(r"\1***", query)
    return head + main + question + query
