"""The bounds of a key check, in one light module (the CLI's help text shows them)."""

#: Seconds one check may take, retries included (``apikey test --timeout``).
DEFAULT_TIMEOUT = 10.0
#: Checks run at the same time by ``apikey test --all`` and ``validate_many``.
MAX_CONCURRENCY = 8
