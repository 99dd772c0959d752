"""Alembic environment of n8n-deploy (installed as ``n8n_deploy.migrations``)."""
