"""Checks for what users type as names and descriptions.  No heavy imports.

Server URLs have their own rules in ``n8n_deploy.base.urls``."""

from __future__ import annotations

import unicodedata

from n8n_deploy.base.errors import InvalidNameError, UsageError
from n8n_deploy.base.text import (
    contains_api_key,
    contains_key_fragment,
    has_unsafe_characters,
    hide_url_credentials,
)

MAX_NAME_LENGTH = 100
#: Descriptions fit every engine's text column (MariaDB's TEXT holds 64 KB).
MAX_DESCRIPTION_LENGTH = 1000
#: The one format character a name may hold: it joins emoji (👩‍💻), and shows nothing alone.
ZERO_WIDTH_JOINER = "\u200d"


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
    refused: they would break tables and one-line output, or drive the terminal; so are
    bidi, invisible and line-separator characters (base.text.UNSAFE_CHARACTERS), which
    would reorder what a listing shows.  So is one longer than MAX_DESCRIPTION_LENGTH
    characters, before any database sees it."""
    if raw is None:
        return None
    text = check_text(raw, "description").strip()
    if len(text) > MAX_DESCRIPTION_LENGTH:
        raise UsageError(
            f"The description is {len(text)} characters long; the limit is "
            f"{MAX_DESCRIPTION_LENGTH}",
            hint="Shorten it; longer notes belong in your own documentation",
        )
    if has_unsafe_characters(text):
        raise UsageError(
            "The description contains control characters (such as a newline, a tab or a "
            "bidi override)",
            hint="Give it on one line, as plain text",
        )
    if contains_api_key(text) or contains_key_fragment(text):
        # A description is shown in every listing: it must not carry a secret (and what is
        # shaped like one would be hidden there, base.text.sanitize).
        raise UsageError(
            "The description contains what looks like an API key",
            hint="Check the order of the arguments; the key itself was not stored or shown",
        )
    _refuse_credentials(text, "description")
    return text or None


def _refuse_credentials(text: str, what: str) -> None:
    """Refuse a URL password or a secret query parameter (``https://u:pw@h``, ``?token=x``):
    a secret has no place in a name or description, and every listing would show it
    hidden (``base.text.sanitize``), not as it was stored."""
    if hide_url_credentials(text) != text:
        raise UsageError(
            f"The {what} holds what looks like a password or token in a URL",
            hint="Leave credentials out of it; nothing was stored",
        )


def clean_name(raw: str, kind: str = "API key") -> str:
    """Trim a name; refuse empty ones (a zero-width joiner alone shows nothing), control,
    bidi and invisible characters, anything a listing would show otherwise than stored (a
    key or a piece of one, a URL password: base.text.sanitize hides them), and more than
    100 characters.  UTF-8 and emoji are welcome."""
    name = check_text(raw, f"{kind} name").strip()
    if not name.replace(ZERO_WIDTH_JOINER, "").strip():  # nothing a listing would show
        example = '"Production"' if kind == "server" else "prod_key"
        raise InvalidNameError(f"The {kind} name is empty", hint=f"Give a name such as {example}")
    if has_unsafe_characters(name) or any(
        unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch != ZERO_WIDTH_JOINER
        for ch in name
    ):
        raise InvalidNameError(
            f"The {kind} name contains control characters",
            hint="Use letters, digits, spaces, punctuation or emoji",
        )
    if contains_api_key(name) or contains_key_fragment(name):
        # Said without echoing it: the user has probably swapped two arguments.
        raise InvalidNameError(
            f"The {kind} name looks like an API key",
            hint="Check the order of the arguments; the key itself was not stored or shown",
        )
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(
            f"The {kind} name is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}"
        )
    _refuse_credentials(name, f"{kind} name")
    return name


def lookup_name(raw: str, kind: str = "API key") -> str:
    """A name given to find an existing entry: trimmed, never empty, never a key.

    Looser than ``clean_name`` (any stored name can be looked up), but an API key typed
    by mistake is refused without being echoed in a "not found" message."""
    name = check_text(raw, f"{kind} name").strip()
    if not name or contains_api_key(name):
        clean_name(name, kind)  # raises the right one-line error
    return name
