"""PostgreSQL's fast idempotent insert: COPY into a staging table, then INSERT … SELECT … ON CONFLICT.

COPY alone cannot skip rows that are already stored, and executemany of INSERT … ON CONFLICT runs
at about a quarter of COPY's speed. Staging keeps both properties: binary COPY of the batch into a
temporary table (session-local, emptied at commit), then one set-based insert that skips known
event ids. Everything runs on the caller's connection, inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from sqlalchemy import BigInteger, Connection, Date, Integer, Table, Text
from sqlalchemy.exc import DBAPIError

from recon.ledger._rows import Row


def copy_insert_ignore(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Row]) -> int:
    """Insert ``rows`` (values in ``columns`` order) into ``table``, skipping primary keys already
    stored or repeated in ``rows``; return how many were inserted.

    Errors surface as SQLAlchemy exceptions (``OperationalError``, ``IntegrityError``, ``DataError``
    …), the same classes the executemany path raises, so the caller's retry policy holds for both.
    """
    if not rows:
        return 0
    stage = f"recon_stage_{table.name}"
    column_list = ", ".join(f'"{name}"' for name in columns)
    # Created once per database session and reused: creating a table per batch would churn the
    # system catalogs. Rows vanish at commit, and with the transaction on rollback.
    conn.exec_driver_sql(
        f'CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE "{table.name}" INCLUDING DEFAULTS) '
        "ON COMMIT DELETE ROWS"
    )
    _copy(conn, f"COPY {stage} ({column_list}) FROM STDIN (FORMAT BINARY)", _pg_types(table, columns), rows)
    # Identifiers come from recon.ledger.tables, never from input; values travel by COPY only.
    result = conn.exec_driver_sql(
        f'INSERT INTO "{table.name}" ({column_list}) SELECT {column_list} FROM {stage} '  # noqa: S608
        "ON CONFLICT DO NOTHING",
        execution_options={"preserve_rowcount": True},
    )
    # A second call in the same transaction must not see this batch again.
    conn.exec_driver_sql(f"DELETE FROM {stage}")  # noqa: S608
    return result.rowcount


def _copy(conn: Connection, statement: str, types: Sequence[str], rows: Sequence[Row]) -> None:
    driver: psycopg.Connection[Any] = conn.connection.driver_connection  # type: ignore[assignment]
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)
    except (TypeError, ValueError, OverflowError) as exc:
        # A Python value the column's binary format cannot hold (SQLite reports the same mistake as
        # a ProgrammingError): make it the DataError a text INSERT would have raised.
        orig = psycopg.DataError(f"a value does not fit its column type: {exc}")
        raise DBAPIError.instance(statement, None, orig, psycopg.Error, dialect=conn.dialect) from exc
    except psycopg.Error as exc:
        # The raw driver call bypassed SQLAlchemy: translate like SQLAlchemy would, and drop a
        # connection the database has gone from so the pool does not hand it out again.
        invalidated = conn.dialect.is_disconnect(exc, driver, None)  # type: ignore[arg-type]
        if invalidated:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            statement, None, exc, psycopg.Error, connection_invalidated=invalidated, dialect=conn.dialect
        ) from exc


def _pg_types(table: Table, columns: Sequence[str]) -> list[str]:
    types = []
    for name in columns:
        column_type = table.c[name].type
        if isinstance(column_type, BigInteger):
            types.append("int8")
        elif isinstance(column_type, Integer):
            types.append("int4")
        elif isinstance(column_type, Date):
            types.append("date")
        elif isinstance(column_type, Text):
            types.append("text")
        else:  # pragma: no cover - a new column type needs a line here
            raise TypeError(f"no COPY type for {table.name}.{name} ({column_type!r})")
    return types
