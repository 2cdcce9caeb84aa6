"""The workers funded by two or more agreements, kept at fold time.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

The double-funding rule needs only the workers with coverages under two or more agreements. A
reconciler taking the lease used to find them by grouping every coverage by worker, which at
national scale (20M coverages) costs more than the rest of its load; the fold now keeps them here,
in the transaction that writes their coverages. Filled from the existing coverages.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "multiply_funded",
        sa.Column("worker_key", sa.Text(), nullable=False),
        sa.Column("agreements", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("worker_key", name="pk_multiply_funded"),
    )
    op.execute(
        "INSERT INTO multiply_funded (worker_key, agreements) SELECT worker_key, count(*) "
        "FROM worker_coverage GROUP BY worker_key HAVING count(*) > 1"
    )


def downgrade() -> None:
    op.drop_table("multiply_funded")
