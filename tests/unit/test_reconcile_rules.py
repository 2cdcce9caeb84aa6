"""Rules over figures, workers and streams, at and around each threshold."""

from __future__ import annotations

from datetime import date

import pytest
from test_reconcile_builders import agreement, coverage, figures, months, ms

from recon.domain.config import DomainConfig
from reconcile.domain.rules import (
    below_plan,
    branch_silent,
    branch_totals_mismatch,
    budget_overrun,
    double_funding,
    orphan_events,
    over_quota,
    region_mismatch,
)
from reconcile.domain.rules_streams import OrphanBacklog
from reconcile.domain.rules_workers import CoverageWindow, funding_windows
from reconcile.domain.signals import Level, Rule, Severity, Signal, ThresholdPolicy, Thresholds

POLICY = ThresholdPolicy()
B, H, C = Level.BREACH, Level.HOLD, Level.CLEAR


def _only(signals: list[Signal]) -> Signal:
    assert len(signals) == 1
    return signals[0]


# --- over_quota: fires above quota, resolves below quota * 0.98, CRITICAL above quota * 1.10 -----


@pytest.mark.parametrize(
    ("active", "level", "severity"),
    [
        (97, C, Severity.WARNING),
        (98, H, Severity.WARNING),  # at the resolve line: not yet clear
        (100, H, Severity.WARNING),  # exactly at quota: not over
        (101, B, Severity.WARNING),  # one above
        (110, B, Severity.WARNING),
        (111, B, Severity.CRITICAL),
    ],
)
def test_over_quota(active: int, level: Level, severity: Severity) -> None:
    s = _only(over_quota([figures(quota=100, active=active)], POLICY))
    assert (s.level, s.severity, s.observed, s.expected) == (level, severity, active, 100)
    assert s.rule == Rule.OVER_QUOTA and s.subject == "agreement:PKS-A" and s.agreement_id == "PKS-A"
    assert "PKS-A" in s.message and f"{active:,} active" in s.message


def test_over_quota_large_quota_has_exact_lines() -> None:
    assert _only(over_quota([figures(quota=100_402, active=100_402)], POLICY)).level is H
    assert _only(over_quota([figures(quota=100_402, active=100_403)], POLICY)).level is B
    assert _only(over_quota([figures(quota=100_000, active=98_000)], POLICY)).level is H
    assert _only(over_quota([figures(quota=100_000, active=97_999)], POLICY)).level is C


def test_over_quota_per_agreement_tolerance() -> None:
    policy = POLICY.override("PKS-A", over_quota_tolerance=0.05)
    assert _only(over_quota([figures(quota=100, active=105)], policy)).level is H
    assert _only(over_quota([figures(quota=100, active=106)], policy)).level is B
    other = figures(agreement_id="PKS-B", quota=100, active=101)
    assert _only(over_quota([other], policy)).level is B  # defaults elsewhere


def test_over_quota_skips_an_agreement_without_quota() -> None:
    assert over_quota([figures(quota=0, active=5)], POLICY) == []


# --- below_plan: fires below plan * 0.90, resolves above plan * 0.92 ---------------------------


@pytest.mark.parametrize(("active", "level"), [(89, B), (90, H), (92, H), (93, C), (100, C)])
def test_below_plan(active: int, level: Level) -> None:
    assert _only(below_plan([figures(planned=100, active=active)], POLICY)).level is level


def test_below_plan_waits_for_the_ramp_and_the_period() -> None:
    assert _only(below_plan([figures(planned=0, active=0)], POLICY)).level is C
    assert _only(below_plan([figures(planned=100, active=0, in_period=False)], POLICY)).level is C


# --- budget_overrun: fires above budget, resolves below budget * 0.99 ---------------------------


@pytest.mark.parametrize(("committed", "level"), [(989_999, C), (990_000, H), (1_000_000, H), (1_000_001, B)])
def test_budget_overrun(committed: int, level: Level) -> None:
    s = _only(budget_overrun([figures(budget_rupiah=1_000_000, committed_rupiah=committed)], POLICY))
    assert (s.level, s.severity) == (level, Severity.WARNING)


def test_budget_overrun_is_critical_once_paid_exceeds_the_budget() -> None:
    f = figures(budget_rupiah=1_000_000, committed_rupiah=1_200_000, contributions_paid_rupiah=1_000_001)
    assert _only(budget_overrun([f], POLICY)).severity is Severity.CRITICAL
    f = figures(budget_rupiah=1_000_000, committed_rupiah=1_200_000, contributions_paid_rupiah=1_000_000)
    assert _only(budget_overrun([f], POLICY)).severity is Severity.WARNING


# --- region_mismatch: any worker fires, INFO up to 5 % of active, WARNING above ----------------


@pytest.mark.parametrize(
    ("count", "level", "severity"),
    [(0, C, Severity.INFO), (1, B, Severity.INFO), (5, B, Severity.INFO), (6, B, Severity.WARNING)],
)
def test_region_mismatch(count: int, level: Level, severity: Severity) -> None:
    s = _only(region_mismatch([figures(active=100, region_mismatches=count)], POLICY))
    assert (s.level, s.severity, s.observed) == (level, severity, count)
    assert "where it was issued" in s.message


def test_region_mismatch_minimum_holds_below_it() -> None:
    policy = ThresholdPolicy(Thresholds(region_mismatch_min_workers=10))
    assert _only(region_mismatch([figures(region_mismatches=9)], policy)).level is H
    assert _only(region_mismatch([figures(region_mismatches=10)], policy)).level is B


# --- branch_totals_mismatch: |gap| > max(10, 1 % of reported); clear at <= 80 % of that ---------


@pytest.mark.parametrize(
    ("ledger", "level"), [(1_008, C), (992, C), (1_009, H), (1_010, H), (1_011, B), (989, B)]
)
def test_branch_active_mismatch(ledger: int, level: Level) -> None:
    f = figures(
        branch_report_as_of=date(2025, 6, 19), branch_reported_active=1_000, branch_ledger_active=ledger
    )
    s = _only(branch_totals_mismatch([f], POLICY))
    assert (s.level, s.observed, s.expected, s.subject) == (level, ledger, 1_000, "agreement:PKS-A/active")


def test_branch_mismatch_relative_tolerance_for_large_reports() -> None:
    f = figures(branch_reported_active=100_000, branch_ledger_active=101_000)  # gap 1,000 = 1 %
    assert _only(branch_totals_mismatch([f], POLICY)).level is H
    f = figures(branch_reported_active=100_000, branch_ledger_active=101_001)
    assert _only(branch_totals_mismatch([f], POLICY)).level is B


def test_branch_paid_mismatch_and_no_report() -> None:
    f = figures(contributions_paid_rupiah=3_000_000, branch_reported_paid_rupiah=1_000_000)
    s = _only(branch_totals_mismatch([f], POLICY))
    assert (s.level, s.subject) == (B, "agreement:PKS-A/contributions")
    assert branch_totals_mismatch([figures()], POLICY) == []


def test_branch_mismatch_zero_tolerance_clears_at_zero_gap() -> None:
    policy = ThresholdPolicy(Thresholds(branch_active_abs_tolerance=0, branch_active_rel_tolerance=0))
    f = figures(branch_reported_active=5, branch_ledger_active=5)
    assert _only(branch_totals_mismatch([f], policy)).level is C
    f = figures(branch_reported_active=5, branch_ledger_active=6)
    assert _only(branch_totals_mismatch([f], policy)).level is B


# --- double_funding ---------------------------------------------------------------------------


def _w(agreement_id: str, start: date, end: date | None) -> CoverageWindow:
    return (agreement_id, start, end)


def test_double_funding_counts_workers_per_pair() -> None:
    windows = {
        "wk-1": [_w("PKS-72", date(2025, 1, 1), None), _w("PKS-7271", date(2025, 6, 1), None)],
        "wk-2": [_w("PKS-7271", date(2025, 1, 1), date(2025, 6, 30)), _w("PKS-72", date(2025, 6, 30), None)],
        "wk-3": [_w("PKS-72", date(2025, 1, 1), date(2025, 5, 31)), _w("PKS-7271", date(2025, 6, 1), None)],
        "wk-4": [_w("PKS-72", date(2025, 1, 1), None), _w("PKS-72", date(2025, 2, 1), None)],
    }
    known = {"PKS-72": agreement("PKS-72", region="72", funder="Pemprov Sulawesi Tengah")}
    s = _only(double_funding(windows, POLICY, known))
    assert (s.level, s.observed, s.subject, s.agreement_id) == (B, 2, "pair:PKS-72|PKS-7271", "PKS-72")
    assert "Pemprov Sulawesi Tengah" in s.message and "PKS-7271" in s.message
    assert not any(key in s.message for key in windows)


def test_double_funding_three_agreements_make_three_pairs() -> None:
    windows = {"wk-1": [_w(a, date(2025, 1, 1), None) for a in ("A", "B", "C")]}
    assert [s.subject for s in double_funding(windows, POLICY)] == ["pair:A|B", "pair:A|C", "pair:B|C"]


def test_funding_windows_keep_coverages_in_force() -> None:
    paid = months("2025-01", "2025-06")
    covs = [
        coverage(worker="w1", agreement="PKS-72", paid=paid),
        coverage(date(2025, 7, 1), worker="w1", agreement="PKS-7271"),  # pending: in force
        coverage(worker="w2", agreement="PKS-72", paid=paid),
        coverage(worker="w2", agreement="PKS-7271"),  # lapsed: not in force
        coverage(worker="w3", agreement="PKS-72", paid=paid),
    ]
    windows = funding_windows(covs, date(2025, 6, 20), DomainConfig())
    assert set(windows) == {"w1"}
    assert _only(double_funding(windows, POLICY)).observed == 1


# --- branch_silent ----------------------------------------------------------------------------

DAY_MS = 86_400_000


def test_branch_silent_at_and_past_the_threshold() -> None:
    known = {"PKS-A": agreement(branch="B01")}
    last = ms(date(2025, 6, 1))
    at = _only(branch_silent({"B01": last}, known, last + DAY_MS, POLICY))
    assert (at.level, at.subject, at.agreement_id, at.expected) == (C, "branch:B01", "PKS-A", 24.0)
    past = _only(branch_silent({"B01": last}, known, last + DAY_MS + 1, POLICY))
    assert past.level is B and "B01" in past.message


def test_branch_silent_only_during_an_active_period() -> None:
    known = {"PKS-A": agreement(branch="B01", end=date(2025, 6, 30))}
    assert branch_silent({}, known, ms(date(2025, 7, 2)), POLICY) == []


def test_branch_that_never_sent_counts_from_the_period_start() -> None:
    known = {"PKS-A": agreement(branch="B01", start=date(2025, 6, 1))}
    assert _only(branch_silent({}, known, ms(date(2025, 6, 1), 23), POLICY)).level is C
    assert _only(branch_silent({}, known, ms(date(2025, 6, 2), 1), POLICY)).level is B
    old = ms(date(2024, 1, 1))  # a last event before the period does not count against it
    assert _only(branch_silent({"B01": old}, known, ms(date(2025, 6, 1), 23), POLICY)).level is C


def test_branch_silent_uses_the_smallest_threshold_of_its_agreements() -> None:
    known = {"PKS-A": agreement("PKS-A"), "PKS-B": agreement("PKS-B")}
    policy = POLICY.override("PKS-B", branch_silence_ms=3_600_000)
    last = ms(date(2025, 6, 1))
    s = _only(branch_silent({"B01": last}, known, last + 3_600_001, policy))
    assert (s.level, s.agreement_id) == (B, None)
    assert "PKS-A, PKS-B" in s.message


# --- orphan_events ----------------------------------------------------------------------------


def test_orphan_events_grace() -> None:
    first = ms(date(2025, 6, 1))
    grace = Thresholds().orphan_grace_ms
    waiting = {"PKS-X": OrphanBacklog(count=42, first_seen_ms=first)}
    assert _only(orphan_events(waiting, first + grace, POLICY)).level is H
    s = _only(orphan_events(waiting, first + grace + 1, POLICY))
    assert (s.level, s.observed, s.agreement_id) == (B, 42, "PKS-X")
    assert "42 event(s)" in s.message
    assert orphan_events({"PKS-X": OrphanBacklog(0, first)}, first + grace + 1, POLICY) == []


# --- thresholds -------------------------------------------------------------------------------


def test_thresholds_refuse_negative_values() -> None:
    with pytest.raises(ValueError, match="over_quota_tolerance"):
        Thresholds(over_quota_tolerance=-0.1)
    with pytest.raises(ValueError, match="over_quota_critical"):
        Thresholds(over_quota_tolerance=0.2, over_quota_critical=0.1)
