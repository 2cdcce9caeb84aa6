"""Alembic environment of the ledger.

Run from code (``recon.ledger.upgrade``), which hands over an open connection in
``config.attributes["connection"]``; or by a developer with ``sqlalchemy.url`` set on the Config
(see docs/ledger.md, "Writing a migration").
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from recon.ledger._engine import BEGIN_IMMEDIATE, create_engine_for
from recon.ledger.tables import metadata

# Two `recon db upgrade` at once on PostgreSQL: the second waits here, then finds nothing to do.
_PG_MIGRATION_LOCK_KEY = 0x7265636F6E  # b"recon"


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things: later migrations use batch mode (copy-and-move tables).
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # Our SQLite engine emits real BEGINs (see _engine.py), so DDL is transactional there too.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK_KEY})")
        context.run_migrations()


def _run_online() -> None:
    shared = context.config.attributes.get("connection")
    if isinstance(shared, Connection):
        _run(shared)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection in config.attributes and no sqlalchemy.url: see docs/ledger.md")
    engine = create_engine_for(url)
    try:
        with engine.connect().execution_options(**{BEGIN_IMMEDIATE: True}) as connection:
            _run(connection)
    finally:
        engine.dispose()


def _run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
