"""The secret sweep (issue #15): every command and option of the CLI, on success and
failure paths, with keys planted in every field a user, a 0.9 database or a server can
fill, for every output format, with and without N8N_DEPLOY_DEBUG=1.

A run fails when a key, any 12-character piece of one, or a URL password appears in
stdout, stderr, a log record, a traceback or a file outside the data folder.  The only
exceptions are the ones a user asks for (``--unmask``, ``apikey get``), and those are
asserted to print the key, so the sweep can fail there too.

The commands are enumerated from the click tree of the real application: a command
added later fails ``test_every_command_and_option_has_a_sweep_entry`` until it has cases
here that use each of its options.  Every run is the real CLI through CliRunner on a copy
of one SQLite file (built from a hostile 0.9 database), against an in-process fake n8n
that echoes the key it receives in its messages, headers and redirects.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import traceback
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from n8n_deploy.cli import app
from n8n_deploy.n8n import probe as validator
from tests.dbfactory import build_legacy, legacy_key, legacy_link, legacy_server
from tests.fake_n8n import EVERY_SCOPE, Answer, Seen, fake_server, json_answer, scoped_n8n
from tests.helpers import make_jwt, make_legacy_key

Path_ = tuple[str, ...]

# --- the planted secrets --------------------------------------------------------------

GOOD = make_jwt(exp_days=60, sub="sweep-good")  # valid on the fake server
BAD = make_jwt(exp_days=60, sub="sweep-bad")  # rejected, echoed back in the message
ECHO500 = make_jwt(exp_days=60, sub="sweep-500")  # a 500 whose message quotes the key
REDIRECT = make_jwt(exp_days=60, sub="sweep-redirect")  # a redirect to a URL holding it
NAMED = make_jwt(exp_days=60, sub="sweep-named")  # the secret of a key named like a key
LEGACY = make_legacy_key(7)  # an inactive legacy key
EXPIRED = make_jwt(exp_days=-3, sub="sweep-expired")
UNLINKED = make_jwt(exp_days=60, sub="sweep-unlinked")
TEMP = make_jwt(exp_days=60, sub="sweep-temp")  # ephemeral, past its deadline
NEW = make_jwt(exp_days=60, sub="sweep-new")  # typed by users: add, rotate, test -
NEW_BAD = make_jwt(exp_days=60, sub="sweep-new-bad")  # a new key the server rejects
NEW_EXPIRED = make_jwt(exp_days=-1, sub="sweep-new-expired")
AS_NAME = make_jwt(exp_days=60, sub="sweep-as-name")  # where a name belongs
AS_DESCRIPTION = make_jwt(sub="sweep-as-description")  # where a description belongs
IN_URL = make_jwt(sub="sweep-in-url")  # in a server URL's path
AS_ACTOR = make_jwt(sub="sweep-actor")  # in N8N_DEPLOY_ACTOR

STORED = {
    "good": GOOD,
    "bad": BAD,
    "echo500": ECHO500,
    "redirect": REDIRECT,
    AS_NAME: NAMED,
    "old": LEGACY,
    "expired": EXPIRED,
    "unlinked": UNLINKED,
}
SECRETS = {
    **{f"stored key {name[:12]}": secret for name, secret in STORED.items()},
    "ephemeral key": TEMP,
    "new key": NEW,
    "new rejected key": NEW_BAD,
    "new expired key": NEW_EXPIRED,
    "key as a name": AS_NAME,
    "key in a description": AS_DESCRIPTION,
    "key in a URL path": IN_URL,
    "key in the actor": AS_ACTOR,
}
URL_PASSWORD = "Pw0rdSecretXYZ"  # in a 0.9 server URL
QUERY_TOKEN = "T0kenSecretValue1"  # in a 0.9 server URL's query, and in a redirect
ENV_PASSWORD = "EnvPassw0rdQ7"  # in N8N_SERVER_URL, --server-url, server create/update
DATABASE_PASSWORD = "DbPassw0rdK9"  # in --database-url
PASSWORDS = {
    "URL password": URL_PASSWORD,
    "query token": QUERY_TOKEN,
    "environment URL password": ENV_PASSWORD,
    "database URL password": DATABASE_PASSWORD,
}
PIECE = 12
#: An --expires-at within the 366 days an ephemeral key may live.
SOON = (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%MZ")

# --- the server -----------------------------------------------------------------------


def answer(seen: Seen) -> Answer:
    """n8n for GOOD and NEW (every scope); for any other key an answer that holds it."""
    sent = seen.headers.get("x-n8n-api-key", "")
    if sent in (GOOD, NEW):
        return scoped_n8n({GOOD: EVERY_SCOPE, NEW: EVERY_SCOPE})(seen)
    echo = {"X-Echo": sent, "WWW-Authenticate": f'Bearer error="{sent[5:60]}"'}
    if sent == ECHO500:
        # Whole, then in other letter cases (a proxy that folds what it quotes).
        said = f"internal error with key {sent} ({sent.lower()}; {sent.upper()[-20:]})"
        return json_answer(500, {"message": said}, echo)
    if sent == REDIRECT:
        location = f"http://elsewhere.example/steal?key={sent}&token={QUERY_TOKEN}"
        return 302, {"Location": location, **echo}, b""
    return json_answer(
        401, {"message": f"key {sent} refused ({sent[:40]} / {sent[-30:]})", "key": sent}, echo
    )


# --- the sweep: cases per command -------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One command line, its exit status, what it reads, what the user asked to see."""

    args: tuple[str, ...]
    status: int
    input: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    #: Secrets the user asked for (--unmask, apikey get): they must be printed.
    reveals: tuple[str, ...] = ()
    #: Start from the hostile 0.9 file instead of the upgraded database.
    legacy: bool = False
    #: Files the user named, outside the data folder, that may hold keys (a backup).
    user_files: tuple[str, ...] = ()


def sweep(url: str) -> dict[Path_, list[Case]]:
    """Every command path of the CLI and the cases that sweep it.  ``url`` is the fake
    server's; ``{data}`` in an argument is the run's data folder."""
    creds = url.replace("http://", f"http://alice:{ENV_PASSWORD}@")
    keyed = f"{url}/{IN_URL}"
    tokened = f"{url}/?token={QUERY_TOKEN}"
    unmasked = (*STORED.values(), TEMP)
    odd_database = f"bogus+x://a:{DATABASE_PASSWORD}@127.0.0.1/x"
    return {
        (): [
            Case(("--version",), 0),
            Case(("--show-completion", "bash"), 0),
            Case(("--install-completion", "bash"), 0),
            Case(("--data-dir", "{data}", "server", "list"), 0),
            Case(
                ("--database-url", f"mysql://root:{DATABASE_PASSWORD}@127.0.0.1/x", "db", "path"), 0
            ),
            Case(
                (
                    "--database-url",
                    f"postgresql://u:{DATABASE_PASSWORD}@127.0.0.1:9/x",
                    "apikey",
                    "list",
                ),
                1,
            ),
            Case(("--database-url", f"https://{AS_NAME}", "db", "path"), 0),
            Case(("--database-url", f"https://{AS_NAME}", "apikey", "list"), 2),
            Case((f"--{AS_NAME}",), 2),
        ],
        ("apikey",): [Case(("apikey",), 2), Case(("apikey", AS_NAME), 2)],
        ("apikey", "add"): [
            Case(
                (
                    "apikey",
                    "add",
                    "-",
                    "--name",
                    "fresh",
                    "--server",
                    "Production",
                    "--description",
                    "CI deploys",
                ),
                0,
                input=NEW + "\n",
            ),
            Case(("apikey", "add", "-", "--name", "fresh", "--ttl", "2h"), 0, input=NEW),
            Case(
                ("apikey", "add", "-", "--name", "fresh", "--expires-at", SOON),
                0,
                input=NEW,
            ),
            Case(("apikey", "add", NEW, "--name", "fresh", "--no-emoji"), 0),
            Case(
                ("apikey", "add", "-", "--name", "fresh", "--server", "Newer"),
                0,
                input=NEW,
                env={"N8N_SERVER_URL": url},
            ),
            Case(("apikey", "add", "-", "--name", AS_NAME), 2, input=NEW),
            Case(
                ("apikey", "add", "-", "--name", "x", "--description", f"d {AS_DESCRIPTION}"),
                2,
                input=NEW,
            ),
            Case(("apikey", "add", "-", "--name", "x", "--server", AS_NAME), 2, input=NEW),
            Case(("apikey", "add", "-", "--name", "x"), 1, input=GOOD),
            Case(("apikey", "add", "-", "--name", "x"), 6, input="k3y-" + NEW[4:80]),
            Case(("apikey", "add", "-", "--name", "x"), 7, input=NEW_EXPIRED),
            Case(
                ("apikey", "add", "-", "--name", "x"), 2, input=NEW, env={"N8N_SERVER_URL": creds}
            ),
            Case(
                ("apikey", "add", "-", "--name", "x"), 2, input=NEW, env={"N8N_SERVER_URL": keyed}
            ),
            Case(
                ("apikey", "add", "-", "--name", "x"), 2, input=NEW, env={"N8N_SERVER_URL": tokened}
            ),
            Case(("apikey", "add", "-", "--name", "x", "--ttl", AS_NAME), 2, input=NEW),
            Case(("apikey", "add", "-", "--name", "x", "--expires-at", AS_NAME), 2, input=NEW),
        ],
        ("apikey", "list"): [
            Case(("apikey", "list"), 0),
            Case(
                (
                    "apikey",
                    "list",
                    "--server",
                    "Production",
                    "--active",
                    "--sort",
                    "expires",
                    "--wide",
                    "--no-emoji",
                ),
                0,
            ),
            Case(("apikey", "list", "--inactive"), 0),
            Case(
                ("apikey", "list", "--expired", "--expiring-within", "30", "--unused-for", "1"), 0
            ),
            Case(("apikey", "list", "--unmask"), 0, reveals=unmasked),
            Case(("apikey", "list", "--server", AS_NAME), 2),
            Case(("apikey", "list", "--server", "Nowhere"), 1),
            Case(("apikey", "list", "--sort", AS_NAME), 2),
        ],
        ("apikey", "show"): [
            Case(("apikey", "show", "good"), 0),
            Case(("apikey", "show", "good", "--unmask", "--no-emoji"), 0, reveals=(GOOD,)),
            Case(("apikey", "show", "bad", "--unmask"), 0, reveals=(BAD,)),
            Case(("apikey", "show", AS_NAME), 2),
            Case(("apikey", "show", "goood"), 1),
        ],
        ("apikey", "get"): [
            Case(("apikey", "get", "good"), 0, reveals=(GOOD,)),
            Case(("apikey", "get", "old", "--no-emoji"), 9),
            Case(("apikey", "get", AS_NAME), 2),
            Case(("apikey", "get", "nope"), 1),
        ],
        ("apikey", "update"): [
            Case(("apikey", "update", "good", "--description", "new note"), 0),
            Case(("apikey", "update", "good", "--rename", "good2"), 0),
            Case(("apikey", "update", "good", "--description", AS_DESCRIPTION), 2),
            Case(("apikey", "update", "good", "--rename", AS_NAME), 2),
            Case(("apikey", "update", "nope", "--description", "x"), 1),
        ],
        ("apikey", "deactivate"): [
            Case(("apikey", "deactivate", "good", "--no-emoji"), 0),
            Case(("apikey", "deactivate", "nope"), 1),
            Case(("apikey", "deactivate", AS_NAME), 2),
        ],
        ("apikey", "activate"): [
            Case(("apikey", "activate", "old", "--no-emoji"), 0),
            Case(("apikey", "activate", "nope"), 1),
        ],
        ("apikey", "delete"): [
            Case(("apikey", "delete", "good", "--confirm", "--no-emoji"), 0),
            Case(("apikey", "delete", "good"), 1),
            Case(("apikey", "delete", "nope", "-y"), 1),
            Case(("apikey", "delete", AS_NAME, "-y"), 2),
        ],
        ("apikey", "test"): [
            Case(("apikey", "test", "good"), 0),
            Case(("apikey", "test", "good", "--require", "deploy", "--allow-unknown-scopes"), 0),
            Case(("apikey", "test", "bad", "--no-emoji"), 4),
            Case(("apikey", "test", "echo500"), 8),
            Case(("apikey", "test", "redirect"), 8),
            Case(("apikey", "test", "expired"), 7),
            Case(("apikey", "test", "old"), 9),
            Case(("apikey", "test", "unlinked"), 1),
            Case(("apikey", "test", AS_NAME), 2),
            Case(("apikey", "test", "--all"), 4),
            Case(
                (
                    "apikey",
                    "test",
                    "--all",
                    "--server",
                    "Production",
                    "--timeout",
                    "5",
                    "--min-days",
                    "1",
                    "--skip-ssl-verify",
                ),
                4,
            ),
            Case(("apikey", "test", "-", "--server-url", url), 4, input=NEW_BAD),
            Case(("apikey", "test", "-", "--server-url", url), 0, input=NEW),
            Case(("apikey", "test", "-"), 4, input=NEW_BAD, env={"N8N_SERVER_URL": url}),
            Case(("apikey", "test", "-", "--server-url", creds), 2, input=NEW),
            Case(("apikey", "test", "-", "--server-url", keyed), 2, input=NEW),
            Case(("apikey", "test", "-"), 2, input=NEW, env={"N8N_SERVER_URL": creds}),
            Case(("apikey", "test", "-"), 6, input="k3y-" + NEW[4:80]),
            Case(("apikey", "test", "good", "--format", "junit", "--output", "out/report.xml"), 0),
            Case(("apikey", "test", "bad", "--format", "junit", "--output", "out/report.xml"), 4),
        ],
        ("apikey", "rotate"): [
            Case(
                (
                    "apikey",
                    "rotate",
                    "good",
                    "-",
                    "--name",
                    "good2",
                    "--description",
                    "rotated",
                    "--delete-old",
                ),
                0,
                input=NEW,
            ),
            Case(("apikey", "rotate", "good", NEW, "--name", "good2", "--no-emoji"), 0),
            Case(("apikey", "rotate", "good", "-", "--name", "good2"), 4, input=NEW_BAD),
            Case(
                (
                    "apikey",
                    "rotate",
                    "good",
                    "-",
                    "--name",
                    "good2",
                    "--discard-on-failure",
                    "--timeout",
                    "5",
                    "--skip-ssl-verify",
                ),
                4,
                input=NEW_BAD,
            ),
            Case(("apikey", "rotate", "bad", "-", "--name", "bad2"), 1, input=NEW),
            Case(("apikey", "rotate", "good", "-", "--name", AS_NAME), 2, input=NEW),
            Case(
                ("apikey", "rotate", "good", "-", "--name", "g2", "--description", AS_DESCRIPTION),
                2,
                input=NEW,
            ),
            Case(("apikey", "rotate", "good", "-", "--name", "g2"), 1, input=BAD),
            Case(("apikey", "rotate", "good", "-", "--name", "g2"), 7, input=NEW_EXPIRED),
            Case(("apikey", "rotate", "unlinked", "-", "--name", "u2"), 1, input=NEW),
        ],
        ("apikey", "scopes"): [
            Case(("apikey", "scopes", "good"), 0),
            Case(
                (
                    "apikey",
                    "scopes",
                    "good",
                    "--server",
                    "Production",
                    "--timeout",
                    "5",
                    "--skip-ssl-verify",
                    "--no-emoji",
                ),
                0,
            ),
            Case(("apikey", "scopes", "bad", "--server-url", url), 4),
            Case(("apikey", "scopes", "good", "--server-url", creds), 2),
            Case(("apikey", "scopes", "good", "--server-url", keyed), 2),
        ],
        ("apikey", "history"): [
            Case(("apikey", "history", "good"), 0),
            Case(("apikey", "history", "good", "--limit", "1", "--wide", "--no-emoji"), 0),
            Case(("apikey", "history", "nope"), 1),
            Case(("apikey", "history", AS_NAME), 2),
        ],
        ("apikey", "audit"): [
            Case(("apikey", "audit"), 10),
            Case(
                (
                    "apikey",
                    "audit",
                    "--max-age",
                    "1",
                    "--unused-for",
                    "1",
                    "--expiring-within",
                    "1",
                    "--inactive-for",
                    "1",
                    "--skip",
                    "single-key",
                    "--strict",
                    "--no-emoji",
                ),
                10,
            ),
            Case(("apikey", "audit", "--no-strict", "--skip", AS_NAME), 2),
        ],
        ("apikey", "prune"): [
            Case(("apikey", "prune"), 0),
            Case(("apikey", "prune", "--expired", "--no-emoji"), 0),
            Case(("apikey", "prune"), 3, legacy=True),
        ],
        ("apikey", "events"): [
            Case(("apikey", "events"), 0),
            Case(
                (
                    "apikey",
                    "events",
                    "--since",
                    "300d",
                    "--server",
                    "Production",
                    "--kind",
                    "added",
                    "--limit",
                    "5",
                    "--wide",
                    "--no-emoji",
                ),
                0,
            ),
            Case(("apikey", "events", "--since", AS_NAME), 2),
            Case(("apikey", "events", "--kind", AS_NAME), 2),
            Case(("apikey", "events", "--server", AS_NAME), 2),
        ],
        ("apikey", "events", "prune"): [
            Case(("apikey", "events", "prune", "--older-than", "1"), 0),
            Case(("apikey", "events", "prune", "--older-than", "0"), 2),
        ],
        ("policy",): [Case(("policy",), 2)],
        ("policy", "set"): [
            Case(("policy", "set", "max-age", "60"), 0),
            Case(("policy", "set", "max-age", AS_NAME), 2),
            Case(("policy", "set", AS_NAME, "on"), 2),
        ],
        ("policy", "unset"): [
            Case(("policy", "unset", "max-age"), 0),
            Case(("policy", "unset", AS_NAME), 2),
        ],
        ("policy", "show"): [Case(("policy", "show"), 0), Case(("policy", "show"), 3, legacy=True)],
        ("server",): [Case(("server",), 2)],
        ("server", "create"): [
            Case(("server", "create", "New", f"{url}/n8n", "--description", "x", "--no-emoji"), 0),
            Case(("server", "create", "New", "https://n8n.example.com", "--skip-ssl-verify"), 0),
            Case(("server", "create", "New", creds), 2),
            Case(("server", "create", "New", keyed), 2),
            Case(("server", "create", "New", tokened), 2),
            Case(("server", "create", AS_NAME, url), 2),
            Case(("server", "create", "New", url, "--description", AS_DESCRIPTION), 2),
            Case(("server", "create", "Production", url), 1),
        ],
        ("server", "list"): [
            Case(("server", "list"), 0),
            Case(("server", "list", "--wide", "--no-emoji"), 0),
            Case(("server", "list"), 3, legacy=True),
        ],
        ("server", "show"): [
            Case(("server", "show", "Creds"), 0),
            Case(("server", "show", "Tok", "--wide", "--no-emoji"), 0),
            Case(("server", "show", "nope"), 1),
        ],
        ("server", "update"): [
            Case(("server", "update", "Creds", "--url", url), 0),
            Case(("server", "update", "Production", "--url", creds), 2),
            Case(("server", "update", "Production", "--url", keyed), 2),
            Case(
                (
                    "server",
                    "update",
                    "Production",
                    "--rename",
                    "Prod2",
                    "--description",
                    "d",
                    "--verify-ssl",
                    "--no-emoji",
                ),
                0,
            ),
            Case(("server", "update", "Production", "--skip-ssl-verify"), 0),
            Case(("server", "update", "Production", "--description", AS_DESCRIPTION), 2),
            Case(("server", "update", "Production", "--rename", AS_NAME), 2),
        ],
        ("server", "link"): [
            Case(("server", "link", "unlinked", "Production"), 0),
            Case(("server", "link", "good", AS_NAME), 2),
            Case(("server", "link", "nope", "Production"), 1),
        ],
        ("server", "unlink"): [
            Case(("server", "unlink", "good", "Production"), 0),
            Case(("server", "unlink", "nope", "Production"), 1),
        ],
        ("server", "keys"): [
            Case(("server", "keys", "Production"), 0),
            Case(
                ("server", "keys", "Production", "--unmask", "--wide", "--no-emoji"),
                0,
                reveals=tuple(s for n, s in STORED.items() if n != "unlinked"),
            ),
            Case(("server", "keys", "nope"), 1),
        ],
        ("server", "delete"): [
            Case(("server", "delete", "Creds", "--confirm"), 0),
            Case(("server", "delete", "Creds"), 1),
            Case(("server", "delete", AS_NAME, "-y"), 2),
        ],
        ("db",): [Case(("db",), 2)],
        ("db", "path"): [Case(("db", "path"), 0), Case(("db", "path", f"--{AS_NAME}"), 2)],
        ("db", "init"): [Case(("db", "init"), 0), Case(("db", "init"), 3, legacy=True)],
        ("db", "upgrade"): [
            Case(("db", "upgrade"), 0),
            Case(("db", "upgrade"), 0, legacy=True),
            Case(("db", "upgrade", "0003", "--no-backup", "--no-emoji"), 0, legacy=True),
            Case(("db", "upgrade", AS_NAME), 2),
        ],
        ("db", "downgrade"): [
            Case(("db", "downgrade", "0006", "--confirm", "--no-backup"), 0),
            Case(("db", "downgrade", "0006"), 1),
            Case(("db", "downgrade", AS_NAME, "-y"), 2),
        ],
        ("db", "current"): [
            Case(("db", "current"), 0),
            Case(("db", "current"), 0, legacy=True),
            Case(("--database-url", odd_database, "db", "current"), 2),
        ],
        ("db", "check"): [Case(("db", "check"), 0), Case(("db", "check"), 3, legacy=True)],
        ("db", "history"): [
            Case(("db", "history"), 0),
            Case(("--database-url", odd_database, "db", "history"), 2),
        ],
        ("db", "backup"): [
            Case(("db", "backup"), 0),
            Case(("db", "backup", "out/"), 0, user_files=("out/",)),
            Case(("db", "backup", "out/"), 0, legacy=True, user_files=("out/",)),
            Case(("db", "backup", "{data}/n8n-deploy.db"), 1),
            # A key typed as the database's scheme: quoted in the refusal as typed.
            Case(("--database-url", f"{AS_NAME}://x", "db", "backup"), 1),
        ],
        ("db", "restore"): [
            Case(("db", "restore", "in/legacy.db", "--confirm"), 0, user_files=("in/",)),
            Case(("db", "restore", "in/legacy.db"), 1, user_files=("in/",)),
            Case(("db", "restore", "in/missing.db", "-y"), 1, user_files=("in/",)),
        ],
    }


#: The output formats each run is repeated in (when the command has them and the case
#: did not choose one): JSON, and apikey test's CI reports.
def formats(case: Case, options: set[str]) -> list[tuple[tuple[str, ...], dict[str, str]]]:
    if "--json" in case.args or "--format" in case.args:
        return [((), {})]
    variants: list[tuple[tuple[str, ...], dict[str, str]]] = [((), {})]
    if "--json" in options:
        variants.append((("--json",), {}))
    if "--format" in options:
        variants += [
            (("--format", "plain"), {}),
            (("--format", "junit"), {}),
            (("--format", "junit", "--output", "out/report.xml"), {}),
            (("--format", "github"), {"GITHUB_STEP_SUMMARY": "out/summary.md"}),
            ((), {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": "out/summary.md"}),
        ]
    return variants


# --- the command tree -------------------------------------------------------------------


def command_tree() -> dict[Path_, Any]:
    """Every command of the application, by its words: the click tree typer builds."""
    found: dict[Path_, Any] = {}

    def walk(command: Any, path: Path_) -> None:
        found[path] = command
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


def option_names(command: Any) -> set[str]:
    return {
        name
        for param in command.params
        if param.param_type_name == "option"
        for name in (*param.opts, *param.secondary_opts)
    }


def test_every_command_and_option_has_a_sweep_entry() -> None:
    tree = command_tree()
    cases = sweep("http://127.0.0.1:9")
    assert sorted(set(tree) - set(cases)) == [], "commands with no sweep entry"
    assert sorted(set(cases) - set(tree)) == [], "sweep entries for commands that do not exist"
    for path, command in tree.items():
        options = option_names(command)
        used = {
            arg
            for case in cases[path]
            for extra, _ in formats(case, options)
            for arg in (*case.args, *extra)
        }
        for param in command.params:
            names = set(param.opts) | set(param.secondary_opts)
            if param.param_type_name == "option":
                assert names & used, f"{' '.join(path) or 'root'}: {sorted(names)} not swept"
        statuses = {case.status for case in cases[path]}
        if command.params and path:
            assert statuses - {0}, f"{' '.join(path)}: no failure path swept"


# --- the checks -------------------------------------------------------------------------


def _pieces(secret: str) -> set[str]:
    """Every 12-character piece of ``secret``, in lower case: a key folded to one case
    (an error that lower-cases what was typed) still shows it, whatever letters it has."""
    folded = secret.lower()
    return {folded[i : i + PIECE] for i in range(len(folded) - PIECE + 1)}


def leaks(text: str, allowed: tuple[str, ...] = ()) -> list[str]:
    """What of the planted secrets ``text`` shows: a key or a 12-character piece of one,
    in any case (except the secrets in ``allowed``, which the user asked for), or a URL
    password."""
    if not text:
        return []
    windows = _pieces(text)
    shown_on_purpose = set().union(*(_pieces(s) for s in allowed)) if allowed else set()
    found = []
    for label, secret in SECRETS.items():
        if secret in allowed:
            continue
        hit = sorted((_pieces(secret) & windows) - shown_on_purpose)
        if hit:
            found.append(f"{label}: {hit[0]!r}")
    found += [label for label, password in PASSWORDS.items() if password in text]
    return found


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def every_log_record() -> Iterator[Records]:
    """Every log record of any library, at DEBUG, while the block runs."""
    handler = Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@contextmanager
def working_directory(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def files_outside(root: Path, data: Path, user_files: tuple[str, ...]) -> dict[str, str]:
    """Every file under ``root`` but the data folder and the ones the user named."""
    named = [root / name for name in ("in", *user_files)]
    found = {}
    for path in root.rglob("*"):
        if not path.is_file() or path.is_relative_to(data):
            continue
        if any(path == p or path.is_relative_to(p) for p in named):
            continue
        found[str(path.relative_to(root))] = path.read_bytes().decode("utf-8", "replace")
    return found


# --- the databases ----------------------------------------------------------------------


def build_hostile_legacy(path: Path, url: str) -> None:
    """A 0.9 file with secrets in every field 0.9 let through: a URL password, a token
    in a query, a key in a URL path, names and descriptions holding keys."""
    build_legacy(
        path,
        servers=[
            legacy_server(1, "Production", url),
            legacy_server(2, "Creds", url.replace("http://", f"http://bob:{URL_PASSWORD}@")),
            legacy_server(3, "Tok", f"{url}/?token={QUERY_TOKEN}"),
            legacy_server(4, AS_NAME, f"{url}/{IN_URL}", description=f"d {AS_DESCRIPTION}"),
            legacy_server(5, "Empty", f"{url}/n8n"),
        ],
        keys=[
            legacy_key(1, "good", GOOD, description=f"has {AS_DESCRIPTION}"),
            legacy_key(2, "bad", BAD),
            legacy_key(3, AS_NAME, NAMED, description=AS_DESCRIPTION),
            legacy_key(4, "old", LEGACY, is_active=0),
            legacy_key(5, "expired", EXPIRED),
            legacy_key(6, "echo500", ECHO500),
            legacy_key(7, "redirect", REDIRECT),
            legacy_key(8, "unlinked", UNLINKED),
        ],
        links=[
            legacy_link(1, 1),
            legacy_link(1, 2),
            legacy_link(2, 2),
            legacy_link(3, 2),
            legacy_link(1, 3),
            legacy_link(4, 3),
            legacy_link(1, 4),
            legacy_link(1, 5),
            legacy_link(1, 6),
            legacy_link(1, 7),
        ],
    )


@dataclass
class World:
    url: str
    legacy: Path  # the hostile 0.9 file
    template: Path  # a data folder holding it upgraded, with history, policy, ephemeral


def _invoke(args: list[str], data: Path, input: str | None = None, **env: str) -> None:
    result = CliRunner().invoke(
        app,
        args,
        input=input,
        env={"N8N_DEPLOY_DATA_DIR": str(data), **env},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, (args, result.output)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("sweep")
    with fake_server(answer) as server:
        legacy = base / "legacy.db"
        build_hostile_legacy(legacy, server.url)
        data = base / "template"
        data.mkdir(mode=0o700)
        shutil.copyfile(legacy, data / "n8n-deploy.db")
        actor = {"N8N_DEPLOY_ACTOR": f"ci {AS_ACTOR}", "HOME": str(base)}
        _invoke(["db", "upgrade", "--no-backup"], data, **actor)
        _invoke(["apikey", "add", "-", "--name", "temp", "--ttl", "1h"], data, TEMP, **actor)
        # events: tested, read, linked, a policy of the team
        CliRunner().invoke(
            app, ["apikey", "test", "--all"], env={"N8N_DEPLOY_DATA_DIR": str(data), **actor}
        )
        _invoke(["apikey", "get", "good"], data, **actor)
        _invoke(["policy", "set", "single-key", "off"], data, **actor)
        with closing(sqlite3.connect(data / "n8n-deploy.db")) as conn, conn:
            conn.execute(
                "UPDATE api_keys SET delete_after = '2020-01-01 00:00:00.000000' "
                "WHERE name = 'temp'"
            )
        for leftover in data.glob("*.bak"):
            leftover.unlink()
        yield World(server.url, legacy, data)


# --- the sweep itself ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries wait on a simulated clock, so no run sleeps."""
    now = [1000.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr(validator, "_clock", lambda: now[0])
    monkeypatch.setattr(validator, "_sleep", sleep)


def _run(
    world: World,
    root: Path,
    path: Path_,
    case: Case,
    extra: tuple[str, ...],
    env: dict[str, str],
    debug: bool,
) -> list[str]:
    """Run one variant in a fresh folder; what it leaked or got wrong."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    data = root / "data"
    shutil.copytree(world.template, data)
    if case.legacy:
        shutil.copyfile(world.legacy, data / "n8n-deploy.db")
    for folder in ("home", "out", "in"):
        (root / folder).mkdir()
    shutil.copyfile(world.legacy, root / "in" / "legacy.db")
    args = [arg.replace("{data}", str(data)) for arg in (*case.args, *extra)]
    run_env: dict[str, str | None] = {
        "N8N_DEPLOY_DATA_DIR": str(data),
        "HOME": str(root / "home"),
        "N8N_DEPLOY_ACTOR": f"ci {AS_ACTOR}",
        "N8N_DEPLOY_DEBUG": "1" if debug else None,
        **case.env,
        **env,
    }
    with working_directory(root), every_log_record() as logs:
        result = CliRunner().invoke(app, args, input=case.input, env=run_env, catch_exceptions=True)
    where = f"{' '.join(args)} [debug={debug}]"
    problems = []
    raised = result.exception if not isinstance(result.exception, SystemExit) else None
    shown = {
        "stdout": result.stdout,
        "stderr": result.stderr,
        "logs": "\n".join(logs.lines),
        "traceback": "".join(traceback.format_exception(raised)) if raised else "",
        **{
            f"file {name}": text
            for name, text in files_outside(root, data, case.user_files).items()
        },
    }
    if raised is not None and not debug:
        problems.append(f"{where}: a traceback reached the user: {shown['traceback']}")
    elif raised is None and result.exit_code != case.status:
        problems.append(
            f"{where}: exit {result.exit_code}, expected {case.status}: {result.output}"
        )
    allowed = case.reveals if "--format" not in args else ()
    for source, text in shown.items():
        for leak in leaks(text, allowed if source == "stdout" else ()):
            problems.append(f"{where}: {source} shows the {leak}")
    if case.reveals and result.exit_code == 0:
        if path == ("apikey", "get"):
            if result.stdout != case.reveals[0] + "\n":
                problems.append(f"{where}: apikey get did not print exactly the key")
        else:
            missing = [s[-4:] for s in case.reveals if s not in result.stdout]
            if missing:
                problems.append(f"{where}: --unmask did not print the keys ending {missing}")
    return problems


TREE = command_tree()


@pytest.mark.parametrize("path", list(TREE), ids=lambda p: " ".join(p) or "root")
def test_no_command_shows_a_secret(world: World, tmp_path: Path, path: Path_) -> None:
    options = option_names(TREE[path])
    problems: list[str] = []
    for number, case in enumerate(sweep(world.url)[path]):
        for extra, env in formats(case, options):
            for debug in (False, True):
                root = tmp_path / f"run{number}"
                problems += _run(world, root, path, case, extra, env, debug)
    assert not problems, "\n".join(problems)
