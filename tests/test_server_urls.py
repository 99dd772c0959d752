"""Server URLs and names as typed by users: the normal form, what is refused, what is warned."""

from __future__ import annotations

import pytest

from n8n_deploy.base.errors import InvalidNameError, InvalidServerUrlError
from n8n_deploy.base.names import clean_name, lookup_name
from n8n_deploy.base.text import contains_api_key
from n8n_deploy.base.urls import is_loopback_host, normalize_server_url, server_url_warnings
from tests.helpers import make_jwt, make_legacy_key


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("https://n8n.example.com", "https://n8n.example.com"),
        ("https://n8n.example.com/", "https://n8n.example.com"),
        ("HTTPS://N8N.Example.COM:443/", "https://n8n.example.com"),
        ("http://n8n.example.com:80/", "http://n8n.example.com"),
        ("http://n8n.example.com:443", "http://n8n.example.com:443"),
        ("https://n8n.example.com:80", "https://n8n.example.com:80"),
        ("https://proxy.example.com/n8n/", "https://proxy.example.com/n8n"),
        ("https://proxy.example.com/Tools/N8N", "https://proxy.example.com/Tools/N8N"),
        ("https://n8n.example.com.", "https://n8n.example.com"),
        ("http://[::1]:5678/", "http://[::1]:5678"),
        ("http://n8n_main:5678", "http://n8n_main:5678"),
        ("https://münchen.example", "https://münchen.example"),
        ("\thttps://n8n.example.com \n", "https://n8n.example.com"),
    ],
)
def test_normal_form(given: str, normal: str) -> None:
    assert normalize_server_url(given) == normal
    assert normalize_server_url(normal) == normal  # idempotent


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "ftp://x",
        "not a url",
        "http://",
        "http:///n8n",
        "n8n.example.com",
        "https://user@n8n.example.com",
        "https://n8n.example.com?",
        "http://a%20b",
        "http://host\\path",
        "http://a-.example.com",
        "http://256.0.0.1",
        "http://[zz::1]",
        "http://host:65536",
    ],
)
def test_refused_urls(bad: str) -> None:
    with pytest.raises(InvalidServerUrlError) as caught:
        normalize_server_url(bad)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://localhost:5678", True),
        ("http://n8n.localhost", True),
        ("http://127.0.0.1", True),
        ("http://127.1.2.3:5678", True),
        ("http://[::1]:5678", True),
        ("http://[0:0::1]", True),
        ("http://10.0.0.1", False),
        ("http://localhost.example.com", False),
        ("https://n8n.example.com", False),
    ],
)
def test_loopback_hosts(url: str, loopback: bool) -> None:
    assert is_loopback_host(url) is loopback


def test_warnings_for_plain_http_and_the_api_path() -> None:
    assert server_url_warnings("https://n8n.example.com") == []
    assert server_url_warnings("http://localhost:5678") == []
    (plain,) = server_url_warnings("http://n8n.internal:5678")
    assert "unencrypted" in plain
    (api_path,) = server_url_warnings("https://n8n.example.com/api/v1")
    assert "/api/v1" in api_path


def test_api_keys_are_recognised_but_ordinary_names_are_not() -> None:
    assert contains_api_key(make_jwt())
    assert contains_api_key(make_legacy_key(3))
    for name in ("n8n_api_prod", "eyJ", "prod_key", "Production Server 🚀", "e.y.J"):
        assert not contains_api_key(name)
    assert clean_name("n8n_api_prod") == "n8n_api_prod"


def test_a_key_given_as_a_name_is_refused_without_being_echoed() -> None:
    secret = make_legacy_key(9)
    for check in (clean_name, lookup_name):
        with pytest.raises(InvalidNameError) as caught:
            check(secret, "server")
        assert secret not in str(caught.value) + (caught.value.hint or "")


def test_lookup_names_are_trimmed_and_never_empty() -> None:
    assert lookup_name("  Production  ", "server") == "Production"
    # Looser than clean_name: a long name stored earlier can still be looked up.
    assert lookup_name("x" * 150) == "x" * 150
    with pytest.raises(InvalidNameError, match="The server name is empty"):
        lookup_name("  ", "server")
