"""The bounds of a key check, in one light module (the CLI's help text shows them)."""

#: Seconds one check may take, retries included (``apikey test --timeout``).
DEFAULT_TIMEOUT = 10.0
#: The most ``--timeout`` takes: a CI gate that waits longer is a hung job (``inf`` too).
MAX_TIMEOUT = 3600.0
#: Checks run at the same time by ``apikey test --all`` and ``validate_many``, in all...
MAX_CONCURRENCY = 32
#: ...and against any one server: n8n is one Node.js process, and a CI gate must not be
#: the load that slows it down (each check is one small ``GET /workflows?limit=1``).
MAX_PER_SERVER = 16
