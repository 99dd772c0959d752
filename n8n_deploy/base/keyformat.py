"""What an n8n API key looks like: format checks, unverified claims, expiry and masking.

n8n issues two kinds of key (see docs/keys-and-servers.md):

* JWTs signed by the server (``alg`` HS256, ``iss`` "n8n", ``aud`` "public-api", optional
  ``exp``).  The signature can only be checked by the server, so the claims decoded here are
  information, never proof.
* Legacy keys: ``n8n_api_`` followed by 80 hexadecimal characters; they never expire.

Nothing in this module ever puts the key itself into a message or exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from n8n_deploy.base.dates import human_date, utcnow
from n8n_deploy.base.errors import InvalidKeyFormatError, KeyExpiredError, UsageError
from n8n_deploy.base.text import first_line

LEGACY_PREFIX = "n8n_api_"
_LEGACY_KEY = re.compile(r"^n8n_api_[0-9a-fA-F]{80}$")
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*$")
#: Three base64url parts, none empty: what a JWT looks like (one search: a listing asks
#: it of every key).
_JWT_PART = "[A-Za-z0-9_-]"
_JWT_SHAPE = re.compile(rf"{_JWT_PART}+\.{_JWT_PART}+\.{_JWT_PART}+")
#: Its parts' characters, as bytes.
_JWT_PART_BYTES = bytes(c for c in range(128) if re.fullmatch(_JWT_PART, chr(c)))
#: Two dots in a row, searched for by the regular expression engine: its scan for a
#: pattern's first character is three times as fast as ``bytes.find`` over text in which
#: dots are frequent.
_ADJACENT_DOTS = re.compile(rb"\.\.")
# Expiry dates beyond this are treated as "no usable expiry" rather than crashing.
_MAX_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z

#: A key expiring sooner than this many days is stored, and tested, with a warning.
EXPIRY_WARNING_DAYS = 7

KeyKind = Literal["jwt", "legacy"]


@dataclass(frozen=True)
class KeyInfo:
    """What can be learnt about a key without asking a server."""

    kind: KeyKind
    expires_at: datetime | None = None
    claims: dict[str, Any] = field(default_factory=dict, repr=False)
    problems: tuple[str, ...] = ()  # odd but harmless claims (e.g. a non-numeric exp)

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or utcnow())

    def expires_within(self, days: float, now: datetime | None = None) -> bool:
        if self.expires_at is None:
            return False
        return self.expires_at <= (now or utcnow()) + timedelta(days=days)


def clean_key(raw: str) -> str:
    """Strip surrounding whitespace; refuse an empty key or whitespace inside it."""
    key = raw.strip()
    if not key:
        raise UsageError(
            "The API key is empty",
            hint='Pipe it, e.g. echo "$KEY" | n8n-deploy apikey add - --name NAME',
        )
    _refuse_wrapped(key)
    if any(ch.isspace() for ch in key):
        raise InvalidKeyFormatError(
            "Invalid JWT token format: the key contains whitespace inside it",
            hint="Remove it, e.g. API_KEY=$(echo \"$API_KEY\" | tr -d '[:space:]')",
        )
    return key


#: What people paste around a key by mistake: an HTTP header's name or scheme.
_HEADER_PREFIXES = ("authorization: bearer ", "authorization:", "x-n8n-api-key:", "bearer ")


def _refuse_wrapped(key: str) -> None:
    """A key pasted with its HTTP header, or in quotes: say exactly what to remove (the
    whitespace hint would turn ``Bearer eyJ...`` into ``BearereyJ...``)."""
    lowered = key.lower()
    for prefix in _HEADER_PREFIXES:
        if lowered.startswith(prefix):
            shown = key[: len(prefix)].strip()
            raise InvalidKeyFormatError(
                f"Invalid JWT token format: the key starts with '{shown}', which belongs to "
                "an HTTP header, not to the key",
                hint=f"Give the key alone, without '{shown}' (n8n-deploy sends the header)",
            )
    if len(key) > 1 and key[0] in "'\"" and key[-1] == key[0]:
        raise InvalidKeyFormatError(
            "Invalid JWT token format: the key is in quotes",
            hint="Remove the quotes around it",
        )


def parse_key(key: str) -> KeyInfo:
    """Check the format of a (cleaned) key and decode what it says about itself."""
    if key.startswith(LEGACY_PREFIX):
        if _LEGACY_KEY.match(key):
            return KeyInfo(kind="legacy")
        rest = len(key) - len(LEGACY_PREFIX)
        found = (
            f"this one has {rest} characters after the prefix"
            if rest != 80
            else "this one has characters that are not hexadecimal"
        )
        raise InvalidKeyFormatError(
            "Invalid JWT token format: a legacy n8n key is 'n8n_api_' followed by "
            f"80 hexadecimal characters ({found})"
        )
    parts = key.split(".")
    if len(parts) != 3:
        raise InvalidKeyFormatError(
            f"Invalid JWT token format: expected 3 dot-separated parts, found {len(parts)}",
            hint="n8n API keys start with 'eyJ'; check that the whole key was copied",
        )
    names = ("header", "payload", "signature")
    for name, part in zip(names, parts, strict=True):
        if not part:
            raise InvalidKeyFormatError(f"Invalid JWT token format: the {name} is empty")
        if not _BASE64URL.match(part):
            raise InvalidKeyFormatError(
                f"Invalid JWT token format: the {name} is not base64url text"
            )
    header, claims = _decode_unverified(key)
    if not isinstance(header.get("alg"), str) or not header.get("alg"):
        raise InvalidKeyFormatError("Invalid JWT token format: the header has no 'alg'")
    expires_at, problems = _expiry_from_claims(claims)
    return KeyInfo(kind="jwt", expires_at=expires_at, claims=claims, problems=problems)


def check_key(raw: str, *, now: datetime | None = None) -> tuple[str, KeyInfo]:
    """Clean and parse a key about to be stored; refuse one that has already expired."""
    key = clean_key(raw)
    info = parse_key(key)
    if info.is_expired(now) and info.expires_at is not None:
        raise KeyExpiredError(
            f"The API key expired on {human_date(info.expires_at)}; n8n will reject it",
            hint="Create a new key in n8n under Settings -> API",
        )
    return key, info


def key_kind(key: str) -> Literal["jwt", "legacy", "unknown"]:
    """What a stored key looks like, from its shape alone (nothing decoded): cheap enough
    for a listing of thousands.  Its expiry was decoded once, when it was stored."""
    key = key.strip()
    if _JWT_SHAPE.fullmatch(key):
        return "jwt"
    if _LEGACY_KEY.match(key):
        return "legacy"
    return "unknown"


def key_kinds(keys: Sequence[str]) -> list[str]:
    """``key_kind`` of each key: of a listing's keys, most often all JWTs, at once."""
    if keys and _all_jwt_shaped(keys):
        return ["jwt"] * len(keys)
    return list(map(key_kind, keys))


def _all_jwt_shaped(keys: Sequence[str]) -> bool:
    """Whether _JWT_SHAPE matches every key as it is, in a few scans in C of the keys a
    line each (searching with the pattern costs a tenth of a listing): each line holds
    two dots and else the parts' characters alone, and no part is empty (no dot at either
    end of a line, none after another)."""
    text = "\n".join(keys)
    if not text.isascii():
        return False
    lines = text.encode("ascii")
    if lines.translate(None, _JWT_PART_BYTES) != b"..\n" * (len(keys) - 1) + b"..":
        return False
    # A key's ends, beside its dots (replace copies between the line breaks it finds:
    # a tenth of the time of translating every byte).
    dots = lines.replace(b"\n", b".")
    return not dots.startswith(b".") and not dots.endswith(b".") and not _ADJACENT_DOTS.search(dots)


def claims_exp(key: str) -> bool:
    """Whether a JWT's payload has an ``exp`` claim at all: for a listing to tell a key that
    never expires from one whose ``exp`` could not be read (both are stored with no expiry).
    The standard library's base64 and json only, and only for such rows: no PyJWT."""
    import base64
    import json

    try:
        payload = key.strip().split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return False
    return isinstance(claims, dict) and "exp" in claims


def key_info_or_none(key: str) -> KeyInfo | None:
    """Parse a stored key for display; None when it is not a recognisable key."""
    try:
        return parse_key(key.strip())
    except InvalidKeyFormatError:
        return None


#: What a masked key shows before its last 4 characters (all of a key of 8 or fewer).
MASK = "*" * 8


def mask_key(key: str) -> str:
    """Show only the last 4 characters, as n8n's own UI does."""
    if len(key) <= 8:
        return MASK
    return MASK + key[-4:]


def mask_keys(keys: Iterable[str]) -> list[str]:
    """``mask_key`` of each key, without a call for each (a listing masks 10,000)."""
    return [MASK + key[-4:] if len(key) > 8 else MASK for key in keys]


def _decode_unverified(key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a JWT, without verifying it (only the server can)."""
    import jwt  # PyJWT; imported here so that start-up stays fast

    try:
        header = jwt.get_unverified_header(key)
        claims = jwt.decode(
            key,
            options={"verify_signature": False, "verify_exp": False, "verify_aud": False},
        )
    except jwt.PyJWTError as exc:
        # PyJWT's messages describe the structure ("Invalid payload padding"), never the key.
        raise InvalidKeyFormatError(f"Invalid JWT token format: {_describe(exc)}") from None
    except (ValueError, TypeError, RecursionError):
        raise InvalidKeyFormatError("Invalid JWT token format: the key does not decode") from None
    return dict(header), dict(claims)


def _describe(exc: Exception) -> str:
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    first = first_line(text, 120)
    return first[:1].lower() + first[1:]


def _expiry_from_claims(claims: dict[str, Any]) -> tuple[datetime | None, tuple[str, ...]]:
    if "exp" not in claims or claims["exp"] is None:
        return None, ()
    exp = claims["exp"]
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None, ("the 'exp' claim is not a number; expiry unknown",)
    if exp != exp or exp < 0 or exp > _MAX_TIMESTAMP:  # NaN, negative, absurd
        return None, ("the 'exp' claim is out of range; expiry unknown",)
    return datetime.fromtimestamp(int(exp), tz=timezone.utc), ()
