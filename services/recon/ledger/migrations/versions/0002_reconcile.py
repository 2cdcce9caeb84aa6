"""Reconciliation state: ingest batches, folded worker coverage and claims, branch activity,
alert states and the reconciler's lease; events learn which batch brought them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

Written by hand from recon.ledger.tables (a unit test compares the migrated schema with it).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EVENT_TABLES = ("enrolment_events", "claim_events", "branch_totals")
_UNFOLDED = sa.text("folded_at_ms IS NULL")


def upgrade() -> None:
    for table in _EVENT_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("batch_id", sa.BigInteger(), nullable=True))
        op.create_index(f"ix_{table}_batch_id", table, ["batch_id"])
    op.create_table(
        "ingest_batches",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False, autoincrement=True
        ),
        sa.Column("committed_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("folded_at_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_batches"),
    )
    op.create_index(
        "ix_ingest_batches_unfolded",
        "ingest_batches",
        ["id"],
        sqlite_where=_UNFOLDED,
        postgresql_where=_UNFOLDED,
    )
    op.create_table(
        "worker_coverage",
        sa.Column("worker_key", sa.Text(), nullable=False),
        sa.Column("agreement_id", sa.Text(), nullable=False),
        sa.Column("nik_region", sa.Text(), nullable=False),
        sa.Column("enrolled", sa.Integer(), nullable=False),
        sa.Column("coverage_start", sa.Date(), nullable=False),
        sa.Column("coverage_end", sa.Date(), nullable=True),
        sa.Column("programmes", sa.Text(), nullable=False),
        sa.Column("declared_income", sa.BigInteger(), nullable=False),
        sa.Column("terminated_on", sa.Date(), nullable=True),
        sa.Column("paid_months", sa.Text(), nullable=False),
        sa.Column("facts_rank", sa.Integer(), nullable=False),
        sa.Column("facts_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("facts_event_id", sa.Text(), nullable=False),
        sa.Column("first_seen_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("worker_key", "agreement_id", name="pk_worker_coverage"),
    )
    op.create_index("ix_worker_coverage_agreement_id", "worker_coverage", ["agreement_id"])
    op.create_table(
        "claim_states",
        sa.Column("claim_id", sa.Text(), nullable=False),
        sa.Column("worker_key", sa.Text(), nullable=False),
        sa.Column("agreement_id", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("claim_id", name="pk_claim_states"),
    )
    op.create_table(
        "branch_activity",
        sa.Column("branch_code", sa.Text(), nullable=False),
        sa.Column("last_event_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("branch_code", name="pk_branch_activity"),
    )
    op.create_table(
        "alert_states",
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("agreement_id", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name="pk_alert_states"),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )


def downgrade() -> None:
    for table in (
        "leases",
        "alert_states",
        "branch_activity",
        "claim_states",
        "worker_coverage",
        "ingest_batches",
    ):
        op.drop_table(table)
    for table in _EVENT_TABLES:
        op.drop_index(f"ix_{table}_batch_id", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("batch_id")
