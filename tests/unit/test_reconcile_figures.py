"""Figures per agreement: counts, plan, money, claims, branch gap, region; and their roll-ups."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_reconcile_builders import agreement, branch_totals, claim_event, coverage, enrolment, months, ms

from recon.domain.config import DomainConfig
from recon.domain.events import Agreement, BranchTotals, ClaimType, EnrolmentEvent, EnrolmentType, Programme
from reconcile.domain.claims import ClaimState, fold_claims
from reconcile.domain.coverage import CoverageKey, WorkerCoverage, apply, fold
from reconcile.domain.dates import last_due_month, month_index
from reconcile.domain.figures import (
    AgreementFigures,
    ClaimFigure,
    active_count,
    compute_figures,
    planned_workers,
    rows_by_agreement,
)
from reconcile.domain.rollup import RollupBy, rollup
from reconcile.domain.status import CoverageStatus, status_at

CONFIG = DomainConfig()
PREMIUM = 16_800


def _one(
    covs: list[WorkerCoverage],
    as_of: date,
    a: Agreement | None = None,
    *,
    claims: Iterable[ClaimState] = (),
    branch_totals: Mapping[str, BranchTotals] | None = None,
) -> AgreementFigures:
    a = a or agreement()
    rows = rows_by_agreement(covs)
    figures = compute_figures(
        {a.agreement_id: a}, rows, as_of, CONFIG, claims=claims, branch_totals=branch_totals
    )
    return figures[a.agreement_id]


def test_counts_partition_the_enrolled_workers() -> None:
    covs = [
        coverage(worker="w1", paid=months("2025-01", "2025-06")),  # active
        coverage(worker="w2", paid=months("2025-01", "2025-05")),  # at risk (June unpaid)
        coverage(worker="w3", paid=months("2025-01", "2025-03")),  # lapsed (Apr-Jun)
        coverage(worker="w4", terminated_on=date(2025, 5, 1), paid=months("2025-01", "2025-04")),
        coverage(worker="w5", end=date(2025, 4, 30), paid=months("2025-01", "2025-04")),
        coverage(date(2025, 7, 1), worker="w6"),  # pending
        coverage(worker="w7", enrolled=False),  # not counted at all
    ]
    f = _one(covs, date(2025, 6, 20))
    assert (f.enrolled, f.active, f.at_risk, f.lapsed, f.terminated, f.ended, f.pending) == (
        6,
        2,
        1,
        1,
        1,
        1,
        1,
    )
    assert f.utilisation == pytest.approx(0.02)
    assert f.in_period


def test_quota_zero_and_no_workers() -> None:
    f = _one([], date(2025, 6, 20), agreement(quota=0, target=0))
    assert f.active == 0 and f.utilisation is None and f.coverage_ratio is None


@pytest.mark.parametrize(
    ("day", "planned"),
    [
        (date(2025, 2, 28), 0),  # before the first step
        (date(2025, 3, 1), 30),  # the step's month
        (date(2025, 5, 31), 30),
        (date(2025, 6, 1), 60),
        (date(2025, 12, 31), 100),
        (date(2026, 3, 1), 100),  # after the period: the last step
    ],
)
def test_planned_follows_the_ramp(day: date, planned: int) -> None:
    a = agreement(ramp=[("2025-03", 30), ("2025-06", 60), ("2025-09", 100)])
    assert planned_workers(a, day) == planned


def test_planned_without_ramp_is_the_quota_from_the_start() -> None:
    a = agreement(quota=100, start=date(2025, 5, 16))
    assert planned_workers(a, date(2025, 5, 15)) == 0
    assert planned_workers(a, date(2025, 5, 16)) == 100


def test_money_at_and_around_the_due_day() -> None:
    covs = [coverage(paid=months("2025-01", "2025-03"))]
    before = _one(covs, date(2025, 4, 14))
    assert (before.contributions_due_rupiah, before.arrears_rupiah) == (3 * PREMIUM, 0)
    on = _one(covs, date(2025, 4, 15))
    assert on.contributions_due_rupiah == 4 * PREMIUM
    assert on.contributions_paid_rupiah == 3 * PREMIUM
    assert on.arrears_rupiah == PREMIUM
    assert on.committed_rupiah == 12 * PREMIUM  # 3 paid + 9 unpaid months to December
    assert on.projected_overrun_rupiah == 0


def test_lapsed_dues_stop_at_the_month_that_lapsed_it() -> None:
    f = _one([coverage()], date(2025, 9, 20))  # nothing ever paid: lapsed on 15 March
    assert f.lapsed == 1
    assert f.contributions_due_rupiah == 3 * PREMIUM
    assert f.arrears_rupiah == 3 * PREMIUM
    assert f.committed_rupiah == 0


def test_money_is_clipped_to_the_period() -> None:
    c = coverage(date(2024, 11, 1), paid=months("2024-11", "2025-02"))
    f = _one([c], date(2025, 2, 20))
    assert f.contributions_due_rupiah == 2 * PREMIUM  # January and February 2025
    assert f.contributions_paid_rupiah == 2 * PREMIUM
    assert f.arrears_rupiah == 0


def test_paid_ahead_counts_as_paid_not_as_arrears() -> None:
    f = _one([coverage(paid=months("2025-01", "2025-12"))], date(2025, 2, 20))
    assert f.contributions_due_rupiah == 2 * PREMIUM
    assert f.contributions_paid_rupiah == 12 * PREMIUM
    assert f.arrears_rupiah == 0
    assert f.committed_rupiah == 12 * PREMIUM


def test_committed_counts_pending_workers_but_not_ended_ones() -> None:
    pending = coverage(date(2025, 7, 1), worker="w1", paid=["2025-07"])
    ended = coverage(worker="w2", terminated_on=date(2025, 3, 1), paid=months("2025-01", "2025-02"))
    f = _one([pending, ended], date(2025, 6, 20))
    assert f.contributions_paid_rupiah == 3 * PREMIUM
    assert f.committed_rupiah == (3 + 5) * PREMIUM  # pending: July paid + Aug-Dec to come
    assert f.contributions_due_rupiah == 2 * PREMIUM  # the terminated worker's January, February


def test_period_end_boundary() -> None:
    a = agreement(start=date(2025, 1, 1), end=date(2025, 6, 30))
    c = coverage(paid=months("2025-01", "2025-09"))  # paid beyond the period's end
    last = _one([c], date(2025, 6, 30), a)
    assert last.in_period and last.active == 1
    assert last.contributions_paid_rupiah == 6 * PREMIUM  # July-September are not this agreement's
    assert last.committed_rupiah == 6 * PREMIUM
    after = _one([c], date(2025, 7, 1), a)
    assert not after.in_period
    assert after.contributions_due_rupiah == 6 * PREMIUM  # dues stop at the period's end too


def test_projected_overrun() -> None:
    covs = [coverage(worker=f"w{i}", paid=["2025-01"]) for i in range(3)]
    f = _one(covs, date(2025, 1, 20), agreement(budget=30 * PREMIUM))
    assert f.committed_rupiah == 36 * PREMIUM
    assert f.projected_overrun_rupiah == 6 * PREMIUM


def test_claims_by_programme_and_outcome() -> None:
    claims = fold_claims(
        [
            claim_event("c1", claim="CL-1"),
            claim_event("c2", claim="CL-2", claimed=1_000),
            claim_event(
                "c3",
                ClaimType.PAID,
                claim="CL-3",
                programme=Programme.JKM,
                claimed=42_000_000,
                paid=42_000_000,
            ),
            claim_event("c4", claim="CL-4", agreement=None),
        ]
    ).values()
    f = _one([], date(2025, 6, 20), claims=claims)
    assert f.claims == (
        ClaimFigure(Programme.JKK, ClaimType.FILED, 2, 5_001_000, 0),
        ClaimFigure(Programme.JKM, ClaimType.PAID, 1, 42_000_000, 42_000_000),
    )


def test_coverage_against_the_target_population() -> None:
    covs = [coverage(worker=f"w{i}", paid=months("2025-01", "2025-06")) for i in range(4)]
    assert _one(covs, date(2025, 6, 20), agreement(target=10)).coverage_ratio == pytest.approx(0.4)
    assert _one(covs, date(2025, 6, 20)).coverage_ratio is None


def test_branch_gap_on_the_same_date_and_at_the_report_date() -> None:
    covs = [
        coverage(worker="w1", paid=months("2025-01", "2025-06")),
        coverage(worker="w2", paid=months("2025-01", "2025-06"), terminated_on=date(2025, 6, 10)),
    ]
    same = _one(
        covs, date(2025, 6, 20), branch_totals={"PKS-A": branch_totals("PKS-A", date(2025, 6, 20), 3)}
    )
    assert (same.branch_ledger_active, same.branch_gap) == (1, -2)
    earlier = _one(
        covs, date(2025, 6, 20), branch_totals={"PKS-A": branch_totals("PKS-A", date(2025, 6, 1), 2, 100)}
    )
    assert earlier.branch_report_as_of == date(2025, 6, 1)
    assert (earlier.branch_ledger_active, earlier.branch_gap) == (2, 0)  # both were active on 1 June
    assert earlier.branch_paid_gap_rupiah == 12 * PREMIUM - 100
    none = _one(covs, date(2025, 6, 20))
    assert (
        none.branch_gap is None
        and none.branch_reported_active is None
        and none.branch_paid_gap_rupiah is None
    )


@pytest.mark.parametrize(
    ("funder_region", "worker_regions", "mismatches"),
    [
        ("72", ["7271", "7206", "7371"], 1),  # a province: the first two digits
        ("7271", ["7271", "7206", "7371"], 2),  # a city: all four
    ],
)
def test_region_mismatches(funder_region: str, worker_regions: list[str], mismatches: int) -> None:
    covs = [
        coverage(worker=f"w{i}", region=r, paid=months("2025-01", "2025-06"))
        for i, r in enumerate(worker_regions)
    ]
    covs.append(coverage(worker="lapsed", region="1101"))  # not active: not counted
    assert _one(covs, date(2025, 6, 20), agreement(region=funder_region)).region_mismatches == mismatches


def test_rows_of_unknown_agreements_are_ignored() -> None:
    rows = rows_by_agreement([coverage(agreement="PKS-UNKNOWN")])
    assert compute_figures({"PKS-A": agreement()}, rows, date(2025, 6, 1), CONFIG)["PKS-A"].enrolled == 0


# --- properties: the hot loop against a plain reference, incremental against scratch -------------

_days = st.dates(min_value=date(2024, 6, 1), max_value=date(2026, 6, 30))
_month_labels = st.sampled_from(months("2024-06", "2026-06"))


@st.composite
def _coverages(draw: st.DrawFn) -> WorkerCoverage:
    start = draw(_days)
    return coverage(
        start,
        worker=draw(st.text("abcdef0123456789", min_size=8, max_size=8)),
        paid=draw(st.sets(_month_labels, max_size=14)),
        end=draw(st.none() | st.builds(lambda n: start + timedelta(days=n), st.integers(0, 500))),
        terminated_on=draw(st.none() | st.builds(lambda n: start + timedelta(days=n), st.integers(0, 500))),
        region=draw(st.sampled_from(["7271", "7206", "7371"])),
    )


def _reference(covs: list[WorkerCoverage], a: Agreement, as_of: date) -> dict[str, int]:
    """The figures' definitions written plainly, one worker and one month at a time."""
    p_lo, p_hi = month_index(a.period_start), month_index(a.period_end)
    lapse = CONFIG.lapse_after_unpaid_months
    out = {"active": 0, "at_risk": 0, "lapsed": 0, "pending": 0, "ended": 0, "terminated": 0}
    out |= {"due": 0, "paid": 0, "arrears": 0, "open": 0, "mismatched": 0}
    for c in covs:
        st_ = status_at(c, as_of, CONFIG)
        out[{"ACTIVE": "active", "AT_RISK": "active"}.get(st_.status, st_.status.lower())] += 1
        out["at_risk"] += st_.status is CoverageStatus.AT_RISK
        out["mismatched"] += st_.status.covered and not c.nik_region.startswith(a.region_code)
        start_m = month_index(c.coverage_start)
        last = c.last_covered_day
        last_m = month_index(last) if last else 10**6
        if st_.status is not CoverageStatus.PENDING:
            hi = min(last_due_month(as_of, CONFIG.contribution_due_day), last_m)
            hi -= max(0, st_.trailing_unpaid - lapse)
            for m in range(max(start_m, p_lo), min(hi, p_hi) + 1):
                out["due"] += 1
                out["arrears"] += m not in c.paid_months
        for m in range(max(start_m, p_lo), min(last_m, p_hi) + 1):
            out["paid"] += m in c.paid_months
            live = st_.status in (CoverageStatus.PENDING, CoverageStatus.ACTIVE, CoverageStatus.AT_RISK)
            out["open"] += live and m not in c.paid_months
    return out


@settings(max_examples=300, deadline=None)
@given(covs=st.lists(_coverages(), max_size=12), as_of=_days, region=st.sampled_from(["72", "7271"]))
def test_figures_equal_the_plain_definitions(covs: list[WorkerCoverage], as_of: date, region: str) -> None:
    a = agreement(region=region)
    f = _one(covs, as_of, a)
    ref = _reference(covs, a, as_of)
    assert (f.active, f.at_risk, f.lapsed, f.pending, f.ended, f.terminated) == (
        ref["active"],
        ref["at_risk"],
        ref["lapsed"],
        ref["pending"],
        ref["ended"],
        ref["terminated"],
    )
    assert f.region_mismatches == ref["mismatched"]
    assert f.contributions_due_rupiah == ref["due"] * PREMIUM
    assert f.arrears_rupiah == ref["arrears"] * PREMIUM
    assert f.contributions_paid_rupiah == ref["paid"] * PREMIUM
    assert f.committed_rupiah == (ref["paid"] + ref["open"]) * PREMIUM
    assert active_count(rows_by_agreement(covs).get("PKS-A", []), as_of, CONFIG) == f.active


@st.composite
def _events(draw: st.DrawFn) -> list[EnrolmentEvent]:
    kinds = [EnrolmentType.ENROLLED, EnrolmentType.CONTRIBUTION_PAID, EnrolmentType.TERMINATED]
    events = []
    for i in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(kinds))
        events.append(
            enrolment(
                f"ev-{i}",
                kind,
                at=ms(draw(_days)),
                worker=draw(st.sampled_from(["w1", "w2", "w3", "w4"])),
                agreement=draw(st.sampled_from(["PKS-A", "PKS-B"])),
                start=draw(_days),
                paid=draw(st.sets(_month_labels, min_size=1, max_size=4))
                if kind is EnrolmentType.CONTRIBUTION_PAID
                else (),
            )
        )
    return events


@settings(max_examples=200, deadline=None)
@given(events=_events(), as_of=_days, data=st.data())
def test_incremental_figures_equal_figures_from_scratch(
    events: list[EnrolmentEvent], as_of: date, data: st.DataObject
) -> None:
    known = {"PKS-A": agreement("PKS-A"), "PKS-B": agreement("PKS-B", region="72")}
    order = data.draw(st.permutations(events)) + data.draw(st.lists(st.sampled_from(events), max_size=4))
    states: dict[CoverageKey, WorkerCoverage] = {}
    for batch in (order[i : i + 3] for i in range(0, len(order), 3)):
        states.update(apply(states, batch))
    incremental = compute_figures(known, rows_by_agreement(states.values()), as_of, CONFIG)
    scratch = compute_figures(known, rows_by_agreement(fold(events).values()), as_of, CONFIG)
    assert incremental == scratch


# --- roll-ups -----------------------------------------------------------------------------------


def test_rollup_by_funder_region_province_and_branch() -> None:
    known = {
        "PKS-72": agreement(
            "PKS-72", region="72", funder="Pemprov Sulawesi Tengah", branch="B01", quota=10, target=100
        ),
        "PKS-7271": agreement("PKS-7271", region="7271", funder="Pemkot Palu", branch="B01", quota=5),
        "PKS-7206": agreement(
            "PKS-7206", region="7206", funder="Pemkab Morowali", branch="B02", quota=5, budget=1
        ),
    }
    covs = [
        coverage(worker=f"w{i}", agreement=aid, paid=months("2025-01", "2025-06"))
        for i, aid in enumerate(["PKS-72", "PKS-72", "PKS-7271", "PKS-7206"])
    ]
    figs = compute_figures(known, rows_by_agreement(covs), date(2025, 6, 20), CONFIG)
    province = rollup(figs.values(), known, RollupBy.PROVINCE)
    assert list(province) == ["72"]
    p = province["72"]
    assert (p.quota, p.active, p.agreement_ids) == (20, 4, ("PKS-72", "PKS-7206", "PKS-7271"))
    assert p.utilisation == pytest.approx(0.2)
    assert p.target_population == 100 and p.coverage_ratio == pytest.approx(0.02)
    assert p.projected_overrun_rupiah == figs["PKS-7206"].projected_overrun_rupiah > 0
    branch = rollup(figs.values(), known, "branch")
    assert {k: v.active for k, v in branch.items()} == {"B01": 3, "B02": 1}
    assert set(rollup(figs.values(), known, RollupBy.FUNDER)) == {
        "Pemprov Sulawesi Tengah",
        "Pemkot Palu",
        "Pemkab Morowali",
    }
    assert set(rollup(figs.values(), known, RollupBy.REGION)) == {"72", "7271", "7206"}
    assert branch["B01"].branch_gap is None and branch["B01"].target_population == 100
    assert rollup(figs.values(), {}, RollupBy.BRANCH) == {}
