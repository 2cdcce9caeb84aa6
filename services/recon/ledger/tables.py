"""The ledger's tables: the one definition the store, the migrations and the reconciler read.

SQLAlchemy Core (no ORM): batches of thousands of rows are inserted with executemany or COPY, and
the reconciler aggregates with plain SELECTs. Changing anything here needs a migration in
``recon/ledger/migrations/versions`` (a unit test compares the two).

No table has a NIK column: a worker is ``worker_key`` (a keyed hash of the NIK) and ``nik_region``
(the NIK's 4-digit region of issue, not personal on its own). Free text a producer could fill with a
name (``termination_reason``) is not stored either.

Strings are unbounded ``Text``: a length limit here would turn a value that passed domain
validation into a permanent database error that stops the consumer.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)

# Deterministic constraint and index names, so migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

OUTBOX_KINDS = ("dead_letter", "alert")
_UNSENT = text("sent_at_ms IS NULL")


def _lineage(nullable: bool) -> list[Column[object]]:
    """Where a row came from: Kafka coordinates, the writer schema, and when the ledger stored it."""
    return [
        Column("src_topic", Text, nullable=nullable),
        Column("src_partition", Integer, nullable=nullable),
        Column("src_offset", BigInteger, nullable=nullable),
        Column("schema_fingerprint", Text, nullable=nullable),  # CRC-64-AVRO, 16 hex digits
        Column("schema_version", Integer, nullable=nullable),
        Column("ingested_at_ms", BigInteger, nullable=False),
    ]


agreements = Table(
    "agreements",
    metadata,
    Column("agreement_id", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("funder_name", Text, nullable=False),
    Column("funder_level", Text, nullable=False),  # PROVINCE | REGENCY | CITY
    Column("region_code", Text, nullable=False),  # Kemendagri code
    Column("branch_code", Text, nullable=False),
    Column("budget_source", Text, nullable=False),  # APBD | APBD_P
    Column("programmes", Text, nullable=False),  # "JKK,JKM"
    Column("quota_workers", BigInteger, nullable=False),
    Column("budget_rupiah", BigInteger, nullable=False),
    Column("monthly_premium_rupiah", BigInteger, nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("ramp", Text, nullable=False),  # JSON: [{"month": "YYYY-MM", "target_workers": n}, ...]
    Column("target_population", BigInteger, nullable=True),
    *_lineage(nullable=True),  # NULL when loaded from a file by `recon agreements load`
    PrimaryKeyConstraint("agreement_id"),
)

enrolment_events = Table(
    "enrolment_events",
    metadata,
    Column("event_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),  # ENROLLED | CONTRIBUTION_PAID | TERMINATED
    Column("occurred_at_ms", BigInteger, nullable=False),
    Column("branch_code", Text, nullable=False),
    Column("agreement_id", Text, nullable=False),
    Column("worker_key", Text, nullable=False),
    Column("nik_region", Text, nullable=False),
    Column("programmes", Text, nullable=False),  # "JKK,JKM"
    Column("declared_income", BigInteger, nullable=False),
    Column("coverage_start", Date, nullable=False),
    Column("coverage_end", Date, nullable=True),
    Column("paid_months", Text, nullable=False),  # "2025-01,2025-02" ascending; "" for none
    Column("amount", BigInteger, nullable=False),
    # termination_reason is validated but not stored: free text can name a person (migration 0003).
    Column("source_system", Text, nullable=True),
    *_lineage(nullable=False),
    Column("batch_id", BigInteger, nullable=True),  # ingest_batches.id; NULL only for rows before 0002
    PrimaryKeyConstraint("event_id"),
    Index(None, "batch_id"),  # the only way events are read back: the reconciler's fold (0007)
)

claim_events = Table(
    "claim_events",
    metadata,
    Column("event_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),  # FILED | APPROVED | REJECTED | PAID
    Column("occurred_at_ms", BigInteger, nullable=False),
    Column("branch_code", Text, nullable=False),
    Column("claim_id", Text, nullable=False),
    Column("worker_key", Text, nullable=False),
    Column("nik_region", Text, nullable=False),
    Column("agreement_id", Text, nullable=True),
    Column("programme", Text, nullable=False),  # JKK | JKM
    Column("incident_date", Date, nullable=False),
    Column("amount_claimed", BigInteger, nullable=False),
    Column("amount_paid", BigInteger, nullable=True),
    *_lineage(nullable=False),
    Column("batch_id", BigInteger, nullable=True),  # ingest_batches.id; NULL only for rows before 0002
    PrimaryKeyConstraint("event_id"),
    Index(None, "batch_id"),  # as for enrolment_events: no other index pays for itself (0007)
)

branch_totals = Table(
    "branch_totals",
    metadata,
    Column("event_id", Text, nullable=False),
    Column("occurred_at_ms", BigInteger, nullable=False),
    Column("branch_code", Text, nullable=False),
    Column("agreement_id", Text, nullable=False),
    Column("as_of", Date, nullable=False),
    Column("active_workers", BigInteger, nullable=False),
    Column("contributions_paid_rupiah", BigInteger, nullable=False),
    *_lineage(nullable=False),
    Column("batch_id", BigInteger, nullable=True),  # ingest_batches.id; NULL only for rows before 0002
    PrimaryKeyConstraint("event_id"),
    Index(None, "batch_id"),
    Index(None, "agreement_id", "as_of"),
)

consumer_offsets = Table(
    "consumer_offsets",
    metadata,
    Column("group_id", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("partition", Integer, nullable=False),
    Column("next_offset", BigInteger, nullable=False),  # the next offset to read, Kafka's convention
    Column("updated_at_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("group_id", "topic", "partition"),
)

outbox = Table(
    "outbox",
    metadata,
    # BIGSERIAL on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the auto-assigned rowid.
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), nullable=False, autoincrement=True),
    Column("kind", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("key", LargeBinary, nullable=True),
    Column("value", LargeBinary, nullable=True),
    Column("headers", Text, nullable=False),  # JSON, see recon.ledger._rows.headers_to_json
    Column("source_topic", Text, nullable=True),
    Column("source_partition", Integer, nullable=True),
    Column("source_offset", BigInteger, nullable=True),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("sent_at_ms", BigInteger, nullable=True),
    Column("sent_partition", Integer, nullable=True),
    Column("sent_offset", BigInteger, nullable=True),
    PrimaryKeyConstraint("id"),
    CheckConstraint("kind IN ('dead_letter', 'alert')", name="kind"),
    # One dead letter per source offset. Rows without a source (alerts) never conflict: NULLs differ.
    UniqueConstraint("kind", "source_topic", "source_partition", "source_offset"),
    # The relay's queries: oldest unsent rows of a kind; when each unsent row was committed (recovery).
    Index("ix_outbox_pending", "kind", "id", sqlite_where=_UNSENT, postgresql_where=_UNSENT),
)

# --- Reconciliation (migration 0002) -------------------------------------------------------------
_UNFOLDED = text("folded_at_ms IS NULL")

ingest_batches = Table(
    "ingest_batches",
    metadata,
    # One row per committed ingest batch; the reconciler folds the events of unfolded batches. A set
    # of batches, not a high-water mark: concurrent writers may commit ids out of order.
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), nullable=False, autoincrement=True),
    Column("committed_at_ms", BigInteger, nullable=False),
    Column("folded_at_ms", BigInteger, nullable=True),
    PrimaryKeyConstraint("id"),
    Index("ix_ingest_batches_unfolded", "id", sqlite_where=_UNFOLDED, postgresql_where=_UNFOLDED),
)

worker_coverage = Table(
    "worker_coverage",
    metadata,
    # reconcile.domain.WorkerCoverage, one row per (worker, agreement); folded from enrolment events.
    Column("worker_key", Text, nullable=False),
    Column("agreement_id", Text, nullable=False),
    Column("nik_region", Text, nullable=False),
    Column("enrolled", Integer, nullable=False),  # 0/1
    Column("coverage_start", Date, nullable=False),
    Column("coverage_end", Date, nullable=True),
    Column("programmes", Text, nullable=False),  # "JKK,JKM"
    Column("declared_income", BigInteger, nullable=False),
    Column("terminated_on", Date, nullable=True),
    Column(
        "paid_months", Text, nullable=False
    ),  # month indices (year*12 + month-1), ascending, comma-separated
    Column("facts_rank", Integer, nullable=False),  # which event's facts won the merge: (rank, at, id)
    Column("facts_at_ms", BigInteger, nullable=False),
    Column("facts_event_id", Text, nullable=False),
    Column("first_seen_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
    # reconcile.domain.WorkerRow, derived at fold time (migration 0004); NULL until enrolled.
    Column("row_start", BigInteger, nullable=True),  # first covered day, date ordinal
    Column("row_last", BigInteger, nullable=True),  # last covered day, date ordinal
    Column("row_term", BigInteger, nullable=True),  # termination day, date ordinal
    Column("row_start_m", BigInteger, nullable=True),  # month index of the first covered day
    Column("row_last_m", BigInteger, nullable=True),  # month index of the last covered day
    Column("row_paid_mask", Text, nullable=True),  # paid months as hex bits from row_start_m
    PrimaryKeyConstraint("worker_key", "agreement_id"),
    Index(None, "agreement_id"),
)

claim_states = Table(
    "claim_states",
    metadata,
    Column("claim_id", Text, nullable=False),
    Column("worker_key", Text, nullable=False),
    Column("agreement_id", Text, nullable=True),
    Column("state", Text, nullable=False),  # JSON of reconcile.domain.ClaimState
    Column("updated_at_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("claim_id"),
)

branch_activity = Table(
    "branch_activity",
    metadata,
    Column("branch_code", Text, nullable=False),
    Column("last_event_ms", BigInteger, nullable=False),  # when the ledger last took in one of its events
    PrimaryKeyConstraint("branch_code"),
)

alert_states = Table(
    "alert_states",
    metadata,
    Column("fingerprint", Text, nullable=False),
    Column("rule", Text, nullable=False),
    Column("status", Text, nullable=False),  # FIRING | RESOLVED
    Column("agreement_id", Text, nullable=True),
    Column("state", Text, nullable=False),  # JSON of reconcile.domain.AlertState
    Column("updated_at_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("fingerprint"),
)

leases = Table(
    "leases",
    metadata,
    # One reconciler writes at a time: it holds the 'reconcile' lease and renews it in every write.
    Column("name", Text, nullable=False),
    Column("holder", Text, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("name"),
)

# --- Rotations of the NIK hashing key (migration 0005) ------------------------------------------
key_rotations = Table(
    "key_rotations",
    metadata,
    # One row per `recon keys rotate`, written in the transaction that rewrapped every worker key.
    # 1, 2, ...: how many keys RECON_NIK_HASH_KEY_ROTATIONS holds after it. Given, never generated.
    # Rotation 0: the first key the ledger was checked with (recon.ledger._rotate, first sight).
    Column("rotation", Integer, nullable=False, autoincrement=False),
    Column("rotated_at_ms", BigInteger, nullable=False),
    # recon.domain.worker_key.chain_fingerprint of the chain after it: services refuse another chain.
    Column("chain_fingerprint", Text, nullable=False),
    Column("workers", BigInteger, nullable=False),  # distinct worker keys rewrapped
    PrimaryKeyConstraint("rotation"),
)

# --- Workers funded by two or more agreements (migration 0006) -----------------------------------
multiply_funded = Table(
    "multiply_funded",
    metadata,
    # Derived from worker_coverage in each fold's transaction: the workers with coverages under two
    # or more agreements, so a reconciler taking the lease reads only them for the double-funding
    # rule instead of grouping every coverage by worker.
    Column("worker_key", Text, nullable=False),
    Column("agreements", Integer, nullable=False),  # how many agreements cover the worker
    PrimaryKeyConstraint("worker_key"),
)

EVENT_TABLES = {
    "enrolment": enrolment_events,
    "claim": claim_events,
    "agreement": agreements,
    "branch_totals": branch_totals,
}
