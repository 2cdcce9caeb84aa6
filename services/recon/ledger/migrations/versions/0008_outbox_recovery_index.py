"""Drop the outbox index of the recovery scan's old starting point: no query reads it any more.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

The relay's crash recovery used to start its scan of a topic at the highest offset marked sent per
partition (an index on ``kind, topic, sent_partition, sent_offset``). With several ingest members
sending to one dead-letter topic that start could lie past a dead member's unmarked copy, so the scan
now starts at the time the oldest pending row was committed (recon.kafka.outbox), read through
``ix_outbox_pending``. Every ``mark_sent`` still updated the dropped index's columns.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_outbox_kind_topic_sent_partition_sent_offset"


def upgrade() -> None:
    op.drop_index(_INDEX, table_name="outbox")


def downgrade() -> None:
    op.create_index(_INDEX, "outbox", ["kind", "topic", "sent_partition", "sent_offset"])
