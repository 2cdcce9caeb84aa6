"""Double funding: one worker covered by two agreements whose coverage windows overlap.

The real case is a province and a regency (or city) both funding the same person. The rule reads
windows, not coverage states, so the adapter can hand it only the workers with two or more
agreements (a GROUP BY in the ledger); ``funding_windows`` builds them from coverage states, and
``funding_windows_from_rows`` the same windows from their compact rows (``status.to_row``).
Signals count workers per agreement pair; they never name one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from itertools import combinations

from recon.domain.config import DomainConfig
from recon.domain.events import Agreement
from reconcile.domain.coverage import WorkerCoverage
from reconcile.domain.signals import Rule, Severity, Signal, ThresholdPolicy, count_level
from reconcile.domain.status import OPEN_ORDINAL, CoverageStatus, WorkerRow, row_status, status_at

CoverageWindow = tuple[str, date, date | None]  # (agreement id, first covered day, last or None)

_IN_FORCE = frozenset({CoverageStatus.PENDING, CoverageStatus.ACTIVE, CoverageStatus.AT_RISK})


def funding_windows(
    coverages: Iterable[WorkerCoverage], as_of: date, config: DomainConfig
) -> dict[str, list[CoverageWindow]]:
    """Per worker key, the windows of the coverages in force at ``as_of`` (active, at risk, or yet
    to start), for the workers with two or more of them."""
    windows: dict[str, list[CoverageWindow]] = {}
    for c in coverages:
        if status_at(c, as_of, config).status in _IN_FORCE:
            windows.setdefault(c.worker_key, []).append(
                (c.agreement_id, c.coverage_start, c.last_covered_day)
            )
    return {key: w for key, w in windows.items() if len({a for a, _, _ in w}) > 1}


def funding_windows_from_rows(
    rows: Iterable[tuple[str, str, WorkerRow]], as_of: date, config: DomainConfig
) -> dict[str, list[CoverageWindow]]:
    """``funding_windows`` from (worker key, agreement id, row) triples of enrolled coverages: the
    row holds the first and last covered days and all the status needs."""
    windows: dict[str, list[CoverageWindow]] = {}
    for worker_key, agreement_id, row in rows:
        if row_status(row, as_of, config).status in _IN_FORCE:
            last = None if row[1] == OPEN_ORDINAL else date.fromordinal(row[1])
            windows.setdefault(worker_key, []).append((agreement_id, date.fromordinal(row[0]), last))
    return {key: w for key, w in windows.items() if len({a for a, _, _ in w}) > 1}


def overlapping_pairs(windows: Sequence[CoverageWindow]) -> set[tuple[str, str]]:
    """The agreement pairs (sorted) among one worker's windows that overlap by a day or more."""
    pairs = set()
    for (a, a_start, a_end), (b, b_start, b_end) in combinations(windows, 2):
        if a != b and (a_end is None or b_start <= a_end) and (b_end is None or a_start <= b_end):
            pairs.add((a, b) if a < b else (b, a))
    return pairs


def double_funding(
    windows: Mapping[str, Sequence[CoverageWindow]],
    policy: ThresholdPolicy,
    agreements: Mapping[str, Agreement] | None = None,
) -> list[Signal]:
    """One BREACH signal per agreement pair with overlapping windows of ``double_funding_min_workers``
    or more workers (thresholds of the pair's first agreement); nothing for the other pairs.
    ``agreements`` only lends funder names to the message."""
    counts: dict[tuple[str, str], int] = {}
    for worker_windows in windows.values():
        for pair in overlapping_pairs(worker_windows):
            counts[pair] = counts.get(pair, 0) + 1
    known = agreements or {}
    signals = []
    for (a, b), count in sorted(counts.items()):
        message = (
            f"{count:,} worker(s) are funded by both agreement {_named(a, known)} and agreement "
            f"{_named(b, known)} in overlapping coverage windows."
        )
        signals.append(
            Signal(
                rule=Rule.DOUBLE_FUNDING,
                subject=f"pair:{a}|{b}",
                level=count_level(count, policy.for_agreement(a).double_funding_min_workers),
                severity=Severity.WARNING,
                observed=count,
                expected=0,
                message=message,
                agreement_id=a,
            )
        )
    return signals


def _named(agreement_id: str, agreements: Mapping[str, Agreement]) -> str:
    agreement = agreements.get(agreement_id)
    return agreement_id if agreement is None else f"{agreement_id} ({agreement.funder_name})"
