"""The ledger: the service's one source of truth, on SQLite (embedded default) or PostgreSQL.

Public API (exactly ``__all__``): the store port :class:`Ledger` and its values, engine creation,
URL redaction, and the migration entry points. The tables are in :mod:`recon.ledger.tables`.
See docs/ledger.md for the contracts and what happens on a crash at each step.
"""

from recon.ledger._engine import BEGIN_IMMEDIATE, create_engine_for, redact_url
from recon.ledger._lease import RECONCILE_LEASE, take_lease
from recon.ledger._migrate import current_revision, head_revision, upgrade
from recon.ledger._rotate import (
    KeyRotation,
    LeaseHeld,
    RotationOutcome,
    check_key_chain,
    last_key_rotation,
    rotate_worker_keys,
)
from recon.ledger._rows import agreement_from_row, branch_totals_from_row, claim_from_row, enrolment_from_row
from recon.ledger._store import Batch, BatchOutcome, Ledger, OutboxMessage, PendingOutbox, outbox_rows
from recon.ledger.tables import metadata

__all__ = [
    "BEGIN_IMMEDIATE",
    "RECONCILE_LEASE",
    "Batch",
    "BatchOutcome",
    "KeyRotation",
    "LeaseHeld",
    "Ledger",
    "OutboxMessage",
    "PendingOutbox",
    "RotationOutcome",
    "agreement_from_row",
    "branch_totals_from_row",
    "check_key_chain",
    "claim_from_row",
    "create_engine_for",
    "current_revision",
    "enrolment_from_row",
    "head_revision",
    "last_key_rotation",
    "metadata",
    "outbox_rows",
    "redact_url",
    "rotate_worker_keys",
    "take_lease",
    "upgrade",
]
