"""Engines, URLs that are safe to print, the public API, and the `recon db` commands."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import recon.ledger
from recon.errors import ConfigError
from recon.ledger import create_engine_for, redact_url
from recon.ledger._migrate import head_revision
from recon.ledger._rows import headers_from_json, headers_to_json

MIGRATIONS = Path(recon.ledger.__file__).parent / "migrations" / "versions"


def test_the_public_api_is_pinned() -> None:
    assert sorted(recon.ledger.__all__) == [
        "BEGIN_IMMEDIATE",
        "Batch",
        "BatchOutcome",
        "KeyRotation",
        "LeaseHeld",
        "Ledger",
        "OutboxMessage",
        "PendingOutbox",
        "RECONCILE_LEASE",
        "RotationOutcome",
        "agreement_from_row",
        "branch_totals_from_row",
        "check_key_chain",
        "claim_from_row",
        "create_engine_for",
        "current_revision",
        "enrolment_from_row",
        "head_revision",
        "last_key_rotation",
        "metadata",
        "outbox_rows",
        "redact_url",
        "rotate_worker_keys",
        "take_lease",
        "upgrade",
    ]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://recon:s3cr%40t@db:5432/recon", "postgresql+psycopg://recon:***@db:5432/recon"),
        ("postgresql://recon@db/recon", "postgresql://recon@db/recon"),
        ("sqlite:///relative/recon.db", "sqlite:///relative/recon.db"),
        ("postgresql://user:s3cret@host:notaport/x", "postgresql://user:***@host:notaport/x"),
        ("postgresql://user:s3c/r@t@host:notaport/x", "postgresql://user:***@host:notaport/x"),
        ("not a url, user:s3cret@host", "not a url, user:***@host"),
        ("://:s3cret@host", "://:***@host"),
    ],
)
def test_redact_url_never_shows_a_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_url_takes_a_parsed_url() -> None:
    assert redact_url(sa.make_url("postgresql://u:s3cret@h/db")) == "postgresql://u:***@h/db"


def test_a_sqlite_engine_is_tuned_and_creates_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "folder" / "recon.db"
    engine = create_engine_for(f"sqlite:///{path}")
    try:
        assert path.parent.is_dir() and not path.exists()  # nothing connected yet
        with engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }
        assert pragma == {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 30_000, "foreign_keys": 1}
    finally:
        engine.dispose()


def test_a_sqlite_transaction_really_is_one(sqlite_url: str) -> None:
    # The sqlite3 module's legacy mode would autocommit DDL; the engine must not.
    engine = create_engine_for(sqlite_url)
    try:
        with pytest.raises(RuntimeError), engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE scratch (x INTEGER)")
            raise RuntimeError("roll back")
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_a_postgresql_engine_uses_psycopg_and_connects_lazily() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    engine = create_engine_for(f"postgresql://recon:pw@127.0.0.1:{port}/recon")
    try:
        assert engine.dialect.driver == "psycopg"
        assert engine.pool._pre_ping  # type: ignore[attr-defined]
        with pytest.raises(sa.exc.OperationalError):
            engine.connect()
    finally:
        engine.dispose()


def test_an_unsupported_database_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError) as raised:
        create_engine_for("mysql+pymysql://recon:s3cret@db/recon")
    assert "s3cret" not in str(raised.value) and "***" in str(raised.value)
    with pytest.raises(ConfigError, match="not a database URL"):
        create_engine_for("recon.db")
    with pytest.raises(ConfigError, match="not a database URL") as raised:
        create_engine_for("postgresql://recon:s3cret@db:port/recon")
    assert "s3cret" not in str(raised.value)


def test_outbox_headers_round_trip_through_json() -> None:
    headers = (("reason", b"tanggal tidak valid"), ("raw", b"\xc3\x01\xff"), ("dup", b""), ("dup", b"2"))
    text = headers_to_json(headers)
    assert headers_from_json(text) == headers
    assert '"value":"tanggal tidak valid"' in text  # readable where it can be


# --- `recon db` ---


def _recon(*args: str) -> tuple[int, str]:
    from recon.cli import db  # noqa: F401  (registers `recon db` on the app)
    from recon.cli._app import app

    result = CliRunner().invoke(app, list(args))
    error = f"{result.exception}" if result.exception and not isinstance(result.exception, SystemExit) else ""
    return result.exit_code, result.output + error


def test_recon_db_upgrade_then_current(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_DATABASE_URL", sqlite_url)

    code, out = _recon("db", "current")
    assert code == 0 and "revision none (empty)" in out and "run `recon db upgrade`" in out

    code, out = _recon("db", "current", "--check")
    assert code != 0 and "run `recon db upgrade`" in out

    head = head_revision()
    assert head == sorted(p.name[:4] for p in MIGRATIONS.glob("[0-9]*.py"))[-1]  # the newest script
    code, out = _recon("db", "upgrade")
    assert code == 0 and f"upgraded from revision none (empty) to {head}" in out
    code, out = _recon("db", "upgrade")
    assert code == 0 and f"already at revision {head}" in out

    code, out = _recon("db", "current", "--check")
    assert code == 0 and f"revision {head}" in out and "up to date" in out


def test_recon_db_never_prints_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("RECON_DATABASE_URL", f"postgresql+psycopg://recon:s3cret@127.0.0.1:{port}/recon")

    code, out = _recon("db", "upgrade")

    assert code != 0
    assert "s3cret" not in out
    assert "recon:***@127.0.0.1" in out
