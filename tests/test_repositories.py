"""The repositories: every operation, its not-found and duplicate paths, and cascades."""

from __future__ import annotations

from datetime import timezone

import pytest
from sqlalchemy import func, select

from n8n_deploy.base.errors import AlreadyExistsError, NotFoundError, OperationFailed
from n8n_deploy.store.engine import Database
from n8n_deploy.store.models import ApiKey, ServerApiKey
from n8n_deploy.store.repositories import ApiKeyRepository, ServerRepository
from tests.helpers import make_jwt

# Every repository test runs on SQLite, PostgreSQL and MariaDB (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("engine")


def test_add_and_get_a_key_with_timestamps_in_utc(database: Database) -> None:
    secret = make_jwt()
    with database.session(write=True) as s:
        ApiKeyRepository(s).add("prod_key", secret, description="main")
    with database.session() as s:
        key = ApiKeyRepository(s).get("prod_key")
        assert key.api_key == secret
        assert key.description == "main"
        assert key.is_active is True
        assert key.last_used_at is None
        assert key.created_at.tzinfo is not None
        assert key.created_at.utcoffset() == timezone.utc.utcoffset(None)


def test_a_key_repr_never_contains_the_secret(database: Database) -> None:
    secret = make_jwt()
    with database.session(write=True) as s:
        key = ApiKeyRepository(s).add("prod_key", secret)
        assert secret not in repr(key)
        assert secret not in str(key)
        assert "prod_key" in repr(key)


def test_duplicate_name_is_refused_and_nothing_is_stored(database: Database) -> None:
    with database.session(write=True) as s:
        ApiKeyRepository(s).add("k", make_jwt(sub="a"))
    with (
        pytest.raises(AlreadyExistsError, match="API key 'k' already exists"),
        database.session(write=True) as s,
    ):
        ApiKeyRepository(s).add("k", make_jwt(sub="b"))
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(ApiKey)) == 1


def test_the_same_secret_under_another_name_is_refused_naming_the_entry(
    database: Database,
) -> None:
    secret = make_jwt()
    with database.session(write=True) as s:
        ApiKeyRepository(s).add("first", secret)
    with (
        pytest.raises(OperationFailed, match="already stored as 'first'") as caught,
        database.session(write=True) as s,
    ):
        ApiKeyRepository(s).add("second", secret)
    assert secret not in str(caught.value) and secret not in (caught.value.hint or "")


def test_not_found_suggests_close_names(database: Database) -> None:
    with database.session(write=True) as s:
        ApiKeyRepository(s).add("production_key", make_jwt())
    with database.session() as s, pytest.raises(NotFoundError) as caught:
        ApiKeyRepository(s).get("producton_key")
    assert str(caught.value) == "API key 'producton_key' not found"
    assert caught.value.suggestions == ["production_key"]


def test_list_filters_by_status_and_server(database: Database) -> None:
    with database.session(write=True) as s:
        keys, servers = ApiKeyRepository(s), ServerRepository(s)
        prod = servers.create("Production", "https://n8n.example.com")
        keys.add("a", make_jwt(sub="a"), servers=[prod])
        b = keys.add("b", make_jwt(sub="b"))
        keys.set_active(b, False)
    with database.session() as s:
        keys, servers = ApiKeyRepository(s), ServerRepository(s)
        assert [k.name for k in keys.list()] == ["a", "b"]
        assert [k.name for k in keys.list(active=True)] == ["a"]
        assert [k.name for k in keys.list(active=False)] == ["b"]
        assert [k.name for k in keys.list(server=servers.get("Production"))] == ["a"]
        assert [srv.name for srv in keys.get("a").servers] == ["Production"]


def test_set_active_reports_whether_anything_changed(database: Database) -> None:
    with database.session(write=True) as s:
        keys = ApiKeyRepository(s)
        key = keys.add("k", make_jwt())
        assert keys.set_active(key, False) is True
        assert keys.set_active(key, False) is False
        assert keys.set_active(key, True) is True


def test_mark_used_sets_last_used_at(database: Database) -> None:
    with database.session(write=True) as s:
        keys = ApiKeyRepository(s)
        keys.mark_used(keys.add("k", make_jwt()))
    with database.session() as s:
        assert ApiKeyRepository(s).get("k").last_used_at is not None


def test_servers_create_get_update_and_duplicates(database: Database) -> None:
    with database.session(write=True) as s:
        servers = ServerRepository(s)
        servers.create("Staging", "http://n8n-staging.internal:5678", description="stage")
        servers.create("Production", "https://n8n.example.com")
        with pytest.raises(AlreadyExistsError, match="Server 'Staging' already exists"):
            servers.create("Staging", "http://other")
        with pytest.raises(AlreadyExistsError):
            servers.update(servers.get("Staging"), name="Production")
        servers.update(servers.get("Staging"), name="Stage", skip_ssl_verify=True)
    with database.session() as s:
        servers = ServerRepository(s)
        assert [srv.name for srv in servers.list()] == ["Production", "Stage"]
        stage = servers.get("Stage")
        assert stage.skip_ssl_verify is True
        assert servers.find_by_url("https://n8n.example.com") is not None
        with pytest.raises(NotFoundError, match="Server 'Staging' not found"):
            servers.get("Staging")


def test_link_and_unlink_are_idempotent_and_counted(database: Database) -> None:
    with database.session(write=True) as s:
        keys, servers = ApiKeyRepository(s), ServerRepository(s)
        srv = servers.create("S", "https://s.example.com")
        a = keys.add("a", make_jwt(sub="a"))
        b = keys.add("b", make_jwt(sub="b"))
        assert servers.link(a, srv) is True
        assert servers.link(a, srv) is False
        assert servers.link(b, srv) is True
        keys.set_active(b, False)
        assert servers.count_links() == {srv.id: (1, 2)}
        assert servers.unlink(b, srv) is True
        assert servers.unlink(b, srv) is False
        assert [k.name for k in servers.get("S").api_keys] == ["a"]


def test_deleting_a_key_removes_its_links_but_not_the_server(database: Database) -> None:
    with database.session(write=True) as s:
        keys, servers = ApiKeyRepository(s), ServerRepository(s)
        srv = servers.create("S", "https://s.example.com")
        keys.add("a", make_jwt(), servers=[srv])
    with database.session(write=True) as s:
        ApiKeyRepository(s).delete(ApiKeyRepository(s).get("a"))
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(ServerApiKey)) == 0
        assert ServerRepository(s).get("S").api_keys == []


def test_deleting_a_server_keeps_its_keys(database: Database) -> None:
    with database.session(write=True) as s:
        keys, servers = ApiKeyRepository(s), ServerRepository(s)
        srv = servers.create("S", "https://s.example.com")
        keys.add("a", make_jwt(), servers=[srv])
    with database.session(write=True) as s:
        ServerRepository(s).delete(ServerRepository(s).get("S"))
    with database.session() as s:
        key = ApiKeyRepository(s).get("a")
        assert key.servers == []
        assert s.scalar(select(func.count()).select_from(ServerApiKey)) == 0


def test_the_database_cascade_works_without_the_orm(database: Database) -> None:
    """ON DELETE CASCADE is enforced by the database itself (foreign_keys=ON)."""
    from sqlalchemy import text

    with database.session(write=True) as s:
        keys, servers = ApiKeyRepository(s), ServerRepository(s)
        keys.add("a", make_jwt(), servers=[servers.create("S", "https://s.example.com")])
    with database.engine.begin() as conn:
        conn.execute(text("DELETE FROM api_keys"))
        assert conn.execute(text("SELECT COUNT(*) FROM server_api_keys")).scalar() == 0


def test_a_failed_unit_of_work_stores_nothing(database: Database) -> None:
    with pytest.raises(RuntimeError), database.session(write=True) as s:
        ApiKeyRepository(s).add("k", make_jwt())
        raise RuntimeError("interrupted half-way")
    with database.session() as s:
        assert ApiKeyRepository(s).list() == []


def test_suggestions_are_only_close_names(database: Database) -> None:
    with database.session(write=True) as s:
        for name in ("prod_key", "dev_key", "local_key"):
            ApiKeyRepository(s).add(name, make_jwt(sub=name))
    with database.session() as s, pytest.raises(NotFoundError) as unrelated:
        ApiKeyRepository(s).get("old_key")
    assert unrelated.value.suggestions == []
    with database.session() as s, pytest.raises(NotFoundError) as typo:
        ApiKeyRepository(s).get("prod_ky")
    assert typo.value.suggestions == ["prod_key"]


def test_adding_a_key_to_a_busy_server_reads_none_of_its_other_keys(database: Database) -> None:
    """Bulk adds stay linear: linking a new key does not load the keys already linked."""
    with database.session(write=True) as s:
        server = ServerRepository(s).create("Prod", "https://n8n.example.com")
        repo = ApiKeyRepository(s)
        for i in range(30):
            repo.add(f"key{i:02d}", make_jwt(sub=f"u{i}"), servers=[server])
    with database.session(write=True) as s:
        server = ServerRepository(s).get("Prod")
        new = ApiKeyRepository(s).add("new", make_jwt(sub="new"), servers=[server])
        loaded = [obj for obj in s.identity_map.values() if isinstance(obj, ApiKey)]
        assert loaded == [new]
    with database.session() as s:
        assert len(ServerRepository(s).get("Prod").api_keys) == 31
