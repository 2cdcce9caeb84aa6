"""Figures per agreement at an as-of date, computed for every worker of every agreement in one pass.

Input is compact: per agreement, a sequence of ``WorkerRow`` tuples (``status.to_row``), or the
multiset of them as a mapping from distinct row to how many workers have it (``row_counts``: what
the reconciler keeps, so its memory grows with distinct rows, not workers). The hot loop allocates
nothing per row and counts paid months with integer bit operations. The status
arithmetic is ``status.row_status``, inlined; a test keeps the two equal. Money figures count months
inside the agreement's period only, at the agreement's monthly premium:

- due: months due by ``as_of`` (``status`` module); for a lapsed worker, up to the month that lapsed it;
- paid: paid months inside the worker's covered window (paid ahead included);
- arrears: due months not paid;
- committed: paid, plus every unpaid month of the covered window, up to the period's end, of each
  worker who is active, at risk or yet to start.

Payments and claims carry no as-of of their own here: for a past as-of, fold only the events that
had occurred by then. docs/reconciliation.md defines every figure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from recon.domain.config import DomainConfig
from recon.domain.events import Agreement, BranchTotals, ClaimType, Programme
from reconcile.domain.claims import ClaimState
from reconcile.domain.coverage import WorkerCoverage
from reconcile.domain.dates import last_due_month, month_index, parse_month
from reconcile.domain.status import WorkerRow, to_row

Rows = Sequence[WorkerRow] | Mapping[WorkerRow, int]  # one row per worker, or distinct row -> workers


@dataclass(frozen=True, slots=True)
class ClaimFigure:
    """Claims of one programme and outcome: how many, and their amounts claimed and paid."""

    programme: Programme
    outcome: ClaimType
    count: int
    claimed_rupiah: int
    paid_rupiah: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AgreementFigures:
    """One agreement's figures at ``as_of``. Worker counts partition the enrolled workers:
    ``enrolled = pending + active + lapsed + terminated + ended``; ``at_risk`` is part of ``active``.
    """

    agreement_id: str
    as_of: date
    in_period: bool
    quota: int
    enrolled: int
    pending: int
    active: int
    at_risk: int
    lapsed: int
    terminated: int
    ended: int
    utilisation: float | None  # active / quota
    planned: int
    contributions_due_rupiah: int
    contributions_paid_rupiah: int
    arrears_rupiah: int
    budget_rupiah: int
    committed_rupiah: int
    projected_overrun_rupiah: int
    claims: tuple[ClaimFigure, ...]
    target_population: int | None
    coverage_ratio: float | None  # active / target_population
    region_mismatches: int  # active workers whose NIK region lies outside the funder's region
    branch_report_as_of: date | None
    branch_reported_active: int | None
    branch_ledger_active: int | None  # the ledger's active count at the report's as-of date
    branch_gap: int | None  # branch_ledger_active - branch_reported_active
    branch_reported_paid_rupiah: int | None
    branch_paid_gap_rupiah: int | None  # contributions_paid_rupiah - branch_reported_paid_rupiah


@dataclass(frozen=True, slots=True)
class _Tally:
    pending: int
    active: int
    at_risk: int
    lapsed: int
    terminated: int
    ended: int
    mismatched: int
    due_months: int
    paid_due_months: int
    paid_months: int
    open_months: int


def rows_by_agreement(coverages: Iterable[WorkerCoverage]) -> dict[str, list[WorkerRow]]:
    """The figures pass's input from coverage states; states not yet enrolled are left out."""
    rows: dict[str, list[WorkerRow]] = {}
    for coverage in coverages:
        row = to_row(coverage)
        if row is not None:
            rows.setdefault(coverage.agreement_id, []).append(row)
    return rows


def compute_figures(
    agreements: Mapping[str, Agreement],
    rows: Mapping[str, Rows],
    as_of: date,
    config: DomainConfig,
    *,
    claims: Iterable[ClaimState] = (),
    branch_totals: Mapping[str, BranchTotals] | None = None,
) -> dict[str, AgreementFigures]:
    """Every agreement's figures at the end of ``as_of``, keyed by agreement id.

    ``rows`` maps agreement id to its workers' rows (or their multiset: row -> how many workers);
    rows of agreements not in ``agreements`` are ignored (``rules.orphan_events`` covers those).
    ``branch_totals`` is the last report per agreement. Claims without an agreement id are not
    counted here.
    """
    by_agreement = _claim_figures(claims)
    reports = branch_totals or {}
    result: dict[str, AgreementFigures] = {}
    for agreement_id, agreement in agreements.items():
        workers = _weighted(rows.get(agreement_id, ()))
        tally = _tally(workers, agreement, as_of, config)
        report = reports.get(agreement_id)
        ledger_active = None
        if report is not None:
            ledger_active = tally.active if report.as_of == as_of else _active(workers, report.as_of, config)
        result[agreement_id] = _figures(
            agreement, as_of, tally, by_agreement.get(agreement_id, ()), report, ledger_active
        )
    return result


def planned_workers(agreement: Agreement, as_of: date) -> int:
    """The ramp's target for ``as_of``'s month: the latest step at or before it, 0 before the first.

    An agreement without a ramp plans its whole quota from the period's start.
    """
    if not agreement.ramp:
        return agreement.quota_workers if as_of >= agreement.period_start else 0
    month = month_index(as_of)
    planned = 0
    for step in agreement.ramp:
        if parse_month(step.month) <= month:
            planned = step.target_workers
    return planned


def active_count(rows: Rows, as_of: date, config: DomainConfig) -> int:
    """How many of ``rows`` are active (at risk included) at the end of ``as_of``."""
    return _active(_weighted(rows), as_of, config)


def _weighted(rows: Rows) -> Sequence[tuple[WorkerRow, int]]:
    if isinstance(rows, Mapping):
        return list(rows.items())
    return [(row, 1) for row in rows]


def _active(rows: Sequence[tuple[WorkerRow, int]], as_of: date, config: DomainConfig) -> int:
    as_ord = as_of.toordinal()
    due_m = last_due_month(as_of, config.contribution_due_day)
    lapse = config.lapse_after_unpaid_months
    active = 0
    for (s_ord, l_ord, _, s_m, l_m, mask, _), w in rows:
        if s_ord <= as_ord <= l_ord:
            n = (due_m if due_m < l_m else l_m) - s_m + 1
            if n <= 0 or n - (mask & ((1 << n) - 1)).bit_length() < lapse:
                active += w
    return active


def _tally(
    rows: Sequence[tuple[WorkerRow, int]], agreement: Agreement, as_of: date, config: DomainConfig
) -> _Tally:
    # The hot loop: one pass, no allocation per row, locals only; w workers share the row.
    # Mirrors status.row_status.
    as_ord = as_of.toordinal()
    due_m = last_due_month(as_of, config.contribution_due_day)
    p_lo, p_hi = month_index(agreement.period_start), month_index(agreement.period_end)
    lapse = config.lapse_after_unpaid_months
    region_code = agreement.region_code
    pending = active = at_risk = lapsed = terminated = ended = mismatched = 0
    due = paid_due = paid = open_unpaid = 0
    for (s_ord, l_ord, t_ord, s_m, l_m, mask, region), w in rows:
        lo = s_m if s_m > p_lo else p_lo
        bits = mask >> (lo - s_m)
        live = True
        hi = due_m if due_m < l_m else l_m
        if as_ord < s_ord:
            pending += w
        else:
            n = hi - s_m + 1
            trailing = n - (mask & ((1 << n) - 1)).bit_length() if n > 0 else 0
            if trailing > lapse:
                hi -= trailing - lapse  # a lapsed worker's dues stop at the month that lapsed it
            if as_ord > l_ord:
                live = False
                if t_ord <= as_ord:
                    terminated += w
                else:
                    ended += w
            elif trailing >= lapse:
                live = False
                lapsed += w
            else:
                active += w
                if trailing:
                    at_risk += w
                if not region.startswith(region_code):
                    mismatched += w
            top = hi if hi < p_hi else p_hi
            if top >= lo:
                due += (top - lo + 1) * w
                paid_due += (bits & ((1 << (top - lo + 1)) - 1)).bit_count() * w
        top = l_m if l_m < p_hi else p_hi
        if top >= lo:
            in_window = (bits & ((1 << (top - lo + 1)) - 1)).bit_count()
            paid += in_window * w
            if live:
                open_unpaid += (top - lo + 1 - in_window) * w
    return _Tally(
        pending, active, at_risk, lapsed, terminated, ended, mismatched, due, paid_due, paid, open_unpaid
    )


def _figures(
    agreement: Agreement,
    as_of: date,
    tally: _Tally,
    claims: tuple[ClaimFigure, ...],
    report: BranchTotals | None,
    ledger_active: int | None,
) -> AgreementFigures:
    premium = agreement.monthly_premium_rupiah
    paid = tally.paid_months * premium
    committed = paid + tally.open_months * premium
    target = agreement.target_population
    return AgreementFigures(
        agreement_id=agreement.agreement_id,
        as_of=as_of,
        in_period=agreement.period_start <= as_of <= agreement.period_end,
        quota=agreement.quota_workers,
        enrolled=tally.pending + tally.active + tally.lapsed + tally.terminated + tally.ended,
        pending=tally.pending,
        active=tally.active,
        at_risk=tally.at_risk,
        lapsed=tally.lapsed,
        terminated=tally.terminated,
        ended=tally.ended,
        utilisation=_ratio(tally.active, agreement.quota_workers),
        planned=planned_workers(agreement, as_of),
        contributions_due_rupiah=tally.due_months * premium,
        contributions_paid_rupiah=paid,
        arrears_rupiah=(tally.due_months - tally.paid_due_months) * premium,
        budget_rupiah=agreement.budget_rupiah,
        committed_rupiah=committed,
        projected_overrun_rupiah=max(0, committed - agreement.budget_rupiah),
        claims=claims,
        target_population=target,
        coverage_ratio=None if target is None else _ratio(tally.active, target),
        region_mismatches=tally.mismatched,
        branch_report_as_of=None if report is None else report.as_of,
        branch_reported_active=None if report is None else report.active_workers,
        branch_ledger_active=ledger_active,
        branch_gap=None if report is None or ledger_active is None else ledger_active - report.active_workers,
        branch_reported_paid_rupiah=None if report is None else report.contributions_paid_rupiah,
        branch_paid_gap_rupiah=None if report is None else paid - report.contributions_paid_rupiah,
    )


def _claim_figures(claims: Iterable[ClaimState]) -> dict[str, tuple[ClaimFigure, ...]]:
    sums: dict[str, dict[tuple[Programme, ClaimType], list[int]]] = {}
    for claim in claims:
        if claim.agreement_id is None:
            continue
        cell = sums.setdefault(claim.agreement_id, {}).setdefault((claim.programme, claim.outcome), [0, 0, 0])
        cell[0] += 1
        cell[1] += claim.amount_claimed
        cell[2] += claim.amount_paid or 0
    return {
        agreement_id: tuple(ClaimFigure(p, o, c[0], c[1], c[2]) for (p, o), c in sorted(cells.items()))
        for agreement_id, cells in sums.items()
    }


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator > 0 else None
