"""Builders of valid decoded records for every subject, for tests anywhere in the suite.

Each builder returns a plain dict shaped like our Avro decoder's output (enum symbols as str, dates
as ``datetime.date``, timestamps as int milliseconds, null as None) that passes domain validation
with ``VALIDATION_NOW_MS`` as the clock; keyword overrides replace fields as they are. The demo
scenario is Pemkot Palu (7271) under agreement PKS-7271-2025.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from typing import Any

from recon.domain.events import Lineage

AGREEMENT_ID = "PKS-7271-2025"
BRANCH_CODE = "PALU"
NIK_KEY = b"test-only-nik-hashing-key-32byte"
OCCURRED_AT_MS = int(datetime(2025, 6, 2, 3, 0, tzinfo=UTC).timestamp() * 1000)
VALIDATION_NOW_MS = int(datetime(2025, 6, 3, 0, 0, tzinfo=UTC).timestamp() * 1000)

_ids = itertools.count(1)


def next_id(prefix: str) -> str:
    """A fresh id, unique within the test run: 'enrolment-000001', ..."""
    return f"{prefix}-{next(_ids):06d}"


def valid_nik(
    region4: str = "7271",
    female: bool = False,
    serial: int = 1,
    *,
    district: str = "01",
    birth: date = date(1990, 6, 15),
) -> str:
    """A NIK that passes validation: region, district, DDMMYY birth date (+40 for women), serial."""
    day = birth.day + (40 if female else 0)
    return f"{region4}{district}{day:02d}{birth.month:02d}{birth.year % 100:02d}{serial:04d}"


def lineage(
    topic: str = "enrolments", partition: int = 0, offset: int = 0, schema_version: int = 1
) -> Lineage:
    """Kafka coordinates for a validated event; the fingerprint is a placeholder."""
    return Lineage(topic, partition, offset, fingerprint="00" * 8, schema_version=schema_version)


def enrolment_record(**overrides: Any) -> dict[str, Any]:
    """An ENROLLED event for a Palu worker under the demo agreement."""
    record: dict[str, Any] = {
        "event_id": next_id("enrolment"),
        "event_type": "ENROLLED",
        "occurred_at": OCCURRED_AT_MS,
        "branch_code": BRANCH_CODE,
        "agreement_id": AGREEMENT_ID,
        "nik": valid_nik(),
        "programmes": ["JKK", "JKM"],
        "declared_income": 1_000_000,
        "coverage_start": date(2025, 6, 1),
        "coverage_end": None,
        "paid_months": [],
        "amount": 0,
        "termination_reason": None,
        "source_system": None,
    }
    record.update(overrides)
    return record


def contribution_record(months: tuple[str, ...] = ("2025-06",), **overrides: Any) -> dict[str, Any]:
    """A CONTRIBUTION_PAID event paying Rp 16,800 for each month given."""
    return enrolment_record(
        **{
            "event_type": "CONTRIBUTION_PAID",
            "paid_months": list(months),
            "amount": 16_800 * len(months),
            **overrides,
        }
    )


def claim_record(**overrides: Any) -> dict[str, Any]:
    """A FILED JKK claim for a Palu worker under the demo agreement."""
    record: dict[str, Any] = {
        "event_id": next_id("claim"),
        "event_type": "FILED",
        "occurred_at": OCCURRED_AT_MS,
        "branch_code": BRANCH_CODE,
        "claim_id": "KLM-PALU-0001",
        "nik": valid_nik(),
        "agreement_id": AGREEMENT_ID,
        "programme": "JKK",
        "incident_date": date(2025, 5, 20),
        "amount_claimed": 5_000_000,
        "amount_paid": None,
    }
    record.update(overrides)
    return record


def agreement_record(**overrides: Any) -> dict[str, Any]:
    """Pemkot Palu's 2025 agreement: 45,778 workers, JKK+JKM at Rp 16,800 a month, a three-step ramp."""
    record: dict[str, Any] = {
        "agreement_id": AGREEMENT_ID,
        "version": 1,
        "funder_name": "Pemkot Palu",
        "funder_level": "CITY",
        "region_code": "7271",
        "branch_code": BRANCH_CODE,
        "budget_source": "APBD",
        "programmes": ["JKK", "JKM"],
        "quota_workers": 45_778,
        "budget_rupiah": 45_778 * 16_800 * 12,
        "monthly_premium_rupiah": 16_800,
        "period_start": date(2025, 1, 1),
        "period_end": date(2025, 12, 31),
        "ramp": [
            {"month": "2025-03", "target_workers": 20_000},
            {"month": "2025-06", "target_workers": 40_000},
            {"month": "2025-09", "target_workers": 45_778},
        ],
        "target_population": None,
    }
    record.update(overrides)
    return record


def branch_totals_record(**overrides: Any) -> dict[str, Any]:
    """What the Palu branch reports for the demo agreement at the start of June 2025."""
    record: dict[str, Any] = {
        "event_id": next_id("branch-totals"),
        "occurred_at": OCCURRED_AT_MS,
        "branch_code": BRANCH_CODE,
        "agreement_id": AGREEMENT_ID,
        "as_of": date(2025, 6, 1),
        "active_workers": 40_000,
        "contributions_paid_rupiah": 40_000 * 16_800,
    }
    record.update(overrides)
    return record
