"""The installed program: console script, python -m, start-up cost, and the wheel."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from n8n_deploy import __version__
from n8n_deploy.base.settings import resolve_settings
from n8n_deploy.store import schema
from n8n_deploy.store.lifecycle import open_database
from tests.helpers import (
    HEAVY,
    NOT_FOR_READING,
    add_key,
    add_server,
    file_mode,
    imported_module_names,
    imported_modules,
    installed_script,
    make_jwt,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.e2e
@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("--version",),
        ("apikey", "--help"),
        ("server", "--help"),
        ("db", "--help"),
        ("apikey", "add", "--help"),
        ("db", "path"),  # a command that parses arguments but needs no database
    ],
)
def test_help_and_version_do_not_import_heavy_libraries(args: tuple[str, ...]) -> None:
    modules = imported_modules(*args, env=dict(os.environ))
    assert "n8n_deploy" in modules
    assert not (modules & set(HEAVY)), sorted(modules & set(HEAVY))


@pytest.mark.e2e
@pytest.mark.parametrize(
    "args",
    [
        ("apikey", "list"),
        ("apikey", "list", "--json"),
        ("apikey", "list", "--server", "Production", "--no-emoji"),
        ("apikey", "show", "prod_key"),
        # (apikey get writes: it records the read in the key's history)
        ("server", "list"),
        ("server", "list", "--json"),
        ("server", "show", "Production"),
        ("server", "keys", "Production"),
    ],
)
def test_commands_that_only_read_a_sqlite_file_load_no_sqlalchemy_at_all(
    args: tuple[str, ...], data_dir: Path
) -> None:
    database = open_database(resolve_settings())
    try:
        add_server(database, "Production", "https://n8n.example.com")
        add_key(database, "prod_key", make_jwt(exp_days=30), ["Production"])
    finally:
        database.dispose()
    modules = imported_module_names(*args, env=dict(os.environ))
    assert "n8n_deploy.store.sqlite_reading" in modules  # they did read the database
    loaded = {m for m in modules for n in ("sqlalchemy", "alembic") if m.split(".")[0] == n}
    assert not loaded, sorted(loaded)


@pytest.mark.e2e
def test_a_sqlite_file_given_as_a_uri_is_read_through_sqlalchemy_core_without_the_orm(
    data_dir: Path,
) -> None:
    database = open_database(resolve_settings())
    try:
        add_key(database, "prod_key", make_jwt(exp_days=30))
    finally:
        database.dispose()
    uri = f"sqlite:///file:{data_dir / 'n8n-deploy.db'}?uri=true"
    modules = imported_module_names(
        "apikey", "list", env=dict(os.environ, N8N_DEPLOY_DATABASE_URL=uri)
    )
    assert "sqlalchemy" in modules  # read the ordinary way
    loaded = {m for m in modules for n in NOT_FOR_READING if m == n or m.startswith(f"{n}.")}
    assert not loaded, sorted(loaded)


#: The modules of the other groups and of the commands that write or reach a server.
OTHER_COMMANDS = (
    "n8n_deploy.cli.verify",
    "n8n_deploy.cli.hygiene",
    "n8n_deploy.cli.database",
    "n8n_deploy.apikeys",
    "n8n_deploy.n8n.probe",
    "n8n_deploy.store.repositories",
    "n8n_deploy.store.migrations",
)


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "group"),
    [
        (("apikey", "list"), "n8n_deploy.cli.servers"),
        (("apikey", "list", "--json"), "n8n_deploy.cli.servers"),
        (("apikey", "show", "prod_key"), "n8n_deploy.cli.servers"),
        (("server", "list"), "n8n_deploy.cli.keys"),
    ],
)
def test_commands_that_only_read_load_no_module_of_the_other_commands(
    args: tuple[str, ...], group: str, data_dir: Path
) -> None:
    # cli.lazy: a group's module, and the modules of the commands registered into apikey
    # from elsewhere, are imported only when one of their commands is used.
    database = open_database(resolve_settings())
    try:
        add_server(database, "Production", "https://n8n.example.com")
        add_key(database, "prod_key", make_jwt(exp_days=30), ["Production"])
    finally:
        database.dispose()
    modules = imported_module_names(*args, env=dict(os.environ))
    assert "n8n_deploy.cli.app" in modules
    unwanted = (*OTHER_COMMANDS, group)
    loaded = {m for m in modules for n in unwanted if m == n or m.startswith(f"{n}.")}
    assert not loaded, sorted(loaded)


@pytest.mark.e2e
def test_the_help_of_a_group_loads_no_module_of_the_other_groups() -> None:
    modules = imported_module_names("server", "--help", env=dict(os.environ))
    assert "n8n_deploy.cli.servers" in modules
    loaded = {"n8n_deploy.cli.keys", "n8n_deploy.cli.verify", "n8n_deploy.cli.hygiene"} & modules
    assert not loaded, sorted(loaded)


@pytest.mark.e2e
def test_shell_completion_of_commands_does_not_import_heavy_libraries() -> None:
    env = dict(
        os.environ, _N8N_DEPLOY_COMPLETE="complete_bash", COMP_WORDS="n8n-deploy ap", COMP_CWORD="1"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "import sys; sys.argv=['n8n-deploy']; from n8n_deploy.cli import main; main()",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert "apikey" in result.stdout
    modules = {
        line.split("|")[-1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert not (modules & set(HEAVY))


@pytest.mark.e2e
def test_installed_script_creates_a_private_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = dict(os.environ, N8N_DEPLOY_DATA_DIR=str(data))
    result = subprocess.run(
        [installed_script(), "db", "upgrade"], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    db_file = data / "n8n-deploy.db"
    assert file_mode(db_file) == 0o600
    assert file_mode(data) == 0o700
    with sqlite3.connect(db_file) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert {"api_keys", "servers", "server_api_keys", "alembic_version"} <= tables


@pytest.mark.e2e
def test_python_dash_m_runs_the_same_program() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "n8n_deploy", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.strip() == f"n8n-deploy {__version__}"


@pytest.mark.e2e
def test_the_wheel_ships_the_migrations_and_runs_them_outside_the_checkout(
    tmp_path: Path,
) -> None:
    # Build from a copy of the sources: a build writes build/ and *.egg-info beside them,
    # and no test writes into the checkout.
    sources = tmp_path / "src"
    sources.mkdir()
    for name in ("pyproject.toml", "README.md", "n8n_deploy", "migrations"):
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, sources / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(ROOT / name, sources / name)
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(sources),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("n8n_deploy-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "n8n_deploy/migrations/env.py" in names
    assert "n8n_deploy/migrations/script.py.mako" in names
    for revision in schema.KNOWN_REVISIONS:
        assert any(n.startswith(f"n8n_deploy/migrations/versions/{revision}_") for n in names)

    # Install the wheel alone into a folder and run it from elsewhere, so nothing can
    # come from the checkout (its dependencies come from the test environment).
    target = tmp_path / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = dict(
        os.environ,
        PYTHONPATH=str(target),
        N8N_DEPLOY_DATA_DIR=str(tmp_path / "d"),
        PYTHONSAFEPATH="1",
    )
    code = (
        "import sys, n8n_deploy; print(n8n_deploy.__file__); "
        "sys.argv = ['n8n-deploy', 'db', 'upgrade']; "
        "from n8n_deploy.cli import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(str(target))
    assert (tmp_path / "d" / "n8n-deploy.db").exists()
