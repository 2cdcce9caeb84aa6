"""Stop keeping termination_reason: free text a branch could fill with a person's name.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21

Data minimisation (UU 27/2022): no report, alert or rule reads the column, and validation cannot
tell a name from a reason. Downgrading restores an empty column.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("enrolment_events") as batch:
        batch.drop_column("termination_reason")


def downgrade() -> None:
    with op.batch_alter_table("enrolment_events") as batch:
        batch.add_column(sa.Column("termination_reason", sa.Text(), nullable=True))
