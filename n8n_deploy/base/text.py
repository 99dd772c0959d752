"""Text rules shared by every layer: what looks like an API key, and how to hide it; what
is safe to print; the first line of an error; counts with their nouns; words quoted for a
shell.

One home for each rule: the key-shape pattern here is the only one in the package, used
to refuse keys typed where a name, URL or description belongs and to hide them in
anything printed; :func:`sanitize` is the one function everything printed passes through
(``n8n_deploy.cli.output`` and the error mapping in ``n8n_deploy.cli.root`` call it).
"""

from __future__ import annotations

import re

#: Anything shaped like an n8n API key: a JWT (``eyJ`` + header, payload, signature) or a
#: legacy key (``n8n_api_`` and hexadecimal digits).  Loose on purpose (a key cut short
#: still matches), but ordinary names such as ``n8n_api_prod`` do not.
KEY_SHAPE = re.compile(
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*|n8n_api_[0-9A-Fa-f]{16,}"
)
HIDDEN = "[API key hidden]"
#: A piece of a key long enough to be one (a JWT's header or payload, cut out of it): where
#: a whole key has no place at all (a server URL), its pieces are refused too.
KEY_FRAGMENT = re.compile(r"eyJ[A-Za-z0-9_-]{16,}|n8n_api_[0-9A-Fa-f]{16,}")
#: Messages quote at most this much of a driver's or library's first line.
MAX_QUOTED = 200


def contains_api_key(text: str) -> bool:
    """Whether ``text`` holds something shaped like an n8n API key."""
    return KEY_SHAPE.search(text) is not None


def contains_key_fragment(text: str) -> bool:
    """Whether ``text`` holds a piece of something shaped like an n8n API key."""
    return KEY_FRAGMENT.search(text) is not None


#: How long a piece of a key must be to count as one (the secret sweep's measure).
KEY_PIECE_LENGTH = 12
_KEY_ALPHABET_RUN = re.compile(f"[A-Za-z0-9_-]{{{KEY_PIECE_LENGTH},}}")


def key_pieces(text: str) -> set[str]:
    """Every run of KEY_PIECE_LENGTH characters of the alphabet keys are written in (JWTs'
    base64url, legacy keys' hexadecimal) found in ``text``: what would show a piece of a
    stored key if one of them is in it.  Empty for ordinary names (``key_00001``)."""
    return {
        run[i : i + KEY_PIECE_LENGTH]
        for run in _KEY_ALPHABET_RUN.findall(text)
        for i in range(len(run) - KEY_PIECE_LENGTH + 1)
    }


def redact_keys(text: str) -> str:
    """Replace anything shaped like an n8n API key in ``text`` by ``[API key hidden]``.

    The last line of defence for messages built from user input (a key pasted where a
    name belongs, a key repeated by the argument parser)."""
    return KEY_SHAPE.sub(HIDDEN, text)


#: Characters that must never reach a terminal or a log as they are: C0 and C1 control
#: characters (ESC starts a terminal escape sequence, CR overwrites a line), bidi
#: embeddings, overrides and isolates (they reorder what is shown), zero-width and
#: invisible format characters (except the zero-width joiner that emoji use), the byte
#: order mark, and the line and paragraph separators U+2028 and U+2029.
C0_CONTROLS = "\x00-\x1f"
UNSAFE_CHARACTERS = C0_CONTROLS + (
    "\x7f-\x9f\u061c\u180e\u200b\u200c\u200e\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb"
    # the soft hyphen, fillers that look blank, tag characters, and lone surrogates (what
    # a server's JSON "\ud800" decodes to: no terminal or encoder can take them)
    "\u00ad\u115f\u1160\u3164\uffa0\U000e0000-\U000e007f\ud800-\udfff"
)
_UNSAFE = re.compile(f"[{UNSAFE_CHARACTERS}]")
#: Credentials in a URL anywhere in a text: the password of ``scheme://user:password@``
#: (up to the last ``@`` before a space, so an unencoded ``@`` or ``/`` in it hides nothing
#: of it), and the value of a query parameter whose name says it carries a secret.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]*):(?P<secret>\S*)@")
_URL_SECRET_PARAMETER = re.compile(
    r"(?i)(?P<head>[?&;](?:[\w.-]*(?:pass|pwd|token|secret|key|auth|sig|session|credential)"
    r"[\w.-]*)=)(?P<secret>[^&#\s'\"]+)"
)
#: What every secret hide_secrets hides holds (none of it is escaped by JSON).
_SECRET_HINTS = ("eyJ", "n8n_api_", "://", "=")
#: Only text holding one of these can need changing: the common case costs one search.
_SUSPECT = re.compile(f"[{UNSAFE_CHARACTERS}]|" + "|".join(map(re.escape, _SECRET_HINTS)))


def needs_sanitizing(text: str) -> bool:
    """False when ``sanitize`` leaves ``text`` as it is, and every piece of it: cells
    joined by spaces are checked in one search (no hint spans a space)."""
    if text.isascii() and text.isprintable():  # no character of UNSAFE_CHARACTERS, in C
        return may_hold_secrets(text)
    return _SUSPECT.search(text) is not None


def may_hold_secrets(text: str) -> bool:
    """False when hide_secrets would leave ``text``, and every piece of it, as it is; also
    of text written as JSON (the hints are never escaped): one search for a whole document."""
    return any(hint in text for hint in _SECRET_HINTS)  # substring tests: no regex needed


def has_unsafe_characters(text: str) -> bool:
    """Whether ``text`` holds a character of UNSAFE_CHARACTERS (a control, bidi, invisible
    or line-separator character): refused where users type descriptions and URLs."""
    return _UNSAFE.search(text) is not None


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def hide_url_credentials(text: str) -> str:
    """``postgresql://u:secret@h/db?token=x`` -> ``postgresql://u:***@h/db?token=***``,
    wherever a URL stands in ``text``."""
    text = _URL_PASSWORD.sub(r"\g<head>:***@", text)
    return _URL_SECRET_PARAMETER.sub(r"\g<head>***", text)


def hide_secrets(text: str, *, keys: bool = True) -> str:
    """``text`` with anything shaped like an API key (unless ``keys`` is False) and URL
    credentials hidden; every character kept (a JSON writer escapes them itself)."""
    if not _SUSPECT.search(text):
        return text
    if keys:
        text = KEY_FRAGMENT.sub(HIDDEN, redact_keys(text))
    return hide_url_credentials(text)


def sanitize(text: str, *, keys: bool = True, newlines: bool = False) -> str:
    """``text`` made safe to print, whatever its source (user, database, server): anything
    shaped like an API key hidden (unless ``keys`` is False: ``--unmask`` asked for them),
    URL passwords and secret query parameters hidden, and every character in
    UNSAFE_CHARACTERS shown as an escape (``\\x1b``, ``\\u202e``) instead of acting on
    the terminal.  ``newlines`` keeps line feeds (and tabs) of a message made of several
    lines."""
    if not _SUSPECT.search(text):
        return text
    text = hide_secrets(text, keys=keys)
    if newlines:
        return "\n".join(
            _UNSAFE.sub(_escaped, line.replace("\t", " ")) for line in text.split("\n")
        )
    return _UNSAFE.sub(_escaped, text)


def first_line(text: str, limit: int = MAX_QUOTED) -> str:
    """The first line of ``text``, at most ``limit`` characters."""
    lines = text.strip().splitlines()
    return lines[0][:limit] if lines else ""


#: SQLite's message for a stored value that is not UTF-8 quotes the value itself, which
#: may be a key: the column names the problem well enough.
_UNDECODABLE_VALUE = re.compile(r"(Could not decode to UTF-8 column '[^']*') with text .*", re.S)


def error_text(exc: BaseException, limit: int = MAX_QUOTED) -> str:
    """What an exception says, in one line: a database driver's own message when SQLAlchemy
    wraps one (statements are shown without parameters: engines hide them), else the
    exception's text, else its type.  Never a stored value the driver quotes."""
    original = getattr(exc, "orig", None)
    text = _UNDECODABLE_VALUE.sub(r"\1", str(original if original is not None else exc))
    return first_line(text, limit) or type(exc).__name__


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 link``, ``2 links``, ``0 servers``: a number and its noun, agreeing."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def shell_word(text: str) -> str:
    """``text`` single-quoted for a shell command in a hint: ``'Production'``."""
    return "'" + text.replace("'", "'\"'\"'") + "'"
