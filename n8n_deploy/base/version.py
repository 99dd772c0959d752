"""The version of n8n-deploy (one home: the package, --version, the User-Agent)."""

__version__ = "1.0.0"
