"""The regulatory numbers the domain rules use, as plain values (Permenaker 5/2021 and amendments)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainConfig:
    """Limits and amounts the rules use; built from Settings (the premium is per agreement)."""

    contribution_due_day: int = 15
    lapse_after_unpaid_months: int = 3
    max_months_per_payment: int = 12
    jkm_benefit_rupiah: int = 42_000_000
    jkk_claim_expiry_years: int = 5
    max_clock_skew_hours: int = 24
