"""A worker's coverage under one agreement, folded from enrolment events in any order.

The fold is a commutative, associative, idempotent merge (a join-semilattice), so events can
arrive out of order (a payment or a termination before the enrolment) or twice, and a state kept
incrementally batch by batch equals the state folded from scratch:

- the enrolment facts (coverage window, programmes, declared income, NIK region) come from the
  event with the highest ``(is ENROLLED, occurred_at, event_id)``: the latest ENROLLED event wins,
  and until one arrives the latest other event stands in (``enrolled`` stays False);
- paid months are the union of every event's ``paid_months``;
- the termination date is the earliest any TERMINATED event gives.

``coverage_end`` is the last covered day (inclusive), as in the event. ``terminated_on`` is the
first day *without* cover: the day after a TERMINATED event's ``coverage_end``, or, when it has
none, the local date the termination occurred. A termination is final for this state (the earliest
wins, whatever the order): a worker who rejoins the *same* agreement stays terminated here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from recon.domain.events import EnrolmentEvent, EnrolmentType, Programme
from reconcile.domain.dates import WIB_OFFSET_MINUTES, local_date, parse_month

CoverageKey = tuple[str, str]  # (worker_key, agreement_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerCoverage:
    """What the ledger knows about one worker under one agreement. Holds no NIK."""

    worker_key: str
    agreement_id: str
    nik_region: str
    enrolled: bool
    coverage_start: date
    coverage_end: date | None
    programmes: tuple[Programme, ...]
    declared_income: int
    terminated_on: date | None
    paid_months: frozenset[int]
    facts_from: tuple[int, int, str]  # (1 if ENROLLED else 0, occurred_at_ms, event_id)

    @property
    def key(self) -> CoverageKey:
        return (self.worker_key, self.agreement_id)

    @property
    def last_covered_day(self) -> date | None:
        """The last day with cover (the earlier of coverage end and termination), None if open."""
        ends = [d for d in (self.coverage_end, _day_before(self.terminated_on)) if d is not None]
        return min(ends) if ends else None


def from_event(event: EnrolmentEvent, *, utc_offset_minutes: int = WIB_OFFSET_MINUTES) -> WorkerCoverage:
    """The state one enrolment event alone implies; merge it into the worker's state with ``merge``."""
    is_enrolled = event.event_type is EnrolmentType.ENROLLED
    return WorkerCoverage(
        worker_key=event.worker_key,
        agreement_id=event.agreement_id,
        nik_region=event.nik_region,
        enrolled=is_enrolled,
        coverage_start=event.coverage_start,
        coverage_end=event.coverage_end,
        programmes=event.programmes,
        declared_income=event.declared_income,
        terminated_on=_termination_day(event, utc_offset_minutes),
        paid_months=frozenset(parse_month(m) for m in event.paid_months),
        facts_from=(int(is_enrolled), event.occurred_at_ms, event.event_id),
    )


def merge(a: WorkerCoverage, b: WorkerCoverage) -> WorkerCoverage:
    """The join of two states of the same worker and agreement; ValueError if they differ.

    ``merge(a, b) == merge(b, a)``, ``merge(a, merge(b, c)) == merge(merge(a, b), c)`` and
    ``merge(a, a) == a``.
    """
    if a.key != b.key:
        raise ValueError("merge: states of different workers or agreements")
    facts = a if _facts_key(a) >= _facts_key(b) else b
    return WorkerCoverage(
        worker_key=facts.worker_key,
        agreement_id=facts.agreement_id,
        nik_region=facts.nik_region,
        enrolled=a.enrolled or b.enrolled,
        coverage_start=facts.coverage_start,
        coverage_end=facts.coverage_end,
        programmes=facts.programmes,
        declared_income=facts.declared_income,
        terminated_on=_earliest(a.terminated_on, b.terminated_on),
        paid_months=a.paid_months | b.paid_months,
        facts_from=facts.facts_from,
    )


def apply(
    states: Mapping[CoverageKey, WorkerCoverage],
    events: Iterable[EnrolmentEvent],
    *,
    utc_offset_minutes: int = WIB_OFFSET_MINUTES,
) -> dict[CoverageKey, WorkerCoverage]:
    """Fold a batch of events into ``states``; returns the new states of the keys the batch touched.

    ``states`` is not modified. Unknown keys start from the event alone.
    """
    touched: dict[CoverageKey, WorkerCoverage] = {}
    for event in events:
        single = from_event(event, utc_offset_minutes=utc_offset_minutes)
        current = touched.get(single.key) or states.get(single.key)
        touched[single.key] = single if current is None else merge(current, single)
    return touched


def fold(
    events: Iterable[EnrolmentEvent], *, utc_offset_minutes: int = WIB_OFFSET_MINUTES
) -> dict[CoverageKey, WorkerCoverage]:
    """Every worker-agreement state the events imply, folded from scratch."""
    return apply({}, events, utc_offset_minutes=utc_offset_minutes)


def _termination_day(event: EnrolmentEvent, utc_offset_minutes: int) -> date | None:
    if event.event_type is not EnrolmentType.TERMINATED:
        return None
    if event.coverage_end is not None:
        return event.coverage_end + timedelta(days=1)
    return local_date(event.occurred_at_ms, utc_offset_minutes)


def _facts_key(c: WorkerCoverage) -> tuple[object, ...]:
    # The rank decides; the facts themselves break a tie between two events with the same id
    # (a corrupted re-send), so that merge stays commutative even then.
    return (
        c.facts_from,
        c.coverage_start,
        c.coverage_end or date.min,
        c.programmes,
        c.declared_income,
        c.nik_region,
    )


def _earliest(a: date | None, b: date | None) -> date | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _day_before(day: date | None) -> date | None:
    return None if day is None else day - timedelta(days=1)
