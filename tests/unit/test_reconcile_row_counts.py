"""The reconciler's memory: figures over the multiset of compacted rows equal the per-worker figures.

The reconciler keeps, per agreement, how many workers have each compacted row (``row_counts``,
``reconcile.counts.RowCounts``) instead of one row per worker; these properties pin that the
figures, the active count at a branch report's date and the double-funding windows are exactly
what the per-worker path gives, on random data.
"""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from test_reconcile_builders import agreement, branch_totals, coverage, months

from recon.domain.config import DomainConfig
from reconcile.counts import RowCounts
from reconcile.domain.coverage import WorkerCoverage
from reconcile.domain.figures import active_count, compute_figures, rows_by_agreement
from reconcile.domain.row_counts import compact_row, count_rows
from reconcile.domain.rules_workers import funding_windows, funding_windows_from_rows
from reconcile.domain.status import to_row

CONFIG = DomainConfig()
AGREEMENTS = {
    "PKS-A": agreement("PKS-A", region="7271", quota=5),
    "PKS-B": agreement("PKS-B", region="72", quota=8, start=date(2025, 3, 1), end=date(2026, 2, 28)),
}
_days = st.dates(min_value=date(2024, 6, 1), max_value=date(2026, 6, 30))
_labels = months("2024-06", "2026-08")


@st.composite
def _coverages(draw: st.DrawFn) -> list[WorkerCoverage]:
    covs = []
    for i in range(draw(st.integers(0, 30))):
        start = draw(_days)
        end = draw(st.none() | st.dates(min_value=start, max_value=date(2026, 12, 31)))
        term = draw(st.none() | st.dates(min_value=start, max_value=date(2026, 12, 31)))
        covs.append(
            coverage(
                start,
                worker=f"w{draw(st.integers(0, 12))}",
                agreement=draw(st.sampled_from(["PKS-A", "PKS-B", "PKS-ORPHAN"])),
                region=draw(st.sampled_from(["7271", "7206", "7371", "72"])),
                end=end,
                terminated_on=term,
                paid=draw(st.sets(st.sampled_from(_labels), max_size=14)),
                enrolled=draw(st.booleans()) or i % 3 != 0,
            )
        )
    # One coverage per (worker, agreement), as in the ledger.
    return list({(c.worker_key, c.agreement_id): c for c in covs}.values())


def _counts(
    covs: list[WorkerCoverage], floor: date
) -> dict[str, dict[tuple[int, int, int, int, int, int, str], int]]:
    per_worker = rows_by_agreement(covs)
    regions = {aid: a.region_code for aid, a in AGREEMENTS.items()}
    return {aid: count_rows(rows, regions.get(aid), floor) for aid, rows in per_worker.items()}


@settings(max_examples=300, deadline=None)
@given(covs=_coverages(), floor=_days, ahead=st.integers(0, 400), report_ahead=st.integers(0, 400))
def test_figures_over_compacted_row_counts_equal_the_per_worker_figures(
    covs: list[WorkerCoverage], floor: date, ahead: int, report_ahead: int
) -> None:
    as_of = floor + timedelta(days=ahead)
    reports = {"PKS-A": branch_totals("PKS-A", floor + timedelta(days=report_ahead), active=3, paid=16_800)}
    per_worker = compute_figures(AGREEMENTS, rows_by_agreement(covs), as_of, CONFIG, branch_totals=reports)
    weighted = compute_figures(AGREEMENTS, _counts(covs, floor), as_of, CONFIG, branch_totals=reports)
    assert weighted == per_worker


@settings(max_examples=200, deadline=None)
@given(covs=_coverages(), floor=_days, ahead=st.integers(0, 400))
def test_active_count_over_row_counts_equals_the_per_worker_count(
    covs: list[WorkerCoverage], floor: date, ahead: int
) -> None:
    as_of = floor + timedelta(days=ahead)
    for aid, rows in rows_by_agreement(covs).items():
        counted = count_rows(rows, AGREEMENTS[aid].region_code if aid in AGREEMENTS else None, floor)
        assert active_count(counted, as_of, CONFIG) == active_count(rows, as_of, CONFIG)


def test_compacting_merges_workers_who_differ_only_in_days_before_the_floor() -> None:
    floor = date(2025, 6, 1)
    a = to_row(coverage(date(2025, 1, 3), region="7271", paid=months("2025-01", "2025-05")))
    b = to_row(coverage(date(2025, 1, 20), region="7271", paid=months("2025-01", "2025-05")))
    c = to_row(coverage(date(2025, 1, 20), region="7206", paid=months("2025-01", "2025-05")))
    assert a is not None and b is not None and c is not None
    assert count_rows([a, b, c], "7271", floor) == {
        compact_row(a, "7271", floor): 2,  # the start days compare alike from June on
        compact_row(c, "7271", floor): 1,  # outside Palu: a region mismatch, kept apart
    }
    late = to_row(coverage(date(2025, 6, 10), region="7271"))
    assert late is not None and compact_row(late, "7271", floor)[0] == date(2025, 6, 10).toordinal()


@settings(max_examples=200, deadline=None)
@given(covs=_coverages(), floor=_days, data=st.data())
def test_row_counts_moved_at_fold_time_equal_counts_from_scratch(
    covs: list[WorkerCoverage], floor: date, data: st.DataObject
) -> None:
    """Folding moves one worker's count from its old row to its new one; the result equals the
    counts built from the final rows (what a new leader loads)."""
    regions = {aid: a.region_code for aid, a in AGREEMENTS.items()}
    counts = RowCounts(floor)
    current: dict[tuple[str, str], tuple[int, int, int, int, int, int, str] | None] = {}
    updates = data.draw(st.permutations(covs)) + data.draw(
        st.lists(st.sampled_from(covs), max_size=5) if covs else st.just([])
    )
    for cov in updates:
        old = current.get(cov.key)
        assert counts.move(cov.agreement_id, old, to_row(cov), regions.get(cov.agreement_id))
        current[cov.key] = to_row(cov)
    scratch = {aid: rows for aid, rows in _counts(covs, floor).items()}
    assert {aid: rows for aid, rows in counts.rows.items() if rows} == scratch
    assert counts.workers() == sum(1 for c in covs if to_row(c) is not None)


def test_moving_a_row_that_was_never_counted_reports_the_disagreement() -> None:
    counts = RowCounts(date(2025, 6, 1))
    row = to_row(coverage())
    assert row is not None
    assert not counts.move("PKS-A", row, row, "7271")  # the caller reloads that agreement


def test_counts_compacted_for_another_region_are_stale() -> None:
    counts = RowCounts(date(2025, 6, 1))
    row = to_row(coverage())
    assert row is not None
    counts.move("PKS-A", None, row, None)  # folded before the agreement was known
    assert counts.stale(AGREEMENTS) == ["PKS-A"]
    counts.move("PKS-B", None, row, "72")
    assert "PKS-B" not in counts.stale(AGREEMENTS)


@settings(max_examples=200, deadline=None)
@given(covs=_coverages(), as_of=_days)
def test_funding_windows_from_rows_equal_those_from_coverage_states(
    covs: list[WorkerCoverage], as_of: date
) -> None:
    triples = [(c.worker_key, c.agreement_id, row) for c in covs if (row := to_row(c)) is not None]
    from_rows = funding_windows_from_rows(triples, as_of, CONFIG)
    from_states = funding_windows(covs, as_of, CONFIG)
    assert {k: sorted(w) for k, w in from_rows.items()} == {k: sorted(w) for k, w in from_states.items()}
