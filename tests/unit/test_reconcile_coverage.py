"""Coverage and claim folds: order-independent, idempotent, incremental == from scratch."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_reconcile_builders import claim_event, enrolment, ms

from recon.domain.events import ClaimEvent, ClaimType, EnrolmentEvent, EnrolmentType, Programme
from reconcile.domain.claims import apply_claims, fold_claims, merge_claims
from reconcile.domain.coverage import CoverageKey, WorkerCoverage, apply, fold, from_event, merge
from reconcile.domain.dates import month_index, parse_month

E, P, T = EnrolmentType.ENROLLED, EnrolmentType.CONTRIBUTION_PAID, EnrolmentType.TERMINATED


def test_enrolled_event_alone() -> None:
    state = from_event(enrolment("e1", start=date(2025, 2, 3)))
    assert state.enrolled and state.coverage_start == date(2025, 2, 3)
    assert state.terminated_on is None and state.paid_months == frozenset()
    assert state.key == ("wk-aaaa", "PKS-A")


def test_payment_before_enrolment() -> None:
    pay = enrolment("p1", P, at=ms(date(2025, 1, 5)), paid=["2025-01", "2025-02"])
    enrol = enrolment("e1", at=ms(date(2025, 1, 6)))
    state = fold([pay, enrol])[("wk-aaaa", "PKS-A")]
    assert state.enrolled
    assert state.paid_months == {parse_month("2025-01"), parse_month("2025-02")}
    assert state.facts_from == (1, ms(date(2025, 1, 6)), "e1")


def test_payment_alone_is_not_enrolled() -> None:
    state = from_event(enrolment("p1", P, paid=["2025-01"]))
    assert not state.enrolled


def test_termination_before_enrolment() -> None:
    term = enrolment("t1", T, at=ms(date(2025, 5, 1)), end=date(2025, 4, 30))
    enrol = enrolment("e1", at=ms(date(2025, 1, 1)))
    state = fold([term, enrol])[("wk-aaaa", "PKS-A")]
    assert state.enrolled and state.coverage_end is None
    assert state.terminated_on == date(2025, 5, 1)  # the day after the last covered day
    assert state.last_covered_day == date(2025, 4, 30)


def test_termination_without_end_takes_the_local_date() -> None:
    # 2025-04-30 17:30 UTC is already 1 May 00:30 in WIB.
    utc = int(datetime(2025, 4, 30, 17, 30, tzinfo=UTC).timestamp() * 1000)
    assert from_event(enrolment("t1", T, at=utc)).terminated_on == date(2025, 5, 1)
    assert from_event(enrolment("t1", T, at=utc), utc_offset_minutes=0).terminated_on == date(2025, 4, 30)


def test_earliest_termination_wins() -> None:
    late = enrolment("t1", T, at=ms(date(2025, 6, 1)), end=date(2025, 6, 30))
    early = enrolment("t2", T, at=ms(date(2025, 7, 1)), end=date(2025, 3, 31))
    assert fold([late, early])[("wk-aaaa", "PKS-A")].terminated_on == date(2025, 4, 1)


def test_latest_enrolled_facts_win_and_ties_fall_to_event_id() -> None:
    old = enrolment("e1", at=ms(date(2025, 1, 1)), income=1_000_000)
    new = enrolment("e2", at=ms(date(2025, 2, 1)), income=2_000_000)
    same_time = enrolment("e3", at=ms(date(2025, 2, 1)), income=3_000_000)
    assert fold([new, old])[("wk-aaaa", "PKS-A")].declared_income == 2_000_000
    assert fold([same_time, new, old])[("wk-aaaa", "PKS-A")].declared_income == 3_000_000


def test_enrolled_facts_outrank_a_later_payment() -> None:
    enrol = enrolment("e1", at=ms(date(2025, 1, 1)), start=date(2025, 1, 1))
    pay = enrolment("p1", P, at=ms(date(2025, 9, 1)), start=date(2024, 1, 1), paid=["2025-09"])
    assert fold([enrol, pay])[("wk-aaaa", "PKS-A")].coverage_start == date(2025, 1, 1)


def test_same_event_twice_changes_nothing() -> None:
    state = from_event(enrolment("p1", P, paid=["2025-01"]))
    assert merge(state, state) == state


def test_merge_refuses_different_workers() -> None:
    with pytest.raises(ValueError, match="different workers"):
        merge(from_event(enrolment("e1")), from_event(enrolment("e2", worker="wk-bbbb")))


def test_apply_returns_only_the_touched_states() -> None:
    states = fold([enrolment("e1"), enrolment("e2", worker="wk-bbbb")])
    touched = apply(states, [enrolment("p1", P, paid=["2025-03"])])
    assert set(touched) == {("wk-aaaa", "PKS-A")}
    assert touched[("wk-aaaa", "PKS-A")].paid_months == {month_index(date(2025, 3, 1))}
    assert states[("wk-aaaa", "PKS-A")].paid_months == frozenset()  # input untouched


# --- properties --------------------------------------------------------------------------------

_days = st.dates(min_value=date(2024, 1, 1), max_value=date(2026, 12, 31))
_labels = st.sampled_from([f"2025-{m:02d}" for m in range(1, 13)])


@st.composite
def _enrolment_events(draw: st.DrawFn) -> list[EnrolmentEvent]:
    count = draw(st.integers(min_value=1, max_value=12))
    events = []
    for i in range(count):
        kind = draw(st.sampled_from([E, P, T]))
        start = draw(_days)
        offset = draw(st.none() | st.integers(0, 400))
        events.append(
            enrolment(
                f"ev-{i}",
                kind,
                at=ms(draw(_days), hour=draw(st.integers(0, 23))),
                worker=draw(st.sampled_from(["wk-aaaa", "wk-bbbb"])),
                agreement=draw(st.sampled_from(["PKS-A", "PKS-B"])),
                start=start,
                end=None if offset is None else start + timedelta(days=offset),
                paid=draw(st.sets(_labels, max_size=3)) if kind is P else (),
                income=draw(st.sampled_from([1_000_000, 2_000_000])),
            )
        )
    return events


@settings(max_examples=200, deadline=None)
@given(events=_enrolment_events(), data=st.data())
def test_fold_is_order_independent_and_idempotent(events: list[EnrolmentEvent], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(events))
    duplicated = shuffled + data.draw(st.lists(st.sampled_from(events), max_size=5))
    assert fold(duplicated) == fold(events)


@settings(max_examples=200, deadline=None)
@given(events=_enrolment_events(), data=st.data())
def test_incremental_batches_equal_from_scratch(events: list[EnrolmentEvent], data: st.DataObject) -> None:
    order = data.draw(st.permutations(events))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(order)), max_size=4)))
    states: dict[CoverageKey, WorkerCoverage] = {}
    for lo, hi in zip([0, *cuts], [*cuts, len(order)], strict=True):
        states.update(apply(states, order[lo:hi]))
    assert states == fold(events)


@settings(max_examples=200, deadline=None)
@given(events=_enrolment_events())
def test_merge_is_commutative_and_associative(events: list[EnrolmentEvent]) -> None:
    key = (events[0].worker_key, events[0].agreement_id)
    same = [from_event(e) for e in events if (e.worker_key, e.agreement_id) == key]
    for a in same:
        for b in same:
            assert merge(a, b) == merge(b, a)
            for c in same:
                assert merge(a, merge(b, c)) == merge(merge(a, b), c)


# --- claims -------------------------------------------------------------------------------------


def test_claim_outcome_is_the_furthest_stage() -> None:
    filed = claim_event("c1", ClaimType.FILED, at=ms(date(2025, 3, 15)))
    approved = claim_event("c2", ClaimType.APPROVED, at=ms(date(2025, 3, 20)))
    paid = claim_event("c3", ClaimType.PAID, at=ms(date(2025, 3, 18)), paid=4_000_000)
    state = fold_claims([approved, paid, filed])["CL-1"]
    assert state.outcome is ClaimType.PAID
    assert state.amount_paid == 4_000_000
    assert state.filed_on == date(2025, 3, 15)
    assert state.first_event_id == "c1"


def test_claim_filed_on_waits_for_the_filed_event() -> None:
    approved = claim_event("c2", ClaimType.APPROVED, at=ms(date(2025, 3, 20)))
    assert fold_claims([approved])["CL-1"].filed_on == date(2025, 3, 20)
    filed = claim_event("c1", ClaimType.FILED, at=ms(date(2025, 3, 25)))  # filed stamped later
    assert fold_claims([approved, filed])["CL-1"].filed_on == date(2025, 3, 25)


def test_merge_claims_refuses_different_claims() -> None:
    a = fold_claims([claim_event("c1")])["CL-1"]
    b = fold_claims([claim_event("c2", claim="CL-2")])["CL-2"]
    with pytest.raises(ValueError, match="different claims"):
        merge_claims(a, b)


@st.composite
def _claim_events(draw: st.DrawFn) -> list[ClaimEvent]:
    events = []
    for i in range(draw(st.integers(min_value=1, max_value=10))):
        kind = draw(st.sampled_from(list(ClaimType)))
        events.append(
            claim_event(
                f"c-{i}",
                kind,
                claim=draw(st.sampled_from(["CL-1", "CL-2"])),
                at=ms(draw(_days), hour=draw(st.integers(0, 23))),
                programme=draw(st.sampled_from(list(Programme))),
                incident=draw(_days),
                claimed=draw(st.sampled_from([1, 42_000_000])),
                paid=draw(st.sampled_from([1, 42_000_000])) if kind is ClaimType.PAID else None,
            )
        )
    return events


@settings(max_examples=200, deadline=None)
@given(events=_claim_events(), data=st.data())
def test_claim_fold_any_order_any_batches(events: list[ClaimEvent], data: st.DataObject) -> None:
    order = data.draw(st.permutations(events)) + data.draw(st.lists(st.sampled_from(events), max_size=3))
    cut = data.draw(st.integers(0, len(order)))
    states = apply_claims({}, order[:cut])
    states.update(apply_claims(states, order[cut:]))
    assert states == fold_claims(events)
