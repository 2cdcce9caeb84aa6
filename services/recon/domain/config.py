"""The regulatory numbers the domain rules use, as plain values (Permenaker 5/2021 and amendments)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainConfig:
    """Rates and limits; built from Settings, defaults match the usual BPU package for pekerja rentan."""

    jkk_rate_percent: float = 1.0
    jkm_monthly_rupiah: int = 6_800
    default_declared_income_rupiah: int = 1_000_000
    contribution_due_day: int = 15
    lapse_after_unpaid_months: int = 3
    max_months_per_payment: int = 12
    jkm_benefit_rupiah: int = 42_000_000
    jkk_claim_expiry_years: int = 5
    max_clock_skew_hours: int = 24

    def monthly_premium(self, declared_income: int) -> int:
        """JKK (a percentage of declared income) plus JKM (a flat amount), in rupiah per month."""
        return round(declared_income * self.jkk_rate_percent / 100) + self.jkm_monthly_rupiah
