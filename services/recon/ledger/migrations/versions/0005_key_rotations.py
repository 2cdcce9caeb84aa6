"""Record each rotation of the NIK hashing key, so services can refuse a key chain that does not match.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

`recon keys rotate` rewraps every stored worker key under a new key (the ledger holds no NIK to
hash again) and writes one row here in the same transaction, with a fingerprint of the new chain.
A ledger without rows was never rotated: its single key is accepted as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "key_rotations",
        sa.Column("rotation", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("rotated_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("chain_fingerprint", sa.Text(), nullable=False),
        sa.Column("workers", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("rotation", name="pk_key_rotations"),
    )


def downgrade() -> None:
    # The rewrapped worker keys stay: they need the whole chain whatever this table says.
    op.drop_table("key_rotations")
