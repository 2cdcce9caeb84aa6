"""Builders for the reconcile domain tests (plain values; no tests here).

Imported by the test_reconcile_* modules as ``test_reconcile_builders`` (pytest puts this folder on
sys.path in its default import mode).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

from recon.domain.events import (
    Agreement,
    BranchTotals,
    BudgetSource,
    ClaimEvent,
    ClaimType,
    EnrolmentEvent,
    EnrolmentType,
    FunderLevel,
    Lineage,
    Programme,
    RampStep,
)
from reconcile.domain.coverage import WorkerCoverage
from reconcile.domain.dates import parse_month
from reconcile.domain.figures import AgreementFigures

LINEAGE = Lineage("t", 0, 0, "0" * 16, 1)
WIB = timezone(timedelta(hours=7))
BOTH = (Programme.JKK, Programme.JKM)
JKM_BENEFIT = 42_000_000


def ms(day: date, hour: int = 12, minute: int = 0) -> int:
    """UTC milliseconds of a local (WIB) time on ``day``."""
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=WIB).timestamp() * 1000)


def enrolment(
    event_id: str,
    event_type: EnrolmentType = EnrolmentType.ENROLLED,
    *,
    at: int | None = None,
    worker: str = "wk-aaaa",
    agreement: str = "PKS-A",
    region: str = "7271",
    start: date = date(2025, 1, 1),
    end: date | None = None,
    paid: Iterable[str] = (),
    income: int = 1_000_000,
    programmes: tuple[Programme, ...] = BOTH,
) -> EnrolmentEvent:
    months = tuple(sorted(paid))
    return EnrolmentEvent(
        event_id=event_id,
        event_type=event_type,
        occurred_at_ms=ms(start) if at is None else at,
        branch_code="B01",
        agreement_id=agreement,
        worker_key=worker,
        nik_region=region,
        programmes=programmes,
        declared_income=income,
        coverage_start=start,
        coverage_end=end,
        paid_months=months,
        amount=16_800 * len(months),
        termination_reason="moved" if event_type is EnrolmentType.TERMINATED else None,
        source_system=None,
        lineage=LINEAGE,
    )


def coverage(
    start: date = date(2025, 1, 1),
    *,
    paid: Iterable[str] = (),
    end: date | None = None,
    terminated_on: date | None = None,
    worker: str = "wk-aaaa",
    agreement: str = "PKS-A",
    region: str = "7271",
    enrolled: bool = True,
) -> WorkerCoverage:
    return WorkerCoverage(
        worker_key=worker,
        agreement_id=agreement,
        nik_region=region,
        enrolled=enrolled,
        coverage_start=start,
        coverage_end=end,
        programmes=BOTH,
        declared_income=1_000_000,
        terminated_on=terminated_on,
        paid_months=frozenset(parse_month(m) for m in paid),
        facts_from=(int(enrolled), 0, "e"),
    )


def months(first: str, last: str) -> list[str]:
    """Every "YYYY-MM" label from ``first`` to ``last`` inclusive."""
    a, b = parse_month(first), parse_month(last)
    return [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in range(a, b + 1)]


def agreement(
    agreement_id: str = "PKS-A",
    *,
    region: str = "7271",
    branch: str = "B01",
    funder: str = "Pemkot Palu",
    level: FunderLevel = FunderLevel.CITY,
    quota: int = 100,
    budget: int = 100 * 16_800 * 12,
    premium: int = 16_800,
    start: date = date(2025, 1, 1),
    end: date = date(2025, 12, 31),
    ramp: Iterable[tuple[str, int]] = (),
    target: int | None = None,
) -> Agreement:
    return Agreement(
        agreement_id=agreement_id,
        version=1,
        funder_name=funder,
        funder_level=level,
        region_code=region,
        branch_code=branch,
        budget_source=BudgetSource.APBD,
        programmes=BOTH,
        quota_workers=quota,
        budget_rupiah=budget,
        monthly_premium_rupiah=premium,
        period_start=start,
        period_end=end,
        ramp=tuple(RampStep(m, t) for m, t in ramp),
        target_population=target,
        lineage=None,
    )


def branch_totals(agreement_id: str, as_of: date, active: int, paid: int = 0) -> BranchTotals:
    return BranchTotals(
        event_id=f"bt-{agreement_id}-{as_of}",
        occurred_at_ms=ms(as_of),
        branch_code="B01",
        agreement_id=agreement_id,
        as_of=as_of,
        active_workers=active,
        contributions_paid_rupiah=paid,
        lineage=LINEAGE,
    )


def claim_event(
    event_id: str,
    event_type: ClaimType = ClaimType.FILED,
    *,
    claim: str = "CL-1",
    at: int | None = None,
    worker: str = "wk-aaaa",
    agreement: str | None = "PKS-A",
    programme: Programme = Programme.JKK,
    incident: date = date(2025, 3, 10),
    claimed: int = 5_000_000,
    paid: int | None = None,
) -> ClaimEvent:
    return ClaimEvent(
        event_id=event_id,
        event_type=event_type,
        occurred_at_ms=ms(incident + timedelta(days=5)) if at is None else at,
        branch_code="B01",
        claim_id=claim,
        worker_key=worker,
        nik_region="7271",
        agreement_id=agreement,
        programme=programme,
        incident_date=incident,
        amount_claimed=claimed,
        amount_paid=paid,
        lineage=LINEAGE,
    )


_BASE_FIGURES = AgreementFigures(
    agreement_id="PKS-A",
    as_of=date(2025, 6, 20),
    in_period=True,
    quota=100,
    enrolled=100,
    pending=0,
    active=90,
    at_risk=0,
    lapsed=10,
    terminated=0,
    ended=0,
    utilisation=0.9,
    planned=90,
    contributions_due_rupiah=0,
    contributions_paid_rupiah=0,
    arrears_rupiah=0,
    budget_rupiah=1_000_000,
    committed_rupiah=500_000,
    projected_overrun_rupiah=0,
    claims=(),
    target_population=None,
    coverage_ratio=None,
    region_mismatches=0,
    branch_report_as_of=None,
    branch_reported_active=None,
    branch_ledger_active=None,
    branch_gap=None,
    branch_reported_paid_rupiah=None,
    branch_paid_gap_rupiah=None,
)


def figures(**changes: Any) -> AgreementFigures:
    """Agreement figures with test defaults (PKS-A, quota 100, 90 active, plan 90, budget 1M)."""
    return replace(_BASE_FIGURES, **changes)
