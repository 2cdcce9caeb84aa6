"""Engines for the two supported stores, and URLs that are safe to print."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError

from recon.errors import ConfigError

SQLITE_BUSY_TIMEOUT_SECONDS = 30.0

# Execution option: on SQLite, start the transaction with BEGIN IMMEDIATE (take the write lock at
# once, waiting up to the busy timeout) instead of a deferred BEGIN. A transaction that reads and
# then writes needs it: in WAL mode a deferred one fails at once with SQLITE_BUSY when another
# writer committed since its read. No effect on PostgreSQL.
BEGIN_IMMEDIATE = "recon_begin_immediate"

_SUPPORTED_DRIVERS = frozenset({"sqlite", "sqlite+pysqlite", "postgresql+psycopg"})
# scheme://user:password@ or a bare user:password@, up to the last @ of the word.
_PASSWORD_AFTER_SCHEME = re.compile(r"(://[^:/@\s]*):\S*@")
_PASSWORD_BARE = re.compile(r"(^|[\s,;])([^:/@\s]*):\S*@")


def redact_url(url: str | URL) -> str:
    """``url`` with its password replaced by ``***``: the only form of a database URL to print or log."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        # Not a URL SQLAlchemy understands; still never echo what may be a password.
        if "://" in url:
            return _PASSWORD_AFTER_SCHEME.sub(r"\1:***@", url)
        return _PASSWORD_BARE.sub(r"\1\2:***@", url)


def parse_url(url: str) -> URL:
    """The URL as SQLAlchemy reads it, or a ConfigError naming the fix (the password masked)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"RECON_DATABASE_URL {redact_url(url)!r} is not a database URL: use sqlite:///PATH or "
            "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername not in _SUPPORTED_DRIVERS:
        raise ConfigError(
            f"RECON_DATABASE_URL {redact_url(parsed)!r} uses driver {parsed.drivername!r}: the ledger "
            "supports sqlite:///PATH and postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB"
        )
    return parsed


def create_engine_for(url: str) -> Engine:
    """An engine tuned for the ledger. Nothing connects until the engine is first used.

    SQLite: WAL journal (readers never block the writer), ``synchronous=NORMAL`` (durable at
    checkpoints, never corrupt), a busy timeout so a second writer waits instead of failing,
    foreign keys on, real transactions (SQLAlchemy emits BEGIN; see :data:`BEGIN_IMMEDIATE`), and
    the parent folder of the file created. PostgreSQL: psycopg 3, ``pool_pre_ping`` so a
    connection broken by a database restart is replaced on checkout instead of failing a batch.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return create_engine(parsed, pool_pre_ping=True)


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's BEGIN below drive transactions, not the sqlite3 module's legacy mode
        # (which skips BEGIN before SELECT and DDL, breaking atomic migrations and repeatable reads).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(BEGIN_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
