"""A read-only reconciliation snapshot for `recon status` (and the status page's first render)."""

from __future__ import annotations

from recon.clock import SystemClock
from recon.settings import Settings
from reconcile.bootstrap import build_store, threshold_policy
from reconcile.service import Evaluation, ReconcileService


def snapshot(settings: Settings, now_ms: int) -> tuple[Evaluation, int]:
    """Figures from the folded ledger, with the stored alerts; and how many batches wait to be folded."""
    ledger, store = build_store(settings)
    ledger.check_schema_current()
    service = ReconcileService(
        settings=settings,
        store=store,
        ledger=ledger,
        relay=None,
        encode_alert=None,
        clock=SystemClock(),
        policy=threshold_policy(settings),
    )
    return service.snapshot(now_ms)
