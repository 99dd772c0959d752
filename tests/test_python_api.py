"""The Python API without the CLI: add_key (what `apikey add` is built on), rotate_key."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from n8n_deploy.apikeys import add as keystore
from n8n_deploy.base.errors import InvalidNameError, NotFoundError
from n8n_deploy.store.engine import Database
from n8n_deploy.store.repositories import ApiKeyRepository, ServerRepository
from tests.helpers import make_jwt, raw_jwt


def test_add_key_stores_links_and_returns_warnings(database: Database) -> None:
    secret = make_jwt(exp_days=2)
    with database.session(write=True) as s:
        added = keystore.add_key(
            s, " prod ", " " + secret + "\n", server="Prod", server_url="https://N8N.example.com/"
        )
        assert added.key.name == "prod"
        assert added.server is not None and added.server.url == "https://n8n.example.com"
        assert added.server_created is True
        (warning,) = added.warnings
        assert "expires within 7 days, on" in warning
    with database.session() as s:
        key = ApiKeyRepository(s).get("prod")
        assert key.api_key == secret
        assert [srv.name for srv in key.servers] == ["Prod"]


def test_plan_checks_without_a_database_and_hides_the_secret() -> None:
    secret = make_jwt()
    now = datetime(2025, 10, 1, tzinfo=timezone.utc)
    new = keystore.plan_new_key("k", secret, description="  d  ", now=now)
    assert (new.name, new.description, new.server_name, new.server_url) == ("k", "d", None, None)
    assert secret not in repr(new)
    with pytest.raises(InvalidNameError):
        keystore.plan_new_key("x" * 101, secret)


def test_a_server_name_close_to_a_stored_one_is_a_typo_and_stores_nothing(
    database: Database,
) -> None:
    with database.session(write=True) as s:
        ServerRepository(s).create("Production", "https://n8n.example.com")
    with pytest.raises(NotFoundError) as caught, database.session(write=True) as s:
        keystore.add_key(s, "k", make_jwt(), server="Producton")
    assert caught.value.hint is not None
    assert caught.value.hint.startswith("Did you mean: 'Production'? To create a new server")
    assert "n8n-deploy server create Producton URL" in caught.value.hint
    with database.session() as s:
        assert ApiKeyRepository(s).list() == []


def test_a_new_server_name_without_a_url_creates_the_server_without_one(
    database: Database,
) -> None:
    with database.session(write=True) as s:
        added = keystore.add_key(s, "k", make_jwt(), server="Staging")
    assert added.server_created and added.server is not None and added.server.url is None
    (warning,) = added.warnings
    assert "server update Staging --url URL" in warning


def test_the_expiry_warning_window_is_seven_days() -> None:
    now = datetime(2025, 10, 1, tzinfo=timezone.utc)
    exp = int((now + timedelta(days=8)).timestamp())
    assert keystore.plan_new_key("k", raw_jwt(claims={"exp": exp}), now=now).warnings == ()
    exp = int((now + timedelta(days=7)).timestamp())
    (warning,) = keystore.plan_new_key("k", raw_jwt(claims={"exp": exp}), now=now).warnings
    assert warning.endswith("on 2025-10-08; create a new key in n8n before then")


def test_rotate_key_from_python_tests_the_new_key_then_retires_the_old(
    database: Database,
) -> None:
    from n8n_deploy import CheckOptions, rotate_key
    from tests.fake_n8n import fake_server, n8n_like

    old, new = make_jwt(sub="old"), make_jwt(sub="new")
    with fake_server(n8n_like({old, new})) as server:
        with database.session(write=True) as s:
            production = ServerRepository(s).create("Production", server.url)
            ApiKeyRepository(s).add("old_key", old, servers=[production])
        report = rotate_key(database, "old_key", new, "new_key", options=CheckOptions(timeout=5))
    assert report.rotated and report.new_stored and report.old_action == "deactivated"
    assert int(report.exit_status) == 0
    assert new not in repr(report) and new not in str(report.to_dict())
    with database.session() as s:
        keys = ApiKeyRepository(s)
        assert keys.get("old_key").is_active is False
        assert keys.get("new_key").api_key == new
        assert [srv.name for srv in keys.get("new_key").servers] == ["Production"]
