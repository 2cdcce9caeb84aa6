"""Rules over one agreement's figures: quota, ramp plan, budget, NIK regions, branch totals.

Each returns one Signal per agreement it applies to, at every evaluation (CLEAR included), so a
resolution carries the value that cleared it. Thresholds come from the policy, per agreement.
"""

from __future__ import annotations

from collections.abc import Iterable

from reconcile.domain.figures import AgreementFigures
from reconcile.domain.signals import (
    Level,
    Rule,
    Severity,
    Signal,
    ThresholdPolicy,
    agreement_subject,
    band_above,
    band_below,
    count_level,
    line,
)


def over_quota(figures: Iterable[AgreementFigures], policy: ThresholdPolicy) -> list[Signal]:
    """Active workers above the quota: fires above ``quota * (1 + tolerance)``, resolves below
    ``quota * (1 + tolerance - hysteresis)``; CRITICAL above ``quota * (1 + critical)``."""
    signals = []
    for f in figures:
        if f.quota <= 0:
            continue
        t = policy.for_agreement(f.agreement_id)
        fire = f.quota * (1 + t.over_quota_tolerance)
        resolve = f.quota * (1 + t.over_quota_tolerance - t.over_quota_hysteresis)
        critical = f.active > line(f.quota * (1 + t.over_quota_critical))
        message = (
            f"Agreement {f.agreement_id}: {f.active:,} active workers against a quota of {f.quota:,} "
            f"({f.active / f.quota:.1%}) as of {f.as_of}; fires above {fire:,.0f}, resolves below "
            f"{resolve:,.0f}."
        )
        signals.append(
            Signal(
                rule=Rule.OVER_QUOTA,
                subject=agreement_subject(f.agreement_id),
                level=band_above(f.active, fire, resolve),
                severity=Severity.CRITICAL if critical else Severity.WARNING,
                observed=f.active,
                expected=f.quota,
                message=message,
                agreement_id=f.agreement_id,
            )
        )
    return signals


def below_plan(figures: Iterable[AgreementFigures], policy: ThresholdPolicy) -> list[Signal]:
    """Active workers behind the ramp plan, inside the period once the plan is above zero: fires
    below ``planned * (1 - tolerance)``, resolves above ``planned * (1 - tolerance + hysteresis)``."""
    signals = []
    for f in figures:
        t = policy.for_agreement(f.agreement_id)
        applies = f.in_period and f.planned > 0
        fire = f.planned * (1 - t.below_plan_tolerance)
        resolve = f.planned * (1 - t.below_plan_tolerance + t.below_plan_hysteresis)
        message = (
            f"Agreement {f.agreement_id}: {f.active:,} active workers against {f.planned:,} planned "
            f"for {f.as_of:%Y-%m}; fires below {fire:,.0f}, resolves above {resolve:,.0f}."
            if applies
            else f"Agreement {f.agreement_id}: no ramp target applies on {f.as_of}."
        )
        signals.append(
            Signal(
                rule=Rule.BELOW_PLAN,
                subject=agreement_subject(f.agreement_id),
                level=band_below(f.active, fire, resolve) if applies else Level.CLEAR,
                severity=Severity.WARNING,
                observed=f.active,
                expected=f.planned,
                message=message,
                agreement_id=f.agreement_id,
            )
        )
    return signals


def budget_overrun(figures: Iterable[AgreementFigures], policy: ThresholdPolicy) -> list[Signal]:
    """Budget committed to the period's end above the budget: fires above ``budget * (1 +
    tolerance)``, resolves below ``budget * (1 + tolerance - hysteresis)``. WARNING while it is a
    projection, CRITICAL once contributions paid alone exceed the budget."""
    signals = []
    for f in figures:
        if f.budget_rupiah <= 0:
            continue
        t = policy.for_agreement(f.agreement_id)
        fire = f.budget_rupiah * (1 + t.budget_tolerance)
        resolve = f.budget_rupiah * (1 + t.budget_tolerance - t.budget_hysteresis)
        spent = f.contributions_paid_rupiah > f.budget_rupiah
        message = (
            f"Agreement {f.agreement_id}: Rp {f.committed_rupiah:,} committed to the period's end "
            f"(Rp {f.contributions_paid_rupiah:,} paid) against a budget of Rp {f.budget_rupiah:,}; "
            f"projected overrun Rp {f.projected_overrun_rupiah:,}."
        )
        signals.append(
            Signal(
                rule=Rule.BUDGET_OVERRUN,
                subject=agreement_subject(f.agreement_id),
                level=band_above(f.committed_rupiah, fire, resolve),
                severity=Severity.CRITICAL if spent else Severity.WARNING,
                observed=f.committed_rupiah,
                expected=f.budget_rupiah,
                message=message,
                agreement_id=f.agreement_id,
            )
        )
    return signals


def region_mismatch(figures: Iterable[AgreementFigures], policy: ThresholdPolicy) -> list[Signal]:
    """Active workers whose NIK was issued outside the funder's region. A NIK records where it was
    issued, not where the worker lives, so this is INFO, and WARNING only above a share of the
    active workers (``region_mismatch_warning_ratio``)."""
    signals = []
    for f in figures:
        t = policy.for_agreement(f.agreement_id)
        share = f.region_mismatches / f.active if f.active else 0.0
        message = (
            f"Agreement {f.agreement_id}: {f.region_mismatches:,} of {f.active:,} active workers "
            f"({share:.1%}) hold a NIK issued outside the funder's region (the NIK records where it "
            "was issued, not where the worker lives)."
        )
        signals.append(
            Signal(
                rule=Rule.REGION_MISMATCH,
                subject=agreement_subject(f.agreement_id),
                level=count_level(f.region_mismatches, t.region_mismatch_min_workers),
                severity=Severity.WARNING if share > t.region_mismatch_warning_ratio else Severity.INFO,
                observed=f.region_mismatches,
                expected=0,
                message=message,
                agreement_id=f.agreement_id,
            )
        )
    return signals


def branch_totals_mismatch(figures: Iterable[AgreementFigures], policy: ThresholdPolicy) -> list[Signal]:
    """The branch's last reported totals against the ledger, for agreements with a report: active
    workers (at the report's date) and contributions paid. Fires when ``|ledger - reported| >
    max(absolute, relative * reported)``; resolves once it is at most that * (1 - hysteresis)."""
    signals = []
    for f in figures:
        t = policy.for_agreement(f.agreement_id)
        if f.branch_reported_active is not None and f.branch_ledger_active is not None:
            tolerance = max(
                t.branch_active_abs_tolerance, t.branch_active_rel_tolerance * f.branch_reported_active
            )
            signals.append(
                _mismatch(
                    f,
                    "active workers",
                    f.branch_ledger_active,
                    f.branch_reported_active,
                    tolerance,
                    t.branch_totals_hysteresis,
                )
            )
        if f.branch_reported_paid_rupiah is not None:
            reported = f.branch_reported_paid_rupiah
            tolerance = max(t.branch_paid_abs_tolerance_rupiah, t.branch_paid_rel_tolerance * reported)
            signals.append(
                _mismatch(
                    f,
                    "contributions paid (Rp)",
                    f.contributions_paid_rupiah,
                    reported,
                    tolerance,
                    t.branch_totals_hysteresis,
                )
            )
    return signals


def _mismatch(
    f: AgreementFigures, what: str, ledger: int, reported: int, tolerance: float, hysteresis: float
) -> Signal:
    gap = abs(ledger - reported)
    if gap > line(tolerance):
        level = Level.BREACH
    else:
        level = Level.CLEAR if gap <= line(tolerance * (1 - hysteresis)) else Level.HOLD
    message = (
        f"Agreement {f.agreement_id}: {what} per the ledger {ledger:,}, per branch report as of "
        f"{f.branch_report_as_of} {reported:,} (gap {ledger - reported:+,}, tolerance {tolerance:,.0f})."
    )
    return Signal(
        rule=Rule.BRANCH_TOTALS_MISMATCH,
        subject=f"{agreement_subject(f.agreement_id)}/{what.split()[0]}",
        level=level,
        severity=Severity.WARNING,
        observed=ledger,
        expected=reported,
        message=message,
        agreement_id=f.agreement_id,
    )
