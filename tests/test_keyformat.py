"""n8n_deploy.base.keyformat: the two key formats, unverified claims, expiry and masking."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from n8n_deploy.base.dates import human_date
from n8n_deploy.base.errors import (
    InvalidKeyFormatError,
    KeyExpiredError,
    N8nDeployError,
    UsageError,
)
from n8n_deploy.base.keyformat import (
    check_key,
    clean_key,
    key_info_or_none,
    key_kind,
    key_kinds,
    mask_key,
    mask_keys,
    parse_key,
)
from n8n_deploy.base.status import ExitStatus
from tests.helpers import b64url, make_jwt, make_legacy_key, raw_jwt

NOW = datetime(2025, 10, 1, 12, 0, tzinfo=timezone.utc)


def _assert_secret_free(error: N8nDeployError, key: str) -> None:
    text = f"{error.message} {error.hint or ''}"
    assert not key or key not in text
    for piece in key.split("."):
        if len(piece) >= 12:
            assert piece not in text


# --- the two formats ---------------------------------------------------------------------


def test_an_n8n_jwt_is_recognised_with_its_claims() -> None:
    info = parse_key(make_jwt())
    assert info.kind == "jwt"
    assert info.expires_at is None
    assert info.claims["iss"] == "n8n"
    assert info.claims["aud"] == "public-api"
    assert info.problems == ()


def test_a_jwt_with_exp_reports_its_expiry_in_utc() -> None:
    exp = int((NOW + timedelta(days=30)).timestamp())
    info = parse_key(raw_jwt(claims={"sub": "u", "exp": exp}))
    assert info.expires_at == NOW + timedelta(days=30)
    assert info.expires_at is not None and info.expires_at.tzinfo is not None
    assert not info.is_expired(NOW)
    assert not info.expires_within(7, NOW)
    assert info.expires_within(31, NOW)


def test_the_signature_is_not_verified_client_side() -> None:
    # Only the server knows the secret: a key signed with another secret still parses.
    key = raw_jwt(signature="bm90LXRoZS1yZWFsLXNpZ25hdHVyZQ")
    assert parse_key(key).kind == "jwt"


@pytest.mark.parametrize(
    "key",
    [
        make_legacy_key(1),
        "n8n_api_" + "ab" * 40,
        "n8n_api_" + "AB" * 40,  # upper-case hex too
    ],
)
def test_legacy_keys_are_n8n_api_and_80_hex_characters(key: str) -> None:
    info = parse_key(key)
    assert info.kind == "legacy"
    assert info.expires_at is None  # legacy keys never expire
    assert not info.is_expired(NOW)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("n8n_api_" + "ab" * 39, "78 characters"),
        ("n8n_api_" + "ab" * 41, "82 characters"),
        ("n8n_api_" + "zz" * 40, "not hexadecimal"),
        ("n8n_api_", "0 characters"),
    ],
)
def test_a_malformed_legacy_key_says_what_is_wrong(key: str, expected: str) -> None:
    with pytest.raises(InvalidKeyFormatError) as caught:
        parse_key(key)
    assert caught.value.message.startswith("Invalid JWT token format")
    assert expected in caught.value.message
    assert caught.value.exit_status == ExitStatus.INVALID_FORMAT
    _assert_secret_free(caught.value, key.removeprefix("n8n_api_"))


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9", "expected 3 dot-separated parts, found 1"),
        ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1In0", "found 2"),
        # The reference's own truncated placeholder.
        ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...", "found 4"),
        ("a.b.c.d", "found 4"),
        ("eyJhbGciOiJIUzI1NiJ9..c2ln", "the payload is empty"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.", "the signature is empty"),
        ("eyJhbGci+OiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln", "the header is not base64url text"),
        ("ëyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln", "the header is not base64url text"),
        ("hello", "found 1"),
        ("Bearer", "found 1"),
    ],
)
def test_anything_else_is_an_invalid_jwt_token_format(key: str, expected: str) -> None:
    with pytest.raises(InvalidKeyFormatError) as caught:
        parse_key(key)
    assert caught.value.message.startswith("Invalid JWT token format: ")
    assert expected in caught.value.message
    _assert_secret_free(caught.value, key)


@pytest.mark.parametrize(
    "key",
    [
        f"{b64url(b'not json')}.{b64url(b'{}')}.c2ln",  # header is not JSON
        f"{b64url(b'[1, 2]')}.{b64url(b'{}')}.c2ln",  # header is JSON but not an object
        f"{b64url(json.dumps({'alg': 'HS256'}).encode())}.{b64url(b'not json')}.c2ln",
        f"{b64url(json.dumps({'alg': 'HS256'}).encode())}.{b64url(b'[1]')}.c2ln",  # claims: list
        f"{b64url(json.dumps({'alg': 'HS256'}).encode())}.{b64url(b'42')}.c2ln",
        "e.e.e",  # base64url characters that do not decode
        raw_jwt(header={"typ": "JWT"}),  # no alg
        raw_jwt(header={"alg": ""}),
        raw_jwt(header={"alg": 256}),
    ],
)
def test_parts_that_do_not_decode_to_json_objects_are_refused(key: str) -> None:
    with pytest.raises(InvalidKeyFormatError) as caught:
        parse_key(key)
    assert caught.value.message.startswith("Invalid JWT token format: ")
    _assert_secret_free(caught.value, key)


def test_a_header_without_alg_is_named() -> None:
    with pytest.raises(InvalidKeyFormatError, match="the header has no 'alg'"):
        parse_key(raw_jwt(header={"typ": "JWT"}))


# --- malformed claims never crash --------------------------------------------------------


@pytest.mark.parametrize(
    ("exp", "problem"),
    [
        ("2030-01-01", "not a number"),
        ("1735689600", "not a number"),
        (True, "not a number"),
        ([1735689600], "not a number"),
        ({"at": 1}, "not a number"),
        (-5, "out of range"),
        (10**20, "out of range"),
        (10**400, "out of range"),
        (1e300, "out of range"),
        (float("inf"), "out of range"),
        (float("nan"), "out of range"),
    ],
)
def test_a_malformed_exp_claim_is_reported_not_fatal(exp: Any, problem: str) -> None:
    key = raw_jwt(claims={"sub": "u", "exp": exp})
    info = parse_key(key)
    assert info.kind == "jwt"
    assert info.expires_at is None
    assert len(info.problems) == 1 and problem in info.problems[0]
    assert not info.is_expired(NOW)
    assert not info.expires_within(7, NOW)
    # check_key stores such a key (n8n never issues one; the server will judge it).
    assert check_key(key, now=NOW)[0] == key


def test_a_null_exp_means_no_expiry() -> None:
    info = parse_key(raw_jwt(claims={"sub": "u", "exp": None}))
    assert info.expires_at is None and info.problems == ()


def test_a_fractional_exp_is_accepted() -> None:
    exp = (NOW + timedelta(days=2)).timestamp() + 0.5
    info = parse_key(raw_jwt(claims={"exp": exp}))
    assert info.expires_at is not None
    assert human_date(info.expires_at) == "2025-10-03"


@pytest.mark.parametrize(
    "claims",
    [
        {"iat": "yesterday", "nbf": "soon", "aud": 5, "iss": ["x"], "sub": None},
        {"iat": 10**400, "nbf": -1},
        {},
    ],
)
def test_other_odd_claims_are_not_checked_client_side(claims: dict[str, Any]) -> None:
    assert parse_key(raw_jwt(claims=claims)).kind == "jwt"


# --- whitespace --------------------------------------------------------------------------


@pytest.mark.parametrize("padding", [("  ", "\n"), ("\t", "\r\n"), ("\n\n", "  \n"), ("", "\n")])
def test_surrounding_whitespace_and_newlines_are_stripped(padding: tuple[str, str]) -> None:
    key = make_jwt()
    assert clean_key(padding[0] + key + padding[1]) == key
    assert check_key(padding[0] + key + padding[1])[0] == key


@pytest.mark.parametrize("raw", ["", "   ", "\n", "\t\r\n "])
def test_an_empty_key_is_a_usage_error(raw: str) -> None:
    with pytest.raises(UsageError, match="The API key is empty") as caught:
        clean_key(raw)
    assert caught.value.exit_status == ExitStatus.USAGE


@pytest.mark.parametrize("inside", [" ", "\n", "\t", "\u00a0"])
def test_whitespace_inside_the_key_is_refused_without_showing_it(inside: str) -> None:
    key = make_jwt()
    broken = key[:40] + inside + key[40:]
    with pytest.raises(InvalidKeyFormatError, match="whitespace inside") as caught:
        clean_key(broken)
    _assert_secret_free(caught.value, key[:40])
    _assert_secret_free(caught.value, key[40:])


@pytest.mark.parametrize(
    ("pasted", "named"),
    [
        ("Bearer {key}", "'Bearer'"),
        ("X-N8N-API-KEY: {key}", "'X-N8N-API-KEY:'"),
        ("x-n8n-api-key:{key}", "'x-n8n-api-key:'"),
        ("Authorization: Bearer {key}", "'Authorization: Bearer'"),
    ],
)
def test_a_key_pasted_with_its_header_says_what_to_remove(pasted: str, named: str) -> None:
    key = make_jwt()
    with pytest.raises(InvalidKeyFormatError) as caught:
        check_key(pasted.format(key=key))
    assert f"the key starts with {named}" in caught.value.message
    assert caught.value.hint is not None and f"without {named}" in caught.value.hint
    assert "whitespace" not in caught.value.message + caught.value.hint
    assert key not in caught.value.message + caught.value.hint


@pytest.mark.parametrize("quote", ["'", '"'])
def test_a_quoted_key_says_remove_the_quotes(quote: str) -> None:
    with pytest.raises(InvalidKeyFormatError, match="the key is in quotes") as caught:
        check_key(f"{quote}{make_jwt()}{quote}")
    assert caught.value.hint == "Remove the quotes around it"


# --- expiry at storage time --------------------------------------------------------------


def test_check_key_refuses_an_expired_key_naming_the_date() -> None:
    exp = int((NOW - timedelta(days=1)).timestamp())
    key = raw_jwt(claims={"sub": "u", "exp": exp})
    with pytest.raises(KeyExpiredError) as caught:
        check_key(key, now=NOW)
    assert caught.value.message == "The API key expired on 2025-09-30; n8n will reject it"
    assert caught.value.exit_status == ExitStatus.KEY_EXPIRED
    _assert_secret_free(caught.value, key)


def test_a_key_expiring_exactly_now_is_expired() -> None:
    key = raw_jwt(claims={"exp": int(NOW.timestamp())})
    with pytest.raises(KeyExpiredError):
        check_key(key, now=NOW)


def test_check_key_accepts_a_key_expiring_soon() -> None:
    exp = int((NOW + timedelta(days=3)).timestamp())
    _, info = check_key(raw_jwt(claims={"exp": exp}), now=NOW)
    assert info.expires_within(7, NOW)
    assert info.expires_at is not None and human_date(info.expires_at) == "2025-10-04"


def test_check_key_refuses_a_bad_format_before_looking_at_expiry() -> None:
    with pytest.raises(InvalidKeyFormatError):
        check_key("not-a-key")


# --- masking and display -----------------------------------------------------------------


def test_mask_shows_only_the_last_four_characters() -> None:
    key = make_jwt()
    masked = mask_key(key)
    assert masked == "********" + key[-4:]
    assert key not in masked
    assert key[:-4] not in masked


def test_mask_of_a_legacy_key() -> None:
    key = make_legacy_key(7)
    assert mask_key(key) == "********0707"


@pytest.mark.parametrize("key", ["", "a", "abcd", "abcdefgh"])
def test_mask_of_a_short_value_reveals_nothing(key: str) -> None:
    assert mask_key(key) == "********"


def test_masking_a_column_of_keys_masks_each_as_one_key_alone() -> None:
    keys = ["", "abcdefgh", "abcdefghi", make_legacy_key(7), make_jwt()]
    assert mask_keys(keys) == [mask_key(key) for key in keys]
    assert mask_keys(keys)[:3] == ["********", "********", "********fghi"]


def test_key_info_or_none_never_raises_on_stored_garbage() -> None:
    assert key_info_or_none("garbage") is None
    assert key_info_or_none("a.b.c") is None
    legacy = key_info_or_none(make_legacy_key())
    assert legacy is not None and legacy.kind == "legacy"
    info = key_info_or_none(" " + make_jwt() + "\n")
    assert info is not None and info.kind == "jwt"


def test_key_info_repr_does_not_show_the_claims() -> None:
    info = parse_key(make_jwt(sub="user-secret-id"))
    assert "user-secret-id" not in repr(info)


def _jwt_like_or_damaged(rng: random.Random) -> str:
    """A JWT-shaped key, or one a character away from it, or another kind of key."""
    key = rng.choice([make_jwt(exp_days=3), "a.b.c", "Ab_-.0.9-", make_legacy_key()])
    roll = rng.random()
    if roll < 0.5:
        return key
    at = rng.randrange(len(key) + 1)
    damage = rng.choice([".", "..", "\n", " ", "=", "+", "/", "é", "\u0663", "\x00", "", "a"])
    return key[:at] + damage + key[at + (roll < 0.8) :]


def test_the_kinds_of_a_listing_are_each_keys_kind() -> None:
    rng = random.Random(17)
    all_jwt = 0
    for _ in range(3000):
        keys = [_jwt_like_or_damaged(rng) for _ in range(rng.choice([1, 2, 3, 6]))]
        if rng.random() < 0.3:  # a column of good JWTs, but for at most one key
            keys = [make_jwt(exp_days=1)] * 4 + keys[:1]
        kinds = key_kinds(keys)
        assert kinds == [key_kind(key) for key in keys], keys
        all_jwt += set(kinds) == {"jwt"}
    assert all_jwt > 300
    assert key_kinds([]) == []
