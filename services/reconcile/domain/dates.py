"""Calendar arithmetic shared by the figures and the rules: month indexes and local dates.

A month is an int index, ``year * 12 + month - 1``, so month ranges are plain integer ranges and a
set of paid months can be a bit mask. Event times are UTC milliseconds; a date derived from one is
the calendar date in the branch's local zone, given as a UTC offset in minutes (WIB, UTC+7, unless
the caller says otherwise: Sulawesi is WITA, UTC+8).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final

WIB_OFFSET_MINUTES: Final = 7 * 60
DAY_MS: Final = 86_400_000
_EPOCH: Final = date(1970, 1, 1)


def month_index(day: date) -> int:
    """The month index of ``day``: ``year * 12 + month - 1``."""
    return day.year * 12 + day.month - 1


def parse_month(label: str) -> int:
    """The month index of a ``"YYYY-MM"`` label; ValueError when it is not one."""
    year, sep, month = label.partition("-")
    if not sep or len(year) != 4 or len(month) != 2 or not 1 <= int(month) <= 12:
        raise ValueError(f"not a YYYY-MM month label: {label!r}")
    return int(year) * 12 + int(month) - 1


def month_label(index: int) -> str:
    """The ``"YYYY-MM"`` label of a month index (the inverse of ``parse_month``)."""
    year, month0 = divmod(index, 12)
    return f"{year:04d}-{month0 + 1:02d}"


def month_first_day(index: int) -> date:
    """The first day of the month with this index."""
    year, month0 = divmod(index, 12)
    return date(year, month0 + 1, 1)


def last_due_month(as_of: date, due_day: int) -> int:
    """The latest month whose contribution is due on or before ``as_of``.

    Month m is due on day ``due_day`` of m: on the 15th, with the default, the month itself is due;
    on the 14th only the month before is.
    """
    index = month_index(as_of)
    return index if as_of.day >= due_day else index - 1


def local_date(ms: int, utc_offset_minutes: int = WIB_OFFSET_MINUTES) -> date:
    """The local calendar date of a UTC instant in milliseconds."""
    return _EPOCH + timedelta(days=(ms + utc_offset_minutes * 60_000) // DAY_MS)


def local_midnight_ms(day: date, utc_offset_minutes: int = WIB_OFFSET_MINUTES) -> int:
    """The UTC milliseconds of local midnight starting ``day`` (the inverse of ``local_date``)."""
    return (day - _EPOCH).days * DAY_MS - utc_offset_minutes * 60_000


def add_years(day: date, years: int) -> date:
    """The same calendar day ``years`` later; 29 February becomes 28 February in a common year."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)
