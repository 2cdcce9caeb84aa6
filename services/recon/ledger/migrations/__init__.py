"""Alembic migrations of the ledger (env.py, script.py.mako, versions/). Run them with `recon db upgrade`."""
