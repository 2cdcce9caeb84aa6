"""The initial ledger: agreements, the three event tables, consumer offsets, the outbox.

Revision ID: 0001
Revises:
Create Date: 2026-05-09

Written by hand from recon.ledger.tables; tests/unit/test_ledger_migrations.py checks that the
result is exactly that metadata (alembic compare_metadata finds no difference).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _lineage(nullable: bool) -> list[sa.Column[object]]:
    return [
        sa.Column("src_topic", sa.Text(), nullable=nullable),
        sa.Column("src_partition", sa.Integer(), nullable=nullable),
        sa.Column("src_offset", sa.BigInteger(), nullable=nullable),
        sa.Column("schema_fingerprint", sa.Text(), nullable=nullable),
        sa.Column("schema_version", sa.Integer(), nullable=nullable),
        sa.Column("ingested_at_ms", sa.BigInteger(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "agreements",
        sa.Column("agreement_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("funder_name", sa.Text(), nullable=False),
        sa.Column("funder_level", sa.Text(), nullable=False),
        sa.Column("region_code", sa.Text(), nullable=False),
        sa.Column("branch_code", sa.Text(), nullable=False),
        sa.Column("budget_source", sa.Text(), nullable=False),
        sa.Column("programmes", sa.Text(), nullable=False),
        sa.Column("quota_workers", sa.BigInteger(), nullable=False),
        sa.Column("budget_rupiah", sa.BigInteger(), nullable=False),
        sa.Column("monthly_premium_rupiah", sa.BigInteger(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("ramp", sa.Text(), nullable=False),
        sa.Column("target_population", sa.BigInteger(), nullable=True),
        *_lineage(nullable=True),
        sa.PrimaryKeyConstraint("agreement_id", name="pk_agreements"),
    )

    op.create_table(
        "enrolment_events",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("occurred_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("branch_code", sa.Text(), nullable=False),
        sa.Column("agreement_id", sa.Text(), nullable=False),
        sa.Column("worker_key", sa.Text(), nullable=False),
        sa.Column("nik_region", sa.Text(), nullable=False),
        sa.Column("programmes", sa.Text(), nullable=False),
        sa.Column("declared_income", sa.BigInteger(), nullable=False),
        sa.Column("coverage_start", sa.Date(), nullable=False),
        sa.Column("coverage_end", sa.Date(), nullable=True),
        sa.Column("paid_months", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("termination_reason", sa.Text(), nullable=True),
        sa.Column("source_system", sa.Text(), nullable=True),
        *_lineage(nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_enrolment_events"),
    )
    op.create_index("ix_enrolment_events_worker_key", "enrolment_events", ["worker_key"])
    op.create_index("ix_enrolment_events_agreement_id", "enrolment_events", ["agreement_id"])

    op.create_table(
        "claim_events",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("occurred_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("branch_code", sa.Text(), nullable=False),
        sa.Column("claim_id", sa.Text(), nullable=False),
        sa.Column("worker_key", sa.Text(), nullable=False),
        sa.Column("nik_region", sa.Text(), nullable=False),
        sa.Column("agreement_id", sa.Text(), nullable=True),
        sa.Column("programme", sa.Text(), nullable=False),
        sa.Column("incident_date", sa.Date(), nullable=False),
        sa.Column("amount_claimed", sa.BigInteger(), nullable=False),
        sa.Column("amount_paid", sa.BigInteger(), nullable=True),
        *_lineage(nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_claim_events"),
    )
    op.create_index("ix_claim_events_worker_key", "claim_events", ["worker_key"])
    op.create_index("ix_claim_events_agreement_id", "claim_events", ["agreement_id"])
    op.create_index("ix_claim_events_claim_id", "claim_events", ["claim_id"])

    op.create_table(
        "branch_totals",
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("occurred_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("branch_code", sa.Text(), nullable=False),
        sa.Column("agreement_id", sa.Text(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("active_workers", sa.BigInteger(), nullable=False),
        sa.Column("contributions_paid_rupiah", sa.BigInteger(), nullable=False),
        *_lineage(nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_branch_totals"),
    )
    op.create_index("ix_branch_totals_agreement_id_as_of", "branch_totals", ["agreement_id", "as_of"])

    op.create_table(
        "consumer_offsets",
        sa.Column("group_id", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "topic", "partition", name="pk_consumer_offsets"),
    )

    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=True),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("source_topic", sa.Text(), nullable=True),
        sa.Column("source_partition", sa.Integer(), nullable=True),
        sa.Column("source_offset", sa.BigInteger(), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("sent_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("sent_partition", sa.Integer(), nullable=True),
        sa.Column("sent_offset", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.CheckConstraint("kind IN ('dead_letter', 'alert')", name=op.f("ck_outbox_kind")),
        sa.UniqueConstraint(
            "kind",
            "source_topic",
            "source_partition",
            "source_offset",
            name="uq_outbox_kind_source_topic_source_partition_source_offset",
        ),
    )
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["kind", "id"],
        sqlite_where=sa.text("sent_at_ms IS NULL"),
        postgresql_where=sa.text("sent_at_ms IS NULL"),
    )
    op.create_index(
        "ix_outbox_kind_topic_sent_partition_sent_offset",
        "outbox",
        ["kind", "topic", "sent_partition", "sent_offset"],
    )


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("consumer_offsets")
    op.drop_table("branch_totals")
    op.drop_table("claim_events")
    op.drop_table("enrolment_events")
    op.drop_table("agreements")
