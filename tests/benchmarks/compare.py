"""`make bench`: n8n-deploy's commands timed side by side with n8n-deploy 0.9.1 and with
the floors every Python CLI pays (starting Python, importing typer and SQLAlchemy).

This machine is noisy, so only ratios within one run count: every row is run ``--runs``
times, the rows interleaved (each round: the floors and our side of every row, then
0.9.1's); the table shows medians, and each target's ratio is the median of the ratios
taken round by round, its two rows run one right after the other.  The
stores are built once: ours with the project's own Python API in one unit of work,
0.9.1's from the 0.9 fixture with sqlite3.  0.9.1 is installed from the package
registry into a throwaway venv (``.bench/``); when it cannot be, its rows are skipped and
the table says so.  Results are printed as a table and written as JSON (``--json``).
Never part of ``make test``: timings are reported, never asserted.  See docs/development.md.

    python -m tests.benchmarks.compare [--runs 15] [--json .bench/results.json]
    python -m tests.benchmarks.compare --only "list (20)" --only floor   # a subset
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LEGACY_FIXTURE = ROOT / "tests" / "fixtures" / "legacy-0.9" / "n8n-deploy.db"
BASELINE_VERSION = "0.9.1"
SMALL, LARGE, LINKS, TESTED = 20, 10_000, 5_000, 100
SERVER_DELAY = 0.2  # seconds the fake n8n takes to answer, for the `test --all` row


@dataclass
class Row:
    """One line of the table: our command and, where 0.9.1 has one, its equivalent."""

    name: str
    ours: list[str] | None
    theirs: list[str] | None = None
    ours_env: dict[str, str] = field(default_factory=dict)
    theirs_env: dict[str, str] = field(default_factory=dict)
    before: Callable[[], None] | None = None  # run untimed before each of our runs
    times: dict[str, list[float]] = field(default_factory=lambda: {"ours": [], "theirs": []})
    failed: set[str] = field(default_factory=set)  # e.g. "ours exit 1": not a timing to trust

    def median(self, side: str) -> float | None:
        found = self.times[side]
        return statistics.median(found) if found else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of every row (default 15)")
    parser.add_argument("--json", type=Path, default=ROOT / ".bench" / "results.json")
    parser.add_argument("--no-baseline", action="store_true", help=f"skip {BASELINE_VERSION}")
    parser.add_argument(
        "--only",
        action="append",
        metavar="TEXT",
        help="only the rows whose name contains TEXT (repeatable); targets that need a "
        "row left out are skipped",
    )
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="n8n-deploy-bench-"))
    try:
        baseline, why = (None, "--no-baseline") if args.no_baseline else _baseline()
        if baseline is None:
            print(f"n8n-deploy {BASELINE_VERSION} rows skipped: {why}", file=sys.stderr)
        # As an installed copy runs: compiled once (pip compiles what it installs, and
        # 0.9.1 is installed so; PYTHONDONTWRITEBYTECODE would have every run compile ours).
        for package in ("n8n_deploy", "migrations"):  # migrations ship as a package too
            compileall.compile_dir(ROOT / package, quiet=1)
        print("building stores...", file=sys.stderr)
        with _slow_n8n() as server_url:
            rows = _rows(work, baseline, server_url, args.only)
            # Round by round: our side of every row, then 0.9.1's.  The two rows of each
            # ratio target stand next to each other (see _rows), so that they run one
            # right after the other, as farm-bench pairs A and B: this shared host
            # changes speed from one second to the next.
            for _ in range(args.runs):
                for side in ("ours", "theirs"):
                    for row in rows:
                        _time(row, side)
        results = _report(rows, baseline is not None)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"\nJSON: {args.json}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- the stores -------------------------------------------------------------------------


def _our_store(folder: Path, keys: int, links: int, server_url: str | None = None) -> Path:
    from n8n_deploy import ApiKeyRepository, ServerRepository, open_database, resolve_settings
    from tests.helpers import make_jwt

    database = open_database(resolve_settings(str(folder)))
    try:
        with database.session(write=True) as s:
            prod = ServerRepository(s).create("Production", server_url or "https://n8n.example.com")
            repo = ApiKeyRepository(s)
            for i in range(keys):
                linked = [prod] if i < links else []
                repo.add(f"key_{i:05d}", make_jwt(exp_days=30, sub=f"u{i}"), servers=linked)
    finally:
        database.dispose()
    return folder


def _legacy_store(folder: Path, keys: int, links: int) -> Path:
    """A 0.9.1 database: the fixture emptied and filled with ``keys`` keys."""
    from tests.helpers import make_jwt

    folder.mkdir(parents=True)
    path = folder / "n8n-deploy.db"
    shutil.copyfile(LEGACY_FIXTURE, path)
    with closing(sqlite3.connect(path)) as conn:
        for table in ("server_api_keys", "api_keys", "servers"):
            conn.execute(f"DELETE FROM {table}")
        conn.execute(
            "INSERT INTO servers (id, url, name) VALUES (1, ?, 'Production')",
            ("https://n8n.example.com",),
        )
        conn.executemany(
            "INSERT INTO api_keys (id, name, api_key) VALUES (?, ?, ?)",
            [(i + 1, f"key_{i:05d}", make_jwt(exp_days=30, sub=f"u{i}")) for i in range(keys)],
        )
        conn.executemany(
            "INSERT INTO server_api_keys (server_id, api_key_id) VALUES (1, ?)",
            [(i + 1,) for i in range(min(links, keys))],
        )
        conn.commit()
    return folder


# --- the baseline -----------------------------------------------------------------------


def _baseline() -> tuple[Path | None, str]:
    """0.9.1's n8n-deploy script, installed once into .bench/venv-0.9.1."""
    venv = ROOT / ".bench" / f"venv-{BASELINE_VERSION}"
    script = venv / "bin" / "n8n-deploy"
    if script.exists():
        return script, ""
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", f"n8n-deploy=={BASELINE_VERSION}"],
            check=True,
            capture_output=True,
            timeout=600,
        )
    except (OSError, subprocess.SubprocessError) as error:
        shutil.rmtree(venv, ignore_errors=True)
        return None, f"it could not be installed ({type(error).__name__})"
    return script, ""


# --- a slow n8n, for `apikey test --all` ---------------------------------------------------


class _SlowN8n(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(SERVER_DELAY)
        body = b'{"data": [], "nextCursor": null}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # as a real server's backlog; http.server's 5 refuses bursts
    daemon_threads = True


class _slow_n8n:
    def __enter__(self) -> str:
        self.server = _Server(("127.0.0.1", 0), _SlowN8n)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()


# --- the rows -----------------------------------------------------------------------------


def _rows(
    work: Path, baseline: Path | None, server_url: str, only: list[str] | None = None
) -> list[Row]:
    py = sys.executable
    ours = [py, "-m", "n8n_deploy"]
    theirs = [str(baseline)] if baseline else None

    def wanted(*names: str) -> bool:
        return not only or any(text in name for name in names for text in only)

    small, large = work / "ours-20", work / "ours-10k"
    tested = work / "ours-test"
    old_small, old_large = work / "old-20", work / "old-10k"
    upgrade_dir = work / "upgrade"

    def fresh_upgrade_copy() -> None:
        shutil.rmtree(upgrade_dir, ignore_errors=True)
        shutil.copytree(old_large, upgrade_dir)

    def env(folder: Path) -> dict[str, str]:
        return {"N8N_DEPLOY_DATA_DIR": str(folder)}

    def both(name: str, args: list[str], ours_dir: Path, old_dir: Path, **kw: Any) -> Row:
        return Row(
            name,
            ours + args,
            theirs + args if theirs else None,
            ours_env=env(ours_dir),
            theirs_env=env(old_dir),
            **kw,
        )

    completion = {
        "_N8N_DEPLOY_COMPLETE": "complete_bash",
        "COMP_WORDS": "n8n-deploy apikey show key_0001",
        "COMP_CWORD": "3",
        **env(small),
    }
    rows = [
        Row("floor: python -c pass", [py, "-c", "pass"]),
        Row("floor: import typer", [py, "-c", "import typer"]),
        Row("floor: import sqlalchemy", [py, "-c", "import sqlalchemy"]),
        Row("floor: import sqlalchemy.orm", [py, "-c", "import sqlalchemy.orm"]),
        # Each ratio target's two rows next to each other (they run one after the other).
        both("--help", ["--help"], small, old_small),
        both("apikey --help", ["apikey", "--help"], small, old_small),
        both("--version", ["--version"], small, old_small),
        Row("completion of key names (20)", ours, ours_env=completion),
        both("apikey list (20)", ["apikey", "list"], small, old_small),
        both("apikey list --no-emoji (10k)", ["apikey", "list", "--no-emoji"], large, old_large),
        both("apikey list --json (20)", ["apikey", "list", "--json"], small, old_small),
        both("apikey list --json (10k)", ["apikey", "list", "--json"], large, old_large),
        Row("apikey show (20)", [*ours, "apikey", "show", "key_00001"], ours_env=env(small)),
        both("server list (20)", ["server", "list"], small, old_small),
        both("server list (10k keys, 5k links)", ["server", "list"], large, old_large),
        Row(
            f"apikey test --all ({TESTED} keys, {int(SERVER_DELAY * 1000)} ms server)",
            [*ours, "apikey", "test", "--all", "--json"],
            ours_env=env(tested),
        ),
        Row(
            "db upgrade (0.9 file, 10k keys, 5k links)",
            [*ours, "db", "upgrade", "--no-backup"],
            ours_env=env(upgrade_dir),
            before=fresh_upgrade_copy,
        ),
    ]
    selected = [row for row in rows if wanted(row.name)]
    # The stores the selected rows run on (a row left without its store would time an
    # error message: --only "list --json" once timed the 10k row on no store at all).
    names = " ".join(row.name for row in selected)
    _our_store(small, SMALL, SMALL)
    _legacy_store(old_small, SMALL, SMALL)
    if "10k" in names:
        _our_store(large, LARGE, LINKS)
        _legacy_store(old_large, LARGE, LINKS)
    if "test --all" in names:
        _our_store(tested, TESTED, TESTED, server_url)
    return selected


def _time(row: Row, side: str) -> None:
    args, extra = (row.ours, row.ours_env) if side == "ours" else (row.theirs, row.theirs_env)
    if args is None:
        return
    if side == "ours" and row.before is not None:
        row.before()
    env = {**os.environ, "COLUMNS": "120", **extra}
    started = time.perf_counter()
    done = subprocess.run(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    row.times[side].append(time.perf_counter() - started)
    if done.returncode != 0:  # a time of an error message: said beside the row
        row.failed.add(f"{side} exit {done.returncode}")


# --- the report ----------------------------------------------------------------------------


def _report(rows: list[Row], with_baseline: bool) -> dict[str, Any]:
    by_name = {row.name: row for row in rows}

    def ours(name: str) -> float | None:
        return by_name[name].median("ours") if name in by_name else None

    def paired(tops: list[float], bottoms: list[float]) -> float | None:
        # Each round's ratio, then their median: the two rows of a target ran one right
        # after the other, so a machine that slows down or speeds up moves both (medians
        # taken apart drifted by a tenth between runs of the same code).
        if not tops or len(tops) != len(bottoms):  # a side not run (no 0.9.1)
            return None
        ratios = [top / bottom for top, bottom in zip(tops, bottoms, strict=True) if bottom]
        return statistics.median(ratios) if ratios else None

    def over(top: str, bottom: str) -> float | None:
        if top not in by_name or bottom not in by_name:
            return None
        return paired(by_name[top].times["ours"], by_name[bottom].times["ours"])

    print(f"\n{'row':<48} {'ours ms':>9} {'0.9.1 ms':>9} {'ratio':>7}")
    table = []
    for row in rows:
        mine, old = row.median("ours"), row.median("theirs")
        ratio = mine / old if mine and old else None
        shown_old = f"{old * 1000:9.0f}" if old else f"{'-':>9}"
        shown_ratio = f"{ratio:7.2f}" if ratio else f"{'-':>7}"
        failed = f"  FAILED ({', '.join(sorted(row.failed))})" if row.failed else ""
        print(f"{row.name:<48} {(mine or 0) * 1000:9.0f} {shown_old} {shown_ratio}{failed}")
        table.append(
            {
                "row": row.name,
                "ours_s": mine,
                "baseline_s": old,
                "ratio": ratio,
                "failed": sorted(row.failed),
            }
        )

    def vs_baseline(name: str) -> float | None:
        if name not in by_name:
            return None
        return paired(by_name[name].times["ours"], by_name[name].times["theirs"])

    targets: list[tuple[str, float | None, float]] = [
        ("apikey list (20) / 0.9.1", vs_baseline("apikey list (20)"), 1.0),
        ("server list (20) / 0.9.1", vs_baseline("server list (20)"), 1.0),
        (
            "apikey list (20) / import sqlalchemy",
            over("apikey list (20)", "floor: import sqlalchemy"),
            1.3,
        ),
        (
            "apikey show (20) / import sqlalchemy",
            over("apikey show (20)", "floor: import sqlalchemy"),
            1.3,
        ),
        (
            "server list (20) / import sqlalchemy",
            over("server list (20)", "floor: import sqlalchemy"),
            1.3,
        ),
        ("completion / --version", over("completion of key names (20)", "--version"), 1.5),
        ("list --json 10k / 20", over("apikey list --json (10k)", "apikey list --json (20)"), 1.5),
        (
            "list --no-emoji 10k / list 20",
            over("apikey list --no-emoji (10k)", "apikey list (20)"),
            2.0,
        ),
        (
            f"test --all {TESTED} keys (s)",
            ours(f"apikey test --all ({TESTED} keys, {int(SERVER_DELAY * 1000)} ms server)"),
            2.5,
        ),
        ("db upgrade 10k (s)", ours("db upgrade (0.9 file, 10k keys, 5k links)"), 1.0),
    ]
    print(f"\n{'target':<48} {'value':>9} {'limit':>7}  result")
    checked = []
    for name, value, limit in targets:
        if value is None:
            needs_baseline = name.endswith(f"/ {BASELINE_VERSION}")
            verdict = (
                f"skipped (no {BASELINE_VERSION})"
                if needs_baseline and not with_baseline
                else "skipped (row left out)"
            )
            print(f"{name:<48} {'-':>9} {limit:7.2f}  {verdict}")
        else:
            verdict = "ok" if value <= limit else "MISSED"
            print(f"{name:<48} {value:9.2f} {limit:7.2f}  {verdict}")
        checked.append({"target": name, "value": value, "limit": limit, "result": verdict})
    return {"python": sys.version.split()[0], "rows": table, "targets": checked}


if __name__ == "__main__":
    raise SystemExit(main())
