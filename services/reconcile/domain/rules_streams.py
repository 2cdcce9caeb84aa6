"""Rules over the streams themselves: a branch gone silent, events waiting for an unknown agreement.

Times are UTC milliseconds on the caller's clock (``now_ms``); the adapter passes, per branch, when
the ledger last took in one of its events, and per unknown agreement id, how many events wait for it
and since when.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from recon.domain.events import Agreement
from reconcile.domain.dates import WIB_OFFSET_MINUTES, local_date, local_midnight_ms
from reconcile.domain.signals import Level, Rule, Severity, Signal, ThresholdPolicy, agreement_subject

_HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class OrphanBacklog:
    """Events that reference an agreement the ledger does not know: how many, first seen when."""

    count: int
    first_seen_ms: int


def branch_silent(
    last_event_ms: Mapping[str, int],
    agreements: Mapping[str, Agreement],
    now_ms: int,
    policy: ThresholdPolicy,
    *,
    utc_offset_minutes: int = WIB_OFFSET_MINUTES,
) -> list[Signal]:
    """One signal per branch with an agreement in its period today: BREACH when nothing came from
    it for longer than ``branch_silence_ms`` (the smallest among those agreements), counted from its
    last event or from the earliest such period's start, whichever is later; CLEAR otherwise."""
    today = local_date(now_ms, utc_offset_minutes)
    by_branch: dict[str, list[Agreement]] = {}
    for a in agreements.values():
        if a.period_start <= today <= a.period_end:
            by_branch.setdefault(a.branch_code, []).append(a)
    signals = []
    for branch, active in sorted(by_branch.items()):
        ids = sorted(a.agreement_id for a in active)
        since = local_midnight_ms(min(a.period_start for a in active), utc_offset_minutes)
        since = max(since, last_event_ms.get(branch, since))
        silent_h = (now_ms - since) / _HOUR_MS
        limit_ms = min(policy.for_agreement(i).branch_silence_ms for i in ids)
        message = (
            f"Branch {branch}: no event for {silent_h:,.1f} h (threshold {limit_ms / _HOUR_MS:,.1f} h) "
            f"while agreement(s) {', '.join(ids)} are in their period."
        )
        signals.append(
            Signal(
                rule=Rule.BRANCH_SILENT,
                subject=f"branch:{branch}",
                level=Level.BREACH if now_ms - since > limit_ms else Level.CLEAR,
                severity=Severity.WARNING,
                observed=round(silent_h, 3),
                expected=limit_ms / _HOUR_MS,
                message=message,
                agreement_id=ids[0] if len(ids) == 1 else None,
            )
        )
    return signals


def orphan_events(waiting: Mapping[str, OrphanBacklog], now_ms: int, policy: ThresholdPolicy) -> list[Signal]:
    """Per unknown agreement id with waiting events: BREACH once the oldest has waited longer than
    ``orphan_grace_ms``, HOLD while within it; nothing for ids with none waiting."""
    signals = []
    for agreement_id, backlog in sorted(waiting.items()):
        if backlog.count <= 0:
            continue
        grace_ms = policy.for_agreement(agreement_id).orphan_grace_ms
        waited_h = (now_ms - backlog.first_seen_ms) / _HOUR_MS
        message = (
            f"{backlog.count:,} event(s) reference agreement {agreement_id}, unknown to the ledger for "
            f"{waited_h:,.1f} h (grace {grace_ms / _HOUR_MS:,.1f} h): load the agreement or correct the id."
        )
        signals.append(
            Signal(
                rule=Rule.ORPHAN_EVENTS,
                subject=agreement_subject(agreement_id),
                level=Level.BREACH if now_ms - backlog.first_seen_ms > grace_ms else Level.HOLD,
                severity=Severity.WARNING,
                observed=backlog.count,
                expected=0,
                message=message,
                agreement_id=agreement_id,
            )
        )
    return signals
