"""Schema migrations (alembic), run from code: no alembic.ini is needed at runtime.

The migration scripts live in ``recon/ledger/migrations``; ``recon db upgrade`` calls
:func:`upgrade`, and services refuse to start on an older schema (:func:`check_revision`).
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL

from recon.errors import ConfigError
from recon.ledger._engine import BEGIN_IMMEDIATE, create_engine_for, parse_url, redact_url

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
_ALEMBIC_LOCK = threading.Lock()


def alembic_config() -> Config:
    """An alembic Config pointing at the packaged migrations; pass a connection in ``attributes``."""
    config = Config()
    # Config options go through configparser interpolation: a literal % must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The revision this code needs: the single head of the migration scripts."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships 0001
        raise RuntimeError(f"no migration scripts found in {MIGRATIONS_DIR}")
    return head


def upgrade(database_url: str) -> None:
    """Bring the database at ``database_url`` to the head revision, in one transaction.

    Idempotent: a database already at head is left alone. Safe to run from several processes at
    once (PostgreSQL: an advisory lock; SQLite: the write lock).
    """
    engine = create_engine_for(database_url)
    try:
        upgrade_engine(engine)
    finally:
        engine.dispose()


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    """:func:`upgrade` on an existing engine (tests use ``revision`` to stop part way)."""
    config = alembic_config()
    # alembic's `context` is one module-level proxy: two migrations in one process must take turns.
    with _ALEMBIC_LOCK, engine.connect().execution_options(**{BEGIN_IMMEDIATE: True}) as conn, conn.begin():
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def current_revision(database_url: str) -> str | None:
    """The revision the database is at; None for an empty database (or a SQLite file not yet made)."""
    parsed = parse_url(database_url)
    if _sqlite_file_missing(parsed):
        return None
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as conn:
            return revision_of(conn)
    finally:
        engine.dispose()


def revision_of(conn: Connection) -> str | None:
    """The revision recorded in the database behind ``conn``."""
    return MigrationContext.configure(conn).get_current_revision()


def check_revision(current: str | None, url: str | URL) -> None:
    """Raise ConfigError unless ``current`` is the head revision, naming what to do."""
    head = head_revision()
    if current == head:
        return
    where = redact_url(url)
    known = {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if current is not None and current not in known:
        raise ConfigError(
            f"database at {where} is at revision {current}, which this code does not know (a newer "
            f"release migrated it; this code needs {head}): run the newer release"
        )
    raise ConfigError(
        f"database at {where} is at revision {current or 'none (empty)'}, the code needs {head}: "
        "run `recon db upgrade`"
    )


def _sqlite_file_missing(url: URL) -> bool:
    database = url.database or ""
    return (
        url.get_backend_name() == "sqlite"
        and bool(database)
        and database != ":memory:"
        and not database.startswith("file:")
        and not Path(database).expanduser().exists()
    )
