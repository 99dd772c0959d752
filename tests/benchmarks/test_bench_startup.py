"""Start-up benchmarks (`make bench`, never part of `make test`)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any


def _run(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "n8n_deploy", *args], check=True, capture_output=True)


def test_bench_help(benchmark: Any) -> None:
    benchmark(_run, "--help")


def test_bench_version(benchmark: Any) -> None:
    benchmark(_run, "--version")


def test_bench_db_current(benchmark: Any) -> None:
    _run("db", "init")
    benchmark(_run, "db", "current")
