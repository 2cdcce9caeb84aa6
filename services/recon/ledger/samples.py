"""Plausible, valid-looking events for the ledger's tests and benchmark (not imported by the service).

The scenario is the Palu one from the brief: Pemkot Palu (7271) funding JKK+JKM for pekerja rentan
at the usual BPU package of Rp 16,800 a month. Worker keys are made-up hex strings, not NIK hashes.
"""

from __future__ import annotations

from datetime import date

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
from recon.ledger._store import OutboxMessage

FINGERPRINT = "0f1e2d3c4b5a6978"
AGREEMENT_ID = "PKS-7271-2025-001"
BRANCH = "PALU"
_BASE_MS = 1_735_693_200_000  # 2025-01-01 08:00 WITA


def lineage(topic: str, offset: int, partition: int = 0, schema_version: int = 1) -> Lineage:
    return Lineage(topic, partition, offset, FINGERPRINT, schema_version)


def worker_key(n: int) -> str:
    return f"k1:{n:064x}"


def enrolment(n: int, *, partition: int = 0, agreement_id: str = AGREEMENT_ID) -> EnrolmentEvent:
    """The n-th enrolment event: ids ``enr-<n>``, at offset n of ``enrolments``."""
    return EnrolmentEvent(
        event_id=f"enr-{n}",
        event_type=EnrolmentType.CONTRIBUTION_PAID if n % 3 else EnrolmentType.ENROLLED,
        occurred_at_ms=_BASE_MS + n * 1000,
        branch_code=BRANCH,
        agreement_id=agreement_id,
        worker_key=worker_key(n),
        nik_region="7271",
        programmes=(Programme.JKK, Programme.JKM),
        declared_income=1_000_000,
        coverage_start=date(2025, 1, 1),
        coverage_end=None if n % 2 else date(2025, 12, 31),
        paid_months=("2025-01", "2025-02") if n % 3 else (),
        amount=33_600 if n % 3 else 0,
        termination_reason=None,
        source_system="smile" if n % 5 else None,
        lineage=lineage("enrolments", n, partition),
    )


def claim(n: int, *, partition: int = 0) -> ClaimEvent:
    """The n-th claim event: ids ``clm-<n>``, at offset n of ``claims``."""
    return ClaimEvent(
        event_id=f"clm-{n}",
        event_type=ClaimType.PAID if n % 2 else ClaimType.FILED,
        occurred_at_ms=_BASE_MS + n * 1000,
        branch_code=BRANCH,
        claim_id=f"CLM-{n // 2}",
        worker_key=worker_key(n),
        nik_region="7271",
        agreement_id=AGREEMENT_ID if n % 4 else None,
        programme=Programme.JKM if n % 2 else Programme.JKK,
        incident_date=date(2025, 3, 14),
        amount_claimed=42_000_000,
        amount_paid=42_000_000 if n % 2 else None,
        lineage=lineage("claims", n, partition),
    )


def branch_totals(n: int) -> BranchTotals:
    return BranchTotals(
        event_id=f"bt-{n}",
        occurred_at_ms=_BASE_MS + n * 86_400_000,
        branch_code=BRANCH,
        agreement_id=AGREEMENT_ID,
        as_of=date(2025, 1, 1 + n % 28),
        active_workers=45_778,
        contributions_paid_rupiah=45_778 * 16_800,
        lineage=lineage("branch-totals", n),
    )


def agreement(version: int = 1, *, agreement_id: str = AGREEMENT_ID, from_file: bool = False) -> Agreement:
    """Pemkot Palu's PKS; ``quota_workers`` grows with ``version`` so versions are told apart."""
    return Agreement(
        agreement_id=agreement_id,
        version=version,
        funder_name="Pemerintah Kota Palu",
        funder_level=FunderLevel.CITY,
        region_code="7271",
        branch_code=BRANCH,
        budget_source=BudgetSource.APBD,
        programmes=(Programme.JKK, Programme.JKM),
        quota_workers=45_000 + version,
        budget_rupiah=(45_000 + version) * 16_800 * 12,
        monthly_premium_rupiah=16_800,
        period_start=date(2025, 1, 1),
        period_end=date(2025, 12, 31),
        ramp=(RampStep("2025-01", 40_000), RampStep("2025-06", 45_000)),
        target_population=None if from_file else 100_402,
        lineage=None if from_file else lineage("agreements", version),
    )


def dead_letter(source_offset: int, *, source_topic: str = "enrolments", partition: int = 0) -> OutboxMessage:
    """A dead letter for the record at (source_topic, partition, source_offset)."""
    return OutboxMessage(
        kind="dead_letter",
        topic="dead-letters",
        key=b"\x00raw-key",
        value=b"\xc3\x01garbage",
        headers=(
            ("recon.source.topic", source_topic.encode()),
            ("recon.source.offset", str(source_offset).encode()),
            ("recon.error.kind", b"undecodable"),
            ("recon.raw", b"\xff\xfe"),
        ),
        source=(source_topic, partition, source_offset),
    )


def alert(n: int) -> OutboxMessage:
    return OutboxMessage(
        kind="alert",
        topic="coverage-alerts",
        key=f"fp-{n}".encode(),
        value=b"avro-bytes",
        headers=(),
        source=None,
    )
