"""The ledger port: what the ingest loop, the reconciler and the outbox relay ask of the database.

Every method opens and finishes its own transaction. Failures surface unchanged as SQLAlchemy
exceptions: ``OperationalError`` (connection lost, database locked, restart — transient, the caller
retries) versus ``IntegrityError`` / ``ProgrammingError`` / ``DataError`` (permanent). Nothing here
retries; the ingest loop does, in one place.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from sqlalchemy import (
    Connection,
    Date,
    Engine,
    RowMapping,
    Table,
    bindparam,
    delete,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from recon.clock import SystemClock
from recon.domain.events import Agreement, BranchTotals, ClaimEvent, ClaimRow, EnrolmentEvent, EnrolmentRow
from recon.errors import ConfigError
from recon.ledger import _rows, tables
from recon.ledger._engine import BEGIN_IMMEDIATE
from recon.ledger._migrate import check_revision, revision_of
from recon.ledger._pgcopy import copy_insert_ignore
from recon.ledger._rotate import check_rotation

KINDS = ("enrolment", "claim", "agreement", "branch_totals")
_KEEP_ROWCOUNT = {"preserve_rowcount": True}
_SQLITE_ROWS_PER_INSERT = (1024, 256, 64, 16, 4, 1)  # rows per INSERT on SQLite, largest first


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A Kafka record to publish after the transaction that decided it commits.

    ``kind`` is ``"dead_letter"`` or ``"alert"``. ``source`` is the (topic, partition, offset) of the
    consumed record a dead letter stands for: at most one message per (kind, source) is ever stored,
    so re-processing a source offset after a crash does not publish its dead letter twice.
    Alerts have no source.
    """

    kind: str
    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    source: tuple[str, int, int] | None  # (topic, partition, offset)


@dataclass(frozen=True, slots=True)
class PendingOutbox:
    """An outbox row not yet marked sent: ``id`` is what :meth:`Ledger.mark_sent` takes."""

    id: int
    message: OutboxMessage


@dataclass(frozen=True, slots=True)
class Batch:
    """Everything one poll produced, written by :meth:`Ledger.write_batch` in one transaction.

    ``offsets`` maps (topic, partition) to the next offset to read: the offset after the last
    record of that partition the batch accounts for (stored, or routed to the outbox).
    Enrolments and claims may be events or their rows (what the ingest hot path builds), or those
    rows as plain tuples (what the ingest's writer process receives).
    """

    enrolments: Sequence[EnrolmentEvent | EnrolmentRow] = ()
    claims: Sequence[ClaimEvent | ClaimRow] = ()
    agreements: Sequence[Agreement] = ()
    branch_totals: Sequence[BranchTotals] = ()
    outbox: Sequence[OutboxMessage] = ()
    offsets: Mapping[tuple[str, int], int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """Per kind ('enrolment', 'claim', 'agreement', 'branch_totals'), every key always present.

    ``stored``: rows that changed the ledger. ``duplicates``: events whose id was already stored
    (or repeated within the batch), and agreement versions not newer than the stored one.
    """

    stored: Mapping[str, int]
    duplicates: Mapping[str, int]


class Ledger:
    """The store behind the service, on SQLite or PostgreSQL.

    Usage::

        ledger = Ledger(create_engine_for(url))
        ledger.check_schema_current()
        offsets = ledger.stored_offsets("rentan-recon-ingest", [("enrolments", 0)])
        outcome = ledger.write_batch("rentan-recon-ingest", Batch(enrolments=..., offsets=...))
    """

    def __init__(self, engine: Engine, *, clock: Callable[[], int] | None = None) -> None:
        """``clock`` gives epoch milliseconds for ``ingested_at_ms`` / ``created_at_ms`` columns
        (default: the system clock)."""
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise ConfigError(f"the ledger supports SQLite and PostgreSQL, not {engine.dialect.name}")
        self._engine = engine
        self._clock = clock or SystemClock().now_ms
        self._postgres = engine.dialect.name == "postgresql"
        self._writer = engine.execution_options(**{BEGIN_IMMEDIATE: True})

    @property
    def engine(self) -> Engine:
        return self._engine

    def _insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        return postgresql.insert(table) if self._postgres else sqlite.insert(table)

    # --- schema -----------------------------------------------------------------------------

    def check_schema_current(self) -> None:
        """Raise ``ConfigError`` unless the database is at the migration head this code needs.

        Services call this at start, so they fail with "run `recon db upgrade`" instead of a
        missing-table error in the middle of a batch.
        """
        with self._engine.connect() as conn:
            current = revision_of(conn)
        check_revision(current, self._engine.url)

    # --- consumer side ----------------------------------------------------------------------

    def stored_offsets(
        self, group_id: str, partitions: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        """The next offset to read for each (topic, partition) of ``group_id``; partitions never
        written are absent (the consumer then starts from its reset policy)."""
        wanted = list(dict.fromkeys(partitions))
        if not wanted:
            return {}
        t = tables.consumer_offsets
        query = select(t.c.topic, t.c.partition, t.c.next_offset).where(
            t.c.group_id == group_id, tuple_(t.c.topic, t.c.partition).in_(wanted)
        )
        with self._engine.connect() as conn:
            return {(topic, partition): offset for topic, partition, offset in conn.execute(query)}

    def write_batch(self, group_id: str, batch: Batch, *, key_rotation: int | None = None) -> BatchOutcome:
        """Write a whole batch and its offsets in ONE transaction: all of it or none of it.

        - Events are inserted by ``event_id``, skipping ids already stored (applying a batch twice
          changes nothing; the second time every event counts as a duplicate).
        - An agreement replaces the stored one only if its ``version`` is higher; an equal or
          lower version changes nothing and counts as a duplicate.
        - Outbox messages are inserted, skipping a (kind, source) already stored.
        - ``batch.offsets`` are upserted for ``group_id``.

        - ``key_rotation``: how many times the writer's NIK key chain was rotated. Checked last, in
          the same transaction, so a ``recon keys rotate`` that committed while this process ran
          makes the batch fail whole (ConfigError) instead of filing workers under the old chain.
          On PostgreSQL the rotation locks the event tables, so the check sees it or the rotation
          waits for this batch and rewraps it; SQLite serialises writers anyway.

        Raises SQLAlchemy exceptions unchanged; then nothing was written.
        """
        now = self._clock()
        with self._writer.begin() as conn:
            batch_id = self._new_batch(conn, batch, now)
            stored_agreements = self._upsert_agreements(conn, batch.agreements, now)
            stored = {
                "enrolment": self._insert_events(conn, _rows.ENROLMENT, batch.enrolments, now, batch_id),
                "claim": self._insert_events(conn, _rows.CLAIM, batch.claims, now, batch_id),
                "agreement": stored_agreements,
                "branch_totals": self._insert_events(
                    conn, _rows.BRANCH_TOTALS, batch.branch_totals, now, batch_id
                ),
            }
            if batch_id is not None and not any(stored.values()):
                # A pure replay: leave no trace, so applying a batch twice changes nothing at all.
                conn.execute(delete(tables.ingest_batches).where(tables.ingest_batches.c.id == batch_id))
            self._insert_outbox(conn, batch.outbox, now)
            self._save_offsets(conn, group_id, batch.offsets, now)
            if key_rotation is not None:
                check_rotation(conn, key_rotation)
        given = {
            "enrolment": len(batch.enrolments),
            "claim": len(batch.claims),
            "agreement": len(batch.agreements),
            "branch_totals": len(batch.branch_totals),
        }
        return BatchOutcome(stored=stored, duplicates={kind: given[kind] - stored[kind] for kind in KINDS})

    # --- agreements -------------------------------------------------------------------------

    def agreements(self) -> dict[str, Agreement]:
        """Every stored agreement (its highest version), by agreement id."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(tables.agreements)).mappings()
            return {row["agreement_id"]: _rows.agreement_from_row(row) for row in rows}

    def upsert_agreements(self, agreements: Sequence[Agreement]) -> int:
        """Store agreements outside any batch (``recon agreements load FILE``): same version rule as
        :meth:`write_batch`, no offsets. Returns how many changed the ledger."""
        now = self._clock()
        with self._writer.begin() as conn:
            return self._upsert_agreements(conn, agreements, now)

    # --- outbox -----------------------------------------------------------------------------

    def pending_outbox(
        self, kind: str, limit: int, sources: Collection[tuple[str, int]] | None = None
    ) -> list[PendingOutbox]:
        """Up to ``limit`` unsent messages of ``kind``, oldest first.

        ``sources``: only messages whose source (topic, partition) is one of these, e.g. the
        partitions this consumer owns; messages without a source never match. None: no filter.
        """
        if sources is not None and not sources:
            return []
        t = tables.outbox
        query = select(t).where(t.c.kind == kind, t.c.sent_at_ms.is_(None)).order_by(t.c.id).limit(limit)
        if sources is not None:
            query = query.where(tuple_(t.c.source_topic, t.c.source_partition).in_(list(sources)))
        with self._engine.connect() as conn:
            return [_pending_from_row(row) for row in conn.execute(query).mappings()]

    def mark_sent(self, sent: Sequence[tuple[int, int, int]], sent_at_ms: int) -> None:
        """Record that outbox rows were published: (outbox id, Kafka partition, Kafka offset)."""
        if not sent:
            return
        t = tables.outbox
        statement = (
            update(t)
            .where(t.c.id == bindparam("b_id"))
            .values(
                sent_at_ms=sent_at_ms,
                sent_partition=bindparam("b_partition"),
                sent_offset=bindparam("b_offset"),
            )
        )
        params = [
            {"b_id": id_, "b_partition": partition, "b_offset": offset} for id_, partition, offset in sent
        ]
        with self._writer.begin() as conn:
            conn.execute(statement, params)

    def pending_outbox_created(self, kind: str) -> dict[int, int]:
        """Outbox id -> ``created_at_ms`` (its transaction's moment) of every unsent message of ``kind``.

        Any copy of a pending message on Kafka was sent after that moment: the relay's crash recovery
        scans the topic from the oldest, for these ids (see recon.kafka.outbox).
        """
        t = tables.outbox
        query = select(t.c.id, t.c.created_at_ms).where(t.c.kind == kind, t.c.sent_at_ms.is_(None))
        with self._engine.connect() as conn:
            return {row_id: created for row_id, created in conn.execute(query)}

    def count_events(self) -> dict[str, int]:
        """Rows per kind: 'enrolment', 'claim', 'agreement', 'branch_totals'."""
        with self._engine.connect() as conn:
            return {
                kind: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for kind, table in tables.EVENT_TABLES.items()
            }

    # --- writing, inside the caller's transaction ---------------------------------------------

    def _new_batch(self, conn: Connection, batch: Batch, now: int) -> int | None:
        """A row in ingest_batches for a batch that carries events the reconciler folds (or agreements,
        which change its figures); the events are stamped with its id."""
        if not (batch.enrolments or batch.claims or batch.branch_totals or batch.agreements):
            return None
        t = tables.ingest_batches
        return int(conn.execute(self._insert(t).values(committed_at_ms=now).returning(t.c.id)).scalar_one())

    def _insert_events(
        self,
        conn: Connection,
        codec: _rows.RowCodec[Any],
        events: Sequence[Any],
        now: int,
        batch_id: int | None,
    ) -> int:
        if not events:
            return 0
        if self._postgres:
            return copy_insert_ignore(conn, codec.table, codec.all_columns, codec.rows(events, now, batch_id))
        # Straight to the driver, as COPY is on PostgreSQL: SQLAlchemy's per-row parameter processing
        # cost as much as SQLite's own insert work (bench/ingest). Many rows per INSERT: sqlite3 runs
        # each statement in one sqlite3_step with the GIL released, where executemany takes the GIL
        # back for every row (and waits for it while the ingest loop decodes). Dates go in as ISO
        # text, exactly as SQLAlchemy's SQLite DATE stores them; exceptions are still SQLAlchemy's.
        columns = codec.all_columns
        width = len(columns)
        limit = _sqlite_variable_limit(conn) // width
        dates = _date_positions(codec.table, columns)
        rows = codec.rows(events, now, batch_id)
        inserted = start = 0
        while start < len(rows):
            # Statements of a few fixed sizes only, so sqlite3's statement cache holds a bounded
            # number of prepared statements however the batches' sizes vary.
            size = next(n for n in _SQLITE_ROWS_PER_INSERT if n <= min(limit, len(rows) - start) or n == 1)
            chunk = rows[start : start + size]
            start += size
            values = list(chain.from_iterable(chunk))
            for position in dates:  # only the DATE columns' values are touched
                for i in range(position, len(values), width):
                    value = values[i]
                    if value is not None:
                        values[i] = value.isoformat()
            sql = _sqlite_insert_ignore(codec.table.name, columns, size)
            # ON CONFLICT DO NOTHING: the statement's rowcount is the rows inserted, conflicts skipped.
            result = conn.exec_driver_sql(sql, tuple(values), execution_options=_KEEP_ROWCOUNT)
            inserted += result.rowcount
        return inserted

    def _upsert_agreements(self, conn: Connection, agreements: Sequence[Agreement], now: int) -> int:
        # Only the highest version of each id in the batch can win; the rest count as duplicates.
        latest: dict[str, Agreement] = {}
        for agreement in agreements:
            held = latest.get(agreement.agreement_id)
            if held is None or agreement.version > held.version:
                latest[agreement.agreement_id] = agreement
        if not latest:
            return 0
        t = tables.agreements
        statement = self._insert(t)
        statement = statement.on_conflict_do_update(
            index_elements=[t.c.agreement_id],
            set_={
                name: statement.excluded[name] for name in _rows.AGREEMENT.columns if name != "agreement_id"
            },
            where=t.c.version < statement.excluded.version,
        )
        # RETURNING gives exactly the rows inserted or updated, on both databases and for any
        # number of parameter sets (DBAPIs disagree on executemany rowcount).
        returning = statement.returning(t.c.agreement_id)
        return len(conn.execute(returning, _rows.AGREEMENT.dicts(latest.values(), now)).all())

    def _insert_outbox(self, conn: Connection, messages: Sequence[OutboxMessage], now: int) -> None:
        if messages:
            conn.execute(self._insert(tables.outbox).on_conflict_do_nothing(), outbox_rows(messages, now))

    def _save_offsets(
        self, conn: Connection, group_id: str, offsets: Mapping[tuple[str, int], int], now: int
    ) -> None:
        if not offsets:
            return
        t = tables.consumer_offsets
        statement = self._insert(t)
        statement = statement.on_conflict_do_update(
            index_elements=[t.c.group_id, t.c.topic, t.c.partition],
            set_={
                "next_offset": statement.excluded.next_offset,
                "updated_at_ms": statement.excluded.updated_at_ms,
            },
        )
        rows = [
            {
                "group_id": group_id,
                "topic": topic,
                "partition": partition,
                "next_offset": offset,
                "updated_at_ms": now,
            }
            for (topic, partition), offset in offsets.items()
        ]
        conn.execute(statement, rows)


@functools.cache
def _date_positions(table: Table, columns: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(i for i, name in enumerate(columns) if isinstance(table.c[name].type, Date))


def _sqlite_variable_limit(conn: Connection) -> int:
    """How many ``?`` one statement may hold on this SQLite build (32766 since 3.32; 999 before)."""
    driver: Any = conn.connection.driver_connection
    try:
        return int(driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    except (AttributeError, sqlite3.Error):  # pragma: no cover - getlimit is Python 3.11+
        return 999


@functools.cache
def _sqlite_insert_ignore(table: str, columns: tuple[str, ...], rows: int) -> str:
    """The insert of ``rows`` rows into one event table; names come from our own table definitions,
    never from input."""
    one = "(" + ", ".join("?" * len(columns)) + ")"
    values = ", ".join([one] * rows)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values} ON CONFLICT DO NOTHING"  # noqa: S608


def outbox_rows(messages: Sequence[OutboxMessage], created_at_ms: int) -> list[dict[str, Any]]:
    """Outbox messages as rows of the ``outbox`` table (for a caller's own transaction)."""
    rows = []
    for message in messages:
        source_topic, source_partition, source_offset = message.source or (None, None, None)
        rows.append(
            {
                "kind": message.kind,
                "topic": message.topic,
                "key": message.key,
                "value": message.value,
                "headers": _rows.headers_to_json(message.headers),
                "source_topic": source_topic,
                "source_partition": source_partition,
                "source_offset": source_offset,
                "created_at_ms": created_at_ms,
            }
        )
    return rows


def _pending_from_row(row: RowMapping) -> PendingOutbox:
    source = None
    if row["source_topic"] is not None:
        source = (row["source_topic"], row["source_partition"], row["source_offset"])
    message = OutboxMessage(
        kind=row["kind"],
        topic=row["topic"],
        key=row["key"],
        value=row["value"],
        headers=_rows.headers_from_json(row["headers"]),
        source=source,
    )
    return PendingOutbox(id=row["id"], message=message)
