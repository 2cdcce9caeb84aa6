"""Named leases in the ledger: one holder at a time, until the lease expires or is given up.

The reconciler holds ``RECONCILE_LEASE`` while it works (``reconcile.store``), and ``recon keys
rotate`` takes the same lease so that no reconciler writes worker keys while they are rewrapped.
Both go through ``take_lease``, inside the caller's own transaction.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import Connection, update
from sqlalchemy.dialects import postgresql, sqlite

from recon.ledger import tables

RECONCILE_LEASE: Final = "reconcile"


def take_lease(conn: Connection, *, name: str, holder: str, now_ms: int, ttl_ms: int) -> bool:
    """Take or renew lease ``name`` for ``holder`` until ``now_ms + ttl_ms``; False while another
    holder's lease is still live. Runs in ``conn``'s transaction, so it commits or rolls back with it."""
    t = tables.leases
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(t).values(name=name, holder=holder, expires_at_ms=0).on_conflict_do_nothing())
    taken = conn.execute(
        update(t)
        .where(t.c.name == name, (t.c.holder == holder) | (t.c.expires_at_ms < now_ms))
        .values(holder=holder, expires_at_ms=now_ms + ttl_ms)
    )
    return bool(taken.rowcount)
