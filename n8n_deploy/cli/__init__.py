"""The ``n8n-deploy`` command line: argument parsing and presentation only.

Every command calls the use cases (``n8n_deploy.apikeys``), the repositories and the
schema tools (``n8n_deploy.store``); errors are mapped to exit statuses in one place,
``cli.root.RootGroup``.
"""

from __future__ import annotations

import sys

from n8n_deploy.cli.app import app
from n8n_deploy.cli.root import silence_stdout

__all__ = ["app", "main"]


def main() -> None:
    try:
        app(prog_name="n8n-deploy")
    finally:
        try:
            sys.stdout.flush()
        except BrokenPipeError:  # the reader left early (`... | head -1`): not an error
            silence_stdout()
