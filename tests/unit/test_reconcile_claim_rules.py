"""Claim rules: incident outside cover, JKM amount, JKK expiry; messages cite event ids, not workers."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from test_reconcile_builders import JKM_BENEFIT, claim_event, coverage, months, ms

from recon.domain.config import DomainConfig
from recon.domain.events import ClaimEvent, ClaimType, Programme
from reconcile.domain.claims import ClaimState, fold_claims
from reconcile.domain.rules import claim_outside_coverage, jkk_claim_expired, jkm_amount
from reconcile.domain.signals import Level, Severity, Signal, ThresholdPolicy

CONFIG = DomainConfig()
POLICY = ThresholdPolicy()
WORKER = "wk-5f2c9a0d1e"


def _claims(*events: ClaimEvent) -> list[ClaimState]:
    return list(fold_claims(events).values())


def _only(signals: list[Signal]) -> Signal:
    assert len(signals) == 1
    return signals[0]


# --- claim_outside_coverage -------------------------------------------------------------------

COVERS = {
    WORKER: [
        coverage(
            date(2025, 2, 1), worker=WORKER, paid=months("2025-02", "2025-04"), terminated_on=date(2025, 9, 1)
        )
    ]
}


@pytest.mark.parametrize(
    ("incident", "outside"),
    [
        (date(2025, 1, 31), True),  # before the start
        (date(2025, 2, 1), False),  # the start day
        (date(2025, 6, 14), False),  # May unpaid and June not yet due: 1 unpaid, at risk, covered
        (date(2025, 6, 15), False),  # May, June unpaid: 2, still covered
        (date(2025, 7, 14), False),
        (date(2025, 7, 15), True),  # May, June, July unpaid: lapsed
    ],
)
def test_claim_outside_coverage_boundaries(incident: date, outside: bool) -> None:
    claims = _claims(claim_event("ev-1", worker=WORKER, incident=incident))
    signals = claim_outside_coverage(claims, COVERS, CONFIG, POLICY)
    assert bool(signals) is outside


def test_claim_after_termination_and_already_paid_is_critical() -> None:
    paid_cover = {
        WORKER: [coverage(worker=WORKER, paid=months("2025-01", "2025-12"), terminated_on=date(2025, 9, 1))]
    }
    claims = _claims(
        claim_event("ev-1", claim="CL-1", worker=WORKER, incident=date(2025, 8, 31)),
        claim_event("ev-2", claim="CL-2", worker=WORKER, incident=date(2025, 9, 1)),
        claim_event("ev-3", ClaimType.PAID, claim="CL-2", worker=WORKER, incident=date(2025, 9, 1), paid=1),
    )
    s = _only(claim_outside_coverage(claims, paid_cover, CONFIG, POLICY))
    assert (s.level, s.severity, s.observed, s.agreement_id) == (Level.BREACH, Severity.CRITICAL, 1, "PKS-A")
    assert "ev-2" in s.message and WORKER not in s.message


def test_claim_for_an_unknown_worker_or_other_agreement_is_outside() -> None:
    claims = _claims(
        claim_event("ev-1", claim="CL-1", worker="wk-nobody"),
        claim_event("ev-2", claim="CL-2", worker=WORKER, agreement="PKS-B", incident=date(2025, 3, 1)),
    )
    signals = claim_outside_coverage(claims, COVERS, CONFIG, POLICY)
    assert [(s.subject, s.observed) for s in signals] == [("agreement:PKS-A", 1), ("agreement:PKS-B", 1)]
    assert "ev-1" in signals[0].message and "ev-2" in signals[1].message


def test_claims_of_one_agreement_are_counted_together() -> None:
    claims = _claims(*(claim_event(f"ev-{i}", claim=f"CL-{i}", worker="wk-nobody") for i in range(2)))
    s = _only(claim_outside_coverage(claims, COVERS, CONFIG, POLICY))
    assert s.observed == 2 and "ev-0, ev-1" in s.message and "0 already paid" in s.message


def test_claim_without_agreement_uses_any_coverage_and_groups_as_unattributed() -> None:
    inside = _claims(claim_event("ev-1", worker=WORKER, agreement=None, incident=date(2025, 3, 1)))
    assert claim_outside_coverage(inside, COVERS, CONFIG, POLICY) == []
    nowhere = _claims(claim_event("ev-2", worker="wk-nobody", agreement=None))
    s = _only(claim_outside_coverage(nowhere, COVERS, CONFIG, POLICY))
    assert (s.subject, s.agreement_id) == ("unattributed", None)
    attributed = _claims(claim_event("ev-3", worker=WORKER, agreement=None, incident=date(2024, 1, 1)))
    assert _only(claim_outside_coverage(attributed, COVERS, CONFIG, POLICY)).agreement_id == "PKS-A"


def test_rejected_claims_are_left_out() -> None:
    claims = _claims(
        claim_event("ev-1", worker="wk-nobody"),
        claim_event("ev-2", ClaimType.REJECTED, worker="wk-nobody"),
    )
    assert claim_outside_coverage(claims, COVERS, CONFIG, POLICY) == []


def test_message_cites_at_most_five_events() -> None:
    claims = _claims(*(claim_event(f"ev-{i}", claim=f"CL-{i}", worker="wk-nobody") for i in range(7)))
    s = _only(claim_outside_coverage(claims, COVERS, CONFIG, POLICY))
    assert "ev-0, ev-1, ev-2, ev-3, ev-4 and 2 more" in s.message


# --- jkm_amount -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claimed", "paid", "signal", "severity"),
    [
        (JKM_BENEFIT, None, False, None),
        (JKM_BENEFIT - 1, None, True, Severity.WARNING),
        (JKM_BENEFIT + 1, None, True, Severity.WARNING),
        (JKM_BENEFIT - 1, JKM_BENEFIT, False, None),  # the paid amount decides once known
        (JKM_BENEFIT, JKM_BENEFIT - 1, True, Severity.CRITICAL),
    ],
)
def test_jkm_amount(claimed: int, paid: int | None, signal: bool, severity: Severity | None) -> None:
    kind = ClaimType.FILED if paid is None else ClaimType.PAID
    claims = _claims(
        claim_event("ev-1", kind, programme=Programme.JKM, claimed=claimed, paid=paid, worker=WORKER)
    )
    signals = jkm_amount(claims, CONFIG, POLICY)
    assert bool(signals) is signal
    if signals:
        assert signals[0].severity is severity and WORKER not in signals[0].message
        assert "Rp 42,000,000" in signals[0].message


def test_jkm_amount_ignores_jkk_and_rejected_claims_and_honours_tolerance() -> None:
    claims = _claims(
        claim_event("ev-1", claim="CL-1", programme=Programme.JKK, claimed=1),
        claim_event("ev-2", ClaimType.REJECTED, claim="CL-2", programme=Programme.JKM, claimed=1),
    )
    assert jkm_amount(claims, CONFIG, POLICY) == []
    near = _claims(claim_event("ev-3", programme=Programme.JKM, claimed=JKM_BENEFIT - 100))
    assert jkm_amount(near, CONFIG, POLICY.override("PKS-A", jkm_amount_tolerance_rupiah=100)) == []


# --- jkk_claim_expired: more than 5 years after the accident ------------------------------------


@pytest.mark.parametrize(
    ("incident", "filed", "expired"),
    [
        (date(2020, 3, 10), date(2025, 3, 9), False),  # a day before the anniversary
        (date(2020, 3, 10), date(2025, 3, 10), False),  # on the anniversary: 5 years, not more
        (date(2020, 3, 10), date(2025, 3, 11), True),  # a day after
        (date(2020, 2, 29), date(2025, 2, 28), False),  # leap day: the anniversary is 28 February
        (date(2020, 2, 29), date(2025, 3, 1), True),
    ],
)
def test_jkk_claim_expiry(incident: date, filed: date, expired: bool) -> None:
    claims = _claims(claim_event("ev-1", incident=incident, at=ms(filed), worker=WORKER))
    signals = jkk_claim_expired(claims, CONFIG, POLICY)
    assert bool(signals) is expired
    if signals:
        assert signals[0].severity is Severity.WARNING and "ev-1" in signals[0].message


def test_jkk_expiry_uses_the_filed_date_and_is_critical_once_approved() -> None:
    incident = date(2020, 3, 10)
    claims = _claims(
        claim_event("ev-1", incident=incident, at=ms(date(2025, 3, 11))),
        claim_event("ev-2", ClaimType.APPROVED, incident=incident, at=ms(date(2025, 3, 20))),
    )
    s = _only(jkk_claim_expired(claims, CONFIG, POLICY))
    assert (s.severity, s.observed) == (Severity.CRITICAL, 1)
    jkm = _claims(
        claim_event(
            "ev-3", programme=Programme.JKM, incident=incident, at=ms(incident + timedelta(days=3000))
        )
    )
    assert jkk_claim_expired(jkm, CONFIG, POLICY) == []


def test_jkk_expiry_years_come_from_config() -> None:
    claims = _claims(claim_event("ev-1", incident=date(2022, 3, 10), at=ms(date(2025, 3, 11))))
    assert jkk_claim_expired(claims, DomainConfig(jkk_claim_expiry_years=3), POLICY) != []
