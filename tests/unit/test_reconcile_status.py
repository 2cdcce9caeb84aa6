"""Worker status at an as-of date: the due day, the lapse count, the coverage window."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from test_reconcile_builders import coverage

from recon.domain.config import DomainConfig
from reconcile.domain.coverage import WorkerCoverage
from reconcile.domain.dates import (
    add_years,
    last_due_month,
    local_date,
    local_midnight_ms,
    month_index,
    month_label,
    parse_month,
)
from reconcile.domain.status import CoverageStatus, StatusAt, row_status, status_at, to_row

CONFIG = DomainConfig()
S = CoverageStatus


def _status(c: WorkerCoverage, day: date, config: DomainConfig = CONFIG) -> CoverageStatus:
    return status_at(c, day, config).status


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2025, 1, 14), StatusAt(S.ACTIVE, 0, 0)),  # January not due before the 15th
        (date(2025, 1, 15), StatusAt(S.AT_RISK, 1, 1)),  # due on the 15th, unpaid
        (date(2025, 2, 14), StatusAt(S.AT_RISK, 1, 1)),
        (date(2025, 2, 15), StatusAt(S.AT_RISK, 2, 2)),  # 2 unpaid: still active
        (date(2025, 3, 14), StatusAt(S.AT_RISK, 2, 2)),
        (date(2025, 3, 15), StatusAt(S.LAPSED, 3, 3)),  # 3 unpaid: lapsed
    ],
)
def test_due_day_and_lapse_boundaries_without_payment(day: date, expected: StatusAt) -> None:
    assert status_at(coverage(date(2025, 1, 1)), day, CONFIG) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2025, 2, 14), S.ACTIVE),  # January paid, February not yet due
        (date(2025, 2, 15), S.AT_RISK),  # February due and unpaid: 1
        (date(2025, 4, 14), S.AT_RISK),  # February, March unpaid: 2
        (date(2025, 4, 15), S.LAPSED),  # February, March, April: 3
    ],
)
def test_trailing_unpaid_after_a_payment(day: date, expected: CoverageStatus) -> None:
    assert _status(coverage(paid=["2025-01"]), day) is expected


def test_only_the_trailing_run_counts() -> None:
    c = coverage(paid=["2025-01", "2025-05", "2025-06"])  # February to April unpaid, then paid
    assert _status(c, date(2025, 6, 20)) is S.ACTIVE
    assert status_at(c, date(2025, 6, 20), CONFIG).months_due == 6


def test_paying_the_arrears_reactivates() -> None:
    lapsed = coverage(paid=["2025-01"])
    assert _status(lapsed, date(2025, 4, 20)) is S.LAPSED
    arrears = {parse_month(m) for m in ("2025-02", "2025-03", "2025-04")}
    caught_up = replace(lapsed, paid_months=lapsed.paid_months | arrears)
    assert _status(caught_up, date(2025, 4, 20)) is S.ACTIVE


def test_paid_ahead_is_active() -> None:
    assert _status(coverage(paid=[f"2025-{m:02d}" for m in range(1, 13)]), date(2025, 12, 31)) is S.ACTIVE


def test_pending_before_start_and_active_on_the_start_day() -> None:
    c = coverage(date(2025, 3, 20), paid=["2025-03"])
    assert _status(c, date(2025, 3, 19)) is S.PENDING
    assert _status(c, date(2025, 3, 20)) is S.ACTIVE


def test_start_after_the_due_day_is_due_from_the_start() -> None:
    c = coverage(date(2025, 3, 20))  # March's due day passed before the start
    assert status_at(c, date(2025, 3, 20), CONFIG) == StatusAt(S.AT_RISK, 1, 1)


def test_coverage_end_is_the_last_covered_day() -> None:
    c = coverage(paid=months_2025(), end=date(2025, 6, 30))
    assert _status(c, date(2025, 6, 30)) is S.ACTIVE
    assert _status(c, date(2025, 7, 1)) is S.ENDED


def test_terminated_on_is_the_first_day_without_cover() -> None:
    c = coverage(paid=months_2025(), terminated_on=date(2025, 5, 10))
    assert _status(c, date(2025, 5, 9)) is S.ACTIVE
    assert _status(c, date(2025, 5, 10)) is S.TERMINATED


def test_termination_before_end_is_terminated_not_ended() -> None:
    c = coverage(paid=months_2025(), end=date(2025, 6, 30), terminated_on=date(2025, 6, 1))
    assert _status(c, date(2025, 8, 1)) is S.TERMINATED
    assert c.last_covered_day == date(2025, 5, 31)


def test_due_months_stop_at_the_last_covered_month() -> None:
    c = coverage(end=date(2025, 3, 31))
    assert status_at(c, date(2025, 9, 30), CONFIG) == StatusAt(S.ENDED, 3, 3)


def test_unenrolled() -> None:
    assert status_at(coverage(enrolled=False), date(2025, 6, 1), CONFIG) == StatusAt(S.UNENROLLED, 0, 0)
    assert to_row(coverage(enrolled=False)) is None


def test_configurable_due_day_and_lapse() -> None:
    config = DomainConfig(contribution_due_day=1, lapse_after_unpaid_months=2)
    c = coverage(paid=["2025-01"])
    assert _status(c, date(2025, 2, 1), config) is S.AT_RISK
    assert _status(c, date(2025, 3, 1), config) is S.LAPSED


def test_row_ignores_months_paid_before_the_start() -> None:
    row = to_row(coverage(date(2025, 3, 1), paid=["2025-01", "2025-03", "2025-05"]))
    assert row is not None and row[5] == 0b101


def test_row_status_matches_status_at() -> None:
    c = coverage(paid=["2025-01", "2025-02"], end=date(2025, 10, 31))
    row = to_row(c)
    assert row is not None
    for day in (date(2025, 1, 1), date(2025, 3, 15), date(2025, 4, 15), date(2025, 11, 1)):
        assert row_status(row, day, CONFIG) == status_at(c, day, CONFIG)


def test_calendar_helpers() -> None:
    assert month_index(date(2025, 1, 31)) == 2025 * 12
    assert month_label(parse_month("2025-12")) == "2025-12"
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_month("2025-13")
    assert last_due_month(date(2025, 3, 14), 15) == month_index(date(2025, 2, 1))
    assert last_due_month(date(2025, 3, 15), 15) == month_index(date(2025, 3, 1))
    assert add_years(date(2024, 2, 29), 5) == date(2029, 2, 28)
    assert local_date(local_midnight_ms(date(2025, 5, 1))) == date(2025, 5, 1)
    assert local_date(local_midnight_ms(date(2025, 5, 1)) - 1) == date(2025, 4, 30)


def months_2025() -> list[str]:
    return [f"2025-{m:02d}" for m in range(1, 13)]
