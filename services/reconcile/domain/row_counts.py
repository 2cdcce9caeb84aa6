"""The figures only need, per agreement, the multiset of compact rows: who holds a row does not matter.

``compact_row`` maps a ``WorkerRow`` to a coarser one that gives the same figures for every as-of
date on or after ``floor`` (``figures.compute_figures`` over weighted rows), so that many workers
share one row and a reconciler's memory grows with the distinct rows, not with the workers:

- a day ordinal (start, last covered day, termination) before ``floor`` becomes ``floor - 1``: the
  figures only compare days with the as-of date (``as_of < start``, ``as_of > last``,
  ``termination <= as_of``), and for an as-of on or after ``floor`` every earlier day compares alike;
- the NIK region becomes the agreement's region code when it lies inside it and "" when it does not
  (the figures only ask ``region.startswith(agreement.region_code)``); "" when the agreement is not
  known (its rows are not counted then, and must be compacted again once it is).

Month indexes and the paid-month mask stay as they are: the due and paid months are counted from
them. Realistic data then gives a few thousand distinct rows per agreement (start month x paid-month
pattern x end month), whatever its number of workers.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from reconcile.domain.status import WorkerRow


def compact_row(row: WorkerRow, region_code: str | None, floor: date) -> WorkerRow:
    """``row`` as the figures see it from ``floor`` on, for an agreement of ``region_code``."""
    start, last, term, start_m, last_m, mask, region = row
    f = floor.toordinal()
    below = f - 1
    inside = region_code is not None and region.startswith(region_code)
    return (
        start if start >= f else below,
        last if last >= f else below,
        term if term >= f else below,
        start_m,
        last_m,
        mask,
        region_code if inside and region_code is not None else "",
    )


def count_rows(rows: Iterable[WorkerRow], region_code: str | None, floor: date) -> dict[WorkerRow, int]:
    """The multiset of ``rows`` compacted (``compact_row``): distinct row -> how many workers."""
    counts: dict[WorkerRow, int] = {}
    for row in rows:
        key = compact_row(row, region_code, floor)
        counts[key] = counts.get(key, 0) + 1
    return counts


__all__ = ["compact_row", "count_rows"]
