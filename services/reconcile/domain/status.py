"""A worker's status at an as-of date, and the compact row the figures pass reads.

Month m is due on day ``contribution_due_day`` of m, for each m from the coverage-start month up to
the last covered month, once the coverage has started. Counting back from the latest due month,
the run of consecutive unpaid months decides the status: none, ACTIVE; 1 to
``lapse_after_unpaid_months - 1``, AT_RISK (still active); more, LAPSED (inactive). Paying the
missing months later brings the worker back, because the status is a function of the paid months.
Before its start a coverage is PENDING; after its last covered day it is TERMINATED (when a
termination ended it) or ENDED (when its coverage end passed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final

from recon.domain.config import DomainConfig
from reconcile.domain.coverage import WorkerCoverage
from reconcile.domain.dates import last_due_month, month_index

# (start ordinal, last covered ordinal, termination ordinal, start month, last covered month,
#  paid-month bit mask with bit i = start month + i, NIK region)
WorkerRow = tuple[int, int, int, int, int, int, str]

OPEN_ORDINAL: Final = date.max.toordinal()  # no end, no termination
OPEN_MONTH: Final = month_index(date.max)


class CoverageStatus(StrEnum):
    UNENROLLED = "UNENROLLED"  # payments or a termination seen, the ENROLLED event not yet
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    AT_RISK = "AT_RISK"
    LAPSED = "LAPSED"
    TERMINATED = "TERMINATED"
    ENDED = "ENDED"

    @property
    def covered(self) -> bool:
        """Active cover: ACTIVE or AT_RISK."""
        return self in (CoverageStatus.ACTIVE, CoverageStatus.AT_RISK)


@dataclass(frozen=True, slots=True)
class StatusAt:
    """A coverage's status at a date, with the due months and the trailing unpaid ones behind it."""

    status: CoverageStatus
    months_due: int
    trailing_unpaid: int


def to_row(coverage: WorkerCoverage) -> WorkerRow | None:
    """The figures pass's compact row for a coverage; None until the ENROLLED event arrived."""
    if not coverage.enrolled:
        return None
    start_m = month_index(coverage.coverage_start)
    last_day = coverage.last_covered_day
    mask = 0
    for m in coverage.paid_months:
        if m >= start_m:
            mask |= 1 << (m - start_m)
    return (
        coverage.coverage_start.toordinal(),
        OPEN_ORDINAL if last_day is None else last_day.toordinal(),
        OPEN_ORDINAL if coverage.terminated_on is None else coverage.terminated_on.toordinal(),
        start_m,
        OPEN_MONTH if last_day is None else month_index(last_day),
        mask,
        coverage.nik_region,
    )


def status_at(coverage: WorkerCoverage, as_of: date, config: DomainConfig) -> StatusAt:
    """The coverage's status at the end of ``as_of`` (see the module docstring)."""
    row = to_row(coverage)
    if row is None:
        return StatusAt(CoverageStatus.UNENROLLED, 0, 0)
    return row_status(row, as_of, config)


def row_status(row: WorkerRow, as_of: date, config: DomainConfig) -> StatusAt:
    """``status_at`` on a row; the figures pass inlines the same arithmetic."""
    start_ord, last_ord, term_ord, start_m, last_m, mask, _ = row
    as_ord = as_of.toordinal()
    if as_ord < start_ord:
        return StatusAt(CoverageStatus.PENDING, 0, 0)
    due_m = last_due_month(as_of, config.contribution_due_day)
    due, trailing = due_and_trailing(start_m, last_m, mask, due_m)
    if as_ord > last_ord:
        ended = CoverageStatus.TERMINATED if term_ord <= as_ord else CoverageStatus.ENDED
        return StatusAt(ended, due, trailing)
    if trailing >= config.lapse_after_unpaid_months:
        return StatusAt(CoverageStatus.LAPSED, due, trailing)
    return StatusAt(CoverageStatus.AT_RISK if trailing else CoverageStatus.ACTIVE, due, trailing)


def due_and_trailing(start_m: int, last_m: int, mask: int, due_m: int) -> tuple[int, int]:
    """Months due from ``start_m`` to ``min(due_m, last_m)``, and how many of the latest are unpaid."""
    n = min(due_m, last_m) - start_m + 1
    if n <= 0:
        return 0, 0
    return n, n - (mask & ((1 << n) - 1)).bit_length()
