"""Drop the event tables' indexes that no query reads: every insert paid for them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

Events are written once, by the ingest, in batches, and read back only by ``batch_id`` (the
reconciler's fold). The indexes on ``worker_key``, ``agreement_id`` and ``claim_id`` of
``enrolment_events`` and ``claim_events`` served no query of the service: the reconciler keeps its
per-worker and per-claim state in ``worker_coverage`` and ``claim_states``, indexed there, and the key
rotation rewrites the column set-wise through its own map. Each index was one more random B-tree
insert per event on the ingest's hot path (worker keys are uniformly spread hashes): without them
``Ledger.write_batch`` stores about a quarter more rows a second on SQLite (bench/ledger.py).
An investigation by worker goes to ``worker_coverage`` (primary key ``worker_key, agreement_id``).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DROPPED = (
    ("enrolment_events", "worker_key"),
    ("enrolment_events", "agreement_id"),
    ("claim_events", "worker_key"),
    ("claim_events", "agreement_id"),
    ("claim_events", "claim_id"),
)


def upgrade() -> None:
    for table, column in _DROPPED:
        op.drop_index(f"ix_{table}_{column}", table_name=table)


def downgrade() -> None:
    for table, column in _DROPPED:
        op.create_index(f"ix_{table}_{column}", table, [column])
