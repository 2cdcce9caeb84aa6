"""The PostgreSQL fixtures give a real server, and each test that asks gets an empty database of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.integration


def test_the_server_answers(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("select 1")).scalar_one() == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize("attempt", [1, 2])
def test_a_fresh_database_is_empty_and_its_own(fresh_postgres_url: str, attempt: int) -> None:
    # Run twice: the table the first run creates must not be there for the second.
    engine = sa.create_engine(fresh_postgres_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
        with engine.begin() as conn:
            conn.execute(sa.text("create table scratch (id int primary key)"))
            conn.execute(sa.text("insert into scratch values (:attempt)"), {"attempt": attempt})
            assert conn.execute(sa.text("select current_database()")).scalar_one() != "recon"
    finally:
        engine.dispose()


def test_the_sqlite_url_is_a_file_in_tmp_path(sqlite_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(sqlite_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("create table scratch (id int)"))
    finally:
        engine.dispose()
    assert (tmp_path / "recon.db").is_file()
