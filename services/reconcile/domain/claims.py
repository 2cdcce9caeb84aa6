"""A claim's state, folded from its events in any order (the same semilattice merge as coverage).

- the claim's facts (worker, agreement, programme, incident date, amount claimed) come from its
  latest event by ``(occurred_at, event_id)``;
- the outcome is the furthest stage reached: FILED, then APPROVED or REJECTED, then PAID (the later
  event decides between two of the same stage);
- the amount paid comes from the latest event that carries one;
- ``filed_on`` is the local date of the earliest FILED event (of the earliest event until a FILED
  one arrives), and ``first_event_id`` the id of the claim's earliest event, which messages cite.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Final

from recon.domain.events import ClaimEvent, ClaimType, Programme
from reconcile.domain.dates import WIB_OFFSET_MINUTES, local_date

_STAGE: Final = {ClaimType.FILED: 0, ClaimType.APPROVED: 1, ClaimType.REJECTED: 1, ClaimType.PAID: 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimState:
    """What the ledger knows about one claim. Holds no NIK."""

    claim_id: str
    worker_key: str
    agreement_id: str | None
    programme: Programme
    incident_date: date
    amount_claimed: int
    outcome: ClaimType
    amount_paid: int | None
    filed_on: date
    first_event_id: str
    facts_from: tuple[int, str]  # (occurred_at_ms, event_id)
    outcome_from: tuple[int, int, str]  # (stage, occurred_at_ms, event_id)
    paid_from: tuple[int, int, str]  # (1 if amount_paid is set, occurred_at_ms, event_id)
    filed_from: tuple[int, int, str]  # (0 if FILED else 1, occurred_at_ms, event_id): lowest wins
    first_from: tuple[int, str]  # (occurred_at_ms, event_id): lowest wins


def claim_from_event(event: ClaimEvent, *, utc_offset_minutes: int = WIB_OFFSET_MINUTES) -> ClaimState:
    """The state one claim event alone implies; merge it into the claim's state with ``merge_claims``."""
    at, eid = event.occurred_at_ms, event.event_id
    return ClaimState(
        claim_id=event.claim_id,
        worker_key=event.worker_key,
        agreement_id=event.agreement_id,
        programme=event.programme,
        incident_date=event.incident_date,
        amount_claimed=event.amount_claimed,
        outcome=event.event_type,
        amount_paid=event.amount_paid,
        filed_on=local_date(at, utc_offset_minutes),
        first_event_id=eid,
        facts_from=(at, eid),
        outcome_from=(_STAGE[event.event_type], at, eid),
        paid_from=(int(event.amount_paid is not None), at, eid),
        filed_from=(int(event.event_type is not ClaimType.FILED), at, eid),
        first_from=(at, eid),
    )


def merge_claims(a: ClaimState, b: ClaimState) -> ClaimState:
    """The join of two states of the same claim (commutative, associative, idempotent)."""
    if a.claim_id != b.claim_id:
        raise ValueError("merge_claims: states of different claims")
    facts = a if _facts_key(a) >= _facts_key(b) else b
    outcome = a if (a.outcome_from, a.outcome) >= (b.outcome_from, b.outcome) else b
    paid = a if (a.paid_from, a.amount_paid or 0) >= (b.paid_from, b.amount_paid or 0) else b
    filed = a if a.filed_from <= b.filed_from else b
    first = a if a.first_from <= b.first_from else b
    return ClaimState(
        claim_id=a.claim_id,
        worker_key=facts.worker_key,
        agreement_id=facts.agreement_id,
        programme=facts.programme,
        incident_date=facts.incident_date,
        amount_claimed=facts.amount_claimed,
        outcome=outcome.outcome,
        amount_paid=paid.amount_paid,
        filed_on=filed.filed_on,
        first_event_id=first.first_event_id,
        facts_from=facts.facts_from,
        outcome_from=outcome.outcome_from,
        paid_from=paid.paid_from,
        filed_from=filed.filed_from,
        first_from=first.first_from,
    )


def apply_claims(
    states: Mapping[str, ClaimState],
    events: Iterable[ClaimEvent],
    *,
    utc_offset_minutes: int = WIB_OFFSET_MINUTES,
) -> dict[str, ClaimState]:
    """Fold a batch of claim events into ``states`` (by claim id); returns the touched claims' states."""
    touched: dict[str, ClaimState] = {}
    for event in events:
        single = claim_from_event(event, utc_offset_minutes=utc_offset_minutes)
        current = touched.get(single.claim_id) or states.get(single.claim_id)
        touched[single.claim_id] = single if current is None else merge_claims(current, single)
    return touched


def fold_claims(
    events: Iterable[ClaimEvent], *, utc_offset_minutes: int = WIB_OFFSET_MINUTES
) -> dict[str, ClaimState]:
    """Every claim's state the events imply, folded from scratch."""
    return apply_claims({}, events, utc_offset_minutes=utc_offset_minutes)


def _facts_key(c: ClaimState) -> tuple[object, ...]:
    # Ties (one event id seen with two contents) fall to the facts, keeping merge commutative.
    return (
        c.facts_from,
        c.worker_key,
        c.agreement_id or "",
        c.programme,
        c.incident_date,
        c.amount_claimed,
    )
