"""The figures pass's compact row, stored with each worker coverage at fold time.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21

A reconciler taking the lease reads every enrolled coverage: reading these integers straight from
the driver is several times faster than rebuilding each coverage and deriving its row. NULL while
the worker's ENROLLED event has not arrived. Existing rows are filled by the next fold of their
worker, or at once by `recon reconcile --rebuild`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("row_start", "row_last", "row_term", "row_start_m", "row_last_m")


def upgrade() -> None:
    with op.batch_alter_table("worker_coverage") as batch:
        for name in _COLUMNS:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("row_paid_mask", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("worker_coverage") as batch:
        for name in (*_COLUMNS, "row_paid_mask"):
            batch.drop_column(name)
