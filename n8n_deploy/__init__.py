"""n8n-deploy: keep, check and migrate the API keys and server records used to reach n8n.

The package is a Python API first (``repositories``, ``validator``, ``migrate``); the
``cli`` package is a thin Typer layer over it.  Importing this package is cheap: the heavy
libraries (sqlalchemy, alembic, httpx, rich) are imported only by the modules that need them.
"""

__version__ = "1.0.0"
