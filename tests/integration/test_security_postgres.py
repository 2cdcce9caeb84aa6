"""A PostgreSQL password from a secret file, checked by a real server that demands it.

The test cluster trusts loopback, except for role ``recon_secret``, which scripts/postgres.sh makes log
in with its password (scram-sha-256): so a wrong password is really refused here, and a right one really
travelled from the file into the connection. (An external RECON_TEST_POSTGRES_URL server needs the same
pg_hba rule for that role.)
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from support import run_recon, service_env

ROLE = "recon_secret"  # scripts/postgres.sh's pg_hba asks this role for its password


@dataclass(frozen=True, slots=True)
class SecretDatabase:
    url: str  # carries no password
    password: str


@pytest.fixture
def secret_database(postgres_url: str) -> Iterator[SecretDatabase]:
    """A database owned by ``recon_secret``, whose password is new for this test."""
    # The cluster trusts the superuser on loopback: the fixture's role may create databases, not roles.
    admin_url = sa.make_url(postgres_url).set(username="postgres", password=None)
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name, password = f"t_{uuid.uuid4().hex[:12]}", secrets.token_urlsafe(18)
    try:
        with admin.connect() as conn:
            exists = conn.execute(sa.text("select 1 from pg_roles where rolname = :r"), {"r": ROLE}).first()
            verb = "ALTER" if exists else "CREATE"
            # The password as a literal: utility statements take no bind parameters.
            literal = conn.dialect.identifier_preparer.quote_identifier(ROLE)
            conn.execute(sa.text(f"{verb} ROLE {literal} LOGIN PASSWORD '{password}'"))
            conn.execute(sa.text(f'CREATE DATABASE "{name}" OWNER {literal}'))
        url = sa.make_url(postgres_url).set(username=ROLE, password=None, database=name)
        yield SecretDatabase(url=url.render_as_string(hide_password=False), password=password)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def test_db_upgrade_logs_in_with_the_password_from_a_file(
    secret_database: SecretDatabase, tmp_path: Path
) -> None:
    password_file = tmp_path / "db-password"
    password_file.write_text(secret_database.password + "\n")  # as `echo pw > file` leaves it
    env = service_env({"database_password_file": password_file}, secret_database.url)

    result = run_recon(env, "db", "upgrade")

    assert result.returncode == 0, result.stderr
    assert "upgraded from revision none (empty)" in result.stdout
    assert secret_database.password not in result.stdout + result.stderr
    with_password = sa.make_url(secret_database.url).set(password=secret_database.password)
    engine = sa.create_engine(with_password, poolclass=NullPool)
    with engine.connect() as conn:  # the schema is there, owned by the role that logged in
        assert conn.execute(sa.text("select version_num from alembic_version")).scalar_one()
    engine.dispose()


def test_a_wrong_password_is_one_recon_line_without_any_password(
    secret_database: SecretDatabase, tmp_path: Path
) -> None:
    wrong = "Wr0ng-" + secrets.token_hex(8)
    password_file = tmp_path / "db-password"
    password_file.write_text(wrong)
    env = service_env({"database_password_file": password_file}, secret_database.url)

    result = run_recon(env, "db", "upgrade")

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("recon: database at "), result.stderr
    assert "password authentication failed" in lines[0] and "RECON_DATABASE_PASSWORD_FILE" in lines[0]
    assert wrong not in result.stdout + result.stderr
    assert secret_database.password not in result.stdout + result.stderr


def test_an_unreadable_password_file_is_one_line_naming_the_setting(
    secret_database: SecretDatabase, tmp_path: Path
) -> None:
    env = service_env({"database_password_file": tmp_path / "not-mounted"}, secret_database.url)

    result = run_recon(env, "db", "upgrade")

    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("recon: RECON_DATABASE_PASSWORD_FILE ")
    assert "not-mounted cannot be read" in result.stderr
