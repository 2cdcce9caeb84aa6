"""What the reconciler keeps in memory of the coverages: per agreement, a multiset of compact rows.

The figures need, per agreement, only how many workers have each compacted row
(``reconcile.domain.row_counts``), so memory grows with agreements and distinct rows, not with
workers. The multiset is loaded from the ledger grouped by the database (``ReconcileStore.row_counts``)
and kept current at fold time: the fold reads each touched coverage's stored row, and the counts
move from the old row to the new one. Nothing here is the source of truth: a new leader (or a
reload) rebuilds it from the ledger.

The rows of an agreement are compacted for that agreement's region code and for a floor date
(one for all, today's when loaded; earlier for an agreement whose branch report is older):
``stale`` names the agreements whose region changed (or became known) since, and a figure for an
as-of before an agreement's floor needs that agreement reloaded with an earlier floor
(``ReconcileService`` does both).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Mapping
from datetime import date

from recon.domain.events import Agreement
from reconcile.domain import WorkerRow
from reconcile.domain.row_counts import compact_row

Group = tuple[str, str | None, WorkerRow, int]  # (agreement id, region compacted for, row, workers)


class RowCounts:
    """Per agreement id, distinct compacted row -> how many enrolled workers have it."""

    def __init__(self, floor: date = date.max) -> None:
        self.floor = floor
        self.floors: dict[str, date] = {}  # agreements compacted for an earlier floor than ``floor``
        self.rows: dict[str, dict[WorkerRow, int]] = {}
        self.regions: dict[str, str | None] = {}

    def floor_of(self, agreement_id: str) -> date:
        return self.floors.get(agreement_id, self.floor)

    def load(self, floor: date, groups: Iterable[Group]) -> int:
        """Replace everything with ``groups`` compacted for ``floor``; returns how many workers."""
        self.floor = floor
        self.floors, self.rows, self.regions = {}, {}, {}
        return self._add(groups)

    def replace(self, agreement_id: str, region: str | None, floor: date, groups: Iterable[Group]) -> int:
        """Replace one agreement's rows with ``groups`` (compacted for ``region`` and ``floor``)."""
        self.rows.pop(agreement_id, None)
        self.regions[agreement_id] = region
        self.floors.pop(agreement_id, None)
        if floor < self.floor:
            self.floors[agreement_id] = floor
        return self._add(groups)

    def move(
        self, agreement_id: str, old: WorkerRow | None, new: WorkerRow | None, region: str | None
    ) -> bool:
        """One worker's row went from ``old`` to ``new`` (None: not enrolled). ``region``: the
        agreement's region code as last read, used when the agreement has no rows yet. False when
        ``old`` was not counted (the counts disagree with the ledger: reload this agreement)."""
        rows = self.rows.get(agreement_id)
        if not rows:  # nothing compacted yet: compact for the region code as last read
            rows = self.rows[agreement_id] = {}
            self.regions[agreement_id] = region
        region = self.regions[agreement_id]
        floor = self.floor_of(agreement_id)
        ok = True
        if old is not None:
            key = compact_row(old, region, floor)
            n = rows.get(key, 0)
            if n > 1:
                rows[key] = n - 1
            elif n == 1:
                del rows[key]
            else:
                ok = False
        if new is not None:
            key = compact_row(new, region, floor)
            rows[key] = rows.get(key, 0) + 1
        return ok

    def stale(self, agreements: Mapping[str, Agreement]) -> list[str]:
        """Agreements with rows compacted for another region code than theirs."""
        return [
            aid
            for aid, region in self.regions.items()
            if aid in agreements and agreements[aid].region_code != region and self.rows.get(aid)
        ]

    def workers(self) -> int:
        return sum(sum(rows.values()) for rows in self.rows.values())

    def distinct(self) -> int:
        return sum(len(rows) for rows in self.rows.values())

    def _add(self, groups: Iterable[Group]) -> int:
        n = 0
        gc.disable()  # a million small tuples would otherwise trigger many useless collections
        try:
            n = self._add_all(groups)
        finally:
            gc.enable()
        return n

    def _add_all(self, groups: Iterable[Group]) -> int:
        n = 0
        for agreement_id, region, row, count in groups:
            self.regions[agreement_id] = region
            rows = self.rows.setdefault(agreement_id, {})
            # The database grouped by the compacted columns; two groups can still meet here only
            # if the region code changed mid-read, which ``stale`` then reports.
            rows[row] = rows.get(row, 0) + count
            n += count
        return n


__all__ = ["Group", "RowCounts"]
