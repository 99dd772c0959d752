"""Text rules shared by every layer: what looks like an API key, and how to hide it; the
first line of an error; counts with their nouns; words quoted for a shell.

One home for each rule: the key-shape pattern here is the only one in the package, used
to refuse keys typed where a name, URL or description belongs and to hide them in
anything printed.
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
#: Messages quote at most this much of a driver's or library's first line.
MAX_QUOTED = 200


def contains_api_key(text: str) -> bool:
    """Whether ``text`` holds something shaped like an n8n API key."""
    return KEY_SHAPE.search(text) is not None


def redact_keys(text: str) -> str:
    """Replace anything shaped like an n8n API key in ``text`` by ``[API key hidden]``.

    The last line of defence for messages built from user input (a key pasted where a
    name belongs, a key repeated by the argument parser)."""
    return KEY_SHAPE.sub(HIDDEN, text)


def first_line(text: str, limit: int = MAX_QUOTED) -> str:
    """The first line of ``text``, at most ``limit`` characters."""
    lines = text.strip().splitlines()
    return lines[0][:limit] if lines else ""


def error_text(exc: BaseException, limit: int = MAX_QUOTED) -> str:
    """What an exception says, in one line: a database driver's own message when SQLAlchemy
    wraps one (statements are shown without parameters: engines hide them), else the
    exception's text, else its type."""
    original = getattr(exc, "orig", None)
    return first_line(str(original if original is not None else exc), limit) or type(exc).__name__


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 link``, ``2 links``, ``0 servers``: a number and its noun, agreeing."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def shell_word(text: str) -> str:
    """``text`` single-quoted for a shell command in a hint: ``'Production'``."""
    return "'" + text.replace("'", "'\"'\"'") + "'"
