"""Validated events as plain, immutable values.

A decoded Avro record becomes one of these only after validation (``recon.domain.validation``).
They never hold a raw NIK: the worker is known by ``worker_key``, a keyed hash of the NIK, and
``nik_region``, the NIK's 4-digit Kemendagri region of issue (not personal on its own), which the
region-mismatch rule needs. So logging or storing one of these cannot leak personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import NamedTuple


class EnrolmentType(StrEnum):
    ENROLLED = "ENROLLED"
    CONTRIBUTION_PAID = "CONTRIBUTION_PAID"
    TERMINATED = "TERMINATED"


class ClaimType(StrEnum):
    FILED = "FILED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    PAID = "PAID"


class Programme(StrEnum):
    JKK = "JKK"  # work-accident insurance
    JKM = "JKM"  # death benefit


class FunderLevel(StrEnum):
    PROVINCE = "PROVINCE"
    REGENCY = "REGENCY"
    CITY = "CITY"


class BudgetSource(StrEnum):
    APBD = "APBD"
    APBD_P = "APBD_P"


@dataclass(frozen=True, slots=True)
class Lineage:
    """Where a stored row came from: the Kafka coordinates and the writer schema."""

    topic: str
    partition: int
    offset: int
    fingerprint: str  # CRC-64-AVRO of the writer schema, 16 hex digits
    schema_version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrolmentEvent:
    event_id: str
    event_type: EnrolmentType
    occurred_at_ms: int
    branch_code: str
    agreement_id: str
    worker_key: str
    nik_region: str
    programmes: tuple[Programme, ...]
    declared_income: int
    coverage_start: date
    coverage_end: date | None
    paid_months: tuple[str, ...]  # "YYYY-MM", ascending, no repeats
    amount: int
    termination_reason: str | None
    source_system: str | None
    lineage: Lineage


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimEvent:
    event_id: str
    event_type: ClaimType
    occurred_at_ms: int
    branch_code: str
    claim_id: str
    worker_key: str
    nik_region: str
    agreement_id: str | None
    programme: Programme
    incident_date: date
    amount_claimed: int
    amount_paid: int | None
    lineage: Lineage


@dataclass(frozen=True, slots=True)
class RampStep:
    month: str  # "YYYY-MM"
    target_workers: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Agreement:
    agreement_id: str
    version: int
    funder_name: str
    funder_level: FunderLevel
    region_code: str
    branch_code: str
    budget_source: BudgetSource
    programmes: tuple[Programme, ...]
    quota_workers: int
    budget_rupiah: int
    monthly_premium_rupiah: int
    period_start: date
    period_end: date
    ramp: tuple[RampStep, ...]
    target_population: int | None
    lineage: Lineage | None  # None when loaded from a file by `recon agreements load`


@dataclass(frozen=True, slots=True, kw_only=True)
class BranchTotals:
    event_id: str
    occurred_at_ms: int
    branch_code: str
    agreement_id: str
    as_of: date
    active_workers: int
    contributions_paid_rupiah: int
    lineage: Lineage


DomainEvent = EnrolmentEvent | ClaimEvent | Agreement | BranchTotals


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message was refused: a stable machine-readable code and a sentence for people.

    The sentence names fields and rules, never a field's value (it may be personal data).
    """

    code: str
    reason: str


class EnrolmentRow(NamedTuple):
    """A validated enrolment in the ledger's column order: what the ingest hot path builds straight
    from a decoded record (``recon.domain.validation.RowValidator``), instead of an EnrolmentEvent
    that would only be taken apart again. Holds no NIK (``worker_key``, ``nik_region``) and not the
    free-text ``termination_reason`` (validated, never stored: it can name a person).
    ``programmes`` and ``paid_months`` are comma-joined; the last five fields are the lineage."""

    event_id: str
    event_type: str
    occurred_at_ms: int
    branch_code: str
    agreement_id: str
    worker_key: str
    nik_region: str
    programmes: str
    declared_income: int
    coverage_start: date
    coverage_end: date | None
    paid_months: str
    amount: int
    source_system: str | None
    src_topic: str
    src_partition: int
    src_offset: int
    schema_fingerprint: str
    schema_version: int


class ClaimRow(NamedTuple):
    """A validated claim in the ledger's column order (see EnrolmentRow)."""

    event_id: str
    event_type: str
    occurred_at_ms: int
    branch_code: str
    claim_id: str
    worker_key: str
    nik_region: str
    agreement_id: str | None
    programme: str
    incident_date: date
    amount_claimed: int
    amount_paid: int | None
    src_topic: str
    src_partition: int
    src_offset: int
    schema_fingerprint: str
    schema_version: int


def enrolment_row(e: EnrolmentEvent) -> EnrolmentRow:
    """The row of an enrolment event (what RowValidator builds directly for the same record)."""
    lin = e.lineage
    return EnrolmentRow(
        e.event_id,
        e.event_type.value,
        e.occurred_at_ms,
        e.branch_code,
        e.agreement_id,
        e.worker_key,
        e.nik_region,
        ",".join(e.programmes),
        e.declared_income,
        e.coverage_start,
        e.coverage_end,
        ",".join(e.paid_months),
        e.amount,
        e.source_system,
        lin.topic,
        lin.partition,
        lin.offset,
        lin.fingerprint,
        lin.schema_version,
    )


def claim_row(e: ClaimEvent) -> ClaimRow:
    """The row of a claim event (what RowValidator builds directly for the same record)."""
    lin = e.lineage
    return ClaimRow(
        e.event_id,
        e.event_type.value,
        e.occurred_at_ms,
        e.branch_code,
        e.claim_id,
        e.worker_key,
        e.nik_region,
        e.agreement_id,
        e.programme.value,
        e.incident_date,
        e.amount_claimed,
        e.amount_paid,
        lin.topic,
        lin.partition,
        lin.offset,
        lin.fingerprint,
        lin.schema_version,
    )
